# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Per-group expected calibration error (ECE) with equal-width bins.

Definition (Guo et al. 2017, the "expected" reduction of ``monai.metrics.CalibrationErrorMetric``): the scores of a
group are put into ``n_bins`` equal-width bins, bin ``k`` holding ``k/n_bins <= p < (k+1)/n_bins`` (the last bin also
holds ``p = 1``), and

    ECE_g = sum_k (n_{g,k} / n_g) * | mean(y in bin) - mean(p in bin) | = sum_k | sum_{bin}(y - p) | / n_g.

Empty bins contribute nothing. Scores must be probabilities in ``[0, 1]``. Because bins are contiguous in the
(group, score) order, every bin sum is a difference of one cumulative sum, for the point estimate and bootstrap
replicates alike.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .group_stats import safe_ratio
from .group_sums import GroupSums, compute_group_sums
from .grouped_scores import GroupedScores, build_grouped_scores

__all__ = ["compute_group_ece", "group_ece_from_sums", "bin_edges", "check_probabilities"]


def bin_edges(n_bins: int, device=None) -> torch.Tensor:
    """The ``n_bins + 1`` equal-width bin edges on ``[0, 1]`` (float64)."""
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}.")
    return torch.linspace(0.0, 1.0, int(n_bins) + 1, dtype=torch.float64, device=device)


def check_probabilities(gs: GroupedScores) -> None:
    """Raise ``ValueError`` unless every score lies in ``[0, 1]``."""
    lo, hi = (float(v) for v in torch.aminmax(gs.scores))
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"calibration needs probabilities in [0, 1], got scores in [{lo:.4g}, {hi:.4g}] (apply a sigmoid first)."
        )


def group_ece_from_sums(sums: GroupSums, min_group_size: int) -> torch.Tensor:
    """ECE from :class:`~monai_fair.metrics.group_sums.GroupSums` (needs ``calibration_residual``)."""
    ece = safe_ratio(sums.calibration_residual, sums.n)
    return torch.where(sums.n >= max(min_group_size, 1), ece, torch.full_like(ece, float("nan")))


def compute_group_ece(
    y_score: torch.Tensor,
    y: torch.Tensor,
    groups: torch.Tensor,
    *,
    n_bins: int = 15,
    group_codes: Sequence[int] | None = None,
    min_group_size: int = 10,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Expected calibration error of every group (and label), equal-width bins (see the module docstring).

    Args:
        y_score: probabilities ``(N,)`` or ``(N, L)`` in ``[0, 1]``.
        y: binary labels, same shape.
        groups: integer group codes ``(N,)``.
        n_bins: number of equal-width bins on ``[0, 1]``.
        group_codes: declared codes (rows of the result, ascending); default the codes present.
        min_group_size: groups with fewer samples get NaN.
        weights: optional per-sample weights ``(N,)`` or ``(B, N)``; 2-D weights add a leading ``(B,)``.

    Returns:
        float64 tensor ``(G,)`` or ``(G, L)`` (with a leading ``(B,)`` for 2-D weights), in ``[0, 1]``.

    Raises:
        ValueError: invalid inputs, scores outside ``[0, 1]``, or ``n_bins < 1``.
    """
    bin_edges(n_bins)
    gs = build_grouped_scores(y_score, y, groups, group_codes)
    check_probabilities(gs)
    w = gs.check_weights(weights)
    ece = group_ece_from_sums(compute_group_sums(gs, w, n_bins=int(n_bins)), min_group_size)
    return gs.squeeze(ece, w is not None and w.ndim == 2)
