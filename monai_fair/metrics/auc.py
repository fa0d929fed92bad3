# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Per-group ROC AUC from one sort, with midrank tie handling (equal to scikit-learn's ``roc_auc_score``).

For a group ``g`` with positive weights ``w_i`` and negative weights ``v_j``,

    AUC_g = sum_{i pos} w_i * ( sum_{j neg, s_j < s_i} v_j + 1/2 * sum_{j neg, s_j = s_i} v_j ) / (W_pos * W_neg),

i.e. the probability that a random positive outranks a random negative of the same group, ties counting one half
(the Mann-Whitney statistic). With unit weights this is exactly ``roc_auc_score``. Samples are sorted by (group,
score) once; the inner sums are differences of one cumulative sum at the ends of each tie block, so bootstrap
replicates (resample weights) reuse the same sort.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .group_stats import safe_ratio
from .group_sums import GroupSums, compute_group_sums
from .grouped_scores import build_grouped_scores

__all__ = ["compute_group_roc_auc", "group_auc_from_sums"]


def group_auc_from_sums(sums: GroupSums, min_group_size: int) -> torch.Tensor:
    """AUC from :class:`~monai_fair.metrics.group_sums.GroupSums` (needs ``auc_numerator``); NaN for small or
    single-class groups."""
    pos, neg = sums.positives, sums.negatives
    auc = safe_ratio(sums.auc_numerator, pos * neg)
    ok = (sums.n >= max(min_group_size, 1)) & (pos > 0) & (neg > 0)
    return torch.where(ok, auc, torch.full_like(auc, float("nan")))


def compute_group_roc_auc(
    y_score: torch.Tensor,
    y: torch.Tensor,
    groups: torch.Tensor,
    *,
    group_codes: Sequence[int] | None = None,
    min_group_size: int = 10,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """ROC AUC of every group (and every label), rank-based with ties counted one half.

    Args:
        y_score: scores ``(N,)`` or ``(N, L)`` (any monotone scale: probabilities or logits).
        y: binary labels, same shape.
        groups: integer group codes ``(N,)``.
        group_codes: declared codes (rows of the result, ascending); default the codes present.
        min_group_size: groups with fewer samples get NaN.
        weights: optional per-sample weights ``(N,)`` or ``(B, N)``; 2-D weights add a leading ``(B,)``.

    Returns:
        float64 tensor ``(G,)`` or ``(G, L)`` (with a leading ``(B,)`` for 2-D weights); NaN where the group is
        below ``min_group_size`` or lacks positives or negatives.

    Raises:
        ValueError: invalid inputs (see :func:`~monai_fair.metrics.grouped_scores.build_grouped_scores`).
    """
    gs = build_grouped_scores(y_score, y, groups, group_codes)
    w = gs.check_weights(weights)
    auc = group_auc_from_sums(compute_group_sums(gs, w, auc=True), min_group_size)
    return gs.squeeze(auc, w is not None and w.ndim == 2)
