# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Engineered bias gradient (Galloway 2025): bias gradient descent/ascent regularised by the task loss.

Per batch, ``L = task_loss + lambda_fair · s · proxy_estimate`` where ``s`` is +1 (descent) when the initial
validation bias is ``>= 0`` and -1 (ascent) otherwise, fixed for the run. The task loss is computed on the *logits*
(``binary_cross_entropy_with_logits``; the fork applied it to probabilities) and the proxy on the probabilities
(``sigmoid(logit)``; the fork took a second sigmoid). ``proxy_estimate`` is the batch's ``N/B``-scaled share of the
full-set proxy, as in :class:`~monai_fair.debias.bias_gradient.BiasGradientDebiaser`, whose periodic eval-mode
validation, ``rho``-constrained selection and early stop this method shares.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from monai_fair.debias.base import positive_probability
from monai_fair.debias.bias_gradient import BiasGradientDebiaser

__all__ = ["EngineeredBiasGradientDebiaser", "binary_task_loss"]


def binary_task_loss(output: torch.Tensor, labels: torch.Tensor, activation: str = "sigmoid", index: int = 0):
    """Mean binary cross-entropy of a classifier output, computed on logits whenever the output holds logits.

    Args:
        output: network output ``(B, C)`` or ``(B,)``.
        labels: binary labels ``(B,)``.
        activation: ``"sigmoid"`` (column ``index`` is a logit: BCE with logits), ``"softmax"`` (two-channel
            logits: cross-entropy with the positive class at ``index``) or ``"none"`` (the output is a probability:
            BCE on the clamped probability).
        index: output channel of the positive class.

    Raises:
        ValueError: unknown activation, or ``"softmax"`` with other than two channels.
    """
    out = output.float()
    if out.ndim == 1:
        out = out[:, None]
    y = labels.float().reshape(-1)
    if activation == "sigmoid":
        return F.binary_cross_entropy_with_logits(out[:, index], y)
    if activation == "softmax":
        if out.shape[1] != 2:
            raise ValueError(f"a binary softmax output needs 2 channels, got {out.shape[1]}.")
        target = torch.where(y > 0.5, index, 1 - index).long()
        return F.cross_entropy(out, target)
    if activation == "none":
        eps = 1e-7
        return F.binary_cross_entropy(out[:, index].clamp(eps, 1 - eps), y)
    raise ValueError(f"activation must be 'sigmoid', 'softmax' or 'none', got {activation!r}.")


class EngineeredBiasGradientDebiaser(BiasGradientDebiaser):
    """Fine-tune on ``task loss + lambda_fair · s · proxy`` with bias-GD/A validation and selection.

    Args:
        lambda_fair: weight of the fairness term (1.0).
        kwargs: :class:`~monai_fair.debias.bias_gradient.BiasGradientDebiaser` arguments (``lr`` 1e-5, ``epochs``,
            ``n_evals``, ``rho``, ...; the fork's settings were 10 or 15 epochs, ``rho`` 0.75 / 0.80).
    """

    name = "engineered_bias_gradient"

    def __init__(self, lambda_fair: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if lambda_fair < 0:
            raise ValueError(f"lambda_fair must be >= 0, got {lambda_fair}.")
        self.lambda_fair = float(lambda_fair)

    def loss(
        self, output: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, scale: float, sign: float
    ) -> torch.Tensor:
        task = binary_task_loss(output, labels, self.activation, self.spec.output_index)
        prob = positive_probability(output, self.activation, self.spec.output_index)
        return task + self.lambda_fair * sign * scale * torch.sum(weights * prob)

    def _skip_batch(self, weights: torch.Tensor) -> bool:
        return False  # the task loss always contributes
