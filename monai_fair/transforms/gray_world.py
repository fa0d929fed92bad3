# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Gray-world white balance: scale each colour channel so that the channel means become equal (achromatic).

Assumes the scene averages to grey. A large dark lesion or a dark vignette biases the channel means, so the means can
be taken over a mask (e.g. candidate skin inside the field of view). Gray-world rescales b* and therefore moves ITA:
it is a normalisation option, off by default for skin-tone labelling.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform
from monai.utils import convert_to_dst_type

__all__ = ["gray_world", "GrayWorld", "GrayWorldd"]


def _max_value(img: torch.Tensor, orig_dtype: Any, max_value: float | None) -> float:
    if max_value is not None:
        return float(max_value)
    if (isinstance(orig_dtype, np.dtype) and orig_dtype.kind in "ui") or (
        isinstance(orig_dtype, torch.dtype) and not orig_dtype.is_floating_point
    ):
        return 255.0
    # float images: [0, 1] if they look normalised, else 8-bit scale
    return 1.0 if float(img.max()) <= 1.0 else 255.0


def gray_world(
    image: Any,
    mask: Any | None = None,
    channel_dim: int = 0,
    target: float | None = None,
    max_value: float | None = None,
) -> Any:
    """White-balance an RGB(A) image with the gray-world assumption.

    Each colour channel ``c`` is multiplied by ``k / mean_c`` where ``k`` is the mean of the three channel means
    (``target=None``) or a fixed grey level; results are clipped to ``[0, max_value]``. An alpha channel is kept as
    is; a channel whose mean is 0 is left unchanged (its gain would be infinite and it holds no colour anyway).

    Args:
        image: array or tensor with 3 (RGB) or 4 (RGBA) channels along ``channel_dim``.
        mask: optional boolean spatial mask (the image without its channel axis); the channel means are taken over
            it only, e.g. candidate skin inside the field of view.
        channel_dim: the channel axis (0 for MONAI channel-first, -1 for channel-last arrays).
        target: fixed grey level for the balanced channel means (same scale as ``image``), default: their mean.
        max_value: clipping maximum; default 255 for integer images, 1 for float images whose max is <= 1, else 255.

    Returns:
        The balanced image, same type, dtype and shape as ``image`` (integer dtypes are rounded).

    Raises:
        ValueError: for a channel count other than 3 or 4, a mask of the wrong shape, or an empty mask.
    """
    orig_dtype = image.dtype
    img = torch.as_tensor(np.asarray(image) if not isinstance(image, torch.Tensor) else image)
    img_f = torch.movedim(img, channel_dim, 0).to(torch.float64)
    if img_f.shape[0] not in (3, 4):
        raise ValueError(f"gray_world needs 3 or 4 channels along dim {channel_dim}, got shape {tuple(img.shape)}.")
    rgb = img_f[:3]
    if mask is not None:
        m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask).to(torch.bool)
        if m.shape != rgb.shape[1:]:
            raise ValueError(f"mask shape {tuple(m.shape)} does not match the spatial shape {tuple(rgb.shape[1:])}.")
        if not bool(m.any()):
            raise ValueError("gray_world mask is empty: no pixels to estimate the channel means from.")
        means = rgb[:, m].mean(dim=1)
    else:
        means = rgb.reshape(3, -1).mean(dim=1)
    k = means.mean() if target is None else torch.as_tensor(float(target), dtype=torch.float64)
    gains = torch.where(means > 0, k / torch.where(means > 0, means, torch.ones_like(means)), torch.ones_like(means))
    out = img_f.clone()
    out[:3] = (rgb * gains.view(3, *([1] * (rgb.ndim - 1)))).clamp(0.0, _max_value(img_f, orig_dtype, max_value))
    out = torch.movedim(out, 0, channel_dim)
    is_int = (isinstance(orig_dtype, np.dtype) and orig_dtype.kind in "ui") or (
        isinstance(orig_dtype, torch.dtype) and not orig_dtype.is_floating_point
    )
    if is_int:
        out = out.round()
    return convert_to_dst_type(out, image, dtype=orig_dtype)[0]


class GrayWorld(Transform):
    """Array transform of :func:`gray_world` (channel-first by default, as MONAI images are).

    Args:
        channel_dim: channel axis.
        target: fixed grey level, default the mean of the channel means.
        max_value: clipping maximum (see :func:`gray_world`).
    """

    def __init__(self, channel_dim: int = 0, target: float | None = None, max_value: float | None = None) -> None:
        self.channel_dim = channel_dim
        self.target = target
        self.max_value = max_value

    def __call__(self, img: Any, mask: Any | None = None) -> Any:
        return gray_world(img, mask=mask, channel_dim=self.channel_dim, target=self.target, max_value=self.max_value)


class GrayWorldd(MapTransform):
    """Dictionary version of :class:`GrayWorld`; ``mask_key`` optionally names a spatial mask for the means.

    A mask stored channel-first with one channel (``1, H, W``) is squeezed.
    """

    def __init__(
        self,
        keys: KeysCollection,
        mask_key: str | None = None,
        channel_dim: int = 0,
        target: float | None = None,
        max_value: float | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mask_key = mask_key
        self.balancer = GrayWorld(channel_dim=channel_dim, target=target, max_value=max_value)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        mask = None
        if self.mask_key is not None:
            mask = d[self.mask_key]
            if mask.ndim == 3 and mask.shape[0] == 1:
                mask = mask[0]
        for key in self.key_iterator(d):
            d[key] = self.balancer(d[key], mask=mask)
        return d
