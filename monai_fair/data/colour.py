# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Colour maths on plain arrays: sRGB→CIELAB, gray-world white balance, the Individual Typology Angle (ITA) and its
skin-tone category schemes.

``ITA = arctan((L* - 50) / b*) * 180 / pi`` (or ``arctan2``). :func:`ita_category` maps ITA to categories of the
published schemes (:data:`ITA_SCHEMES`); NaN maps to ``UNKNOWN`` (-1). These functions hold no MONAI transform, so
manifest builders and demo generators in :mod:`monai_fair.data` use them without importing
:mod:`monai_fair.transforms`; the skin samplers and the ``SkinToneITAd``/``GrayWorld`` transforms build on them.

Colour conversion is a vectorised float32 sRGB→CIELAB with a 256-entry lookup table for the sRGB transfer curve of
8-bit input (it agrees with ``skimage.color.rgb2lab``, see ``tests/data/test_colour.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from monai.utils import convert_to_dst_type

from .codes import UNKNOWN

__all__ = [
    "UNKNOWN_ITA_GROUP",
    "ITA_SCHEMES",
    "srgb_to_lab",
    "ita_from_lab",
    "trimmed_median",
    "ita_category",
    "ita_group_names",
    "gray_world",
]

# the unknown code of :mod:`monai_fair.data.codes`: no usable skin, so no category
UNKNOWN_ITA_GROUP = UNKNOWN

# --------------------------------------------------------------------------------------------------- colour space
# sRGB (IEC 61966-2-1) primaries -> CIE XYZ, D65 reference white for the 2 degree observer
_XYZ_FROM_RGB = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]], dtype=np.float64
)
_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float64)
# rows pre-divided by the white point, so one product gives X/Xn, Y/Yn, Z/Zn
_M = (_XYZ_FROM_RGB / _D65[:, None]).astype(np.float32)
_EPS = np.float32(0.008856)
_KAPPA = np.float32(7.787)
_OFFSET = np.float32(16.0 / 116.0)


def _srgb_linear(c: np.ndarray) -> np.ndarray:
    """The sRGB transfer curve inverted: encoded values in [0, 1] -> linear light."""
    c = np.asarray(c, dtype=np.float64)
    return np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)


_LINEAR_LUT = _srgb_linear(np.arange(256) / 255.0).astype(np.float32)


def srgb_to_lab(rgb: Any) -> np.ndarray:
    """CIELAB (D65, 2 degree observer) of sRGB colours, as ``skimage.color.rgb2lab`` computes it, in float32.

    Args:
        rgb: ``(..., 3)`` array, ``uint8`` (0..255, converted through a lookup table) or float in ``[0, 1]``.

    Returns:
        ``(..., 3)`` float32 array of ``L*`` (0..100), ``a*``, ``b*``.

    Raises:
        ValueError: if the last axis is not 3 long.
    """
    rgb = np.asarray(rgb)
    if rgb.shape[-1] != 3:
        raise ValueError(f"srgb_to_lab needs a last axis of length 3, got shape {rgb.shape}.")
    lin = _LINEAR_LUT[rgb] if rgb.dtype == np.uint8 else _srgb_linear(rgb).astype(np.float32)
    t = np.dot(lin.reshape(-1, 3), _M.T).reshape(lin.shape)
    # cube root as exp(log(t) / 3): faster than np.cbrt in float32, at a relative error near float32 rounding;
    # t <= 0 only occurs on the linear branch
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(t > _EPS, np.exp(np.log(t) * np.float32(1.0 / 3.0)), _KAPPA * t + _OFFSET)
    out = np.empty_like(f)
    out[..., 0] = 116.0 * f[..., 1] - 16.0
    out[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    out[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return out


def ita_from_lab(lightness: Any, b_star: Any, fn: str = "arctan") -> Any:
    """ITA in degrees from ``L*`` and ``b*`` (scalars or arrays).

    Args:
        lightness: ``L*`` in [0, 100].
        b_star: ``b*``.
        fn: ``"arctan"`` (range (-90, 90], the usual definition) or ``"arctan2"`` (``atan2(L* - 50, b*)``, no sign
            flip when ``b* < 0``; equal to ``"arctan"`` whenever ``b* > 0``).

    Raises:
        ValueError: for an unknown ``fn``.
    """
    L = np.asarray(lightness, dtype=np.float64)
    b = np.asarray(b_star, dtype=np.float64)
    if fn == "arctan":
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.degrees(np.arctan((L - 50.0) / b))
    elif fn == "arctan2":
        out = np.degrees(np.arctan2(L - 50.0, b))
    else:
        raise ValueError(f"fn must be 'arctan' or 'arctan2', got {fn!r}.")
    return float(out) if out.ndim == 0 else out


def trimmed_median(values: Any, k: float = 1.0, reduce: str = "median") -> tuple[float, float, int]:
    """Robust centre: keep the values within ``median ± k * std``, then take their median (S-SYNTH / Benčević) or
    mean.

    The mean of the kept values resolves colours finer than JPEG's chroma steps (decoded flat skin takes a few
    discrete b* values, and a median snaps to one of them); the median resists residual outliers.

    Args:
        values: the values (any shape).
        k: half-width of the kept band in standard deviations.
        reduce: ``"median"`` or ``"mean"`` of the kept values.

    Returns:
        ``(centre, std of the kept values, number kept)``; NaN, NaN, 0 for empty input.

    Raises:
        ValueError: for an unknown ``reduce``.
    """
    if reduce not in ("median", "mean"):
        raise ValueError(f"reduce must be 'median' or 'mean', got {reduce!r}.")
    v = np.asarray(values).ravel()
    if v.dtype.kind != "f":
        v = v.astype(np.float64)
    if v.size == 0:
        return math.nan, math.nan, 0
    med = _median(v)
    sd = float(v.std())
    kept = v[np.abs(v - med) <= k * sd] if sd > 0 else v
    centre = _median(kept) if reduce == "median" else float(kept.mean())
    return centre, float(kept.std()), int(kept.size)


def _median(v: np.ndarray) -> float:
    """Median of a non-empty 1-D array by partial sort (``np.median`` without its NaN checks and copies)."""
    n = v.size
    k = n // 2
    if n % 2:
        return float(np.partition(v, k)[k])
    part = np.partition(v, (k - 1, k))
    return float(0.5 * (float(part[k - 1]) + float(part[k])))


# ---------------------------------------------------------------------------------------------- category schemes
@dataclass(frozen=True)
class _Scheme:
    """Categories from darkest to lightest, split at ``edges``; ``lower_inclusive`` puts an edge value in the
    lighter category (``ITA >= edge``), otherwise in the darker one (upper bounds inclusive, ``ITA <= edge``)."""

    names_dark_to_light: tuple[str, ...]
    edges: tuple[float, ...]
    lower_inclusive: bool = False


ITA_SCHEMES: dict[str, _Scheme] = {
    # Chardon 1991 / Del Bino & Bernerd 2013: dark <= -30 < brown <= 10 < tan <= 28 < intermediate <= 41 < light
    # <= 55 < very light
    "chardon_delbino6": _Scheme(
        ("dark", "brown", "tan", "intermediate", "light", "very_light"), (-30.0, 10.0, 28.0, 41.0, 55.0)
    ),
    # Kinyanjui et al. 2019 (arXiv 1910.13268)
    "kinyanjui8": _Scheme(
        ("dark", "tan1", "tan2", "int1", "int2", "lt1", "lt2", "very_lt"), (10.0, 19.0, 28.0, 34.5, 41.0, 48.0, 55.0)
    ),
    # the "Kinyanjui thresholds" mapped to Fitzpatrick-like types by Groh 2021 and Bevan 2022
    "kinyanjui_fitz6": _Scheme(("VI", "V", "IV", "III", "II", "I"), (10.0, 19.0, 28.0, 41.0, 55.0)),
    # Benčević 2024, as in its released code: FST56 < 19 <= FST34 < 41 <= FST12 (lower bounds inclusive)
    "bencevic3": _Scheme(("FST56", "FST34", "FST12"), (19.0, 41.0), lower_inclusive=True),
    # the seed paper's split: light if ITA > 45, else dark
    "binary45": _Scheme(("dark", "light"), (45.0,)),
}


def _scheme(scheme: str) -> _Scheme:
    if scheme not in ITA_SCHEMES:
        raise ValueError(f"unknown ITA scheme {scheme!r}; choose one of {sorted(ITA_SCHEMES)}.")
    return ITA_SCHEMES[scheme]


def ita_category(ita: Any, scheme: str = "binary45") -> Any:
    """Category code of ITA values under ``scheme``; code 0 is the lightest category, NaN → ``UNKNOWN`` (-1).

    Args:
        ita: scalar or array of ITA degrees.
        scheme: a key of :data:`ITA_SCHEMES`.

    Returns:
        ``int`` for a scalar, else an ``int64`` array.
    """
    s = _scheme(scheme)
    v = np.asarray(ita, dtype=np.float64)
    dark_to_light = np.searchsorted(np.asarray(s.edges), v, side="right" if s.lower_inclusive else "left")
    codes = (len(s.names_dark_to_light) - 1 - dark_to_light).astype(np.int64)
    codes = np.where(np.isnan(v), UNKNOWN_ITA_GROUP, codes)
    return int(codes) if codes.ndim == 0 else codes


def ita_group_names(scheme: str = "binary45") -> dict[int, str]:
    """Code→name map of :func:`ita_category` (lightest first), without the unknown code."""
    names = _scheme(scheme).names_dark_to_light[::-1]
    return {i: n for i, n in enumerate(names)}


# ------------------------------------------------------------------------------------------- gray-world balance
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
