# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The studies' epsilon-constrained objective: balanced accuracy if |bias| < epsilon, else 0."""

from __future__ import annotations

import torch

__all__ = ["constrained_objective"]


def constrained_objective(
    balanced_accuracy: torch.Tensor | float, bias: torch.Tensor | float, epsilon: float = 0.05
) -> torch.Tensor:
    """``phi = BA * [|bias| < epsilon]`` (Savani et al. 2020, "threshold" kind), element-wise.

    Args:
        balanced_accuracy: balanced accuracy, scalar or tensor.
        bias: signed bias of the same shape.
        epsilon: tolerance on ``|bias|``.

    Returns:
        tensor of the broadcast shape; NaN where the bias or the accuracy is NaN (undefined, not unfair).
    """
    ba = torch.as_tensor(balanced_accuracy, dtype=torch.float64)
    b = torch.as_tensor(bias, dtype=torch.float64, device=ba.device)
    out = torch.where(b.abs() < epsilon, ba, torch.zeros_like(ba))
    return torch.where(torch.isnan(b) | torch.isnan(ba), torch.full_like(out, float("nan")), out)
