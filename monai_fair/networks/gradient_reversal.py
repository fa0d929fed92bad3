# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Gradient reversal (Ganin & Lempitsky 2015): identity forward, gradient multiplied by ``-scale`` backward.

Placed between a feature extractor and an adversary, it lets one optimiser train the adversary to predict the
protected attribute while the features are pushed to hide it.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GradientReversal", "grad_reverse"]


class _GradReverseFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        return -ctx.scale * grad_output, None


def grad_reverse(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Identity on ``x`` whose backward pass multiplies the incoming gradient by ``-scale``.

    Args:
        x: any tensor.
        scale: non-negative strength of the reversal (``0`` blocks the gradient).
    """
    if scale < 0:
        raise ValueError(f"scale must be non-negative, got {scale}.")
    return _GradReverseFn.apply(x, float(scale))


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse`; ``scale`` may be changed during training (e.g. a warm-up schedule).

    Args:
        scale: non-negative strength of the reversal.
    """

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        if scale < 0:
            raise ValueError(f"scale must be non-negative, got {scale}.")
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
