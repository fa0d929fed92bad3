# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Every figure of the fairness table for a batch of sample weightings in one pass over shared cumulative sums.

The point estimate is the weighting "every sample once"; bootstrap replicates are multinomial resample counts.
Both go through :func:`compute_weighted_table`, so a confidence interval is always the interval of exactly the
figure that is reported.
"""

from __future__ import annotations

import torch

from .auc import group_auc_from_sums
from .calibration import group_ece_from_sums
from .gaps import compute_gap_summary, compute_signed_gaps
from .group_stats import group_stats_from_sums
from .group_sums import compute_group_sums
from .grouped_scores import GroupedScores

__all__ = ["PER_GROUP_KEYS", "compute_weighted_table"]

PER_GROUP_KEYS = (
    "n",
    "positives",
    "negatives",
    "selection_rate",
    "tpr",
    "fpr",
    "fnr",
    "ppv",
    "balanced_accuracy",
    "auc",
    "ece",
)


def compute_weighted_table(
    gs: GroupedScores,
    weights: torch.Tensor | None,
    threshold: torch.Tensor,
    reference_index: int,
    min_group_size: int = 10,
    n_bins: int = 15,
    layout: str = "original",
    dtype: torch.dtype = torch.float64,
) -> dict[str, torch.Tensor]:
    """Per-group metrics, signed gaps and summaries for each weighting.

    Args:
        gs: grouped, sorted inputs.
        weights: ``None`` or ``(B, N)`` per-sample weights (original sample order).
        threshold: ``(L,)`` decision thresholds (predicted positive iff ``score > threshold``).
        reference_index: position of the reference group in ``gs.group_codes``.
        min_group_size: groups with fewer (weighted) samples get NaN metrics.
        n_bins: ECE bins.
        layout: ``"original"`` or ``"sorted0"`` weight layout (see
            :meth:`~monai_fair.metrics.grouped_scores.GroupedScores.sorted_weights`).
        dtype: accumulation dtype of the per-sample passes (see
            :func:`~monai_fair.metrics.group_sums.compute_group_sums`); results are float64.

    Returns:
        flat dict with keys ``"per_group/<metric>"`` (``(B, G, L)``, :data:`PER_GROUP_KEYS` plus
        ``predicted_positives``), ``"gaps/<key>"`` (``(B, G, L)``) and ``"summary/<key>"`` (``(B, L)``).
    """
    sums = compute_group_sums(gs, weights, threshold=threshold, n_bins=n_bins, auc=True, layout=layout, dtype=dtype)
    per_group = group_stats_from_sums(sums, min_group_size)
    per_group["auc"] = group_auc_from_sums(sums, min_group_size)
    per_group["ece"] = group_ece_from_sums(sums, min_group_size)
    gaps = compute_signed_gaps(per_group, reference_index, group_dim=1)
    summary = compute_gap_summary(per_group, group_dim=1)
    out = {f"per_group/{k}": v for k, v in per_group.items()}
    out.update({f"gaps/{k}": v for k, v in gaps.items()})
    out.update({f"summary/{k}": v for k, v in summary.items()})
    return out
