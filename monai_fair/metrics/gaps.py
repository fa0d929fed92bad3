# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Fairness gaps from per-group metrics: signed "group − reference" gaps and max–min summaries.

Signed gaps (one value per group; the reference row is 0, or NaN when the reference itself is not estimable):

* ``spd``      = selection_rate_g − selection_rate_ref   (statistical parity difference)
* ``eod``      = TPR_g − TPR_ref                         (equal opportunity difference)
* ``fpr_diff`` = FPR_g − FPR_ref
* ``aod``      = ½ (ΔTPR + ΔFPR)                         (average odds difference)
* ``auc_diff`` = AUC_g − AUC_ref
* ``ba_diff``  = BA_g − BA_ref

Summaries over groups (max–min over the *estimable* groups — NaN groups are left out, as in fairlearn's
``MetricFrame.difference()``, and stay visible through the table's flags; fewer than two estimable groups → NaN):
``spd_max_min`` (= fairlearn ``demographic_parity_difference``), ``eod_max_min`` (= ``equal_opportunity_difference``),
``fpr_max_min``, ``aod_max_min`` (max–min of ½(TPR+FPR)), ``equalized_odds`` = max(eod_max_min, fpr_max_min)
(= fairlearn ``equalized_odds_difference``), ``auc_gap``, ``worst_group_auc`` (min AUC), ``worst_group_ba``
(min balanced accuracy), ``ece_gap``.
"""

from __future__ import annotations

from typing import Mapping

import torch

__all__ = [
    "GAP_KEYS",
    "HIGHER_IS_BETTER_SUMMARIES",
    "SUMMARY_KEYS",
    "signed_gap",
    "max_min_gap",
    "worst_group",
    "compute_signed_gaps",
    "compute_gap_summary",
]

GAP_KEYS = ("spd", "eod", "fpr_diff", "aod", "auc_diff", "ba_diff")
SUMMARY_KEYS = (
    "spd_max_min",
    "eod_max_min",
    "fpr_max_min",
    "aod_max_min",
    "equalized_odds",
    "auc_gap",
    "worst_group_auc",
    "worst_group_ba",
    "ece_gap",
)
# summaries where a larger value is better (the worst group's performance); every other summary is a gap
HIGHER_IS_BETTER_SUMMARIES = ("worst_group_auc", "worst_group_ba")
# per-group metric(s) behind each summary (used to name the groups a summary left out)
SUMMARY_SOURCES = {
    "spd_max_min": ("selection_rate",),
    "eod_max_min": ("tpr",),
    "fpr_max_min": ("fpr",),
    "aod_max_min": ("tpr", "fpr"),
    "equalized_odds": ("tpr", "fpr"),
    "auc_gap": ("auc",),
    "worst_group_auc": ("auc",),
    "worst_group_ba": ("balanced_accuracy",),
    "ece_gap": ("ece",),
}


def signed_gap(values: torch.Tensor, reference_index: int, dim: int = 0) -> torch.Tensor:
    """``values − values[reference]`` along the group dimension ``dim`` (NaN propagates)."""
    ref = values.select(dim, reference_index).unsqueeze(dim)
    return values - ref


def max_min_gap(values: torch.Tensor, dim: int = 0, min_groups: int = 2) -> torch.Tensor:
    """Max − min over the non-NaN entries along ``dim``; NaN where fewer than ``min_groups`` are finite."""
    valid = ~torch.isnan(values)
    hi = torch.where(valid, values, torch.full_like(values, -float("inf"))).amax(dim)
    lo = torch.where(valid, values, torch.full_like(values, float("inf"))).amin(dim)
    enough = valid.sum(dim) >= min_groups
    return torch.where(enough, hi - lo, torch.full_like(hi, float("nan")))


def worst_group(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Minimum over the non-NaN entries along ``dim``; NaN when none is finite."""
    valid = ~torch.isnan(values)
    lo = torch.where(valid, values, torch.full_like(values, float("inf"))).amin(dim)
    return torch.where(valid.any(dim), lo, torch.full_like(lo, float("nan")))


def compute_signed_gaps(
    per_group: Mapping[str, torch.Tensor], reference_index: int, group_dim: int = 0
) -> dict[str, torch.Tensor]:
    """Signed "group − reference" gaps :data:`GAP_KEYS` from per-group metrics.

    Args:
        per_group: tensors ``selection_rate, tpr, fpr, auc, balanced_accuracy`` with the group axis at ``group_dim``.
        reference_index: position of the reference group along ``group_dim`` (not its code).
        group_dim: the group axis (``0`` for ``(G,)``/``(G, L)``, ``-2`` for ``(B, G, L)``).

    Returns:
        dict of tensors shaped like the inputs.
    """
    eod = signed_gap(per_group["tpr"], reference_index, group_dim)
    fpr_diff = signed_gap(per_group["fpr"], reference_index, group_dim)
    return {
        "spd": signed_gap(per_group["selection_rate"], reference_index, group_dim),
        "eod": eod,
        "fpr_diff": fpr_diff,
        "aod": 0.5 * (eod + fpr_diff),
        "auc_diff": signed_gap(per_group["auc"], reference_index, group_dim),
        "ba_diff": signed_gap(per_group["balanced_accuracy"], reference_index, group_dim),
    }


def compute_gap_summary(per_group: Mapping[str, torch.Tensor], group_dim: int = 0) -> dict[str, torch.Tensor]:
    """Max–min and worst-group summaries :data:`SUMMARY_KEYS` (see the module docstring).

    Args:
        per_group: tensors ``selection_rate, tpr, fpr, auc, balanced_accuracy, ece`` with the group axis at
            ``group_dim``.
        group_dim: the group axis.

    Returns:
        dict of tensors with the group axis removed.
    """
    tpr, fpr = per_group["tpr"], per_group["fpr"]
    eod = max_min_gap(tpr, group_dim)
    fpr_gap = max_min_gap(fpr, group_dim)
    return {
        "spd_max_min": max_min_gap(per_group["selection_rate"], group_dim),
        "eod_max_min": eod,
        "fpr_max_min": fpr_gap,
        "aod_max_min": max_min_gap(0.5 * (tpr + fpr), group_dim),
        "equalized_odds": torch.maximum(eod, fpr_gap),
        "auc_gap": max_min_gap(per_group["auc"], group_dim),
        "worst_group_auc": worst_group(per_group["auc"], group_dim),
        "worst_group_ba": worst_group(per_group["balanced_accuracy"], group_dim),
        "ece_gap": max_min_gap(per_group["ece"], group_dim),
    }
