# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Differentiable proxies of statistical parity and equal opportunity differences on probabilities.

Both proxies are linear in the probabilities (or in :func:`soft_decisions`, the smoothed hard decisions at a
threshold, which turn them into smoothed thresholded rates), ``proxy = sum_i w_i f(x_i)``, so weights counted over a whole
evaluation set give the exact full-set proxy (and its gradient) when summed over mini-batches of any size, and a
mini-batch that lacks a group contributes its share instead of a NaN.

The sides are the reference group and the rest, with the evaluation core's unknown-code policy
(:mod:`~monai_fair.metrics.evaluation`): under ``"exclude"`` a sample with a negative (unknown) code is on neither
side (weight 0); under ``"group"`` it is part of the rest.
"""

from __future__ import annotations

import math

import torch

from .evaluation import UNKNOWN_POLICIES

__all__ = ["PROXY_METRICS", "compute_bias_proxy", "proxy_sides", "proxy_weights", "soft_decisions", "youden_weights"]

PROXY_METRICS = ("spd", "eod")


def proxy_sides(
    labels: torch.Tensor, groups: torch.Tensor, reference: int, metric: str = "eod", unknown: str = "exclude"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean masks ``(reference, rest)`` of the samples that enter each side of the proxy.

    EOD keeps the positives only; the unknown policy decides whether negative codes join the rest.

    Raises:
        ValueError: unknown ``metric`` or ``unknown`` policy, or a length mismatch.
    """
    if metric not in PROXY_METRICS:
        raise ValueError(f"metric must be one of {PROXY_METRICS}, got {metric!r}.")
    if unknown not in UNKNOWN_POLICIES:
        raise ValueError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}.")
    labels = torch.as_tensor(labels).reshape(-1)
    groups = torch.as_tensor(groups, device=labels.device).reshape(-1)
    if labels.shape != groups.shape:
        raise ValueError(f"labels and groups must have the same length, got {labels.numel()} and {groups.numel()}.")
    ref = groups == reference
    rest = ~ref if unknown == "group" else ~ref & (groups >= 0)
    if metric == "eod":
        pos = labels > 0.5
        ref, rest = ref & pos, rest & pos
    return ref, rest


def proxy_weights(
    labels: torch.Tensor, groups: torch.Tensor, reference: int, metric: str = "eod", unknown: str = "exclude"
) -> torch.Tensor:
    """Per-sample weights ``w`` such that ``sum(w * prob)`` is the proxy "rest minus reference".

    * SPD: ``w_i = [a_i = r']/N_r' - [a_i = r]/N_r``
    * EOD: ``w_i = y_i ([a_i = r']/N_{r',y=1} - [a_i = r]/N_{r,y=1})``

    where ``r`` is the reference group and ``r'`` the rest (see :func:`proxy_sides` for unknown codes).

    Args:
        labels: binary labels ``(N,)``.
        groups: integer group codes ``(N,)``.
        reference: code of the reference (privileged) group.
        metric: ``"spd"`` or ``"eod"``.
        unknown: unknown-code policy, ``"exclude"`` or ``"group"``.

    Raises:
        ValueError: unknown metric or policy, length mismatch, or a side without (positive) samples, for which the
            proxy is undefined.
    """
    ref, rest = proxy_sides(labels, groups, reference, metric, unknown)
    n_ref, n_rest = int(ref.sum()), int(rest.sum())
    if n_ref == 0 or n_rest == 0:
        what = "positive samples of " if metric == "eod" else "samples of "
        raise ValueError(f"the {metric.upper()} proxy is undefined: {what}reference={n_ref}, rest={n_rest}.")
    return rest.to(torch.float32) / n_rest - ref.to(torch.float32) / n_ref


def compute_bias_proxy(
    probs: torch.Tensor,
    labels: torch.Tensor | None = None,
    groups: torch.Tensor | None = None,
    reference: int | None = None,
    metric: str = "eod",
    weights: torch.Tensor | None = None,
    unknown: str = "exclude",
) -> torch.Tensor:
    """Differentiable bias proxy (rest minus reference mean probability).

    Args:
        probs: probabilities of the positive class ``(N,)`` (apply the sigmoid first; the proxy is not meant for
            logits).
        labels: binary labels ``(N,)``; needed unless ``weights`` is given.
        groups: group codes ``(N,)``; needed unless ``weights`` is given.
        reference: code of the reference group; needed unless ``weights`` is given.
        metric: ``"spd"`` or ``"eod"``.
        weights: precomputed full-set weights for these samples (see :func:`proxy_weights`); with them the
            proxy of a mini-batch is its exact share of the full-set proxy and is never NaN.
        unknown: unknown-code policy, ``"exclude"`` or ``"group"``.

    Returns:
        a scalar tensor that carries gradient to ``probs``.
    """
    probs = probs.reshape(-1)
    if weights is None:
        if labels is None or groups is None or reference is None:
            raise ValueError("labels, groups and reference are required when weights are not given.")
        weights = proxy_weights(labels, groups, reference, metric, unknown)
    weights = weights.reshape(-1).to(device=probs.device, dtype=probs.dtype)
    if weights.shape != probs.shape:
        raise ValueError(f"weights and probs must have the same length, got {weights.numel()} and {probs.numel()}.")
    return torch.sum(weights * probs)


def soft_decisions(logits: torch.Tensor, threshold: float, temperature: float) -> torch.Tensor:
    """Smoothed hard decisions ``sigmoid((z - logit(t)) / temperature)`` of positive-class logits ``z``.

    Weighted by :func:`proxy_weights` they give the smoothed thresholded SPD/EOD at the decision threshold ``t``
    (a probability), and by :func:`youden_weights` the smoothed ``TPR - FPR``; both tend to the hard figures as the
    temperature goes to 0.

    Args:
        logits: positive-class logits ``(N,)``.
        threshold: decision threshold on the probability scale, clamped to ``[1e-6, 1 - 1e-6]``.
        temperature: width of the smoothing in logit units (> 0).

    Raises:
        ValueError: a temperature that is not positive.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    t = min(max(float(threshold), 1e-6), 1.0 - 1e-6)
    centre = math.log(t / (1.0 - t))
    return torch.sigmoid((logits - centre) / temperature)


def youden_weights(labels: torch.Tensor) -> torch.Tensor:
    """Per-sample weights ``y_i / N_pos - (1 - y_i) / N_neg`` such that ``sum(w * decisions)`` is ``TPR - FPR``
    (``2 * balanced accuracy - 1``).

    Raises:
        ValueError: a class without samples.
    """
    pos = torch.as_tensor(labels).reshape(-1) > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"TPR - FPR is undefined: positives={n_pos}, negatives={n_neg}.")
    return pos.to(torch.float32) / n_pos - (~pos).to(torch.float32) / n_neg
