# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Audit outputs: display tables, the Markdown report, CSVs and PNG plots (aggregates only: no IDs, no rows)."""

from __future__ import annotations

import math
import os

import pandas as pd

from monai_fair.metrics import FairnessTable
from monai_fair.metrics.fairness_table import estimable_plot_inputs
from monai_fair.report.group_plots import figure_to_png, plot_group_calibration, plot_group_metric_bars, plot_group_roc
from monai_fair.report.tables import markdown_table

from .evaluate import AuditResult

__all__ = ["BAR_METRICS", "TABLE_METRICS", "render_report", "wide_tables", "write_outputs"]

#: per-group metrics shown in the printed table and the bar chart
TABLE_METRICS = ("selection_rate", "tpr", "fpr", "fnr", "ppv", "balanced_accuracy", "auc", "ece")
BAR_METRICS = ("tpr", "fpr", "balanced_accuracy", "auc")


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


def render_report(result: AuditResult) -> str:
    """Markdown report (aggregates only)."""
    table, spec = result.table, result.spec
    ref = table.reference_name
    thr = ", ".join(f"{t:.3f}" for t in result.threshold)
    lines = [
        "# Fairness audit",
        "",
        f"* samples: {result.n}; groups ({spec.name}): "
        + ", ".join(f"{n} (code {c})" for c, n in zip(table.group_codes, table.group_names)),
        f"* reference group: {ref}; threshold: {thr}"
        + (" (balanced-accuracy optimal)" if result.threshold_rule == "ba-optimal" else ""),
        f"* unknown group codes: {table.n_unknown} sample(s), policy '{spec.unknown}'",
        "* confidence intervals: "
        + (
            f"{table.ci_level:.0%} percentile bootstrap, {table.n_bootstrap} resamples (stratified by group)"
            if table.n_bootstrap
            else "none (use --n-bootstrap)"
        ),
        f"* groups smaller than {spec.min_group_size} samples get NaN metrics (flagged), never 0.",
        *[f"* note: {n}" for n in result.notes],
        *[f"* **warning**: {n}" for n in result.chance_notes()],
    ]
    pooled = result.pooled_frame()
    pooled["value"] = [_fmt(v, lo, hi) for v, lo, hi in zip(pooled["value"], pooled["ci_low"], pooled["ci_high"])]
    ci_note = f", {table.ci_level:.0%} bootstrap CI (unstratified)" if table.n_bootstrap else ""
    lines += [
        "",
        f"## Reference ({ref}) vs rest{ci_note}",
        "",
        f"rest − reference, all other groups pooled; objective = BA · [|{spec.metric}| < {spec.epsilon:g}]",
        "",
        markdown_table(pooled.drop(columns=["ci_low", "ci_high"]).dropna(axis=1, how="all")),
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


def write_outputs(result: AuditResult, report: str, out: str | os.PathLike) -> list[str]:
    """Write ``fairness_table.csv``, ``per_group.csv``, ``pooled.csv``, ``report.md`` and the PNG plots to ``out``.

    Returns:
        the paths written.
    """
    table = result.table
    out = os.fspath(out)
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
    result.pooled_frame().to_csv(path("pooled.csv"), index=False)
    with open(path("report.md"), "w") as f:
        f.write(report)
    # groups below min_group_size have NaN AUC/ECE in the table: the figures leave them out and say so
    m = result.spec.min_group_size
    *roc_data, roc_kw = estimable_plot_inputs(table, result.y_score, result.y, result.groups, m, "ROC by group")
    *cal_data, cal_kw = estimable_plot_inputs(table, result.y_score, result.y, result.groups, m, "calibration by group")
    figs = {
        "roc_by_group.png": plot_group_roc(*roc_data, threshold=result.threshold, **roc_kw),
        "calibration_by_group.png": plot_group_calibration(*cal_data, **cal_kw),
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
