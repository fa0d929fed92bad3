# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Signed reference-vs-rest bias of hard predictions (SPD, EOD, AOD): a thin view of the evaluation core."""

from __future__ import annotations

import torch

from .evaluation import BIAS_KINDS, evaluate_binary_fairness

__all__ = ["compute_binary_bias", "BIAS_KINDS"]


def compute_binary_bias(
    y_pred: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor,
    reference: int = 1,
    metric: str = "eod",
    unknown: str = "exclude",
    min_group_size: int = 1,
) -> torch.Tensor:
    """Signed bias "rest minus reference" of hard (0/1) predictions, from
    :func:`~monai_fair.metrics.evaluation.evaluate_binary_fairness` (the pooled ``spd``/``eod``/``aod``).

    * ``spd``: P(ŷ=1 | rest) − P(ŷ=1 | reference)
    * ``eod``: TPR_rest − TPR_reference
    * ``aod``: ½[(FPR_rest − FPR_reference) + (TPR_rest − TPR_reference)]

    Args:
        y_pred: hard predictions ``(N,)`` or ``(B, N)`` (one row per decision rule, e.g. per threshold).
        labels: binary labels ``(N,)``.
        groups: integer group codes ``(N,)``; negative codes are unknown and follow ``unknown``.
        reference: code of the reference (privileged) group.
        metric: one of ``"spd"``, ``"eod"``, ``"aod"``.
        unknown: unknown-code policy, ``"exclude"`` or ``"group"`` (``docs/metrics.md``).
        min_group_size: the reference and the pooled rest need at least this many samples (else NaN).

    Returns:
        tensor of shape ``y_pred.shape[:-1]``; NaN where a needed group/class cell is empty.
    """
    pred = torch.as_tensor(y_pred)
    rows = pred.reshape(-1, pred.shape[-1]) if pred.ndim > 1 else pred.reshape(1, -1)
    labels = torch.as_tensor(labels, device=pred.device).reshape(-1)
    groups = torch.as_tensor(groups, device=pred.device).reshape(-1)
    kw = dict(thresholds=0.5, metric=metric, unknown=unknown, min_group_size=min_group_size)
    out = torch.stack([evaluate_binary_fairness(r, labels, groups, reference, **kw).bias[0, 0] for r in rows])
    return out.reshape(pred.shape[:-1]) if pred.ndim > 1 else out[0]
