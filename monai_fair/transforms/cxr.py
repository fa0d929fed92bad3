# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Chest X-ray preprocessing dictionary transforms (the Marcinkevics et al. / Joshi study pipelines).

The studies' preprocessing: centre-crop to a square, resize to the stored size (128 px), histogram-equalise (PIL
``ImageOps.equalize``), greyscale; at training time resize to the network input (224 px), scale to [0, 1] and repeat
grey to 3 channels (no ImageNet normalisation). :func:`cxr_preprocess_transforms` assembles that chain from MONAI
transforms and the three transforms here.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import (
    CenterSpatialCrop,
    EnsureTyped,
    MapTransform,
    RandAffined,
    RandFlipd,
    Resized,
    ScaleIntensityRanged,
    Transform,
)
from monai.utils import convert_to_tensor
from monai.utils.type_conversion import convert_to_dst_type

from .cxr_io import LoadCXRImaged

__all__ = [
    "CenterCropToSquared",
    "HistogramEqualized",
    "CXRChannelsd",
    "equalize_histogram",
    "cxr_preprocess_transforms",
]


class CenterCropToSquared(MapTransform):
    """Centre-crop the spatial dims of channel-first images to a square (cube) of the smallest spatial size.

    Args:
        keys: keys of the images.
        allow_missing_keys: do not raise if a key is missing.
    """

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            side = int(min(img.shape[1:]))
            d[key] = CenterSpatialCrop(roi_size=(side,) * (img.ndim - 1))(img)
        return d


def equalize_histogram(img: torch.Tensor, value_range: Sequence[float] | None = (0.0, 255.0)) -> torch.Tensor:
    """Per-channel histogram equalisation with the same look-up table as PIL ``ImageOps.equalize``.

    Values are quantised to 256 levels over ``value_range`` (None: each channel's own min and max), equalised with
    PIL's rule ``lut[i] = (step // 2 + #pixels below level i) // step`` where ``step = (N - n_last) // 255``
    (``n_last`` the count of the highest occupied level), then mapped back to ``value_range``. A channel with one
    level, or ``step == 0``, is left unchanged (as in PIL).

    Args:
        img: channel-first tensor ``(C, *spatial)``.
        value_range: the intensity range the 256 levels span; images read by ``PILReader`` are 0..255.

    Returns:
        float32 tensor of the same shape.
    """
    x = img.reshape(img.shape[0], -1).to(torch.float32)
    if value_range is None:
        lo = x.amin(dim=1, keepdim=True)
        hi = x.amax(dim=1, keepdim=True)
    else:
        lo = torch.full((x.shape[0], 1), float(value_range[0]), device=x.device)
        hi = torch.full((x.shape[0], 1), float(value_range[1]), device=x.device)
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    q = torch.round((x - lo) / span * 255.0).clamp(0, 255).to(torch.int64)
    hist = torch.zeros(x.shape[0], 256, dtype=torch.int64, device=x.device).scatter_add_(1, q, torch.ones_like(q))
    levels = torch.arange(256, device=x.device)
    occupied = hist > 0
    last = torch.where(occupied, levels, torch.full_like(levels, -1)).amax(dim=1, keepdim=True)
    n_last = torch.gather(hist, 1, last.clamp(min=0))
    step = (hist.sum(dim=1, keepdim=True) - n_last) // 255
    below = torch.cumsum(hist, dim=1) - hist  # pixels strictly below each level
    lut = ((step // 2 + below) // step.clamp(min=1)).clamp(max=255)
    identity = (occupied.sum(dim=1, keepdim=True) <= 1) | (step == 0)
    lut = torch.where(identity, levels.expand_as(lut), lut)
    out = torch.gather(lut, 1, q).to(torch.float32) / 255.0 * span + lo
    return out.reshape(img.shape)


class HistogramEqualized(MapTransform):
    """Histogram equalisation matching PIL ``ImageOps.equalize`` (see :func:`equalize_histogram`).

    Unlike MONAI's ``HistogramNormalized`` (a min-max rescaled CDF), this reproduces the studies' PIL preprocessing
    bit for bit on 8-bit images.

    Args:
        keys: keys of the images.
        value_range: intensity range of the 256 levels (None: per-image min/max).
        allow_missing_keys: do not raise if a key is missing.
    """

    def __init__(
        self,
        keys: KeysCollection,
        value_range: Sequence[float] | None = (0.0, 255.0),
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if value_range is not None and not float(value_range[1]) > float(value_range[0]):
            raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}.")
        self.value_range = value_range

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            out = equalize_histogram(convert_to_tensor(img, track_meta=False), self.value_range)
            d[key] = convert_to_dst_type(out, img, dtype=torch.float32)[0]
        return d


# ITU-R 601-2 luma, the weights PIL uses for mode "L"
_LUMA = (0.299, 0.587, 0.114)


class CXRChannelsd(MapTransform):
    """Bring a channel-first CXR to ``channels`` channels: RGB(A) → grey by luma (alpha dropped), grey → repeated.

    Args:
        keys: keys of the images.
        channels: 1 (grey) or 3 (grey repeated, for ImageNet-style networks).
        allow_missing_keys: do not raise if a key is missing.

    Raises:
        ValueError: ``channels`` not 1 or 3, or an input with 2 or more than 4 channels.
    """

    def __init__(self, keys: KeysCollection, channels: int = 3, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}.")
        self.channels = channels

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            c = img.shape[0]
            if c not in (1, 3, 4):
                raise ValueError(f"{key!r}: expected 1, 3 or 4 channels (channel-first), got shape {tuple(img.shape)}.")
            t = convert_to_tensor(img, track_meta=False).to(torch.float32)
            if c == 1 and self.channels == 1:
                continue
            if c in (3, 4):
                w = torch.tensor(_LUMA, dtype=t.dtype, device=t.device).reshape(3, *([1] * (t.ndim - 1)))
                t = (t[:3] * w).sum(dim=0, keepdim=True)
            if self.channels == 3:
                t = t.repeat(3, *([1] * (t.ndim - 1)))
            d[key] = convert_to_dst_type(t, img, dtype=torch.float32)[0]
        return d


def cxr_preprocess_transforms(
    keys: KeysCollection = "image",
    stored_size: int | None = 128,
    input_size: int | None = 224,
    equalize: bool = True,
    channels: int = 3,
    augment: bool = False,
    load: bool = True,
    bits: int | None = None,
) -> list[Transform]:
    """The study preprocessing chain as a list of MONAI transforms (wrap in ``Compose``).

    Load (:class:`~monai_fair.transforms.cxr_io.LoadCXRImaged`: PNG/JPEG/TIFF scaled by their real bit depth,
    DICOM rescaled, windowed and un-inverted, all to 0..255 in H×W order, channel first) → grey → centre square
    crop → resize to ``stored_size`` →
    PIL-style histogram equalisation → [augment: RandAffined(rotate ≤ 5°, translate ≤ 5 %, shear ≤ 5°) and a
    horizontal flip, as in Marcinkevics et al.] → resize to ``input_size`` → scale 0..255 to 0..1 → ``channels``.

    Args:
        keys: image keys.
        stored_size: the stored resolution (the studies' 128 px; None: no resize there).
        input_size: the network input (224 px; None: keep the stored size).
        equalize: histogram-equalise.
        channels: output channels (1 or 3).
        augment: add the training augmentation.
        load: start with :class:`~monai_fair.transforms.cxr_io.LoadCXRImaged` (False when images are already
            channel-first arrays in 0..255).
        bits: bit depth of PIL images whose mode does not state it (32-bit ``I``, float ``F``), or an override
            (12 for 12-bit content stored as 16-bit PNG).
    """
    chain: list[Transform] = []
    if load:
        chain.append(LoadCXRImaged(keys, bits=bits))
    chain += [CXRChannelsd(keys, channels=1), CenterCropToSquared(keys)]
    if stored_size is not None:
        chain.append(Resized(keys, spatial_size=(stored_size, stored_size), mode="area"))
    if equalize:
        chain.append(HistogramEqualized(keys, value_range=(0.0, 255.0)))
    if augment:
        size = stored_size or input_size or 224  # the affine acts on the stored image, before the input resize
        chain += [
            RandAffined(
                keys,
                prob=1.0,
                rotate_range=(math.radians(5.0),),
                translate_range=(0.05 * size, 0.05 * size),
                shear_range=(math.tan(math.radians(5.0)), 0.0),
                padding_mode="zeros",
            ),
            RandFlipd(keys, prob=0.5, spatial_axis=1),
        ]
    if input_size is not None:
        chain.append(Resized(keys, spatial_size=(input_size, input_size), mode="bilinear"))
    chain += [
        ScaleIntensityRanged(keys, a_min=0.0, a_max=255.0, b_min=0.0, b_max=1.0, clip=True),
        CXRChannelsd(keys, channels=channels),
        EnsureTyped(keys, dtype=torch.float32),
    ]
    return chain
