# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Per-group support-weighted precision, recall and F1 of class decisions (binary or multi-class), and Pearson's r.

The weighted averages follow scikit-learn's ``average="weighted"``: each class's precision, recall and F1 are
averaged with the class's support (number of true samples) as weight; a class with no predicted sample has
precision 0 (and F1 0), as scikit-learn's ``zero_division=0``. Li et al. 2021 (Table 1) report these per group.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["PRF_KEYS", "compute_group_weighted_prf", "compute_weighted_prf", "pearson_r"]

PRF_KEYS = ("precision", "recall", "f1")


def _confusion(pred: torch.Tensor, true: torch.Tensor, num_classes: int) -> torch.Tensor:
    idx = true * num_classes + pred
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes).double()


def compute_weighted_prf(y_pred, y_true, num_classes: int | None = None) -> dict[str, float]:
    """Support-weighted precision, recall and F1 of class decisions.

    Args:
        y_pred: predicted class indices ``(N,)`` (for a binary task the hard 0/1 decisions).
        y_true: true class indices ``(N,)``.
        num_classes: number of classes (default: the largest index present + 1).

    Returns:
        ``{"precision", "recall", "f1", "n"}``; NaN figures for an empty input.

    Raises:
        ValueError: shapes differ or an index is negative.
    """
    pred = torch.as_tensor(y_pred).reshape(-1).long().cpu()
    true = torch.as_tensor(y_true).reshape(-1).long().cpu()
    if pred.shape != true.shape:
        raise ValueError(f"y_pred and y_true differ in length: {pred.numel()} vs {true.numel()}.")
    if pred.numel() == 0:
        return {"precision": float("nan"), "recall": float("nan"), "f1": float("nan"), "n": 0.0}
    if int(pred.min()) < 0 or int(true.min()) < 0:
        raise ValueError("class indices must be non-negative.")
    k = int(max(int(pred.max()), int(true.max())) + 1) if num_classes is None else int(num_classes)
    cm = _confusion(pred, true, k)
    tp = cm.diagonal()
    support, predicted = cm.sum(1), cm.sum(0)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp(min=1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-300), torch.zeros_like(tp))
    w = support / support.sum()
    return {
        "precision": float((w * precision).sum()),
        "recall": float((w * recall).sum()),
        "f1": float((w * f1).sum()),
        "n": float(pred.numel()),
    }


def compute_group_weighted_prf(
    y_pred, y_true, groups, group_codes: Sequence[int] | None = None, num_classes: int | None = None
) -> dict[int, dict[str, float]]:
    """:func:`compute_weighted_prf` within every group.

    Args:
        y_pred: predicted class indices ``(N,)``.
        y_true: true class indices ``(N,)``.
        groups: integer group codes ``(N,)``; negative (unknown) codes are left out unless listed in ``group_codes``.
        group_codes: groups to report (default: the known codes present, ascending); an absent group gets NaN.
        num_classes: number of classes, shared by all groups (default: from the whole input).

    Returns:
        ``{code: {"precision", "recall", "f1", "n"}}``.
    """
    pred = torch.as_tensor(y_pred).reshape(-1).long().cpu()
    true = torch.as_tensor(y_true).reshape(-1).long().cpu()
    g = torch.as_tensor(groups).reshape(-1).long().cpu()
    if not pred.shape == true.shape == g.shape:
        raise ValueError(f"y_pred, y_true and groups differ in length: {pred.numel()}, {true.numel()}, {g.numel()}.")
    if num_classes is None and pred.numel():
        num_classes = int(max(int(pred.max()), int(true.max())) + 1)
    codes = sorted(int(c) for c in torch.unique(g) if c >= 0) if group_codes is None else list(group_codes)
    return {int(c): compute_weighted_prf(pred[g == c], true[g == c], num_classes) for c in codes}


def pearson_r(x, y) -> float:
    """Pearson's correlation coefficient of two 1-D samples, over the pairs where both are finite.

    Returns:
        r; NaN with fewer than 3 finite pairs or when either sample is constant.
    """
    a = torch.as_tensor(x, dtype=torch.float64).reshape(-1).cpu()
    b = torch.as_tensor(y, dtype=torch.float64).reshape(-1).cpu()
    if a.shape != b.shape:
        raise ValueError(f"x and y differ in length: {a.numel()} vs {b.numel()}.")
    ok = torch.isfinite(a) & torch.isfinite(b)
    a, b = a[ok], b[ok]
    if a.numel() < 3:
        return float("nan")
    a, b = a - a.mean(), b - b.mean()
    den = torch.sqrt((a * a).sum() * (b * b).sum())
    if float(den) <= 1e-300:
        return float("nan")
    return float((a * b).sum() / den)
