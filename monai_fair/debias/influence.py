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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from monai_fair.debias.base import _autocast, as_spec, batch_tensors, positive_probability
from monai_fair.debias.unit_mask import UnitMaskSet
from monai_fair.metrics import FairnessSpec
from monai_fair.metrics.proxies import proxy_sides, proxy_weights

__all__ = ["FullSetProxyWeights", "unit_influence"]


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


def _accumulate(buffer: torch.Tensor, grad: torch.Tensor) -> None:
    buffer.add_(grad.sum(0, dtype=torch.float32))


def unit_influence(
    model: nn.Module,
    masks: UnitMaskSet,
    loader: Iterable[Mapping[str, Any]],
    weights: FullSetProxyWeights,
    spec: FairnessSpec | None = None,
    image_key: str = "image",
    label_key: str = "label",
    activation: str = "sigmoid",
    amp: bool = True,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gradient of the full-set bias proxy w.r.t. every masked unit, summed over the samples of ``loader``.

    The model runs in eval mode (dropout off, BatchNorm running statistics). Gradients are taken with respect to
    the masked layer outputs *before* any later in-place operation (e.g. ``ReLU(inplace=True)``), and the
    parameters' ``.grad`` are left untouched (only activation gradients are computed). Samples with zero weight
    (the negatives, for EOD) are skipped: they cannot contribute.

    Args:
        model: the masked network (on its device).
        masks: its :class:`~monai_fair.debias.unit_mask.UnitMaskSet`.
        loader: re-iterable loader of dict batches (any batch size, any order).
        weights: full-set proxy weights of the same data (see :class:`FullSetProxyWeights`).
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
            loss = torch.sum(w * positive_probability(output, activation, spec.output_index))
            torch.autograd.grad(loss, x, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return out
