# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The fairness table: per-group metrics, signed gaps vs a reference group, max–min summaries, flags and CIs.

:func:`compute_fairness_table` is the one entry point the cumulative metrics, handlers, reports and the audit tool
share. Definitions of every figure: ``docs/metrics.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import torch

from monai_fair.data.codes import UNKNOWN

from .bootstrap import bootstrap_intervals, make_generator
from .calibration import bin_edges, check_probabilities
from .evaluation import UNKNOWN_POLICIES
from .gaps import GAP_KEYS, SUMMARY_KEYS, SUMMARY_SOURCES
from .group_stats import threshold_tensor
from .grouped_scores import GroupedScores, build_grouped_scores
from .weighted_table import PER_GROUP_KEYS, compute_weighted_table

__all__ = [
    "FairnessTable",
    "compute_fairness_table",
    "estimable_plot_inputs",
    "mask_threshold_dependent",
    "resolve_group_names",
]

COUNT_KEYS = ("n", "positives", "negatives")


@dataclass
class FairnessTable:
    """Result of :func:`compute_fairness_table`.

    Attributes:
        group_codes: group codes, ascending; row ``g`` of every per-group tensor.
        group_names: display name of each code (same order).
        label_names: names of the ``L`` labels (multi-label), or ``None``/one name for a binary task.
        reference: code of the reference (privileged) group of the signed gaps.
        per_group: :data:`~monai_fair.metrics.weighted_table.PER_GROUP_KEYS` → ``(G,)`` or ``(G, L)`` float64.
        gaps: signed "group − reference" gaps :data:`~monai_fair.metrics.gaps.GAP_KEYS` → ``(G,)`` or ``(G, L)``.
        summary: :data:`~monai_fair.metrics.gaps.SUMMARY_KEYS` → scalar or ``(L,)``.
        flags: group code → reason(s) its figures are NaN, ``""`` when every figure is estimable.
        ci: ``"per_group/<metric>"``, ``"gaps/<key>"``, ``"summary/<key>"`` → ``(low, high)``; empty without
            bootstrap. Counts have no interval.
        ci_level: confidence level of ``ci``.
        n_bootstrap: number of bootstrap replicates behind ``ci`` (0: none).
        threshold: the decision threshold(s) used (predicted positive iff ``score > threshold``).
        n_unknown: number of samples with an unknown (negative) group code.
        unknown: the unknown-code policy: ``"exclude"`` (those samples are in no group) or ``"group"`` (they are
            the group -1 named ``unknown``).
    """

    group_codes: list[int]
    group_names: list[str]
    label_names: list[str] | None
    reference: int
    per_group: dict[str, torch.Tensor]
    gaps: dict[str, torch.Tensor]
    summary: dict[str, torch.Tensor]
    flags: dict[int, str]
    ci: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    ci_level: float = 0.95
    n_bootstrap: int = 0
    threshold: torch.Tensor | None = None
    n_unknown: int = 0
    unknown: str = "exclude"

    @property
    def multilabel(self) -> bool:
        """Whether per-group tensors carry a label dimension."""
        return self.per_group["n"].ndim == 2

    @property
    def reference_name(self) -> str:
        return self.group_names[self.group_codes.index(self.reference)]

    def _labels(self) -> list[str | None]:
        if not self.multilabel:
            return [None]
        num = self.per_group["n"].shape[1]
        return list(self.label_names) if self.label_names is not None else [str(i) for i in range(num)]

    @property
    def stems(self) -> list[str]:
        """Names of every figure of the flat view (``"tpr"``, ``"eod"``, ``"auc_gap"``, ``"n_unknown"`` ...)."""
        return [*self.per_group, *self.gaps, *self.summary, "n_unknown"]

    def as_flat_dict(
        self, prefix: str = "", metrics: Sequence[str] | None = None, with_ci: bool = True
    ) -> dict[str, float]:
        """Flat ``{name: float}`` view for loggers (NaN stays NaN).

        Keys: ``f"{prefix}{metric}_{group_name}"`` for per-group metrics and signed gaps, ``f"{prefix}{summary}"``
        for summaries; multi-label adds the label: ``f"{prefix}{metric}_{label}_{group_name}"`` and
        ``f"{prefix}{summary}_{label}"``. ``f"{prefix}n_unknown"`` is the number of samples with an unknown code
        (under ``unknown="group"`` it is the ``n`` of the group named ``unknown``). With bootstrap intervals (and
        ``with_ci``), every figure but the counts also has ``<key>_ci_low`` / ``<key>_ci_high``.

        Args:
            prefix: key prefix, e.g. ``"sex/"``.
            metrics: stems to keep (:attr:`stems`); ``None`` keeps every figure. A stem selects every group/label
                variant of its figure and their bounds, never another figure sharing its spelling (``"auc"`` does
                not select ``auc_gap``).
            with_ci: add the interval bounds.

        Raises:
            ValueError: a stem the table does not have.
        """
        out = self._flat(prefix)
        if "n_unknown" not in {k[len(prefix) :] for k in out}:
            out[prefix + "n_unknown"] = float(self.n_unknown)
        if with_ci and self.ci:
            out.update(self._ci_flat(prefix))
        return self.select_flat(out, metrics, prefix)

    def select_flat(self, flat: Mapping[str, float], metrics: Sequence[str] | None, prefix: str = "") -> dict:
        """The entries of a flat view whose stem is in ``metrics`` (all of them if ``metrics`` is None)."""
        if metrics is None:
            return dict(flat)
        known = set(self.stems)
        missing = [m for m in metrics if m not in known]
        if missing:
            raise ValueError(f"unknown fairness metric(s) {missing}; available: {sorted(known)}.")
        # the longest matching stem owns a key: "auc_gap_..." belongs to "auc_gap", not to "auc"
        stems = sorted(known, key=len, reverse=True)
        wanted = set(metrics)
        out = {}
        for key, value in flat.items():
            bare = key[len(prefix) :] if prefix and key.startswith(prefix) else key
            owner = next((s for s in stems if bare == s or bare.startswith(s + "_")), None)
            if owner in wanted:
                out[key] = value
        return out

    def _flat(self, prefix: str) -> dict[str, float]:
        out: dict[str, float] = {}
        labels = self._labels()
        for source in (self.per_group, self.gaps):
            for metric, values in source.items():
                vals = values.detach().cpu().reshape(len(self.group_codes), -1).tolist()
                for gi, name in enumerate(self.group_names):
                    for li, label in enumerate(labels):
                        key = f"{metric}_{name}" if label is None else f"{metric}_{label}_{name}"
                        out[prefix + key] = float(vals[gi][li])
        for metric, values in self.summary.items():
            vals = values.detach().cpu().reshape(-1).tolist()
            for li, label in enumerate(labels):
                key = metric if label is None else f"{metric}_{label}"
                out[prefix + key] = float(vals[li])
        return out

    def _ci_flat(self, prefix: str) -> dict[str, float]:
        """Interval bounds keyed ``<key>_ci_low`` / ``<key>_ci_high`` (``<key>``: the flat key of the figure)."""
        out: dict[str, float] = {}
        for side, idx in (("ci_low", 0), ("ci_high", 1)):
            part = {kind: {} for kind in ("per_group", "gaps", "summary")}
            for k, v in self.ci.items():
                kind, name = k.split("/", 1)
                part[kind][name] = v[idx]
            # "n" only tells the layout; counts have no interval
            bounds = replace(
                self,
                per_group={"n": self.per_group["n"], **part["per_group"]},
                gaps=part["gaps"],
                summary=part["summary"],
            )
            flat = bounds._flat(prefix)
            with_ci = [*part["per_group"], *part["gaps"], *part["summary"]]
            out.update({f"{k}_{side}": v for k, v in bounds.select_flat(flat, with_ci, prefix).items()})
        return out

    def _grid(self, t: torch.Tensor) -> list[list[float]]:
        """A per-group tensor as a ``[group][label]`` nested list (one host copy)."""
        return t.detach().cpu().reshape(len(self.group_codes), -1).tolist()

    def _nan_note(self, sources: Sequence[str], li: int) -> str:
        """Which groups a summary left out because their underlying metric is NaN."""
        grids = [self._grid(self.per_group[s]) for s in sources]
        missing = [name for gi, name in enumerate(self.group_names) if any(math.isnan(g[gi][li]) for g in grids)]
        return f"excludes non-estimable groups: {', '.join(missing)}" if missing else ""

    def to_dataframe(self):
        """Long-format ``pandas.DataFrame`` with columns
        ``label, group, group_name, metric, value, ci_low, ci_high, n, flag``.

        Per-group metrics and signed gaps give one row per (label, group); summaries one row per label with
        ``group`` = ``<NA>``, ``group_name`` = ``"all"``, ``n`` = total samples, and a ``flag`` naming the groups
        left out of the summary. Under ``unknown="exclude"`` a summary-like row ``n_unknown`` counts the samples in
        no group. ``label`` is ``None`` for a binary task. Gap rows whose reference group is not estimable say so in
        ``flag``.
        """
        import pandas as pd

        labels = self._labels()
        nan = float("nan")
        n_by_group = [row[0] for row in self._grid(self.per_group["n"])]
        ref_flag = self.flags.get(self.reference, "")
        rows: list[dict[str, Any]] = []
        for kind, source in (("per_group", self.per_group), ("gaps", self.gaps)):
            for metric, values in source.items():
                value = self._grid(values)
                ci = self.ci.get(f"{kind}/{metric}")
                low, high = (self._grid(ci[0]), self._grid(ci[1])) if ci else (None, None)
                for li, label in enumerate(labels):
                    for gi, code in enumerate(self.group_codes):
                        flag = self.flags.get(code, "")
                        if kind == "gaps" and ref_flag and code != self.reference:
                            note = f"reference {self.reference_name}: {ref_flag}"
                            flag = f"{flag}; {note}" if flag else note
                        rows.append(
                            {
                                "label": label,
                                "group": code,
                                "group_name": self.group_names[gi],
                                "metric": metric,
                                "value": value[gi][li],
                                "ci_low": low[gi][li] if low else nan,
                                "ci_high": high[gi][li] if high else nan,
                                "n": n_by_group[gi],
                                "flag": flag,
                            }
                        )
        total = float(sum(n_by_group))
        for metric, values in self.summary.items():
            value = values.detach().cpu().reshape(-1).tolist()
            ci = self.ci.get(f"summary/{metric}")
            low, high = (
                (ci[0].detach().cpu().reshape(-1).tolist(), ci[1].detach().cpu().reshape(-1).tolist())
                if ci
                else (None, None)
            )
            for li, label in enumerate(labels):
                rows.append(
                    {
                        "label": label,
                        "group": pd.NA,
                        "group_name": "all",
                        "metric": metric,
                        "value": value[li],
                        "ci_low": low[li] if low else nan,
                        "ci_high": high[li] if high else nan,
                        "n": total,
                        "flag": self._nan_note(SUMMARY_SOURCES[metric], li),
                    }
                )
        if self.unknown == "exclude":
            for label in labels:
                rows.append(
                    {
                        "label": label,
                        "group": pd.NA,
                        "group_name": "all",
                        "metric": "n_unknown",
                        "value": float(self.n_unknown),
                        "ci_low": nan,
                        "ci_high": nan,
                        "n": total + self.n_unknown,
                        "flag": "samples with an unknown group code, in no group (unknown='exclude')",
                    }
                )
        df = pd.DataFrame(
            rows, columns=["label", "group", "group_name", "metric", "value", "ci_low", "ci_high", "n", "flag"]
        )
        df["group"] = df["group"].astype("Int64")
        return df


def estimable_plot_inputs(
    table: FairnessTable,
    y_pred: torch.Tensor,
    y: torch.Tensor,
    groups: torch.Tensor,
    min_group_size: int,
    title_prefix: str = "",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
    """The samples and plot options of the ROC/calibration figures, without the groups below ``min_group_size``.

    The table reports AUC and ECE of such groups as NaN; the figures must not print a value for them either. Their
    samples are left out and the figure title names them, so they are never dropped silently.

    Returns:
        ``(y_pred, y, groups, kwargs)`` where ``kwargs`` holds ``group_codes``, ``group_names``, ``label_names`` and
        ``title`` (the note on the groups left out, or ``None``; prefix it with ``title_prefix``) for
        :func:`~monai_fair.report.group_plots.plot_group_roc` and
        :func:`~monai_fair.report.group_plots.plot_group_calibration`.
    """
    n = table.per_group["n"].detach().cpu().reshape(len(table.group_codes), -1)[:, 0].tolist()
    small = [c for c, k in zip(table.group_codes, n) if k < max(int(min_group_size), 1)]
    names = dict(zip(table.group_codes, table.group_names))
    g = torch.as_tensor(groups).reshape(-1)
    keep = torch.ones_like(g, dtype=torch.bool)
    for c in small:
        keep &= g != c
    if table.unknown == "exclude":
        keep &= g >= 0  # unknown samples are in no group of the table
    kwargs: dict[str, Any] = dict(
        group_codes=[c for c in table.group_codes if c not in small],
        group_names=names,
        label_names=table.label_names,
        title=title_prefix or None,
    )
    if small:
        listed = ", ".join(f"{names[c]} (n={int(k):d})" for c, k in zip(table.group_codes, n) if c in small)
        note = f"not shown, below min_group_size={int(min_group_size)}: {listed}"
        kwargs["title"] = f"{title_prefix} ({note})" if title_prefix else note
    keep = keep.to(torch.as_tensor(y_pred).device)
    return y_pred[keep], y[keep], g[keep.to(g.device)], kwargs


def resolve_group_names(group_codes: Sequence[int], group_names: Mapping[Any, str] | None) -> list[str]:
    """Display names for ``group_codes`` from a code → name map (int or string keys, as JSON configs give).

    Codes missing from the map are named ``str(code)``.

    Raises:
        ValueError: two groups end up with the same name (flat metric keys would collide).
    """
    mapping: dict[int, str] = {}
    for key, name in (group_names or {}).items():
        try:
            mapping[int(key)] = str(name)
        except (TypeError, ValueError) as e:
            raise ValueError(f"group_names keys must be integer codes (or their strings), got {key!r}.") from e
    names = [mapping.get(int(c), str(c)) for c in group_codes]
    if len(set(names)) != len(names):
        raise ValueError(f"group names must be unique, got {names}.")
    return names


def _group_flags(
    gs: GroupedScores, per_group: dict[str, torch.Tensor], min_group_size: int, label_names: list[str] | None
) -> dict[int, str]:
    """Reasons each group's figures are NaN (from the point-estimate counts)."""
    g, l = gs.num_groups, gs.num_labels
    n = per_group["n"][0].reshape(g, l).cpu()
    pos = per_group["positives"][0].reshape(g, l).cpu()
    pred = per_group["predicted_positives"][0].reshape(g, l).cpu()
    flags: dict[int, str] = {}
    for gi, code in enumerate(gs.group_codes):
        size = int(n[gi, 0])
        if size < max(min_group_size, 1):
            reason = "empty group (n=0)" if size == 0 else f"n={size} < min_group_size={min_group_size}"
            flags[code] = f"{reason}: all metrics undefined"
            continue
        reasons = []
        for li in range(l):
            p, q, pp = int(pos[gi, li]), size - int(pos[gi, li]), int(pred[gi, li])
            parts = []
            if p == 0:
                parts.append("no positives: tpr, fnr, auc, balanced_accuracy undefined")
            if q == 0:
                parts.append("no negatives: fpr, auc, balanced_accuracy undefined")
            if pp == 0:
                parts.append("no predicted positives: ppv undefined")
            if parts:
                text = "; ".join(parts)
                if gs.multilabel:
                    text = f"{label_names[li] if label_names else li}: {text}"
                reasons.append(text)
        flags[code] = "; ".join(reasons)
    return flags


def compute_fairness_table(
    y_score: torch.Tensor,
    y: torch.Tensor,
    groups: torch.Tensor,
    *,
    threshold: float | Sequence[float] | torch.Tensor = 0.5,
    reference: int | None = None,
    group_codes: Sequence[int] | None = None,
    group_names: Mapping[Any, str] | None = None,
    label_names: Sequence[str] | None = None,
    min_group_size: int = 10,
    n_bins: int = 15,
    n_bootstrap: int = 0,
    ci_level: float = 0.95,
    seed: int | None = None,
    stratified: bool = True,
    unknown: str = "exclude",
    on_chunk: Callable[[int], None] | None = None,
) -> FairnessTable:
    """Per-group metrics, signed gaps, max–min summaries, NaN flags and (optionally) bootstrap CIs.

    Args:
        y_score: probabilities ``(N,)`` or ``(N, L)`` in ``[0, 1]``.
        y: binary labels, same shape.
        groups: integer group codes ``(N,)``; negative codes (:data:`~monai_fair.data.codes.UNKNOWN`) are unknown.
        threshold: decision threshold, scalar or per label ``(L,)``; predicted positive iff ``score > threshold``.
        reference: code of the reference (privileged) group for the signed gaps; default the largest known group
            (ties → the smallest code). A reference without samples (and not excluded by ``group_codes``) is
            reported as an empty group: its figures and every signed gap are NaN and flagged.
        group_codes: declared known codes; default the codes present. Declared codes without samples appear with
            ``n = 0`` and a flag. Samples with undeclared known codes are an error.
        group_names: code → name (int or string keys); default ``str(code)`` (``"unknown"`` for the unknown group).
        label_names: names of the ``L`` labels (multi-label); default ``"0", "1", ...``.
        min_group_size: groups with fewer samples get NaN metrics and a flag (counts still reported).
        n_bins: equal-width bins of the ECE.
        n_bootstrap: bootstrap replicates for percentile CIs (0: no CIs).
        ci_level: confidence level of the intervals.
        seed: seed of the bootstrap ``torch.Generator`` (``None``: the global RNG).
        stratified: bootstrap within groups (group sizes fixed) instead of over the whole set.
        unknown: unknown-code policy (the evaluation core's, ``docs/metrics.md``): ``"exclude"`` leaves samples
            with a negative code out of every group (their number is ``table.n_unknown``); ``"group"`` reports
            them as the group -1 named ``unknown``.
        on_chunk: called with the number of replicates after each bootstrap chunk (progress bars).

    Returns:
        a :class:`FairnessTable` (tensors float64, on ``y_score``'s device).

    Raises:
        ValueError: NaN scores/labels/codes, shape or length mismatch, non-binary labels, scores outside
            ``[0, 1]``, undeclared codes, an unknown reference, wrong ``label_names`` length, duplicate names.
    """
    if unknown not in UNKNOWN_POLICIES:
        raise ValueError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}.")
    y_score, y, groups, n_unknown, group_codes = _apply_unknown_policy(y_score, y, groups, group_codes, unknown)
    group_codes = _with_reference(groups, group_codes, reference)
    gs = build_grouped_scores(y_score, y, groups, group_codes)
    check_probabilities(gs)
    bin_edges(n_bins)
    if min_group_size < 0:
        raise ValueError(f"min_group_size must be >= 0, got {min_group_size}.")
    thr = threshold_tensor(threshold, gs.num_labels, gs.device)
    names = resolve_group_names(gs.group_codes, {UNKNOWN: "unknown", **dict(group_names or {})})
    if label_names is not None:
        label_names = [str(s) for s in label_names]
        if len(label_names) != gs.num_labels:
            raise ValueError(f"label_names has {len(label_names)} names for {gs.num_labels} label(s).")
    elif gs.multilabel:
        label_names = [str(i) for i in range(gs.num_labels)]
    counts = torch.bincount(gs.group_index, minlength=gs.num_groups)
    if reference is None:
        known = torch.as_tensor(gs.group_codes, device=counts.device) >= 0
        if not bool(known.any()):
            raise ValueError("no known group code: cannot choose a reference group.")
        # first maximum → smallest code on ties; the unknown group is never the reference
        reference_index = int(torch.argmax(torch.where(known, counts, torch.full_like(counts, -1))))
    else:
        if int(reference) < 0:
            raise ValueError(f"the reference group must be a known code (>= 0), got {reference}.")
        if int(reference) not in gs.group_codes:
            raise ValueError(f"reference={reference} is not one of the group codes {gs.group_codes}.")
        reference_index = gs.group_codes.index(int(reference))

    table = compute_weighted_table(gs, None, thr, reference_index, min_group_size, int(n_bins))
    flags = _group_flags(
        gs, {k.split("/", 1)[1]: v for k, v in table.items() if k.startswith("per_group/")}, min_group_size, label_names
    )
    point = {k: gs.squeeze(v, batched=False) for k, v in table.items() if not k.endswith("predicted_positives")}

    ci: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    if n_bootstrap > 0:
        wanted = {k: v for k, v in point.items() if k.split("/", 1)[1] not in COUNT_KEYS}
        raw = {k: table[k][0] for k in wanted}  # (G, L) / (L,) — the bootstrap works in that layout
        intervals = bootstrap_intervals(
            gs,
            thr,
            reference_index,
            raw,
            n_bootstrap=int(n_bootstrap),
            ci_level=ci_level,
            min_group_size=min_group_size,
            n_bins=int(n_bins),
            stratified=stratified,
            generator=make_generator(seed, gs.device),
            on_chunk=on_chunk,
        )
        for k, (lo, hi) in intervals.items():
            ci[k] = (gs.squeeze(lo.unsqueeze(0), False), gs.squeeze(hi.unsqueeze(0), False))
    elif not 0.0 < ci_level < 1.0:
        raise ValueError(f"ci_level must be in (0, 1), got {ci_level}.")

    return FairnessTable(
        group_codes=list(gs.group_codes),
        group_names=names,
        label_names=label_names,
        reference=gs.group_codes[reference_index],
        per_group={k: point[f"per_group/{k}"] for k in PER_GROUP_KEYS},
        gaps={k: point[f"gaps/{k}"] for k in GAP_KEYS},
        summary={k: point[f"summary/{k}"] for k in SUMMARY_KEYS},
        flags=flags,
        ci=ci,
        ci_level=float(ci_level),
        n_bootstrap=int(n_bootstrap),
        threshold=thr if gs.multilabel else thr[0],
        n_unknown=n_unknown,
        unknown=unknown,
    )


def _with_reference(groups, group_codes: list[int] | None, reference: int | None) -> list[int] | None:
    """Declare a given reference group that has no sample (e.g. one validation epoch without it): it is reported
    as an empty group, so its figures and every gap are NaN with a flag instead of an error."""
    if reference is None or int(reference) < 0:
        return group_codes
    ref = int(reference)
    if group_codes is None:
        present = {int(c) for c in torch.unique(torch.as_tensor(groups).reshape(-1)).tolist()}
        return None if ref in present else sorted(present | {ref})
    return group_codes


def mask_threshold_dependent(table: FairnessTable, undefined: Sequence[bool], reason: str) -> FairnessTable:
    """The table with every figure that depends on the decision threshold set to NaN for the labels whose threshold
    is ``undefined`` (e.g. a balanced-accuracy-optimal threshold on labels of one class), and ``reason`` flagged.

    Threshold-free figures (counts, AUC, ECE and their gaps) are kept.
    """
    mask = torch.as_tensor(list(undefined), dtype=torch.bool)
    if not bool(mask.any()):
        return table
    per_group_keys = {"selection_rate", "tpr", "fpr", "fnr", "ppv", "balanced_accuracy"}
    gap_keys = {"spd", "eod", "fpr_diff", "aod", "ba_diff"}
    summary_keys = {k for k, src in SUMMARY_SOURCES.items() if set(src) <= per_group_keys}

    def nan_labels(t: torch.Tensor) -> torch.Tensor:
        # binary task: one label, every entry; multi-label: the label is the last dimension
        m = mask.to(t.device) if table.multilabel else mask.any().to(t.device)
        return torch.where(m, torch.full_like(t, float("nan")), t)

    def apply(source: dict, keys: set) -> dict:
        return {k: nan_labels(v) if k in keys else v for k, v in source.items()}

    ci = {}
    for key, (lo, hi) in table.ci.items():
        kind, name = key.split("/", 1)
        hit = name in {"per_group": per_group_keys, "gaps": gap_keys, "summary": summary_keys}[kind]
        ci[key] = (nan_labels(lo), nan_labels(hi)) if hit else (lo, hi)
    thr = table.threshold
    if thr is not None:
        thr = nan_labels(torch.as_tensor(thr, dtype=torch.float64))
    flags = {c: f"{f}; {reason}" if f else reason for c, f in table.flags.items()}
    return replace(
        table,
        per_group=apply(table.per_group, per_group_keys),
        gaps=apply(table.gaps, gap_keys),
        summary=apply(table.summary, summary_keys),
        ci=ci,
        flags=flags,
        threshold=thr,
    )


def _apply_unknown_policy(y_score, y, groups, group_codes, unknown: str):
    """Drop (``"exclude"``) or declare (``"group"``) the samples with a negative group code.

    Returns:
        ``(y_score, y, groups, n_unknown, group_codes)`` ready for
        :func:`~monai_fair.metrics.grouped_scores.build_grouped_scores`.
    """
    g = torch.as_tensor(groups)
    if g.is_floating_point() and bool(torch.isnan(g).any()):
        raise ValueError("group codes must not be NaN (unknown membership is the code -1).")
    is_unknown = g.reshape(-1) < 0
    n_unknown = int(is_unknown.sum())
    declared = None if group_codes is None else [int(c) for c in group_codes if int(c) >= 0]
    if unknown == "group":
        if declared is None:
            declared = sorted({int(c) for c in torch.unique(g.reshape(-1)[~is_unknown]).tolist()})
        g = torch.where(is_unknown.reshape(g.shape), torch.full_like(g, UNKNOWN), g)
        return y_score, y, g, n_unknown, [UNKNOWN] + declared
    if n_unknown == 0:
        return y_score, y, groups, 0, declared
    keep = ~is_unknown
    if not bool(keep.any()):
        raise ValueError(f"every sample has an unknown group code ({n_unknown}); nothing to report per group.")
    s, t = torch.as_tensor(y_score), torch.as_tensor(y)
    if s.shape[0] != keep.numel() or t.shape[0] != keep.numel():
        raise ValueError(
            f"y_score, y and groups must have the same length, got {s.shape[0]}, {t.shape[0]}, {keep.numel()}."
        )
    keep = keep.to(s.device)
    return s[keep], t[keep.to(t.device)], g.reshape(-1)[keep.to(g.device)], n_unknown, declared
