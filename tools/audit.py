# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Fairness audit of a model's saved predictions: per-group table with bootstrap CIs, gaps, flags and plots.

Works on any CSV of predictions, and on MONAI ``ClassificationSaver`` output (no header: ``filename, pred0,
pred1, ...``) joined with a manifest that holds the labels and the group column::

    python tools/audit.py predictions.csv --score prob --label y --group sex --reference M --n-bootstrap 1000 \\
        --out audit_out
    python tools/audit.py eval/predictions.csv --score pred1 --label label --group sex \\
        --manifest manifest.csv --join-on image --threshold ba-optimal --out audit_out

Scores must be probabilities in ``[0, 1]``; labels binary (0/1 or True/False); the group column may hold integer
codes (names via ``--group-names 0=F,1=M``) or strings (``M``/``F``: encoded to codes in sorted order, or in the
order of ``--group-names F,M``). Missing group values are kept as the group ``unknown`` (code -1), never dropped.

Outputs (``--out``): ``fairness_table.csv`` (long format), ``per_group.csv``, ``report.md``, ``roc_by_group.png``,
``calibration_by_group.png``, ``metric_bars.png``. Only aggregates are written: no file names, IDs or rows.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from monai_fair.metrics import (
    FairnessTable,
    bootstrap_replicates,
    build_grouped_scores,
    compute_fairness_table,
    percentile_interval,
)
from monai_fair.metrics.thresholds import best_balanced_accuracy_threshold
from monai_fair.report.group_plots import (
    figure_to_png,
    plot_group_calibration,
    plot_group_metric_bars,
    plot_group_roc,
)
from monai_fair.report.tables import markdown_table

__all__ = ["AuditInputError", "build_parser", "load_audit_frame", "encode_groups", "run_audit", "main"]

UNKNOWN_CODE = -1
COUNT_KEYS = ("n", "positives", "negatives")
#: per-group metrics shown in the printed table and the bar chart
TABLE_METRICS = ("selection_rate", "tpr", "fpr", "fnr", "ppv", "balanced_accuracy", "auc", "ece")
BAR_METRICS = ("tpr", "fpr", "balanced_accuracy", "auc")


class AuditInputError(ValueError):
    """Bad input data or arguments (printed as ``error: ...`` with exit status 2)."""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(
        prog="audit.py",
        description="Group fairness audit of saved predictions (aggregates only).",
    )
    p.add_argument("predictions", help="CSV of predictions (with a header, or MONAI ClassificationSaver output).")
    p.add_argument("--score", nargs="+", required=True, help="probability column(s); several for multi-label.")
    p.add_argument("--label", nargs="+", required=True, help="binary label column(s), one per score column.")
    p.add_argument("--group", required=True, help="column with the group attribute (codes or strings).")
    p.add_argument("--reference", help="reference (privileged) group, by name or code (default: largest group).")
    p.add_argument("--group-names", help="'0=F,1=M' for integer codes, or 'F,M' (code order / string order).")
    p.add_argument("--label-names", nargs="+", help="display names of the labels (multi-label).")
    p.add_argument("--manifest", help="CSV holding labels/groups, joined to the predictions.")
    p.add_argument("--join-on", help="manifest column matched against the predictions' key column.")
    p.add_argument(
        "--pred-key",
        help="key column of the predictions (default: 'filename' without header, else " "the --join-on name).",
    )
    p.add_argument(
        "--no-header",
        action="store_true",
        help="predictions have no header (ClassificationSaver): "
        "columns are named filename, pred0, pred1, ... (detected automatically when obvious).",
    )
    p.add_argument("--threshold", default="0.5", help="decision threshold in [0, 1] or 'ba-optimal'.")
    p.add_argument("--n-bootstrap", type=int, default=0, help="bootstrap resamples for CIs (0: none).")
    p.add_argument("--ci-level", type=float, default=0.95)
    p.add_argument("--min-group-size", type=int, default=10)
    p.add_argument("--n-bins", type=int, default=15, help="calibration bins.")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed.")
    p.add_argument("--out", help="directory for CSV/Markdown/PNG outputs.")
    p.add_argument("--no-progress", action="store_true", help="no progress bar.")
    return p


def _read_csv(path: str, no_header: bool) -> pd.DataFrame:
    if not os.path.isfile(path):
        raise AuditInputError(f"file not found: {path}")
    if not no_header:
        head = pd.read_csv(path, header=None, nrows=1)
        # ClassificationSaver rows: a key, then numbers only -> a first row that is all numbers after col 0
        rest = pd.to_numeric(head.iloc[0, 1:], errors="coerce")
        no_header = head.shape[1] > 1 and bool(rest.notna().all())
    if no_header:
        df = pd.read_csv(path, header=None)
        df.columns = ["filename"] + [f"pred{i}" for i in range(df.shape[1] - 1)]
        return df
    return pd.read_csv(path)


def _need(df: pd.DataFrame, cols: Sequence[str], where: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise AuditInputError(f"column(s) {missing} not found in {where}; available: {list(df.columns)}")


def load_audit_frame(args: argparse.Namespace) -> tuple[pd.DataFrame, list[str]]:
    """Predictions (joined with the manifest when given) and notes about the join.

    Raises:
        AuditInputError: missing files/columns, duplicate manifest keys, predictions without a manifest row.
    """
    preds = _read_csv(args.predictions, args.no_header)
    notes: list[str] = []
    if args.manifest is None:
        return preds, notes
    if not args.join_on:
        raise AuditInputError("--manifest needs --join-on (the manifest column matching the predictions' key).")
    manifest = pd.read_csv(args.manifest) if os.path.isfile(args.manifest) else None
    if manifest is None:
        raise AuditInputError(f"file not found: {args.manifest}")
    _need(manifest, [args.join_on], "the manifest")
    pred_key = args.pred_key or (
        "filename" if "filename" in preds.columns and args.join_on not in preds.columns else args.join_on
    )
    _need(preds, [pred_key], "the predictions")
    if manifest[args.join_on].duplicated().any():
        raise AuditInputError(
            f"manifest column {args.join_on!r} has {int(manifest[args.join_on].duplicated().sum())} "
            "duplicate key(s); the join would be ambiguous."
        )
    left = preds.rename(columns={pred_key: "__key__"})
    right = manifest.rename(columns={args.join_on: "__key__"})
    # columns present in both keep the manifest's values for labels/groups, the predictions' for scores
    overlap = [c for c in right.columns if c in left.columns and c != "__key__"]
    right = right.drop(columns=[c for c in overlap if c in args.score])
    left = left.drop(columns=[c for c in overlap if c not in args.score])
    left["__key__"], right["__key__"] = left["__key__"].astype(str), right["__key__"].astype(str)
    merged = left.merge(right, on="__key__", how="left", indicator=True)
    unmatched = merged["_merge"] != "both"
    if unmatched.any():
        # ClassificationSaver stores full paths, manifests often relative ones: fall back to the file name
        base_r = right["__key__"].map(os.path.basename)
        if not base_r.duplicated().any():
            left2 = left.assign(__key__=left["__key__"].map(os.path.basename))
            merged = left2.merge(right.assign(__key__=base_r), on="__key__", how="left", indicator=True)
            unmatched = merged["_merge"] != "both"
            notes.append("joined on file names (base names) of the keys")
    if unmatched.any():
        raise AuditInputError(
            f"{int(unmatched.sum())} of {len(merged)} prediction rows have no manifest row "
            f"(matched on {pred_key!r} ↔ {args.join_on!r}); nothing is dropped silently."
        )
    extra = len(manifest) - len(merged)
    if extra > 0:
        notes.append(f"{extra} manifest rows have no prediction (not audited)")
    return merged.drop(columns=["__key__", "_merge"]), notes


def _parse_group_names(spec: str | None) -> dict[str, str] | list[str] | None:
    if not spec:
        return None
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if all("=" in p for p in parts):
        return {k.strip(): v.strip() for k, v in (p.split("=", 1) for p in parts)}
    if any("=" in p for p in parts):
        raise AuditInputError(f"--group-names mixes 'code=name' and plain names: {spec!r}")
    return parts


def encode_groups(values: pd.Series, group_names: str | None) -> tuple[np.ndarray, dict[int, str]]:
    """Integer codes and the code→name map of a group column.

    Integer-like columns keep their codes (names from ``'0=F,1=M'`` or a name list in code order); string columns
    are coded in sorted order, or in the order of a ``'F,M'`` name list. Missing values become code -1
    ("unknown").

    Raises:
        AuditInputError: non-integer numeric codes, or strings not in the given name list.
    """
    spec = _parse_group_names(group_names)
    missing = values.isna().to_numpy()
    present = values[~missing]
    codes = np.full(len(values), UNKNOWN_CODE, dtype=np.int64)
    numeric = pd.to_numeric(present, errors="coerce")
    if len(present) and numeric.notna().all():
        if not np.all(np.equal(np.mod(numeric.to_numpy(dtype=float), 1), 0)):
            raise AuditInputError("numeric group codes must be integers.")
        codes[~missing] = numeric.to_numpy(dtype=float).astype(np.int64)
        uniq = sorted(set(codes[~missing].tolist()))
        if isinstance(spec, dict):
            names = {int(k): v for k, v in spec.items()}
        elif isinstance(spec, list):
            names = dict(enumerate(spec))
        else:
            names = {}
        names = {c: names.get(c, str(c)) for c in uniq}
    else:
        strings = present.astype(str).str.strip()
        if isinstance(spec, dict):
            raise AuditInputError(
                "--group-names 'code=name' is for integer codes; for a string column give the "
                "names in code order, e.g. 'F,M'."
            )
        order = spec if isinstance(spec, list) else sorted(strings.unique().tolist())
        unknown = sorted(set(strings) - set(order))
        if unknown:
            raise AuditInputError(f"group values {unknown} are not in --group-names {order}.")
        lookup = {name: i for i, name in enumerate(order)}
        codes[~missing] = strings.map(lookup).to_numpy(dtype=np.int64)
        names = {lookup[n]: n for n in order if n in set(strings)}
    if missing.any():
        names[UNKNOWN_CODE] = "unknown"
    return codes, dict(sorted(names.items()))


def _check_columns(df: pd.DataFrame, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    if len(args.score) != len(args.label):
        raise AuditInputError(f"--score has {len(args.score)} column(s) but --label has {len(args.label)}.")
    _need(df, [*args.score, *args.label, args.group], "the predictions" + (" + manifest" if args.manifest else ""))
    scores = df[args.score].apply(pd.to_numeric, errors="coerce")
    bad = scores.isna() & df[args.score].notna()
    if bad.any().any():
        raise AuditInputError(f"non-numeric scores in {list(scores.columns[bad.any()])}.")
    if scores.isna().any().any():
        raise AuditInputError(f"{int(scores.isna().any(axis=1).sum())} row(s) have a missing (NaN) score.")
    s = scores.to_numpy(dtype=float)
    if s.min() < 0.0 or s.max() > 1.0:
        raise AuditInputError(
            f"scores must be probabilities in [0, 1], got range [{s.min():.4g}, {s.max():.4g}] "
            "(apply a sigmoid/softmax first)."
        )
    labels = df[args.label].replace({True: 1, False: 0, "True": 1, "False": 0, "true": 1, "false": 0})
    labels = labels.apply(pd.to_numeric, errors="coerce")
    if labels.isna().any().any():
        raise AuditInputError(
            f"{int(labels.isna().any(axis=1).sum())} row(s) have a missing (NaN) or non-numeric " "label."
        )
    y = labels.to_numpy(dtype=float)
    values = sorted(set(np.unique(y).tolist()))
    if not set(values) <= {0.0, 1.0}:
        raise AuditInputError(f"labels must be binary 0/1, got values {values[:6]}{' ...' if len(values) > 6 else ''}.")
    return s, y


def _resolve_reference(ref: str | None, names: dict[int, str]) -> int | None:
    if ref is None:
        return None
    by_name = {v: k for k, v in names.items()}
    if ref in by_name:
        return by_name[ref]
    try:
        code = int(ref)
    except ValueError:
        code = None
    if code is None or code not in names:
        raise AuditInputError(f"--reference {ref!r} is not a group name or code; groups: {names}.")
    return code


def _resolve_threshold(spec: str, s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if spec == "ba-optimal":
        cols = [best_balanced_accuracy_threshold(s[:, j], y[:, j], 101)[0] for j in range(s.shape[1])]
        return torch.tensor(cols, dtype=torch.float64)
    try:
        t = float(spec)
    except ValueError:
        raise AuditInputError(f"--threshold must be a number in [0, 1] or 'ba-optimal', got {spec!r}.") from None
    if not 0.0 <= t <= 1.0 or math.isnan(t):
        raise AuditInputError(f"--threshold must be in [0, 1], got {t}.")
    return torch.full((s.shape[1],), t, dtype=torch.float64)


def _bootstrap(
    table: FairnessTable, s: torch.Tensor, y: torch.Tensor, g: torch.Tensor, args: argparse.Namespace, progress: bool
) -> FairnessTable:
    """Percentile CIs of every non-count figure, resampled in chunks behind a progress bar."""
    gs = build_grouped_scores(s, y, g, table.group_codes)
    thr = torch.as_tensor(table.threshold, dtype=torch.float64).reshape(-1)
    thr = thr.expand(1 if s.ndim == 1 else s.shape[1]).contiguous()
    ref_index = table.group_codes.index(table.reference)
    point = {f"per_group/{k}": v for k, v in table.per_group.items() if k not in COUNT_KEYS}
    point.update({f"gaps/{k}": v for k, v in table.gaps.items()})
    point.update({f"summary/{k}": v for k, v in table.summary.items()})
    gen = torch.Generator().manual_seed(int(args.seed))
    # chunks of ~4M weight elements, as in the metric core: small data runs in one fast step, large data (where a
    # bootstrap takes minutes) advances the bar chunk by chunk
    chunk = max(1, min(args.n_bootstrap, (1 << 22) // max(1, s.numel())))
    parts: dict[str, list[torch.Tensor]] = {}
    with tqdm(total=args.n_bootstrap, desc="bootstrap", unit="resample", disable=not progress, file=sys.stderr) as bar:
        done = 0
        while done < args.n_bootstrap:
            b = min(chunk, args.n_bootstrap - done)
            reps = bootstrap_replicates(
                gs,
                thr,
                ref_index,
                n_bootstrap=b,
                min_group_size=args.min_group_size,
                n_bins=args.n_bins,
                generator=gen,
                keys=list(point),
            )
            for k, v in reps.items():
                parts.setdefault(k, []).append(v)
            done += b
            bar.update(b)
    ci = {}
    for k, est in point.items():
        reps = torch.cat(parts[k], 0)
        reps = reps.reshape(reps.shape[0], *est.shape)  # (B, G, 1) / (B, 1) -> the table's layout
        lo, hi = percentile_interval(reps, args.ci_level, dim=0)
        nan = torch.full_like(lo, float("nan"))
        ci[k] = (torch.where(torch.isnan(est), nan, lo), torch.where(torch.isnan(est), nan, hi))
    table.ci, table.ci_level, table.n_bootstrap = ci, float(args.ci_level), int(args.n_bootstrap)
    return table


def run_audit(args: argparse.Namespace, progress: bool = True) -> tuple[FairnessTable, dict]:
    """Load, validate, encode and compute the fairness table (with CIs when ``--n-bootstrap`` > 0).

    Returns:
        ``(table, context)``; ``context`` holds the tensors for plots and notes for the report.
    """
    df, notes = load_audit_frame(args)
    s_np, y_np = _check_columns(df, args)
    codes, names = encode_groups(df[args.group], args.group_names)
    if (codes == UNKNOWN_CODE).any():
        notes.append(
            f"{int((codes == UNKNOWN_CODE).sum())} row(s) with a missing group value are reported as " "group 'unknown'"
        )
    s, y, g = (torch.tensor(np.array(a)) for a in (s_np, y_np, codes))
    thr = _resolve_threshold(args.threshold, s, y)
    if args.label_names is not None and len(args.label_names) != s.shape[1]:
        raise AuditInputError(f"--label-names has {len(args.label_names)} names for {s.shape[1]} label(s).")
    label_names = args.label_names or (list(args.label) if s.shape[1] > 1 else None)
    single = s.shape[1] == 1
    s_in, y_in = (s[:, 0], y[:, 0]) if single else (s, y)
    table = compute_fairness_table(
        s_in,
        y_in,
        g,
        threshold=thr if not single else float(thr[0]),
        reference=_resolve_reference(args.reference, names),
        group_codes=sorted(names),
        group_names=names,
        label_names=label_names,
        min_group_size=args.min_group_size,
        n_bins=args.n_bins,
    )
    if args.n_bootstrap > 0:
        table = _bootstrap(table, s_in, y_in, g, args, progress)
    context = {
        "y_score": s_in,
        "y": y_in,
        "groups": g,
        "names": names,
        "notes": notes,
        "n": len(df),
        "threshold": thr.tolist(),
    }
    return table, context


def _fmt(v: float, lo: float | None = None, hi: float | None = None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "NaN"
    text = f"{v:.3f}"
    if lo is not None and hi is not None and not (math.isnan(lo) or math.isnan(hi)):
        text += f" [{lo:.3f}, {hi:.3f}]"
    return text


def wide_tables(table: FairnessTable) -> dict[str | None, dict[str, pd.DataFrame]]:
    """Per label: display tables ``per_group`` (metrics with CIs), ``gaps`` (signed, vs reference), ``summary``."""
    long = table.to_dataframe()
    out = {}
    labels = [None] if long["label"].isna().all() else list(dict.fromkeys(long["label"]))
    for label in labels:
        part = long if label is None else long[long["label"] == label]
        cell = part.assign(text=[_fmt(v, lo, hi) for v, lo, hi in zip(part["value"], part["ci_low"], part["ci_high"])])
        rows = cell[cell["group_name"] != "all"]
        per_group = rows[rows["metric"].isin(("n", "positives", *TABLE_METRICS))]
        wide = per_group.pivot_table(index="group_name", columns="metric", values="text", aggfunc="first", sort=False)
        counts = [m for m in ("n", "positives") if m in wide.columns]
        for m in counts:
            wide[m] = per_group[per_group["metric"] == m].set_index("group_name")["value"].astype(int).astype(str)
        wide = wide[[*counts, *[m for m in TABLE_METRICS if m in wide.columns]]]
        flags = rows.drop_duplicates("group_name").set_index("group_name")["flag"]
        wide["flag"] = flags.reindex(wide.index).fillna("")
        gaps = rows[rows["metric"].isin(table.gaps)].pivot_table(
            index="group_name", columns="metric", values="text", aggfunc="first", sort=False
        )
        gaps = gaps[[m for m in table.gaps if m in gaps.columns]]
        summ = cell[cell["group_name"] == "all"][["metric", "text", "flag"]].rename(columns={"text": "value"})
        out[label] = {
            "per_group": wide.reset_index().rename(columns={"group_name": "group"}),
            "gaps": gaps.reset_index().rename(columns={"group_name": "group"}),
            "summary": summ.reset_index(drop=True),
        }
    return out


def render_report(table: FairnessTable, context: dict, args: argparse.Namespace) -> str:
    """Markdown report (aggregates only)."""
    ref = table.group_names[table.group_codes.index(table.reference)]
    thr = ", ".join(f"{t:.3f}" for t in context["threshold"])
    lines = [
        "# Fairness audit",
        "",
        f"* samples: {context['n']}; groups ({args.group}): "
        + ", ".join(f"{n} (code {c})" for c, n in zip(table.group_codes, table.group_names)),
        f"* reference group: {ref}; threshold: {thr}"
        + (" (balanced-accuracy optimal)" if args.threshold == "ba-optimal" else ""),
        f"* confidence intervals: "
        + (
            f"{table.ci_level:.0%} percentile bootstrap, {table.n_bootstrap} resamples (stratified by group)"
            if table.n_bootstrap
            else "none (use --n-bootstrap)"
        ),
        f"* groups smaller than {args.min_group_size} samples get NaN metrics (flagged), never 0.",
        *[f"* note: {n}" for n in context["notes"]],
    ]
    for label, parts in wide_tables(table).items():
        title = "" if label is None else f" — label {label}"
        lines += [
            "",
            f"## Per-group metrics{title}",
            "",
            markdown_table(parts["per_group"]),
            "",
            f"## Signed gaps vs {ref}{title}",
            "",
            markdown_table(parts["gaps"]),
            "",
            f"## Summary{title}",
            "",
            markdown_table(parts["summary"]),
        ]
    return "\n".join(lines) + "\n"


def _write_outputs(table: FairnessTable, context: dict, report: str, out: str) -> list[str]:
    os.makedirs(out, exist_ok=True)
    written = []

    def path(name: str) -> str:
        written.append(os.path.join(out, name))
        return written[-1]

    table.to_dataframe().to_csv(path("fairness_table.csv"), index=False)
    frames = []
    for label, parts in wide_tables(table).items():
        frames.append(parts["per_group"].assign(label=label) if label is not None else parts["per_group"])
    pd.concat(frames).to_csv(path("per_group.csv"), index=False)
    with open(path("report.md"), "w") as f:
        f.write(report)
    names = dict(zip(table.group_codes, table.group_names))
    kw = dict(group_codes=table.group_codes, group_names=names, label_names=table.label_names)
    figs = {
        "roc_by_group.png": plot_group_roc(
            context["y_score"], context["y"], context["groups"], title="ROC by group", **kw
        ),
        "calibration_by_group.png": plot_group_calibration(
            context["y_score"], context["y"], context["groups"], title="calibration by group", **kw
        ),
    }
    first = (lambda t: t) if not table.multilabel else (lambda t: t[:, 0])
    lo = {m: first(table.ci[f"per_group/{m}"][0]) for m in BAR_METRICS if f"per_group/{m}" in table.ci}
    hi = {m: first(table.ci[f"per_group/{m}"][1]) for m in BAR_METRICS if f"per_group/{m}" in table.ci}
    label = "" if not table.multilabel else f" (label {table.label_names[0]})"
    figs["metric_bars.png"] = plot_group_metric_bars(
        {m: first(table.per_group[m]) for m in BAR_METRICS},
        table.group_names,
        lower=lo or None,
        upper=hi or None,
        title=f"per-group metrics{label}" + (f", {table.ci_level:.0%} CI" if lo else ""),
    )
    for name, fig in figs.items():
        with open(path(name), "wb") as f:
            f.write(figure_to_png(fig))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Run the audit; returns the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    try:
        if args.n_bootstrap < 0:
            raise AuditInputError("--n-bootstrap must be >= 0.")
        table, context = run_audit(args, progress=not args.no_progress)
        report = render_report(table, context, args)
        print(report)
        if args.out:
            for p in _write_outputs(table, context, report, args.out):
                print(f"wrote {p}")
    except AuditInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # validation errors of the metric core (e.g. undeclared codes)
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
