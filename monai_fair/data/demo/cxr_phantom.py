# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Synthetic chest-radiograph phantoms for the CXR demo datasets (MIMIC-CXR, CheXpert).

A frontal phantom is a torso with two dark lung fields, a bright mediastinum and heart, rib texture, optional
breast shadows (the sex-correlated anatomy cue), optional finding cues, acquisition jitter and noise. Everything is
drawn with numpy from a caller-supplied generator, so a dataset is deterministic per seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

__all__ = ["FINDING_CUES", "soft_ellipse", "render_frontal", "render_lateral", "save_grey_jpeg"]

# where each CheXpert finding is drawn (used by the CheXpert demo; MIMIC's Enlarged Cardiomediastinum widens the
# mediastinum instead): (centre y, centre x, radius y, radius x, intensity change, kind)
FINDING_CUES: dict[str, tuple[float, float, float, float, float, str]] = {
    "Lung Opacity": (0.45, 0.33, 0.10, 0.07, 0.22, "blob"),
    "Lung Lesion": (0.38, 0.68, 0.035, 0.035, 0.35, "blob"),
    "Edema": (0.50, 0.50, 0.10, 0.26, 0.16, "haze"),
    "Consolidation": (0.66, 0.32, 0.08, 0.08, 0.30, "blob"),
    "Pneumonia": (0.60, 0.68, 0.09, 0.08, 0.22, "patchy"),
    "Atelectasis": (0.70, 0.67, 0.015, 0.10, 0.30, "blob"),
    "Pneumothorax": (0.28, 0.70, 0.08, 0.08, -0.25, "blob"),
    "Pleural Effusion": (0.78, 0.30, 0.06, 0.12, 0.35, "blob"),
    "Pleural Other": (0.50, 0.19, 0.20, 0.012, 0.30, "blob"),
    "Fracture": (0.30, 0.20, 0.012, 0.06, 0.40, "blob"),
    "Support Devices": (0.40, 0.56, 0.30, 0.008, 0.45, "blob"),
}


def soft_ellipse(
    yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float, sharpness: float = 12.0
) -> np.ndarray:
    """A filled ellipse in [0, 1] with a sigmoid edge (``sharpness`` ~ edge steepness in radius units)."""
    r = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    return 1.0 / (1.0 + np.exp(-(1.0 - r) * sharpness))


def _paint(img: np.ndarray, cy: float, cx: float, ry: float, rx: float, sharpness: float, amount: float) -> np.ndarray:
    """Add ``amount * soft_ellipse`` to ``img`` in place, evaluated only inside the ellipse's bounding box (the
    sigmoid edge is below 1e-3 beyond ``1 + 7 / sharpness`` radii). Returns the painted window's mask-sized view."""
    size = img.shape[0]
    reach = 1.0 + 7.0 / sharpness
    r0 = max(int(np.floor((cy - ry * reach) * size)), 0)
    r1 = min(int(np.ceil((cy + ry * reach) * size)) + 1, size)
    c0 = max(int(np.floor((cx - rx * reach) * size)), 0)
    c1 = min(int(np.ceil((cx + rx * reach) * size)) + 1, size)
    if r0 >= r1 or c0 >= c1:
        return np.zeros((0, 0), dtype=img.dtype)
    ys = ((np.arange(r0, r1, dtype=np.float32) + 0.5) / size)[:, None]
    xs = ((np.arange(c0, c1, dtype=np.float32) + 0.5) / size)[None, :]
    mask = soft_ellipse(ys, xs, cy, cx, ry, rx, sharpness)
    img[r0:r1, c0:c1] += amount * mask
    return mask


def render_frontal(
    rng: np.random.Generator,
    size: int,
    mediastinum_halfwidth: float,
    heart_halfwidth: float,
    breast: float = 0.0,
    heart_intensity: float = 0.40,
    torso_halfwidth: float = 0.42,
    findings: Mapping[str, float] | None = None,
    contrast: float = 1.0,
    brightness: float = 0.0,
    rib_frequency: float = 14.0,
    noise: float = 0.03,
    jitter: float = 0.03,
) -> np.ndarray:
    """A frontal (PA/AP) phantom in [0, 1], shape ``(size, size)``.

    Args:
        rng: random generator (texture, noise, position jitter).
        size: image side in pixels.
        mediastinum_halfwidth: half-width of the upper mediastinum (fraction of the image width).
        heart_halfwidth: half-width of the heart shadow.
        breast: breast-shadow intensity (0: none).
        heart_intensity: brightness added by the heart shadow.
        torso_halfwidth: half-width of the torso.
        findings: ``{name: strength}`` of :data:`FINDING_CUES` to draw (strength scales the intensity change).
        contrast: global contrast around mid-grey.
        brightness: global offset.
        rib_frequency: rib stripes per image height.
        noise: noise amplitude.
        jitter: maximal shift of the anatomy (fraction of the image).
    """
    dy, dx = rng.uniform(-jitter, jitter, size=2)
    img = np.full((size, size), 0.06, dtype=np.float32)
    _paint(img, 0.56 + dy, 0.50 + dx, 0.50, torso_halfwidth, 10.0, 0.40)
    lungs = np.zeros_like(img)
    _paint(lungs, 0.50 + dy, 0.33 + dx, 0.28, 0.13, 14.0, 1.0)
    _paint(lungs, 0.50 + dy, 0.67 + dx, 0.28, 0.13, 14.0, 1.0)
    yy = ((np.arange(size, dtype=np.float32) + 0.5) / size)[:, None] - dy
    xx = ((np.arange(size, dtype=np.float32) + 0.5) / size)[None, :] - dx
    ribs = np.sin(2 * np.pi * rib_frequency * yy + rng.uniform(0, 2 * np.pi) + 3.0 * (xx - 0.5) ** 2)
    img += lungs * (0.035 * ribs - 0.28)
    _paint(img, 0.40 + dy, 0.50 + dx, 0.22, mediastinum_halfwidth, 10.0, 0.42)
    _paint(img, 0.65 + dy, 0.53 + dx, 0.13, heart_halfwidth, 10.0, heart_intensity)
    if breast > 0:
        _paint(img, 0.74 + dy, 0.29 + dx, 0.09, 0.13, 4.0, breast)
        _paint(img, 0.74 + dy, 0.71 + dx, 0.09, 0.13, 4.0, breast)
    for name, strength in (findings or {}).items():
        if strength == 0:
            continue
        cy, cx, ry, rx, delta, kind = FINDING_CUES[name]
        if kind == "patchy":
            cue = np.zeros_like(img)
            _paint(cue, cy + dy, cx + dx, ry, rx, 12.0, 1.0)
            img += strength * delta * cue * (gaussian_filter(rng.random((size, size)), size / 40) > 0.5)
        else:
            _paint(img, cy + dy, cx + dx, ry, rx, 8.0 if kind == "haze" else 12.0, strength * delta)
    img += noise * gaussian_filter(rng.standard_normal((size, size), dtype=np.float32), 1.0)
    img += 0.5 * noise * rng.standard_normal((size, size), dtype=np.float32)
    img = (img - 0.5) * contrast + 0.5 + brightness
    return np.clip(img, 0.0, 1.0)


def render_lateral(rng: np.random.Generator, size: int, noise: float = 0.03) -> np.ndarray:
    """A lateral-view phantom (one lung field, spine at the back): what a frontal-only filter must remove."""
    img = np.full((size, size), 0.06, dtype=np.float32)
    _paint(img, 0.55, 0.50, 0.48, 0.30, 10.0, 0.40)
    _paint(img, 0.48, 0.47, 0.28, 0.20, 12.0, -0.25)
    _paint(img, 0.55, 0.78, 0.40, 0.04, 10.0, 0.35)
    _paint(img, 0.66, 0.40, 0.12, 0.12, 10.0, 0.30)
    img += noise * rng.standard_normal((size, size), dtype=np.float32)
    return np.clip(img, 0.0, 1.0)


def save_grey_jpeg(image01: np.ndarray, path: Path, quality: int = 92) -> None:
    """Write a [0, 1] array as an 8-bit greyscale JPEG (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(image01 * 255.0).astype(np.uint8)).save(path, quality=quality)
