# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Training augmentation of a whole batch on its device, as a MONAI ``prepare_batch``.

The studies' CXR augmentation (Marcinkevics et al.: rotation ≤ 5°, translation ≤ 5 %, shear ≤ 5°, horizontal flip)
per sample through MONAI's dictionary transforms costs more than the demo network's forward and backward pass on a
CPU, and it runs in the data loader instead of on the GPU. Here one ``affine_grid`` + ``grid_sample`` call draws and
applies every sample's transform at once, on the device the trainer uses, and resamples straight to the network's
input size (the affine and the input resize in one interpolation). The data set then caches the deterministic part
only (decoded, equalised, scaled to 0..1 at the stored size): ``cxr_preprocess_transforms(augment=False,
input_size=None)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from monai.engines.utils import PrepareBatch
from monai.utils import convert_to_tensor

__all__ = ["BatchRandAffine", "random_affine_matrices"]


def _check_ranges(rotate_deg: float, translate: float, shear_deg: float, flip_prob: float) -> None:
    for name, value in (("rotate_deg", rotate_deg), ("translate", translate), ("shear_deg", shear_deg)):
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}.")
    if not 0.0 <= flip_prob <= 1.0:
        raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob!r}.")


def random_affine_matrices(
    n: int,
    rotate_deg: float = 5.0,
    translate: float = 0.05,
    shear_deg: float = 5.0,
    flip_prob: float = 0.5,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``n`` random 2-D affine maps in ``affine_grid``'s normalised coordinates, shape ``(n, 2, 3)``.

    Each map takes an output location to the input location it samples: a rotation by ``U(-rotate_deg,
    rotate_deg)``, a horizontal shear ``U(-tan shear_deg, tan shear_deg)`` (MONAI's ``shear_range`` convention), a
    translation by ``U(-translate, translate)`` of the image size per axis, and a left-right flip with probability
    ``flip_prob``.

    Args:
        n: number of maps.
        rotate_deg: largest rotation, in degrees.
        translate: largest translation, as a fraction of the image size.
        shear_deg: largest shear angle, in degrees.
        flip_prob: probability of a horizontal flip.
        generator: random generator (default: torch's global one, seeded by ``set_determinism``).
        device: device of the result.
    """
    _check_ranges(rotate_deg, translate, shear_deg, flip_prob)

    def uniform(bound: float) -> torch.Tensor:
        return (2.0 * torch.rand(n, generator=generator, dtype=torch.float64) - 1.0) * bound

    angle = uniform(math.radians(rotate_deg))
    shear = uniform(math.tan(math.radians(shear_deg)))
    shift = torch.stack([uniform(translate), uniform(translate)], dim=1) * 2.0  # normalised coordinates span 2
    flip = torch.where(torch.rand(n, generator=generator, dtype=torch.float64) < flip_prob, -1.0, 1.0).double()
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shearing = torch.eye(2, dtype=torch.float64).repeat(n, 1, 1)
    shearing[:, 0, 1] = shear
    flipping = torch.diag_embed(torch.stack([flip, torch.ones_like(flip)], -1))
    linear = flipping @ rotation @ shearing
    return torch.cat([linear, shift.unsqueeze(-1)], dim=-1).to(device=device, dtype=torch.float32)


class BatchRandAffine(PrepareBatch):
    """A MONAI ``prepare_batch`` that moves a batch to the device and augments its images there.

    Every image gets its own random affine (:func:`random_affine_matrices`), applied by one bilinear
    ``grid_sample`` with zero padding, which also resizes to ``input_size``. Use it as ``SupervisedTrainer``'s
    ``prepare_batch`` with a training data set that caches the un-augmented images at the stored size; validation
    and test keep their per-sample (deterministic) transforms.

    Args:
        input_size: side of the square network input (``None``: keep the stored size).
        rotate_deg, translate, shear_deg, flip_prob: see :func:`random_affine_matrices`.
        image_key: batch key of the images ``(B, C, H, W)``.
        label_key: batch key of the labels.
        channels_last: return the images in channels-last memory format (faster convolutions).
    """

    def __init__(
        self,
        input_size: int | None = None,
        rotate_deg: float = 5.0,
        translate: float = 0.05,
        shear_deg: float = 5.0,
        flip_prob: float = 0.5,
        image_key: str = "image",
        label_key: str = "label",
        channels_last: bool = False,
    ) -> None:
        if input_size is not None and int(input_size) < 1:
            raise ValueError(f"input_size must be a positive integer or None, got {input_size!r}.")
        self.input_size = None if input_size is None else int(input_size)
        self.rotate_deg, self.translate, self.shear_deg, self.flip_prob = rotate_deg, translate, shear_deg, flip_prob
        _check_ranges(rotate_deg, translate, shear_deg, flip_prob)
        self.image_key, self.label_key = image_key, label_key
        self.channels_last = bool(channels_last)

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """The augmented (and resized) images of a ``(B, C, H, W)`` batch, on the batch's device."""
        images = convert_to_tensor(images, track_meta=False)
        if images.ndim != 4:
            raise ValueError(f"BatchRandAffine expects 2-D images as (B, C, H, W), got shape {tuple(images.shape)}.")
        theta = random_affine_matrices(
            images.shape[0], self.rotate_deg, self.translate, self.shear_deg, self.flip_prob, device=images.device
        )
        height, width = images.shape[-2:] if self.input_size is None else (self.input_size, self.input_size)
        grid = F.affine_grid(theta, [images.shape[0], images.shape[1], height, width], align_corners=False)
        out = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out.contiguous(memory_format=torch.channels_last) if self.channels_last else out

    def __call__(
        self,
        batchdata: Mapping[str, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        for key in (self.image_key, self.label_key):
            if key not in batchdata:
                raise KeyError(f"BatchRandAffine: the batch has no {key!r} key (keys: {sorted(batchdata)}).")
        # plain tensors: MetaTensor bookkeeping would cost more than the resampling
        image = convert_to_tensor(batchdata[self.image_key], track_meta=False)
        label = convert_to_tensor(batchdata[self.label_key], track_meta=False)
        image = image.to(device=device, non_blocking=non_blocking)
        label = label.to(device=device, non_blocking=non_blocking)
        return self.augment(image), label
