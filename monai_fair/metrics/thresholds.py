# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Balanced-accuracy-optimal decision threshold, searched over every observed score (or a grid) at once."""

from __future__ import annotations

import torch

__all__ = ["balanced_accuracy_at_thresholds", "best_balanced_accuracy_threshold", "observed_thresholds"]


def balanced_accuracy_at_thresholds(
    scores: torch.Tensor, labels: torch.Tensor, thresholds: torch.Tensor | int = 101
) -> tuple[torch.Tensor, torch.Tensor]:
    """Balanced accuracy of ``scores > t`` for every threshold ``t`` of a grid, without a Python loop.

    One sort of the scores and a cumulative count give the true-positive and true-negative counts at every
    threshold, so the cost is O(n log n + T) instead of O(n·T).

    Args:
        scores: scores of shape ``(N,)`` or ``(B, N)`` (``B`` resamples, e.g. bootstrap replicates).
        labels: binary labels, same shape as ``scores`` (or ``(N,)`` broadcast over ``B``).
        thresholds: an ascending 1-D tensor of thresholds, or an int ``T`` for ``linspace(0, 1, T)``.

    Returns:
        ``(thresholds, ba)`` where ``ba`` has shape ``(T,)`` or ``(B, T)``. BA is NaN where a class is absent.

    Raises:
        ValueError: length mismatch or NaN scores/labels.
    """
    scores = torch.as_tensor(scores)
    labels = torch.as_tensor(labels)
    if isinstance(thresholds, int):
        thresholds = torch.linspace(0.0, 1.0, thresholds, dtype=torch.float64, device=scores.device)
    thresholds = torch.as_tensor(thresholds, device=scores.device)
    squeeze = scores.ndim == 1
    s = scores.reshape(1, -1) if squeeze else scores
    y = labels.reshape(1, -1) if labels.ndim == 1 else labels
    if s.shape[-1] != y.shape[-1]:
        raise ValueError(f"scores and labels must have the same length, got {s.shape[-1]} and {y.shape[-1]}.")
    if bool(torch.isnan(s).any()) or bool(torch.isnan(y.to(torch.float64)).any()):
        # a NaN score would sort above every threshold and silently count as a positive prediction
        raise ValueError("scores and labels must not contain NaN.")
    y = y.expand_as(s).to(torch.float64)
    s_sorted, order = torch.sort(s.to(torch.float64), dim=-1)
    y_sorted = torch.gather(y, -1, order)
    n_pos = y_sorted.sum(-1, keepdim=True)
    n_neg = y_sorted.shape[-1] - n_pos
    # number of samples with score <= t, per threshold (right-side search keeps ties below the threshold)
    idx = torch.searchsorted(
        s_sorted.contiguous(), thresholds.to(torch.float64).expand(s.shape[0], -1).contiguous(), right=True
    )
    cum_pos = torch.nn.functional.pad(torch.cumsum(y_sorted, -1), (1, 0))
    pos_below = torch.gather(cum_pos, -1, idx)  # positives predicted negative (false negatives)
    neg_below = idx.to(torch.float64) - pos_below  # negatives predicted negative (true negatives)
    tpr = (n_pos - pos_below) / n_pos
    tnr = neg_below / n_neg
    ba = 0.5 * (tpr + tnr)
    return thresholds, ba[0] if squeeze else ba


def observed_thresholds(scores: torch.Tensor) -> torch.Tensor:
    """The candidate thresholds of ``score > t`` that a data set can tell apart: its distinct scores, ascending.

    Between two consecutive distinct scores every threshold gives the same decisions, so the observed score at the
    lower end stands for the whole interval (``score > s_k`` predicts positive every sample above ``s_k``). The
    largest score predicts every sample negative; "every sample positive" has the same balanced accuracy (0.5).

    Args:
        scores: scores of any shape (flattened).

    Raises:
        ValueError: no score, or NaN scores.
    """
    s = torch.as_tensor(scores).reshape(-1).to(torch.float64)
    if s.numel() == 0:
        raise ValueError("scores must not be empty.")
    if bool(torch.isnan(s).any()):
        raise ValueError("scores must not contain NaN.")
    return torch.unique(s)  # sorted


def best_balanced_accuracy_threshold(
    scores: torch.Tensor, labels: torch.Tensor, thresholds: torch.Tensor | int | None = None
) -> tuple[float, float]:
    """The threshold that maximises balanced accuracy of ``scores > t`` (the lowest one on ties).

    By default the search runs over the distinct observed scores (:func:`observed_thresholds`): the optimum always
    lies at one of them, so no fixed grid can miss it (scores concentrated in a narrow band, e.g. all in
    ``[0.499, 0.501]``, fall between the points of ``linspace(0, 1, 101)``). One sort and a cumulative count
    evaluate every candidate at once. The returned threshold is an observed score ``s``, used with ``score > s``.

    Args:
        scores: scores of shape ``(N,)``.
        labels: binary labels of shape ``(N,)``.
        thresholds: ``None`` (default) to search the observed scores; an ascending grid, or an int ``T`` for
            ``linspace(0, 1, T)``, to restrict the search to a fixed grid (kept for callers that configure
            ``n_thresholds``).

    Returns:
        ``(threshold, balanced_accuracy)``. Raises ``ValueError`` if only one class is present.
    """
    candidates = observed_thresholds(scores) if thresholds is None else thresholds
    grid, ba = balanced_accuracy_at_thresholds(scores, labels, candidates)
    if torch.isnan(ba).all():
        raise ValueError("balanced accuracy is undefined: labels contain a single class.")
    best = int(torch.argmax(torch.nan_to_num(ba, nan=-1.0)))
    return float(grid[best]), float(ba[best])
