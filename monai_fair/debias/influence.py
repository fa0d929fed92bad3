# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Influence of every masked unit on the differentiable bias proxy, from one backward pass over the data.

The influence of unit ``j`` is the gradient of the full-set proxy with respect to the unit's (masked) activation,
summed over the samples, ``S_j = sum_i d proxy / d h_j(x_i)`` (Marcinkevics et al. 2022, after Leino et al.).
Zeroing a unit changes the proxy by about ``-h_j S_j`` (first order), so with non-negative activations the units
with the largest positive ``S`` push the proxy up the most.

The proxy is linear in the probabilities, ``proxy = sum_i w_i f(x_i)`` with weights counted over the whole set
(:func:`monai_fair.metrics.proxy_weights`), so back-propagating ``sum_batch w_i f(x_i)`` batch by batch and summing
gives the exact full-set gradient for any batch size, and a batch that lacks a group is not NaN. Gradients are summed
over the batch into one flat float32 buffer on the model's device by tensor hooks: nothing is copied to the host.

The same holds for the smoothed thresholded figures (:class:`ThresholdProxyWeights`, :class:`ThresholdTaskWeights`):
``sum_i w_i s(z_i)`` with ``s`` the smoothed decision at a fixed threshold (:func:`monai_fair.metrics.soft_decisions`)
and weights counted over the whole set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from monai_fair.debias.base import _autocast, as_spec, batch_tensors, positive_logit, positive_probability
from monai_fair.debias.unit_mask import UnitMaskSet
from monai_fair.metrics import FairnessSpec
from monai_fair.metrics.proxies import compute_bias_proxy, proxy_sides, proxy_weights, soft_decisions, youden_weights

__all__ = ["FullSetProxyWeights", "ThresholdProxyWeights", "ThresholdTaskWeights", "unit_influence"]


class FullSetProxyWeights:
    """Per-sample proxy weights counted over a whole evaluation set, computable for any subset of it.

    ``w_i = [a_i = r']/N_r' - [a_i = r]/N_r`` (SPD; ``r`` the reference group, ``r'`` the rest), times ``y_i`` with
    positive-only counts (EOD), where the counts ``N`` come from the full set given here. Applying this to every
    mini-batch of the set gives exactly ``proxy_weights(all labels, all groups)`` in pieces, independently of batch
    order or shuffling. Unknown codes follow ``unknown`` (see :func:`~monai_fair.metrics.proxies.proxy_sides`).

    Args:
        labels: binary labels of the full set ``(N,)``.
        groups: group codes of the full set ``(N,)``.
        reference: code of the reference (privileged) group.
        metric: ``"spd"`` or ``"eod"``.
        unknown: unknown-code policy, ``"exclude"`` or ``"group"``.

    Raises:
        ValueError: as :func:`monai_fair.metrics.proxy_weights` (unknown metric, a side without (positive) samples).
    """

    def __init__(
        self,
        labels: torch.Tensor,
        groups: torch.Tensor,
        reference: int,
        metric: str = "eod",
        unknown: str = "exclude",
    ) -> None:
        proxy_weights(labels, groups, reference, metric, unknown)  # validates the full set (raises if a side is empty)
        self.reference = int(reference)
        self.metric = metric
        self.unknown = unknown
        self.n_samples = int(torch.as_tensor(labels).numel())
        ref, rest = proxy_sides(labels, groups, reference, metric, unknown)
        self.n_reference = int(ref.sum())
        self.n_rest = int(rest.sum())

    def __call__(self, labels: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """Weights ``(B,)`` (float32, on ``labels``' device) of the samples of one batch."""
        ref, rest = proxy_sides(labels, groups, self.reference, self.metric, self.unknown)
        # same expression as proxy_weights, so the pieces equal the full-set weights bit for bit
        return rest.to(torch.float32) / self.n_rest - ref.to(torch.float32) / self.n_reference

    def score(self, output: torch.Tensor, activation: str = "sigmoid", index: int = 0) -> torch.Tensor:
        """The per-sample quantity the weights apply to: the positive-class probability."""
        return positive_probability(output, activation, index)

    def value(self, probs: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor) -> float:
        """The full-set figure these weights are the gradient of, from the set's probabilities."""
        return float(compute_bias_proxy(probs, labels, groups, self.reference, self.metric, unknown=self.unknown))


def smoothing_temperature(logits: torch.Tensor, fraction: float) -> float:
    """``fraction`` times the standard deviation of ``logits`` (1 logit unit when they are all equal)."""
    spread = float(logits.double().std(unbiased=False)) if logits.numel() > 1 else 0.0
    return float(fraction) * (spread if spread > 0 else 1.0)


class ThresholdProxyWeights(FullSetProxyWeights):
    """Weights of the smoothed thresholded bias at a decision threshold, with the overall rate held fixed.

    The figure is the SPD/EOD of the smoothed decisions ``s_i = sigmoid((z_i - logit(t)) / T)``,
    ``sum_i w_i s_i`` with the :class:`FullSetProxyWeights` ``w``. A change that moves every sample's score the same
    way (a global shift of the logits) also moves the balanced-accuracy-optimal threshold, so it does not change
    the bias the study measures; its gradient is removed by centring the weights,
    ``w_i - k [i on a side]`` with ``k = sum_j w_j s'_j / sum_{j on a side} s'_j``: the first-order change of
    the smoothed bias at a fixed overall rate (TPR for EOD, positive rate for SPD).

    Args:
        labels: binary labels of the full set ``(N,)``.
        groups: group codes of the full set ``(N,)``.
        reference: code of the reference (privileged) group.
        logits: positive-class logits of the full set ``(N,)`` (the current model).
        threshold: the current decision threshold (probability scale).
        temperature: width of the smoothing in logit units (> 0).
        metric: ``"spd"`` or ``"eod"``.
        unknown: unknown-code policy.
    """

    def __init__(
        self,
        labels: torch.Tensor,
        groups: torch.Tensor,
        reference: int,
        logits: torch.Tensor,
        threshold: float,
        temperature: float,
        metric: str = "eod",
        unknown: str = "exclude",
    ) -> None:
        super().__init__(labels, groups, reference, metric, unknown)
        self.threshold = float(threshold)
        self.temperature = float(temperature)
        logits = torch.as_tensor(logits).reshape(-1).double()
        ref, rest = proxy_sides(labels, groups, reference, metric, unknown)
        ref, rest = ref.to(logits.device), rest.to(logits.device)
        s = soft_decisions(logits, self.threshold, self.temperature)
        slope = s * (1 - s)
        w = super().__call__(labels, groups).to(logits.device).double()
        denom = float(slope[ref | rest].sum())
        self.shift = float((w * slope).sum()) / denom if denom > 0 else 0.0

    def __call__(self, labels: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        ref, rest = proxy_sides(labels, groups, self.reference, self.metric, self.unknown)
        return super().__call__(labels, groups) - self.shift * (ref | rest).to(torch.float32)

    def score(self, output: torch.Tensor, activation: str = "sigmoid", index: int = 0) -> torch.Tensor:
        """The smoothed decision of every sample at the threshold."""
        return soft_decisions(positive_logit(output, activation, index), self.threshold, self.temperature)

    def value(self, probs: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor) -> float:
        """The smoothed thresholded bias of the full set (the uncentred figure)."""
        s = soft_decisions(_logit(probs), self.threshold, self.temperature)
        return float(compute_bias_proxy(s, labels, groups, self.reference, self.metric, unknown=self.unknown))


class ThresholdTaskWeights:
    """Weights of the smoothed ``TPR - FPR`` (``2 BA - 1``) at a decision threshold, counted over the full set.

    Args:
        labels: binary labels of the full set ``(N,)``.
        threshold: the current decision threshold (probability scale).
        temperature: width of the smoothing in logit units (> 0).
    """

    def __init__(self, labels: torch.Tensor, threshold: float, temperature: float) -> None:
        youden_weights(labels)  # validates the full set (raises if a class is empty)
        pos = torch.as_tensor(labels).reshape(-1) > 0.5
        self.n_pos, self.n_neg = int(pos.sum()), int((~pos).sum())
        self.threshold = float(threshold)
        self.temperature = float(temperature)

    def __call__(self, labels: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        pos = labels.reshape(-1) > 0.5
        return pos.to(torch.float32) / self.n_pos - (~pos).to(torch.float32) / self.n_neg

    def score(self, output: torch.Tensor, activation: str = "sigmoid", index: int = 0) -> torch.Tensor:
        """The smoothed decision of every sample at the threshold."""
        return soft_decisions(positive_logit(output, activation, index), self.threshold, self.temperature)


def _logit(probs: torch.Tensor) -> torch.Tensor:
    p = torch.as_tensor(probs).reshape(-1).double().clamp(1e-12, 1.0 - 1e-12)
    return torch.log(p) - torch.log1p(-p)


def _accumulate(buffer: torch.Tensor, grad: torch.Tensor) -> None:
    buffer.add_(grad.sum(0, dtype=torch.float32))


def unit_influence(
    model: nn.Module,
    masks: UnitMaskSet,
    loader: Iterable[Mapping[str, Any]],
    weights: FullSetProxyWeights | ThresholdTaskWeights,
    spec: FairnessSpec | None = None,
    image_key: str = "image",
    label_key: str = "label",
    activation: str = "sigmoid",
    amp: bool = True,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gradient of a full-set figure (the bias proxy by default) w.r.t. every masked unit, summed over the samples of ``loader``.

    The model runs in eval mode (dropout off, BatchNorm running statistics). Gradients are taken with respect to
    the masked layer outputs *before* any later in-place operation (e.g. ``ReLU(inplace=True)``), and the
    parameters' ``.grad`` are left untouched (only activation gradients are computed). Samples with zero weight
    (the negatives, for EOD) are skipped: they cannot contribute.

    Args:
        model: the masked network (on its device).
        masks: its :class:`~monai_fair.debias.unit_mask.UnitMaskSet`.
        loader: re-iterable loader of dict batches (any batch size, any order).
        weights: full-set weights of the same data (:class:`FullSetProxyWeights` and its threshold variant, or
            :class:`ThresholdTaskWeights`); their ``score`` is what they weight.
        spec: the fairness spec (group codes of a batch, output channel); ``None``: ``FairnessSpec()``.
        image_key: batch key of the input.
        label_key: batch key of the binary label.
        activation: how the positive probability is read from the output (see ``positive_probability``).
        amp: bf16 autocast on CUDA.
        out: optional flat float32 buffer of length ``masks.n_units`` to fill (reused across steps).

    Returns:
        flat float32 tensor of length ``masks.n_units`` on the masks' device (layer offsets as in ``masks``).
        Pruned units are not excluded here; callers exclude them (their activations are zero).
    """
    spec = as_spec(spec)
    device = masks.device
    if out is None:
        out = torch.zeros(masks.n_units, dtype=torch.float32, device=device)
    else:
        out.zero_()
    views = masks.split(out)
    handles = []
    for layer, view in zip(masks.layers, views):

        def hook(module, inputs, output, view=view):
            # registered before any in-place op downstream, so the hook sees d proxy / d (masked output)
            if output.requires_grad:
                output.register_hook(lambda g, view=view: _accumulate(view, g))

        handles.append(layer.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        for batch in loader:
            x, labels, groups = batch_tensors(batch, spec, device, image_key, label_key)
            w = weights(labels, groups)
            keep = w != 0
            if not bool(keep.any()):
                continue
            if not bool(keep.all()):
                x, w = x[keep], w[keep]
            if not x.is_floating_point():
                x = x.float()
            # gradient w.r.t. the input makes autograd build the graph through every layer without computing any
            # parameter gradient (and without touching the loader's tensor)
            x = x.detach().requires_grad_(True)
            with _autocast(device, amp):
                output = model(x)
            loss = torch.sum(w * weights.score(output, activation, spec.output_index))
            torch.autograd.grad(loss, x, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return out
