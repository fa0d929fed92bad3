# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""In-training mitigation by group: group-balanced sampling and loss reweighting, for multi-label classifiers.

Both give every group the same total weight during training
(:func:`~monai_fair.data.sampling.group_balanced_weights`): sampling draws the batches with those weights
(``WeightedRandomSampler``), reweighting keeps the ordinary shuffle and multiplies each sample's loss by them.
MONAI's ``SupervisedTrainer`` hands the loss only ``(pred, target)``, so the per-sample weight travels as one extra
target column: :func:`weighted_target_batch` appends it, :class:`MaskedWeightedBCEWithLogitsLoss` splits it off.
The same loss ignores NaN targets (CheXpert's ``uncertain="ignore"`` policy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

__all__ = [
    "LOSS_WEIGHT_KEY",
    "MITIGATIONS",
    "MaskedWeightedBCEWithLogitsLoss",
    "distributed_group_sampler",
    "group_sampler",
    "with_loss_weights",
    "weighted_target_batch",
]

#: ``none``; ``balanced_sampling`` (group-balanced batches); ``reweighting`` (group-balanced loss weights)
MITIGATIONS = ("none", "balanced_sampling", "reweighting")
#: the data-dict key of the per-sample loss weight
LOSS_WEIGHT_KEY = "loss_weight"


def _check(mitigation: str) -> None:
    if mitigation not in MITIGATIONS:
        raise ValueError(f"mitigation must be one of {MITIGATIONS}, got {mitigation!r}.")


def _group_weights(data: Sequence[Mapping[str, Any]], attribute: str) -> torch.Tensor:
    from monai_fair.data.sampling import group_balanced_weights

    missing = [i for i, d in enumerate(data) if attribute not in d]
    if missing:
        raise KeyError(f"attribute {attribute!r} missing from {len(missing)} training sample(s), e.g. #{missing[0]}.")
    return group_balanced_weights([int(d[attribute]) for d in data])


def with_loss_weights(
    data: Sequence[Mapping[str, Any]], attribute: str, mitigation: str = "none"
) -> list[dict[str, Any]]:
    """Copies of the data dicts with :data:`LOSS_WEIGHT_KEY`: group-balanced weights for ``"reweighting"``, else 1.

    Raises:
        ValueError: an unknown mitigation.
        KeyError: a sample without the attribute (with ``"reweighting"``).
    """
    _check(mitigation)
    if mitigation == "reweighting" and len(data):
        weights = _group_weights(data, attribute).tolist()
    else:
        weights = [1.0] * len(data)
    return [{**d, LOSS_WEIGHT_KEY: np.float32(w)} for d, w in zip(data, weights)]


def group_sampler(
    data: Sequence[Mapping[str, Any]], attribute: str, mitigation: str = "none", seed: int = 0
) -> WeightedRandomSampler | None:
    """A group-balanced ``WeightedRandomSampler`` (one epoch = ``len(data)`` draws) for ``"balanced_sampling"``,
    else ``None`` (the loader shuffles).

    Raises:
        ValueError: an unknown mitigation.
    """
    _check(mitigation)
    if mitigation != "balanced_sampling":
        return None
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return WeightedRandomSampler(_group_weights(data, attribute), num_samples=len(data), generator=generator)


def distributed_group_sampler(
    dataset: Any, data: Sequence[Mapping[str, Any]], attribute: str, mitigation: str = "none", seed: int = 0
) -> torch.utils.data.Sampler:
    """The multi-GPU counterpart of :func:`group_sampler`: MONAI's ``DistributedWeightedRandomSampler`` with the
    group-balanced weights for ``"balanced_sampling"``, else a shuffling ``DistributedSampler`` (needs an initialised
    process group).

    Raises:
        ValueError: an unknown mitigation.
    """
    from monai.data import DistributedSampler, DistributedWeightedRandomSampler

    _check(mitigation)
    if mitigation != "balanced_sampling":
        return DistributedSampler(dataset, even_divisible=True, shuffle=True)
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    weights = _group_weights(data, attribute).tolist()
    return DistributedWeightedRandomSampler(dataset, weights, even_divisible=True, shuffle=True, generator=generator)


def weighted_target_batch(
    batchdata: Mapping[str, Any], device: str | torch.device | None = None, non_blocking: bool = False, **kwargs: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """``prepare_batch`` of a ``SupervisedTrainer``: ``(image, [label | loss_weight])`` on ``device``.

    Samples without :data:`LOSS_WEIGHT_KEY` weigh 1.
    """
    image = torch.as_tensor(batchdata["image"]).to(device=device, non_blocking=non_blocking)
    label = torch.as_tensor(batchdata["label"], dtype=torch.float32)
    label = label.reshape(label.shape[0], -1)
    weight = batchdata.get(LOSS_WEIGHT_KEY)
    weight = torch.ones(label.shape[0]) if weight is None else torch.as_tensor(weight, dtype=torch.float32)
    target = torch.cat([label, weight.reshape(-1, 1).to(label.dtype)], dim=1)
    return image, target.to(device=device, non_blocking=non_blocking)


class MaskedWeightedBCEWithLogitsLoss(torch.nn.Module):
    """Binary cross-entropy with logits over ``L`` labels; the target's last column is the sample weight.

    The loss is ``sum_i w_i * sum_l m_il * bce_il / sum_i w_i * sum_l m_il`` with ``m_il = 0`` where the target is
    NaN (an ignored label), so unit weights and no NaN give ``BCEWithLogitsLoss()``.
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        label, weight = target[:, :-1], target[:, -1:]
        if label.shape != logits.shape:
            raise ValueError(
                f"the target must hold {logits.shape[1]} labels and one weight column, got {target.shape[1]} columns."
            )
        mask = ~torch.isnan(label)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(
            logits.float(), torch.nan_to_num(label.float()), reduction="none"
        )
        w = mask.float() * weight.float()
        return (bce * w).sum() / w.sum().clamp_min(torch.finfo(torch.float32).tiny)
