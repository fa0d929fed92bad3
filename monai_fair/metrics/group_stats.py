# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Per-group counts and confusion-derived rates at a decision threshold (selection rate, TPR, FPR, FNR, PPV, BA).

A sample is predicted positive when ``score > threshold`` (the convention of
:func:`~monai_fair.metrics.thresholds.best_balanced_accuracy_threshold`, scikit-learn's ``predict`` and the debiasing
studies). Rates that cannot be estimated are NaN, never 0:

* every rate of a group with ``n < min_group_size`` (including empty declared groups);
* TPR, FNR and balanced accuracy of a group without positives; FPR and balanced accuracy without negatives;
* PPV of a group without predicted positives.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .group_sums import GroupSums, compute_group_sums
from .grouped_scores import build_grouped_scores

__all__ = ["GROUP_STAT_KEYS", "compute_group_stats", "safe_ratio", "threshold_tensor"]

GROUP_STAT_KEYS = (
    "n",
    "positives",
    "negatives",
    "selection_rate",
    "tpr",
    "fpr",
    "fnr",
    "ppv",
    "balanced_accuracy",
)


def safe_ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den`` with NaN (not 0, not inf) where ``den == 0``."""
    return torch.where(den > 0, num / den.clamp_min(torch.finfo(den.dtype).tiny), torch.full_like(num, float("nan")))


def threshold_tensor(threshold: float | Sequence[float] | torch.Tensor, num_labels: int, device) -> torch.Tensor:
    """A ``(L,)`` float64 threshold from a scalar or a per-label sequence."""
    thr = torch.as_tensor(threshold, dtype=torch.float64, device=device).reshape(-1)
    if thr.numel() == 1:
        thr = thr.expand(num_labels)
    if thr.numel() != num_labels:
        raise ValueError(f"threshold must be a scalar or have one value per label ({num_labels}), got {thr.numel()}.")
    if bool(torch.isnan(thr).any()):
        raise ValueError("threshold must not be NaN.")
    return thr


def group_stats_from_sums(sums: GroupSums, min_group_size: int) -> dict[str, torch.Tensor]:
    """Counts and rates from :class:`~monai_fair.metrics.group_sums.GroupSums` (needs the threshold sums).

    Returns:
        :data:`GROUP_STAT_KEYS` plus ``predicted_positives``, shaped like the sums.
    """
    n, pos, neg = sums.n, sums.positives, sums.negatives
    pred_pos, tp = sums.predicted_positives, sums.true_positives
    fp = pred_pos - tp
    ok = n >= max(min_group_size, 1)
    nan = torch.full_like(n, float("nan"))
    tpr = torch.where(ok, safe_ratio(tp, pos), nan)
    fpr = torch.where(ok, safe_ratio(fp, neg), nan)
    return {
        "n": n,
        "positives": pos,
        "negatives": neg,
        "selection_rate": torch.where(ok, safe_ratio(pred_pos, n), nan),
        "tpr": tpr,
        "fpr": fpr,
        "fnr": 1.0 - tpr,
        "ppv": torch.where(ok, safe_ratio(tp, pred_pos), nan),
        "balanced_accuracy": 0.5 * (tpr + 1.0 - fpr),
        "predicted_positives": pred_pos,
    }


def compute_group_stats(
    y_score: torch.Tensor,
    y: torch.Tensor,
    groups: torch.Tensor,
    threshold: float | Sequence[float] | torch.Tensor = 0.5,
    *,
    group_codes: Sequence[int] | None = None,
    min_group_size: int = 10,
    weights: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Per-group counts and confusion-derived rates of ``y_score > threshold``.

    Args:
        y_score: scores ``(N,)`` or ``(N, L)``.
        y: binary labels, same shape.
        groups: integer group codes ``(N,)``.
        threshold: scalar or per-label ``(L,)`` threshold; predicted positive iff ``score > threshold``.
        group_codes: declared codes (rows of the result, ascending); default the codes present.
        min_group_size: groups with fewer samples get NaN rates (their counts are still reported).
        weights: optional per-sample weights ``(N,)`` or ``(B, N)`` (e.g. bootstrap resample counts); with 2-D
            weights every output gains a leading replicate dimension ``B``.

    Returns:
        dict with keys :data:`GROUP_STAT_KEYS` plus ``predicted_positives``; float64 tensors of shape ``(G,)``
        (binary) or ``(G, L)`` (multi-label), with a leading ``(B,)`` for 2-D weights. ``fnr = 1 - tpr`` (the
        under-diagnosis rate), ``balanced_accuracy = (tpr + 1 - fpr) / 2``.

    Raises:
        ValueError: invalid inputs (see :func:`~monai_fair.metrics.grouped_scores.build_grouped_scores`) or a bad
            threshold.
    """
    gs = build_grouped_scores(y_score, y, groups, group_codes)
    thr = threshold_tensor(threshold, gs.num_labels, gs.device)
    w = gs.check_weights(weights)
    out = group_stats_from_sums(compute_group_sums(gs, w, threshold=thr), min_group_size)
    batched = w is not None and w.ndim == 2
    return {k: gs.squeeze(v, batched) for k, v in out.items()}
