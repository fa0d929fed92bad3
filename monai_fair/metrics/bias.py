# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Signed privileged-vs-rest bias of hard predictions (SPD, EOD, AOD), as used by the debiasing studies."""

from __future__ import annotations

import torch

__all__ = ["compute_binary_bias", "BIAS_KINDS"]

BIAS_KINDS = ("spd", "eod", "aod")


def _rate(hit: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hit`` over ``mask`` along the last dim; NaN where the mask is empty."""
    num = (hit * mask).sum(-1)
    den = mask.sum(-1)
    return torch.where(den > 0, num / den.clamp_min(1), torch.full_like(num, float("nan")))


def compute_binary_bias(
    y_pred: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, privileged: int = 1, kind: str = "eod"
) -> torch.Tensor:
    """Signed bias "unprivileged minus privileged" of hard (0/1) predictions.

    * ``spd``: P(ŷ=1 | u) − P(ŷ=1 | p)
    * ``eod``: TPR_u − TPR_p
    * ``aod``: ½[(FPR_u − FPR_p) + (TPR_u − TPR_p)]

    The unprivileged side pools every group code other than ``privileged``. Group masks are explicit boolean
    conjunctions (the reference code's ``priv * y == 0`` also matched unprivileged rows).

    Args:
        y_pred: hard predictions ``(N,)`` or ``(B, N)`` (e.g. bootstrap replicates or thresholds).
        labels: binary labels, broadcastable to ``y_pred``.
        groups: integer group codes, broadcastable to ``y_pred``.
        privileged: code of the privileged group.
        kind: one of ``"spd"``, ``"eod"``, ``"aod"``.

    Returns:
        tensor of shape ``y_pred.shape[:-1]``; NaN where a needed group/class cell is empty.
    """
    if kind not in BIAS_KINDS:
        raise ValueError(f"kind must be one of {BIAS_KINDS}, got {kind!r}.")
    y_pred = torch.as_tensor(y_pred)
    labels = torch.as_tensor(labels, device=y_pred.device)
    groups = torch.as_tensor(groups, device=y_pred.device)
    if labels.shape[-1] != y_pred.shape[-1] or groups.shape[-1] != y_pred.shape[-1]:
        raise ValueError(
            f"y_pred, labels and groups must have the same length, got {y_pred.shape[-1]}, {labels.shape[-1]}, "
            f"{groups.shape[-1]}."
        )
    hit = (y_pred > 0.5).to(torch.float64)
    pos = (labels > 0.5).to(torch.float64)
    priv = (groups == privileged).to(torch.float64)
    unpriv = 1.0 - priv
    if kind == "spd":
        return _rate(hit, unpriv) - _rate(hit, priv)
    tpr_gap = _rate(hit, unpriv * pos) - _rate(hit, priv * pos)
    if kind == "eod":
        return tpr_gap
    neg = 1.0 - pos
    fpr_gap = _rate(hit, unpriv * neg) - _rate(hit, priv * neg)
    return 0.5 * (tpr_gap + fpr_gap)
