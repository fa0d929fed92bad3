# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Gray-world white balance: scale each colour channel so that the channel means become equal (achromatic).

Assumes the scene averages to grey. A large dark lesion or a dark vignette biases the channel means, so the means can
be taken over a mask (e.g. candidate skin inside the field of view). Gray-world rescales b* and therefore moves ITA:
it is a normalisation option, off by default for skin-tone labelling. The function :func:`gray_world` lives in
:mod:`monai_fair.data.colour` and is re-exported here.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

from monai_fair.data.colour import gray_world

__all__ = ["gray_world", "GrayWorld", "GrayWorldd"]


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
