# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The data-poisoning split of Zheng et al. 2025: flip the task label of a stated fraction of one group.

For a target group (e.g. sex code 1) and a fraction ``p``, exactly ``floor(p · n_group + 0.5)`` of the group's
samples (``n_group`` counts every sample with that code) are drawn without replacement by a seeded generator and
their binary label is flipped (0 ↔ 1). Probes fitted on the flipped labels and judged against the true labels show
how much a representation lets the injected bias through.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["flip_group_labels", "flip_count"]


def flip_count(fraction: float, n_group: int) -> int:
    """``floor(fraction · n_group + 0.5)``: the number of labels flipped (half rounds up)."""
    if not 0.0 <= float(fraction) <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}.")
    return min(int(n_group), int(math.floor(float(fraction) * int(n_group) + 0.5)))


def flip_group_labels(labels: Any, groups: Any, target: int, fraction: float, seed: int = 0) -> tuple[Any, Any]:
    """Flip the binary labels of a random ``fraction`` of the samples whose group code is ``target``.

    Args:
        labels: binary 0/1 labels ``(N,)`` (array or tensor).
        groups: integer group codes ``(N,)``.
        target: the group whose labels are flipped.
        fraction: share of the target group flipped, in [0, 1].
        seed: seed of the draw (the same seed flips the same samples).

    Returns:
        ``(flipped, index)``: the labels with the flips applied (same type and dtype as ``labels``) and the sorted
        int64 positions that were flipped (a tensor if ``labels`` is a tensor, else an array).

    Raises:
        ValueError: labels not binary, length mismatch, non-integer group codes, fraction outside [0, 1].
    """
    is_tensor = isinstance(labels, torch.Tensor)
    y = labels.detach().cpu().numpy() if is_tensor else np.asarray(labels)
    g = groups.detach().cpu().numpy() if isinstance(groups, torch.Tensor) else np.asarray(groups)
    y_flat, g = y.reshape(-1), g.reshape(-1)
    if y_flat.shape != g.shape:
        raise ValueError(f"labels ({y_flat.size}) and groups ({g.size}) must have the same length.")
    if not np.isin(y_flat, (0, 1)).all():
        raise ValueError(f"labels must be binary 0/1, got values {np.unique(y_flat)[:10].tolist()}.")
    if np.issubdtype(g.dtype, np.floating) and not np.all(g == np.round(g)):
        raise ValueError("group codes must be integers.")
    members = np.flatnonzero(g == target)
    k = flip_count(fraction, members.size)
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(members, size=k, replace=False)) if k else np.zeros(0, dtype=np.int64)
    index = index.astype(np.int64)
    flipped = y_flat.copy()
    flipped[index] = 1 - flipped[index]
    flipped = flipped.reshape(y.shape)
    if is_tensor:
        return torch.as_tensor(flipped, dtype=labels.dtype, device=labels.device), torch.as_tensor(index)
    return flipped, index
