# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The one evaluation core of binary decisions: balanced accuracy, per-group rates, SPD/EOD/AOD and the objective.

Every figure the debiasers, the study, the selection handler, the audit tool and the reports print about binary
decisions comes from :func:`evaluate_binary_fairness`. It works on weighted per-cell sums (cell = group x class):

* sample weights ``(B, N)`` give the point estimate (``B = 1``, unit weights) and any number of bootstrap
  resamples (``B`` rows of resample counts from :func:`~monai_fair.metrics.bootstrap.bootstrap_weights`) in one
  computation;
* thresholds are a grid dimension ``T``: samples are sorted once by (cell, score), so the count of predicted
  positives of every cell at every threshold is a difference of one cumulative sum (no ``B x T x N`` tensor);
* hard predictions are scores with the threshold 0.5.

Unknown group codes (negative, :data:`~monai_fair.data.codes.UNKNOWN` = -1) follow one policy (``docs/metrics.md``):

* ``"exclude"`` (default): unknown samples belong to no group, so they enter no group figure and no gap, but the
  overall balanced accuracy counts them (it is a property of the model on every sample). Their number is reported.
* ``"group"``: unknown samples form a group of their own (code -1, named ``unknown``), reported like any other
  group and pooled with the rest in privileged-vs-rest gaps.

Groups with fewer than ``min_group_size`` (weighted) samples get NaN rates and gaps, never 0; a rate whose class
cell is empty is NaN. The pooled privileged-vs-rest bias is NaN when the reference group or the pooled rest is
below ``min_group_size``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from monai_fair.data.codes import UNKNOWN

from .objective import constrained_objective

__all__ = [
    "BIAS_KINDS",
    "UNKNOWN_POLICIES",
    "BinaryFairnessEvaluation",
    "better_than_chance",
    "evaluate_binary_fairness",
    "group_flag",
    "summarize_binary_fairness",
]

BIAS_KINDS = ("spd", "eod", "aod")
UNKNOWN_POLICIES = ("exclude", "group")


@dataclass
class BinaryFairnessEvaluation:
    """Result of :func:`evaluate_binary_fairness`; every tensor has leading dims ``(B, T)`` (weightings, thresholds).

    Attributes:
        group_codes: codes of the reported groups, ascending (the unknown code first under ``unknown="group"``).
        reference: code of the reference (privileged) group.
        balanced_accuracy: ``(B, T)`` overall balanced accuracy.
        spd, eod, aod: ``(B, T)`` pooled "rest minus reference" gaps (rest: every reported group but the reference).
        bias: ``(B, T)`` the gap named by ``metric``.
        objective: ``(B, T)`` ``BA * [|bias| < epsilon]`` (NaN where the bias is NaN).
        n: ``(B, G)`` weighted group sizes; ``positives``/``negatives`` likewise.
        selection_rate, tpr, fpr: ``(B, T, G)`` per-group rates (NaN for too small groups or empty cells).
        group_gaps: ``"spd"``, ``"eod"``, ``"aod"`` → ``(B, T, G)`` "group minus reference" gaps.
        n_unknown: ``(B,)`` weighted number of samples with an unknown code (all policies).
        min_group_size: the size below which group figures are NaN.
    """

    group_codes: list[int]
    reference: int
    balanced_accuracy: torch.Tensor
    spd: torch.Tensor
    eod: torch.Tensor
    aod: torch.Tensor
    bias: torch.Tensor
    objective: torch.Tensor
    n: torch.Tensor
    positives: torch.Tensor
    negatives: torch.Tensor
    selection_rate: torch.Tensor
    tpr: torch.Tensor
    fpr: torch.Tensor
    group_gaps: dict[str, torch.Tensor] = field(default_factory=dict)
    n_unknown: torch.Tensor | None = None
    min_group_size: int = 1

    def point(self, b: int = 0, t: int = 0) -> dict[str, float]:
        """Flat dict of the pooled figures of weighting ``b`` at threshold ``t`` (``balanced_accuracy``, ``spd``,
        ``eod``, ``aod``, ``bias``, ``objective``)."""
        return {
            k: float(getattr(self, k)[b, t]) for k in ("balanced_accuracy", "spd", "eod", "aod", "bias", "objective")
        }

    def flags(self, b: int = 0) -> dict[int, str]:
        """Group code → why its figures are NaN (``""`` when estimable), for weighting ``b``."""
        return {
            c: group_flag(
                float(self.n[b, g]), float(self.positives[b, g]), float(self.negatives[b, g]), self.min_group_size
            )
            for g, c in enumerate(self.group_codes)
        }


def group_flag(n: float, positives: float, negatives: float, min_group_size: int) -> str:
    """The reason a group's rates are (partly) NaN, ``""`` when all are estimable."""
    if n == 0:
        return "empty group"
    if n < min_group_size:
        return f"too small (n={n:g} < min_group_size={min_group_size})"
    reasons = []
    if positives == 0:
        reasons.append("no positives (TPR undefined)")
    if negatives == 0:
        reasons.append("no negatives (FPR undefined)")
    return "; ".join(reasons)


def _as_weights(weights: torch.Tensor | None, n: int, device: torch.device) -> torch.Tensor:
    if weights is None:
        return torch.ones(1, n, dtype=torch.float64, device=device)
    w = torch.as_tensor(weights, device=device).to(torch.float64)
    if w.ndim == 1:
        w = w.unsqueeze(0)
    if w.ndim != 2 or w.shape[1] != n:
        raise ValueError(f"weights must have shape (N,) or (B, N) with N={n}, got {tuple(w.shape)}.")
    if not bool((w >= 0).all()):
        raise ValueError("weights must be non-negative and not NaN.")
    return w


def _ratio(num: torch.Tensor, den: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    nan = torch.full_like(num, float("nan"))
    return torch.where(ok & (den > 0), num / den.clamp_min(1e-300), nan)


def _cell_counts_above(
    scores: torch.Tensor, cell: torch.Tensor, num_cells: int, w: torch.Tensor, thresholds: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted totals ``(B, K)`` of each cell and weighted counts ``(B, K, T)`` of ``score > t`` in each cell.

    ``thresholds`` is ``(T,)`` (shared) or ``(K, T)`` (one row per cell).
    """
    by_score = torch.argsort(scores, stable=True)
    order = by_score[torch.argsort(cell[by_score], stable=True)]
    sorted_scores = scores[order]
    sizes = torch.bincount(cell, minlength=num_cells)
    offsets = torch.nn.functional.pad(torch.cumsum(sizes, 0), (1, 0))
    cw = torch.nn.functional.pad(torch.cumsum(w[:, order], dim=1), (1, 0))  # (B, N + 1)
    bounds = [int(v) for v in offsets.tolist()]
    per_cell = thresholds if thresholds.ndim == 2 else thresholds.unsqueeze(0).expand(num_cells, -1)
    cuts = torch.empty(num_cells, per_cell.shape[1], dtype=torch.int64, device=scores.device)
    for k in range(num_cells):  # cells are few (2 per group)
        s, e = bounds[k], bounds[k + 1]
        cuts[k] = s + torch.searchsorted(sorted_scores[s:e].contiguous(), per_cell[k].contiguous(), right=True)
    end = offsets[1:]
    total = cw[:, end] - cw[:, offsets[:-1]]  # (B, K)
    above = cw[:, end].unsqueeze(-1) - cw[:, cuts.reshape(-1)].reshape(w.shape[0], num_cells, -1)
    return total, above


def _slot_thresholds(thresholds, codes: list[int], dev: torch.device) -> torch.Tensor:
    """``(T,)`` shared thresholds, or ``(2S, T)`` rows per cell (slot order: ``codes``, then unknown)."""
    if not isinstance(thresholds, Mapping):
        return torch.as_tensor(thresholds, dtype=torch.float64, device=dev).reshape(-1)
    rows = []
    for c in codes + [UNKNOWN]:
        key = c if c in thresholds else None
        if key not in thresholds:
            raise ValueError(f"thresholds give no row for group {c} and no default (key None).")
        rows.append(torch.as_tensor(thresholds[key], dtype=torch.float64, device=dev).reshape(-1))
    if len({r.numel() for r in rows}) != 1:
        raise ValueError("every group's thresholds must have the same length.")
    return torch.stack(rows).repeat_interleave(2, dim=0)


def evaluate_binary_fairness(
    scores: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor,
    reference: int,
    *,
    thresholds: torch.Tensor | Sequence[float] | float | Mapping[int | None, torch.Tensor] = 0.5,
    weights: torch.Tensor | None = None,
    metric: str = "eod",
    epsilon: float = 0.05,
    unknown: str = "exclude",
    min_group_size: int = 1,
    group_codes: Sequence[int] | None = None,
) -> BinaryFairnessEvaluation:
    """Evaluate the binary decisions ``score > t`` per group and reference-vs-rest (see the module docstring).

    Args:
        scores: probabilities or hard 0/1 predictions ``(N,)``.
        labels: binary labels ``(N,)``.
        groups: integer group codes ``(N,)``; negative codes are unknown.
        reference: code of the reference (privileged) group.
        thresholds: one threshold or a grid ``(T,)``; hard predictions use 0.5. Group-dependent decisions (e.g.
            reject-option classification) give a mapping ``{code: (T,)}``; the entry ``None`` is used for every code
            not listed (unknown samples included).
        weights: ``None``, ``(N,)`` or ``(B, N)`` non-negative sample weights (bootstrap resample counts).
        metric: the gap reported as ``bias`` (``"spd"``, ``"eod"`` or ``"aod"``).
        epsilon: tolerance of the objective.
        unknown: unknown-code policy, ``"exclude"`` or ``"group"``.
        min_group_size: groups (and the pooled rest) with fewer weighted samples get NaN figures.
        group_codes: declared known codes; a declared code without samples is reported as an empty group.

    Returns:
        a :class:`BinaryFairnessEvaluation`.

    Raises:
        ValueError: mismatched lengths, NaN scores, non-binary labels, an unknown ``metric`` or ``unknown`` policy,
            or a negative reference code.
    """
    s, y, g, reference = _check_inputs(scores, labels, groups, reference, metric, unknown)
    w = _as_weights(weights, s.numel(), s.device)
    codes, slot = _group_slots(g, reference, group_codes)
    t = _slot_thresholds(thresholds, codes, s.device)
    total, above = _cell_counts_above(s, slot * 2 + y.long(), 2 * (len(codes) + 1), w, t)  # (B, 2S), (B, 2S, T)
    neg_n, pos_n = total[:, 0::2], total[:, 1::2]  # (B, S)
    fp, tp = above[:, 0::2], above[:, 1::2]  # (B, S, T)
    always = torch.ones(1, 1, dtype=torch.bool, device=s.device)
    # overall BA counts every sample, the unknown ones too (their slot is the last)
    ba = 0.5 * (_ratio(tp.sum(1), pos_n.sum(1, keepdim=True), always) + 1.0)
    ba = ba - 0.5 * _ratio(fp.sum(1), neg_n.sum(1, keepdim=True), always)

    reported = ([UNKNOWN] if unknown == "group" else []) + codes
    sl = torch.as_tensor(([len(codes)] if unknown == "group" else []) + list(range(len(codes))), device=s.device)
    n_g, p_g, q_g = (pos_n + neg_n)[:, sl], pos_n[:, sl], neg_n[:, sl]  # (B, G)
    tp_g, fp_g = tp[:, sl].transpose(1, 2), fp[:, sl].transpose(1, 2)  # (B, T, G)
    ok = (n_g >= max(min_group_size, 1)).unsqueeze(1)  # (B, 1, G)
    sel = _ratio(tp_g + fp_g, n_g.unsqueeze(1), ok)
    tpr = _ratio(tp_g, p_g.unsqueeze(1), ok)
    fpr = _ratio(fp_g, q_g.unsqueeze(1), ok)
    r = reported.index(reference)
    gaps = {"spd": sel - sel[..., r : r + 1], "eod": tpr - tpr[..., r : r + 1]}
    gaps["aod"] = 0.5 * ((fpr - fpr[..., r : r + 1]) + gaps["eod"])
    pooled = _pooled_gaps(n_g, p_g, q_g, tp_g, fp_g, r, min_group_size)
    bias = pooled[metric]
    return BinaryFairnessEvaluation(
        group_codes=reported,
        reference=reference,
        balanced_accuracy=ba,
        spd=pooled["spd"],
        eod=pooled["eod"],
        aod=pooled["aod"],
        bias=bias,
        objective=constrained_objective(ba, bias, epsilon),
        n=n_g,
        positives=p_g,
        negatives=q_g,
        selection_rate=sel,
        tpr=tpr,
        fpr=fpr,
        group_gaps=gaps,
        n_unknown=(pos_n + neg_n)[:, len(codes)],
        min_group_size=int(min_group_size),
    )


def _check_inputs(scores, labels, groups, reference, metric: str, unknown: str):
    """Validated ``(scores float64, labels, group codes long, reference)`` on the scores' device."""
    if metric not in BIAS_KINDS:
        raise ValueError(f"metric must be one of {BIAS_KINDS}, got {metric!r}.")
    if unknown not in UNKNOWN_POLICIES:
        raise ValueError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}.")
    s = torch.as_tensor(scores).reshape(-1)
    dev = s.device
    s = s.to(torch.float64)
    y = torch.as_tensor(labels, device=dev).reshape(-1)
    g = torch.as_tensor(groups, device=dev).reshape(-1)
    if y.numel() != s.numel() or g.numel() != s.numel():
        raise ValueError(
            f"scores, labels and groups must have the same length, got {s.numel()}, {y.numel()}, {g.numel()}."
        )
    if bool(torch.isnan(s).any()):
        raise ValueError("scores contain NaN; fix the model output or remove those samples explicitly.")
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError(f"labels must be binary 0/1, got values {torch.unique(y).tolist()[:10]}.")
    if g.is_floating_point():
        if bool(torch.isnan(g).any()) or not bool((g == g.round()).all()):
            raise ValueError("group codes must be integers (unknown membership is the code -1, not NaN).")
    reference = int(reference)
    if reference < 0:
        raise ValueError(f"the reference group must be a known code (>= 0), got {reference}.")
    return s, y, g.long(), reference


def _group_slots(g: torch.Tensor, reference: int, group_codes: Sequence[int] | None) -> tuple[list[int], torch.Tensor]:
    """Known codes (present, declared and the reference), ascending, and each sample's slot (unknown: the last)."""
    known = g >= 0
    codes = sorted(set(int(c) for c in torch.unique(g[known]).tolist()) | set(int(c) for c in (group_codes or [])))
    if reference not in codes:
        codes = sorted(codes + [reference])
    slot = torch.full_like(g, len(codes))
    if known.any():
        slot[known] = torch.searchsorted(torch.as_tensor(codes, dtype=torch.int64, device=g.device), g[known])
    return codes, slot


def _pooled_gaps(n_g, p_g, q_g, tp_g, fp_g, r: int, min_group_size: int) -> dict[str, torch.Tensor]:
    """ "Rest minus reference" SPD/EOD/AOD ``(B, T)``; NaN when the reference or the pooled rest is too small."""
    rest = torch.ones(n_g.shape[1], dtype=torch.bool, device=n_g.device)
    rest[r] = False
    n_rest = n_g[:, rest].sum(1, keepdim=True)
    ok = (n_g[:, r : r + 1] >= max(min_group_size, 1)) & (n_rest >= max(min_group_size, 1))  # (B, 1)
    tp_r, fp_r = tp_g[..., rest].sum(-1), fp_g[..., rest].sum(-1)  # (B, T)
    sel = _ratio(tp_r + fp_r, n_rest, ok) - _ratio(tp_g[..., r] + fp_g[..., r], n_g[:, r : r + 1], ok)
    eod = _ratio(tp_r, p_g[:, rest].sum(1, keepdim=True), ok) - _ratio(tp_g[..., r], p_g[:, r : r + 1], ok)
    fpr = _ratio(fp_r, q_g[:, rest].sum(1, keepdim=True), ok) - _ratio(fp_g[..., r], q_g[:, r : r + 1], ok)
    return {"spd": sel, "eod": eod, "aod": 0.5 * (fpr + eod)}


def better_than_chance(
    scores: torch.Tensor,
    threshold: float,
    ba_ci: tuple[float, float] | None = None,
    *,
    min_iqr: float = 1e-3,
) -> tuple[bool, str]:
    """Whether a model is better than chance, and why not.

    A model is **not** better than chance when its decisions ``score > threshold`` are all the same (one distinct
    hard prediction), when its scores are near-constant (inter-quartile range below ``min_iqr``: a band that
    narrow is noise around one value, not a ranking), or when the bootstrap interval of its balanced accuracy
    contains 0.5. Such a model must never be counted as "fair": its gaps are small because it tells no one apart.

    Args:
        scores: scores ``(N,)``.
        threshold: the decision threshold (``score > threshold``).
        ba_ci: ``(low, high)`` interval of the balanced accuracy, or ``None`` when not bootstrapped.
        min_iqr: the smallest inter-quartile range of informative scores.

    Returns:
        ``(flag, reason)``: ``reason`` is ``""`` when the model is better than chance.
    """
    s = torch.as_tensor(scores).reshape(-1).to(torch.float64)
    if s.numel() == 0:
        return False, "no scores"
    hard = s > float(threshold)
    if bool(hard.all()) or not bool(hard.any()):
        return False, f"one distinct hard prediction ({int(hard[0])}) at threshold {float(threshold):.4g}"
    q1, q3 = (float(v) for v in torch.quantile(s, torch.tensor([0.25, 0.75], dtype=torch.float64)))
    if q3 - q1 < min_iqr:
        return False, f"near-constant scores (IQR {q3 - q1:.2e} < {min_iqr:g})"
    if ba_ci is not None:
        lo, hi = float(ba_ci[0]), float(ba_ci[1])
        if lo != lo or hi != hi:  # NaN interval: no replicate had both classes
            return False, "balanced accuracy interval undefined"
        if lo <= 0.5 <= hi:
            return False, f"balanced accuracy interval [{lo:.3f}, {hi:.3f}] contains 0.5"
    return True, ""


def summarize_binary_fairness(
    scores: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor,
    reference: int,
    *,
    threshold: float = 0.5,
    n_bootstrap: int = 0,
    ci_level: float = 0.95,
    seed: int = 0,
    bootstrap_mean: bool = False,
    metric: str = "eod",
    epsilon: float = 0.05,
    unknown: str = "exclude",
    min_group_size: int = 1,
    min_iqr: float = 1e-3,
) -> dict[str, float | str]:
    """Pooled figures of ``score > threshold`` with bootstrap means and percentile intervals, as a flat dict.

    The point estimate and the ``n_bootstrap`` resamples (drawn over the whole set, unstratified, by
    :func:`~monai_fair.metrics.bootstrap.bootstrap_weights` with a CPU generator seeded by ``seed``, so the draws
    do not depend on the device) are one call of :func:`evaluate_binary_fairness`.

    Args:
        scores, labels, groups, reference, metric, epsilon, unknown, min_group_size: see
            :func:`evaluate_binary_fairness`.
        threshold: decision threshold (0.5 for hard predictions).
        n_bootstrap: number of resamples (0: point estimates only).
        ci_level: level of the equal-tailed percentile intervals.
        seed: resampling seed.
        bootstrap_mean: report the bootstrap means as the figures themselves (the studies' validation protocol).
        min_iqr: the inter-quartile range below which scores count as near-constant (:func:`better_than_chance`).

    Returns:
        ``balanced_accuracy, spd, eod, aod, bias, objective`` and, with resamples, ``<name>_boot_mean``,
        ``<name>_ci_low``, ``<name>_ci_high`` (NaN replicates are ignored), ``better_than_chance`` (1.0 or 0.0,
        :func:`better_than_chance` on the balanced-accuracy interval) and ``chance_reason`` (``""`` or why not).
    """
    from .bootstrap import bootstrap_weights, make_generator, percentile_interval

    s = torch.as_tensor(scores).reshape(-1)
    n = s.numel()
    kwargs = dict(metric=metric, epsilon=epsilon, unknown=unknown, min_group_size=min_group_size)
    point = evaluate_binary_fairness(s, labels, groups, reference, thresholds=threshold, **kwargs).point()
    if n_bootstrap <= 0:
        return point
    w = bootstrap_weights([n], int(n_bootstrap), stratified=False, generator=make_generator(seed, "cpu"))
    boot = evaluate_binary_fairness(
        s, labels, groups, reference, thresholds=threshold, weights=w.to(s.device), **kwargs
    )
    out = dict(point)
    for k in point:
        v = getattr(boot, k)[:, 0]
        out[f"{k}_boot_mean"] = float(torch.nanmean(v))
        lo, hi = percentile_interval(v, ci_level)
        out[f"{k}_ci_low"], out[f"{k}_ci_high"] = float(lo), float(hi)
    if bootstrap_mean:
        for k in point:
            out[k] = out[f"{k}_boot_mean"]
    ok, reason = better_than_chance(
        s, threshold, (out["balanced_accuracy_ci_low"], out["balanced_accuracy_ci_high"]), min_iqr=min_iqr
    )
    out["better_than_chance"] = float(ok)
    out["chance_reason"] = reason
    return out
