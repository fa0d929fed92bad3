# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Individual Typology Angle (ITA) skin-tone labelling of dermoscopy images.

``ITA = arctan((L* - 50) / b*) * 180 / pi`` (or ``arctan2``), computed from robustly selected healthy-skin pixels.
Two interchangeable samplers share one interface (``sampler(rgb, lesion_mask=None) -> SkinSample``):

- :class:`OutsideLesionSampler` (default): skin is what lies outside the lesion, where the lesion is a given mask or
  the dark class of a global Otsu/GHT threshold on L*; the lesion (and every other excluded pixel) is dilated so
  borders and halos go too; a field-of-view ellipse and an outer frame drop the dark vignette corners; near-black
  and specular pixels are excluded; non-skin-coloured pixels are excluded by :class:`SkinColourGate`; L* and b* are
  reduced by median ± 1 sigma trimming.
- :class:`PatchSampler`: Bevan & Atapour-Abarghouei's eight 20x20 edge/corner patches of a 256x256 blurred crop,
  ITA of the lightest patch, optionally skipping patches that are not skin-coloured.

Each returns the ITA plus a confidence record (pixel count, spread of L*/b*, fraction kept), the mask used and,
when nothing usable is left, ``ita = NaN`` with a reason (never 0). :func:`ita_category` maps ITA to categories of
the published schemes (:data:`ITA_SCHEMES`); NaN maps to ``UNKNOWN`` (-1).

The colour maths (sRGB→CIELAB, the ITA formula, trimming, category schemes) lives in :mod:`monai_fair.data.colour`
and is re-exported here; the samplers run it only on a sub-sampled working grid.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform
from scipy import ndimage

from monai_fair.data.colour import (
    ITA_SCHEMES,
    UNKNOWN_ITA_GROUP,
    _median,
    gray_world,
    ita_category,
    ita_from_lab,
    ita_group_names,
    srgb_to_lab,
    trimmed_median,
)

from .ght import threshold_ght

__all__ = [
    "UNKNOWN_ITA_GROUP",
    "ITA_SCHEMES",
    "srgb_to_lab",
    "ita_from_lab",
    "trimmed_median",
    "ita_category",
    "ita_group_names",
    "as_rgb_uint8",
    "load_rgb",
    "SkinSample",
    "SkinColourGate",
    "SkinSampler",
    "OutsideLesionSampler",
    "PatchSampler",
    "SKIN_SAMPLERS",
    "make_skin_sampler",
    "compute_ita",
    "SkinToneITAd",
]


# ----------------------------------------------------------------------------------------------------- image input
def as_rgb_uint8(image: Any, channel_dim: int | None = None) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 RGB array from a numpy array or tensor, channel-first or channel-last.

    Args:
        image: RGB or RGBA image; uint8, uint16 (scaled by 1/257) or float (``[0, 1]`` if its max is <= 1, else
            ``[0, 255]``).
        channel_dim: the channel axis; default: axis 0 if it has 3 or 4 entries (MONAI), else the last axis.

    Raises:
        ValueError: for a shape that is not a 2D colour image or a non-finite float image.
    """
    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if arr.ndim != 3:
        raise ValueError(f"expected a 2D colour image with a channel axis, got shape {arr.shape}.")
    if channel_dim is None:
        channel_dim = 0 if arr.shape[0] in (3, 4) and arr.shape[-1] not in (3, 4) else -1
    arr = np.moveaxis(arr, channel_dim, -1)
    if arr.shape[-1] not in (3, 4):
        raise ValueError(f"expected 3 (RGB) or 4 (RGBA) channels, got shape {arr.shape}.")
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.uint16:
        return np.ascontiguousarray((arr.astype(np.float32) / 257.0).round().astype(np.uint8))
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError("image holds NaN or infinite values.")
    scale = 255.0 if arr.max() <= 1.0 else 1.0
    return np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8)


def load_rgb(path: str | Path, max_side: int | None = 256) -> np.ndarray:
    """Decode an image file to ``(H, W, 3)`` uint8 RGB, downscaled so that its longer side is at most ``max_side``.

    JPEGs larger than ``max_side`` are decoded at reduced scale (PIL ``draft``, DCT-domain downscaling), which is
    much faster than a full decode; the remaining factor is a box-filtered resize.

    16-bit images (PIL modes ``I;16*``) are scaled by 65535 to 8 bits first (PIL's own conversion clips them to
    255, which would read every pixel as white skin).

    Raises:
        OSError: the file cannot be read or is not an image (PIL's ``UnidentifiedImageError`` is an ``OSError``).
        ValueError: a 32-bit integer or float image, whose bit depth the file does not state.
    """
    from PIL import Image

    with Image.open(path) as im:
        if max_side is not None and max(im.size) > max_side and im.format == "JPEG":
            im.draft("RGB", (max_side, max_side))
        if im.mode.startswith("I;16"):
            grey = np.asarray(im).astype(np.float64) * (255.0 / 65535.0)
            im = Image.fromarray(np.clip(grey + 0.5, 0, 255).astype(np.uint8), mode="L")
        elif im.mode in ("I", "F"):
            raise ValueError(f"{Path(path).name}: PIL mode {im.mode!r} (32-bit) does not state the bit depth.")
        im = im.convert("RGB")
        if max_side is not None and max(im.size) > max_side:
            scale = max_side / max(im.size)
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.BOX)
        return np.asarray(im)


# ------------------------------------------------------------------------------------------------- samplers
@dataclass
class SkinSample:
    """What a skin sampler found.

    Attributes:
        ita: ITA in degrees, NaN when no usable skin was found (then ``reason`` says why).
        lightness: reduced ``L*`` of the skin pixels (NaN if none).
        b_star: reduced ``b*`` (NaN if none).
        n_pixels: number of skin pixels the reduction used (on the sampler's working grid).
        frac_kept: ``n_pixels`` over the pixels of the working grid.
        l_std: standard deviation of the kept ``L*`` values after trimming.
        b_std: standard deviation of the kept ``b*`` values after trimming.
        mask: boolean ``(H, W)`` mask (input resolution) of the pixels used, or None.
        reason: empty when ``ita`` is valid, else a short explanation.
        sampler: the sampler's name.
        extra: sampler-specific diagnostics (e.g. the lesion threshold, patch ITAs).
    """

    ita: float
    lightness: float
    b_star: float
    n_pixels: int
    frac_kept: float
    l_std: float
    b_std: float
    mask: np.ndarray | None = None
    reason: str = ""
    sampler: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def confidence(self) -> dict[str, Any]:
        """The confidence record (no mask): ``n_pixels, frac_kept, l_star, b_star, l_std, b_std, reason``."""
        return {
            "n_pixels": self.n_pixels,
            "frac_kept": self.frac_kept,
            "l_star": self.lightness,
            "b_star": self.b_star,
            "l_std": self.l_std,
            "b_std": self.b_std,
            "reason": self.reason,
        }


def _failed(reason: str, sampler: str, mask: np.ndarray | None = None, **extra: Any) -> SkinSample:
    nan = math.nan
    return SkinSample(nan, nan, nan, 0, 0.0, nan, nan, mask, reason, sampler, dict(extra))


@dataclass(frozen=True)
class SkinColourGate:
    """Plausible-skin colour rule in CIELAB, to exclude stickers, rulers, ink and gel (documented choice).

    Skin colour comes from melanin (brown-yellow) and haemoglobin (red), so its hue angle ``h = atan2(b*, a*)`` lies
    in the red-to-yellow quadrant and its chroma is moderate, across all skin tones. The absolute rule keeps pixels
    with ``hue_range[0] <= h <= hue_range[1]`` and chroma ``<= chroma_max``: that removes blue/cyan/green stickers
    and gel reflections (h > 90 or b* < 0), purple and magenta marker ink (b* < 0), and bluish-grey ruler marks; a
    pixel with chroma below ``neutral_chroma`` (grey: white gel, specular highlight, bluish-white cast skin) has no
    reliable hue and fails the rule too, so the image becomes NaN-with-reason rather than a meaningless angle
    (b* ~ 0 sends ITA to ±90). Saturated orange/yellow stickers share the skin hue but are far more chromatic than
    the image's own skin, so the relative rule keeps only pixels within ``chroma_radius`` of the image's median
    (a*, b*) skin colour (taken over candidate skin, so a sticker covering less than half of it cannot move it).

    Attributes:
        hue_range: allowed hue angles in degrees (default 0..85: red through orange to yellowish skin).
        chroma_max: maximum chroma ``sqrt(a*^2 + b*^2)``.
        neutral_chroma: minimum chroma for a pixel to have a meaningful hue.
        chroma_radius: maximum (a*, b*) distance from the image's median skin colour; None disables the rule.
    """

    hue_range: tuple[float, float] = (0.0, 85.0)
    chroma_max: float = 65.0
    neutral_chroma: float = 3.0
    chroma_radius: float | None = 20.0

    def _hue_ok(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        lo, hi = (math.radians(h) for h in self.hue_range)
        if not 0 < hi - lo < math.pi:
            raise ValueError(f"hue_range must span (0, 180) degrees, got {self.hue_range}.")
        # hue in [lo, hi] as two half-plane tests (no arctan2 per pixel)
        return (b * math.cos(lo) - a * math.sin(lo) >= 0) & (a * math.sin(hi) - b * math.cos(hi) >= 0)

    def absolute(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Pixels whose (a*, b*) is a plausible skin colour by the absolute rule."""
        c2 = a * a + b * b
        return self._hue_ok(a, b) & (c2 <= self.chroma_max**2) & (c2 >= self.neutral_chroma**2)

    def chromatic_non_skin(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Pixels that clearly are not skin: chromatic enough to have a hue, and a non-skin hue or too chromatic.

        Near-grey pixels are *not* in this set: overexposed skin and gel are grey too, and they belong to the
        bright (skin) side when the lesion threshold is computed.
        """
        c2 = a * a + b * b
        return (c2 >= self.neutral_chroma**2) & (~self._hue_ok(a, b) | (c2 > self.chroma_max**2))

    def classify(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(absolute(a, b), chromatic_non_skin(a, b))`` sharing the intermediate arrays."""
        c2 = a * a + b * b
        hue = self._hue_ok(a, b)
        chromatic = c2 >= self.neutral_chroma**2
        too_strong = c2 > self.chroma_max**2
        return hue & chromatic & ~too_strong, chromatic & (~hue | too_strong)

    def relative(self, a: np.ndarray, b: np.ndarray, ref_a: float, ref_b: float) -> np.ndarray:
        """Pixels within ``chroma_radius`` of the reference (a*, b*)."""
        if self.chroma_radius is None:
            return np.ones(np.shape(a), dtype=bool)
        return (a - ref_a) ** 2 + (b - ref_b) ** 2 <= self.chroma_radius**2


class SkinSampler:
    """Interface of the skin samplers: ``sampler(rgb, lesion_mask=None) -> SkinSample``."""

    name = "base"

    def __call__(self, rgb: Any, lesion_mask: Any | None = None) -> SkinSample:
        raise NotImplementedError


def _fov_mask(h: int, w: int, frame: float, shape: str) -> np.ndarray:
    """Field of view: the image minus an outer frame, and for ``"ellipse"`` also minus the corners outside the
    inscribed ellipse, where a dermoscope's dark vignette sits."""
    m = np.zeros((h, w), dtype=bool)
    fy, fx = int(round(frame * h)), int(round(frame * w))
    m[fy : h - fy, fx : w - fx] = True
    if shape == "ellipse":
        yy = (np.arange(h, dtype=np.float32) + 0.5 - h / 2) / (h / 2 - fy)
        xx = (np.arange(w, dtype=np.float32) + 0.5 - w / 2) / (w / 2 - fx)
        m &= yy[:, None] ** 2 + xx[None, :] ** 2 <= 1.0
    elif shape != "frame":
        raise ValueError(f"fov must be 'ellipse' or 'frame', got {shape!r}.")
    return m


@dataclass(frozen=True)
class _Grid:
    """The working grid of one image: sub-sampling step, input shape, grid shape and flat field-of-view indices."""

    step: int
    full_shape: tuple[int, int]
    h: int
    w: int
    idx: np.ndarray

    def to_2d(self, flat: np.ndarray, outside: int = 0) -> np.ndarray:
        """A flat per-field-of-view-pixel array on the ``(h, w)`` grid as uint8, ``outside`` elsewhere."""
        canvas = np.full(self.h * self.w, outside, dtype=np.uint8)
        canvas[self.idx] = flat
        return canvas.reshape(self.h, self.w)


def _upsample(mask: np.ndarray, step: int, shape: tuple[int, int]) -> np.ndarray:
    if step == 1:
        return mask
    return np.repeat(np.repeat(mask, step, axis=0), step, axis=1)[: shape[0], : shape[1]]


def _l_histogram(values: np.ndarray, nbins: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of L* on fixed bins over [0, 100] (fixed bins keep thresholds comparable between images)."""
    idx = np.clip((values * (nbins / 100.0)).astype(np.int64), 0, nbins - 1)
    counts = np.bincount(idx, minlength=nbins).astype(np.float64)
    centers = (np.arange(nbins) + 0.5) * (100.0 / nbins)
    return counts, centers


def _otsu_threshold(counts: np.ndarray, centers: np.ndarray) -> float:
    """Otsu's threshold of a histogram by maximal between-class variance (the GHT Otsu limit, computed directly:
    a few cumulative sums instead of the general GHT score); ties give the mean of the tied centres."""
    w0 = np.cumsum(counts)[:-1]
    total = w0[-1] + counts[-1]
    s0 = np.cumsum(counts * centers)[:-1]
    w1 = total - w0
    valid = (w0 > 0) & (w1 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = np.where(valid, (s0 * total - w0 * (s0[-1] + counts[-1] * centers[-1])) ** 2 / (w0 * w1), -1.0)
    if not valid.any():
        return float(centers[0])
    return float(centers[:-1][between == between.max()].mean())


def _split_quality(counts: np.ndarray, centers: np.ndarray, thr: float) -> tuple[float, float]:
    """How real the split at ``thr`` is: Otsu's effectiveness (between-class over total variance, 0..1) and the
    gap between the class means in standard deviations of the bright class.

    Splitting one unimodal Gaussian population at its mean gives 2/pi ~ 0.64 and ~2.7; uniform ~0.75 and ~3.5.
    """
    total = counts.sum()
    lo = centers <= thr
    w0 = counts[lo].sum()
    if total <= 0 or w0 <= 0 or w0 >= total:
        return 0.0, 0.0
    mean = (counts * centers).sum() / total
    var = (counts * (centers - mean) ** 2).sum() / total
    m0 = (counts[lo] * centers[lo]).sum() / w0
    m1 = (counts[~lo] * centers[~lo]).sum() / (total - w0)
    v1 = (counts[~lo] * (centers[~lo] - m1) ** 2).sum() / (total - w0)
    p0 = w0 / total
    eta = float(p0 * (1 - p0) * (m0 - m1) ** 2 / var) if var > 0 else 0.0
    gap = float((m1 - m0) / math.sqrt(v1)) if v1 > 0 else math.inf
    return eta, gap


class OutsideLesionSampler(SkinSampler):
    """Skin = outside the (dilated) lesion, inside the field of view, not near-black/specular, skin-coloured.

    Steps (on a working grid sub-sampled to at most ``work_size`` pixels per side):

    1. CIELAB of the field-of-view pixels of the grid: the outer ``frame`` fraction is dropped and, for
       ``fov="ellipse"``, the corners outside the inscribed ellipse, where a dermoscope's dark vignette sits.
    2. Candidates: ``l_min <= L* <= l_max`` (vignette black and specular highlights go) and skin-coloured by
       ``gate``'s absolute rule (see :class:`SkinColourGate`).
    3. Lesion: ``lesion_mask`` if given, else the dark class ``L* <= t`` of a global threshold ``t`` on the L*
       histogram of the field of view (minus clearly non-skin colours; grey overexposed skin and gel stay in, on
       the bright side) with ``threshold="otsu"`` or ``"ght"`` (``ght_params``). The dark class is only treated as
       lesion when it is a population of its own: Otsu's effectiveness (between/total variance) is at least
       ``min_separability`` or the class means are at least ``min_class_gap`` bright-class standard deviations
       apart (splitting one unimodal population gives about 0.64 and 2.7). Otherwise lesion-free skin would be
       halved by the threshold, biasing ITA lighter. Hair, ruler ticks and dark speckles fall in the dark class.
    4. The gate's relative rule against the median (a*, b*) of candidate skin outside the lesion.
    5. The lesion, near-black pixels, the area outside the field of view and solid non-skin regions (non-skin
       eroded 2x2 first, so isolated off-colour noise pixels only drop themselves) are dilated by ``dilation`` grid
       pixels, so that borders, halos and JPEG colour bleeding around them are dropped as well.
    6. L* and b* of the kept pixels are reduced separately by median ± ``trim_k`` sigma trimming (``reduce``);
       ITA from the two values (optionally measured on gray-world balanced colours).

    Returns NaN with a reason when fewer than ``max(min_pixels, min_fraction * grid pixels)`` pixels are kept.

    Args:
        threshold: ``"otsu"``, ``"ght"`` or ``"none"`` (no lesion detection; only with a given mask or lesion-free
            images).
        ght_params: GHT hyperparameters for ``threshold="ght"`` (``nu, tau, kappa, omega``; ``tau`` in L* units).
        min_separability: Otsu effectiveness above which the dark class counts as lesion.
        min_class_gap: class-mean gap (in bright-class standard deviations) above which it counts as lesion.
        dilation: dilation radius of the excluded pixels, in working-grid pixels.
        frame: fraction of each side dropped at the border.
        fov: ``"ellipse"`` or ``"frame"``.
        l_min: darkest usable ``L*`` (dark vignette).
        l_max: lightest usable ``L*`` (specular highlights, white gel).
        gate: the skin-colour rule, or None to accept every colour.
        trim_k: trimming width in standard deviations.
        reduce: centre of the trimmed values, ``"median"`` (default, as in S-SYNTH) or ``"mean"`` (resolves JPEG
            chroma steps better on clean skin, less robust to leftovers).
        min_pixels: minimum number of kept grid pixels.
        min_fraction: minimum kept fraction of the grid.
        work_size: longest side of the working grid (the image is sub-sampled with a step, no interpolation).
        ita_fn: ``"arctan"`` or ``"arctan2"``.
        gray_world: measure L*/b* on gray-world balanced colours (channel means over the vignette-free field of
            view); pixels are still selected on the original colours. Off by default: it moves b* towards 0, the
            more so the more of the scene is skin.
        return_mask: attach the kept mask (input resolution) to the result.
    """

    name = "outside_lesion"

    def __init__(
        self,
        threshold: str = "otsu",
        ght_params: Mapping[str, float] | None = None,
        min_separability: float = 0.7,
        min_class_gap: float = 4.0,
        dilation: int = 2,
        frame: float = 0.04,
        fov: str = "ellipse",
        l_min: float = 10.0,
        l_max: float = 95.0,
        gate: SkinColourGate | None = SkinColourGate(),
        trim_k: float = 1.0,
        reduce: str = "median",
        min_pixels: int = 100,
        min_fraction: float = 0.02,
        work_size: int = 128,
        ita_fn: str = "arctan",
        gray_world: bool = False,
        return_mask: bool = True,
    ) -> None:
        if threshold not in ("otsu", "ght", "none"):
            raise ValueError(f"threshold must be 'otsu', 'ght' or 'none', got {threshold!r}.")
        if ita_fn not in ("arctan", "arctan2"):
            raise ValueError(f"ita_fn must be 'arctan' or 'arctan2', got {ita_fn!r}.")
        if work_size < 8 or dilation < 0 or not 0 <= frame < 0.5:
            raise ValueError("need work_size >= 8, dilation >= 0 and 0 <= frame < 0.5.")
        _fov_mask(4, 4, 0.0, fov)  # validates fov
        self.threshold = threshold
        self.ght_params = dict(ght_params) if ght_params is not None else {"nu": 0.0, "tau": 0.0, "kappa": 0.0}
        self.min_separability = min_separability
        self.min_class_gap = min_class_gap
        self.dilation = dilation
        self.frame = frame
        self.fov = fov
        self.l_min = l_min
        self.l_max = l_max
        self.gate = gate
        self.trim_k = trim_k
        self.reduce = reduce
        self.min_pixels = min_pixels
        self.min_fraction = min_fraction
        self.work_size = work_size
        self.ita_fn = ita_fn
        self.gray_world = gray_world
        self.return_mask = return_mask
        self._fov_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def _fov(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        if (h, w) not in self._fov_cache:
            m = _fov_mask(h, w, self.frame, self.fov)
            self._fov_cache[(h, w)] = (m, np.flatnonzero(m))
        return self._fov_cache[(h, w)]

    def _grid(self, rgb: Any) -> tuple[_Grid, np.ndarray]:
        """Step 1: the sub-sampled working grid and the RGB of its field-of-view pixels, ``(n, 3)`` uint8."""
        img = as_rgb_uint8(rgb)
        full_shape = img.shape[:2]
        step = max(1, math.ceil(max(full_shape) / self.work_size))
        grid = img[::step, ::step]
        h, w = grid.shape[:2]
        _, idx = self._fov(h, w)
        # per-pixel work runs on the field-of-view pixels only (flat arrays); 2D only for the morphology
        return _Grid(step, full_shape, h, w, idx), grid.reshape(-1, 3)[idx]

    def _lesion(
        self, L: np.ndarray, bright: np.ndarray, non_skin: np.ndarray, lesion_mask: Any | None, g: _Grid, extra: dict
    ) -> np.ndarray:
        """Step 3: lesion pixels of the field of view, from the given mask or a separable dark class of L*."""
        if lesion_mask is not None:
            lm = np.asarray(lesion_mask.detach().cpu() if hasattr(lesion_mask, "detach") else lesion_mask)
            lm = np.squeeze(lm)
            if lm.shape != g.full_shape:
                raise ValueError(f"lesion mask shape {lm.shape} does not match the image {g.full_shape}.")
            extra["lesion_source"] = "mask"
            return (lm[:: g.step, :: g.step] > 0).ravel()[g.idx]
        if self.threshold == "none":
            extra["lesion_source"] = "none"
            return np.zeros_like(bright)
        # grey pixels (overexposed skin, gel) stay in the histogram: they sit on the skin side of the split
        counts, centers = _l_histogram(L[bright & ~non_skin])
        if self.threshold == "otsu":
            thr = _otsu_threshold(counts, centers)
        else:
            thr = float(threshold_ght(hist=(counts, centers), **self.ght_params))
        eta, gap = _split_quality(counts, centers, thr)
        extra.update(threshold=thr, separability=eta, class_gap=gap)
        if eta >= self.min_separability or gap >= self.min_class_gap:
            extra["lesion_source"] = self.threshold
            return L <= thr
        extra["lesion_source"] = "none (no separable dark class)"
        return np.zeros_like(bright)

    def _relative_gate(
        self,
        lab: np.ndarray,
        skin: np.ndarray,
        lesion: np.ndarray,
        colour_ok: np.ndarray,
        non_skin: np.ndarray,
        extra: dict,
    ) -> None:
        """Step 4: drop (in place) colours far from the median (a*, b*) of the skin outside the lesion."""
        if self.gate is None or self.gate.chroma_radius is None or not skin.any():
            return
        a, b = lab[:, 1], lab[:, 2]
        # a reference colour needs no more than a few thousand pixels
        sub = max(1, int(skin.sum()) // 4000)
        ref_a, ref_b = _median(a[skin][::sub]), _median(b[skin][::sub])
        far = ~self.gate.relative(a, b, ref_a, ref_b)
        colour_ok &= ~far
        non_skin |= far & ~lesion
        extra.update(ref_a=ref_a, ref_b=ref_b)

    def _kept(
        self,
        g: _Grid,
        lesion: np.ndarray,
        bright: np.ndarray,
        colour_ok: np.ndarray,
        non_skin: np.ndarray,
        usable: np.ndarray,
    ) -> np.ndarray:
        """Step 5: the usable, skin-coloured pixels left after dilating the excluded regions.

        Solid non-skin regions (stickers, ink), the lesion, hair and the vignette are dilated to drop their borders
        and JPEG colour bleeding. Non-skin is eroded first (2x2), so isolated off-colour pixels (noise around a grey
        or cool cast) only drop themselves. Outside the field of view counts as excluded: the vignette edge goes.
        """
        solid = ndimage.minimum_filter(g.to_2d(non_skin, outside=1), size=2)
        solid.ravel()[g.idx] |= (lesion | ~bright).view(np.uint8)
        if self.dilation > 0:
            solid = ndimage.maximum_filter(solid, size=2 * self.dilation + 1, mode="nearest")
        return ~(solid.ravel()[g.idx].view(bool) | ~colour_ok | ~usable)

    def _too_few_reason(self, g: _Grid, cand: np.ndarray, skin: np.ndarray, n_keep: int) -> str:
        """Why fewer than the required pixels were kept, or ``""`` when enough were."""
        need = max(self.min_pixels, int(math.ceil(self.min_fraction * g.h * g.w)))
        if n_keep >= need:
            return ""
        n_cand, n_skin = int(cand.sum()), int(skin.sum())
        if n_skin == 0:
            return "the lesion covers all usable skin"
        if n_cand < max(need, 0.2 * g.idx.size):
            return (
                f"too few skin pixels: only {n_cand} of {g.idx.size} field-of-view pixels are skin-coloured "
                f"and {n_keep} survive the exclusions (colour cast, grey or non-skin image?)"
            )
        return f"too few skin pixels: {n_keep} < {need} left outside the lesion and other exclusions"

    def _measure(
        self, pixels: np.ndarray, lab: np.ndarray, bright: np.ndarray, keep: np.ndarray
    ) -> tuple[float, float, float, float, float]:
        """Step 6: ``(ita, L*, b*, std L*, std b*)`` of the kept pixels, by trimmed reduction."""
        L, b = lab[:, 0], lab[:, 2]
        if self.gray_world:
            # pixels are selected on the camera's colours (balanced skin can turn grey and fail the gate); only the
            # measurement uses the balanced colours, channel means over the vignette-free field of view
            balanced = srgb_to_lab(gray_world(pixels[None], mask=bright[None], channel_dim=-1)[0])
            L, b = balanced[:, 0], balanced[:, 2]
        l_val, l_std, _ = trimmed_median(L[keep], self.trim_k, self.reduce)
        b_val, b_std, _ = trimmed_median(b[keep], self.trim_k, self.reduce)
        return ita_from_lab(l_val, b_val, self.ita_fn), l_val, b_val, l_std, b_std

    def __call__(self, rgb: Any, lesion_mask: Any | None = None) -> SkinSample:
        """Sample skin and compute ITA; see the class docstring for the steps."""
        g, pixels = self._grid(rgb)
        lab = srgb_to_lab(pixels)
        L = lab[:, 0]
        # step 2: candidates are usable (neither vignette black nor specular) and skin-coloured
        bright = L >= self.l_min
        usable = bright & (L <= self.l_max)
        if self.gate is not None:
            colour_ok, non_skin = self.gate.classify(lab[:, 1], lab[:, 2])
        else:
            colour_ok, non_skin = np.ones_like(usable), np.zeros_like(usable)
        cand = usable & colour_ok
        extra: dict[str, Any] = {"step": g.step}
        if not cand.any():
            why = "no skin-coloured pixels in the field of view" if usable.any() else "no usable pixels"
            return _failed(why + " (e.g. all vignette, sticker or colour cast)", self.name, self._up(g, cand), **extra)
        lesion = self._lesion(L, bright, non_skin, lesion_mask, g, extra)
        skin = cand & ~lesion
        self._relative_gate(lab, skin, lesion, colour_ok, non_skin, extra)
        keep = self._kept(g, lesion, bright, colour_ok, non_skin, usable)
        n_keep = int(keep.sum())
        why = self._too_few_reason(g, cand, skin, n_keep)
        if why:
            return _failed(why, self.name, self._up(g, keep), **extra)
        ita, l_val, b_val, l_std, b_std = self._measure(pixels, lab, bright, keep)
        reason = "" if math.isfinite(ita) else "ITA undefined (L* = 50 and b* = 0)"
        frac = n_keep / (g.h * g.w)
        return SkinSample(ita, l_val, b_val, n_keep, frac, l_std, b_std, self._up(g, keep), reason, self.name, extra)

    def _up(self, g: _Grid, flat: np.ndarray) -> np.ndarray | None:
        """A flat field-of-view mask at input resolution, or None when masks are not returned."""
        return _upsample(g.to_2d(flat).view(bool), g.step, g.full_shape) if self.return_mask else None


class PatchSampler(SkinSampler):
    """Bevan & Atapour-Abarghouei (2022) patch method: the ITA of the lightest of eight border patches.

    The image is centre-cropped to a square, resized to ``size`` (Lanczos) and blurred (5x5 Gaussian, sigma 1.1 as
    OpenCV picks for that kernel); eight ``patch``x``patch`` patches sit at the four corners and the four edge
    midpoints, ``inset`` pixels in. Each patch's ITA comes from its mean L* and b*; the image ITA is the maximum.
    With ``gate`` set (our addition), a patch counts only if at least ``min_skin_fraction`` of its pixels are
    skin-coloured and not near-black/specular, and its means are taken over those pixels: without it a white gel
    bubble or specular corner (ITA near 90) would win the maximum. ``gate=None, l_min=-inf, l_max=inf`` reproduces
    the original method.

    Args:
        size: side of the resized square.
        patch: patch side.
        inset: distance of the patches from the border.
        gate: skin-colour rule (only the absolute part is used), or None.
        min_skin_fraction: fraction of skin-coloured pixels a patch needs.
        l_min: darkest usable L* (vignette).
        l_max: lightest usable L* (specular).
        ita_fn: ``"arctan"`` or ``"arctan2"``.
        return_mask: attach the mask of the counted patches (input resolution of the square crop's source).
    """

    name = "patches"

    def __init__(
        self,
        size: int = 256,
        patch: int = 20,
        inset: int = 10,
        gate: SkinColourGate | None = SkinColourGate(),
        min_skin_fraction: float = 0.5,
        l_min: float = 10.0,
        l_max: float = 95.0,
        ita_fn: str = "arctan",
        return_mask: bool = True,
    ) -> None:
        if inset < 0 or patch < 1 or 2 * (inset + patch) > size:
            raise ValueError("patches do not fit: need 2 * (inset + patch) <= size.")
        self.size, self.patch, self.inset = size, patch, inset
        self.gate = gate
        self.min_skin_fraction = min_skin_fraction
        self.l_min, self.l_max = l_min, l_max
        self.ita_fn = ita_fn
        self.return_mask = return_mask
        lo, mid, hi = inset, (size - patch) // 2, size - inset - patch
        self.origins = [(lo, lo), (lo, mid), (lo, hi), (mid, hi), (hi, hi), (hi, mid), (hi, lo), (mid, lo)]

    def __call__(self, rgb: Any, lesion_mask: Any | None = None) -> SkinSample:
        """Compute the patch ITA; a lesion mask, if given, excludes lesion pixels from the patches."""
        from PIL import Image

        img = as_rgb_uint8(rgb)
        H, W = img.shape[:2]
        side = min(H, W)
        y0, x0 = (H - side) // 2, (W - side) // 2
        crop = Image.fromarray(img[y0 : y0 + side, x0 : x0 + side])
        sq = np.asarray(crop.resize((self.size, self.size), Image.Resampling.LANCZOS), dtype=np.float32) / 255.0
        blurred = ndimage.gaussian_filter(sq, sigma=(1.1, 1.1, 0), truncate=2.0 / 1.1, mode="reflect")
        lesion = None
        if lesion_mask is not None:
            lm = np.squeeze(np.asarray(lesion_mask.detach().cpu() if hasattr(lesion_mask, "detach") else lesion_mask))
            if lm.shape != (H, W):
                raise ValueError(f"lesion mask shape {lm.shape} does not match the image {(H, W)}.")
            lm_img = Image.fromarray((lm[y0 : y0 + side, x0 : x0 + side] > 0).astype(np.uint8) * 255)
            lesion = np.asarray(lm_img.resize((self.size, self.size), Image.Resampling.NEAREST)) > 0
        p = self.patch
        itas, ls, bs, lsd, bsd, ns, used = [], [], [], [], [], [], []
        for y, x in self.origins:
            lab = srgb_to_lab(np.clip(blurred[y : y + p, x : x + p], 0.0, 1.0)).reshape(-1, 3)
            ok = (lab[:, 0] >= self.l_min) & (lab[:, 0] <= self.l_max)
            if self.gate is not None:
                ok &= self.gate.absolute(lab[:, 1], lab[:, 2])
            if lesion is not None:
                ok &= ~lesion[y : y + p, x : x + p].ravel()
            if ok.mean() < self.min_skin_fraction or not ok.any():
                continue
            L_p, b_p = float(lab[ok, 0].mean()), float(lab[ok, 2].mean())
            itas.append(ita_from_lab(L_p, b_p, self.ita_fn))
            ls.append(L_p)
            bs.append(b_p)
            lsd.append(float(lab[ok, 0].std()))
            bsd.append(float(lab[ok, 2].std()))
            ns.append(int(ok.sum()))
            used.append((y, x))
        mask = None
        if self.return_mask:
            sq_mask = np.zeros((self.size, self.size), dtype=bool)
            for y, x in used:
                sq_mask[y : y + p, x : x + p] = True
            mask = np.zeros((H, W), dtype=bool)
            mask[y0 : y0 + side, x0 : x0 + side] = (
                np.asarray(Image.fromarray(sq_mask.astype(np.uint8)).resize((side, side), Image.Resampling.NEAREST)) > 0
            )
        if not itas:
            return _failed(
                "no skin-coloured patch (all patches vignette, sticker, lesion or colour-cast)", self.name, mask
            )
        finite = [i for i in range(len(itas)) if math.isfinite(itas[i])]
        if not finite:
            return _failed("ITA undefined in every patch", self.name, mask)
        k = max(finite, key=lambda i: itas[i])
        extra = {"patch_ita": [round(float(v), 3) for v in itas], "n_patches": len(itas)}
        frac = len(itas) / len(self.origins)
        return SkinSample(itas[k], ls[k], bs[k], ns[k], frac, lsd[k], bsd[k], mask, "", self.name, extra)


SKIN_SAMPLERS: dict[str, type[SkinSampler]] = {
    OutsideLesionSampler.name: OutsideLesionSampler,
    PatchSampler.name: PatchSampler,
}


def make_skin_sampler(name: str | SkinSampler = "outside_lesion", **kwargs: Any) -> SkinSampler:
    """A sampler by name (:data:`SKIN_SAMPLERS`), or the given instance unchanged.

    Raises:
        ValueError: for an unknown name.
    """
    if isinstance(name, SkinSampler):
        return name
    if name not in SKIN_SAMPLERS:
        raise ValueError(f"unknown skin sampler {name!r}; choose one of {sorted(SKIN_SAMPLERS)}.")
    return SKIN_SAMPLERS[name](**kwargs)


def compute_ita(
    image: Any, lesion_mask: Any | None = None, sampler: str | SkinSampler = "outside_lesion", **kwargs: Any
) -> SkinSample:
    """ITA of one RGB image with the named sampler (see :func:`make_skin_sampler`)."""
    return make_skin_sampler(sampler, **kwargs)(image, lesion_mask)


class SkinToneITAd(MapTransform):
    """Write ITA and its skin-tone category into the data dict.

    Args:
        keys: the image key (one key; the first is used if several are given).
        sampler: sampler name or instance (default: :class:`OutsideLesionSampler`).
        scheme: category scheme for ``group_key`` (:data:`ITA_SCHEMES`).
        ita_key: key receiving ITA (float, NaN when no skin was found).
        group_key: key receiving the category code (0 = lightest, -1 unknown).
        mask_key: optional key holding a lesion mask (1 = lesion).
        confidence_key: optional key receiving the confidence record (a dict, includes ``reason``).
        channel_dim: channel axis of the image (default: detected, channel-first for MONAI tensors).
        allow_missing_keys: skip missing keys instead of raising.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        sampler: str | SkinSampler = "outside_lesion",
        scheme: str = "binary45",
        ita_key: str = "ita",
        group_key: str = "ita_group",
        mask_key: str | None = None,
        confidence_key: str | None = None,
        channel_dim: int | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        ita_group_names(scheme)  # validates the scheme name
        self.sampler = make_skin_sampler(sampler)
        self.scheme = scheme
        self.ita_key, self.group_key = ita_key, group_key
        self.mask_key, self.confidence_key = mask_key, confidence_key
        self.channel_dim = channel_dim

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            rgb = as_rgb_uint8(d[key], self.channel_dim)
            mask = d[self.mask_key] if self.mask_key is not None else None
            if mask is not None:
                mask = np.squeeze(np.asarray(mask.detach().cpu() if hasattr(mask, "detach") else mask))
            res = self.sampler(rgb, mask)
            d[self.ita_key] = float(res.ita)
            d[self.group_key] = ita_category(res.ita, self.scheme)
            if self.confidence_key is not None:
                d[self.confidence_key] = res.confidence
            break
        return d
