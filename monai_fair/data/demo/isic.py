# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Demo dermoscopy dataset in the ISIC 2018 Task 3 / HAM10000 layout, with known skin tone and a planted bias.

Layout (what :func:`monai_fair.data.isic.build_isic2018_manifest` and ``tools/label_ita.py`` read on real data)::

    <root>/HAM10000_metadata.csv                         lesion_id, image_id, dx, dx_type, age, sex, localization
    <root>/HAM10000_images_part_1/<image_id>.jpg         RGB JPEG dermoscopy-like images
    <root>/ISIC2018_Task3_Training_GroundTruth/ISIC2018_Task3_Training_GroundTruth.csv
                                                         image, MEL, NV, BCC, AKIEC, BKL, DF, VASC (one-hot)
    <root>/ita_truth.csv                                 the rendered skin colour and its true ITA per image
    <root>/DEMO_COMPLETE.json                            parameters and planted bias

Each image is skin of one known CIELAB colour (uniform, with pixel noise) seen through a dermoscope: a darker,
browner lesion with an irregular border, optional hair strands, an optional dark vignette outside a circular field of
view and optional coloured stickers at the border. The skin colour is rendered exactly (checked in gamut), so
``ita_truth.csv`` holds the true ITA of every image and tests can check ITA estimators against it. Everything is
synthetic; results on it are demo results, not ISIC results.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monai_fair.data.colour import srgb_to_lab
from monai_fair.data.demo import cached_demo_dir, mark_complete

__all__ = ["ISIC_DEMO_DEFAULTS", "render_dermoscopy", "make_isic_demo"]

ISIC_DEMO_DEFAULTS: dict[str, Any] = {
    "n_lesions": 200,
    "repeat_prob": 0.2,
    "size": 128,
    "dark_fraction": 0.4,
    "prevalence": {"light": 0.35, "dark": 0.2},
    "malignant_contrast": {"light": 1.0, "dark": 0.4},
    "label_noise": {"light": 0.0, "dark": 0.1},
    "hair_prob": 0.5,
    "vignette_prob": 0.6,
    "sticker_prob": 0.15,
    "pixel_noise": 2.0,
    "unknown_age_prob": 0.03,
    "unknown_sex_prob": 0.02,
    "jpeg_quality": 95,
}

_MALIGNANT_DX = {"mel": 0.6, "bcc": 0.25, "akiec": 0.15}
_BENIGN_DX = {"nv": 0.75, "bkl": 0.15, "df": 0.05, "vasc": 0.05}
_GT_COLUMNS = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")
_STICKERS = {
    "blue": (20, 110, 220),
    "orange": (245, 140, 25),
    "yellow": (240, 215, 30),
    "green": (40, 170, 70),
    "cyan": (110, 215, 225),
}
_SITES = ("back", "lower extremity", "trunk", "upper extremity", "abdomen", "face", "chest", "scalp")


def _lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """Exact float sRGB of CIELAB colours (D65); values may fall outside [0, 1] when out of gamut."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    f = np.stack([fx, fy, fz], axis=-1)
    t = np.where(f > 0.206893, f**3, (f - 16.0 / 116.0) / 7.787)
    xyz = t * np.array([0.95047, 1.0, 1.08883])
    rgb_from_xyz = np.linalg.inv(
        np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
    )
    lin = xyz @ rgb_from_xyz.T
    return np.where(lin > 0.0031308, 1.055 * np.abs(lin) ** (1 / 2.4) * np.sign(lin) - 0.055, 12.92 * lin)


def _sample_skin(rng: np.random.Generator, dark: bool) -> tuple[float, float, float]:
    """A skin colour (L*, a*, b*) in gamut whose ITA is <= 45 (dark) or > 45 (light)."""
    for _ in range(10000):
        L, a, b = rng.uniform(30.0, 80.0), rng.uniform(5.0, 15.0), rng.uniform(10.0, 24.0)
        ita = math.degrees(math.atan((L - 50.0) / b))
        rgb = _lab_to_srgb(np.array([L, a, b]))
        if (ita <= 45.0) == dark and ita > -25.0 and np.all((rgb > 0.02) & (rgb < 0.98)):
            return L, a, b
    raise RuntimeError("could not sample an in-gamut skin colour")  # pragma: no cover


def render_dermoscopy(
    rng: np.random.Generator,
    size: int,
    skin_lab: tuple[float, float, float],
    lesion_contrast: float,
    irregularity: float,
    blue_veil: bool,
    hair: int = 0,
    vignette: bool = False,
    sticker: str | None = None,
    pixel_noise: float = 2.0,
    lesion_radius: float | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render one dermoscopy-like RGB image of uniform skin with a lesion.

    Args:
        rng: random generator.
        size: image side in pixels.
        skin_lab: the skin colour (L*, a*, b*); skin pixels are this colour plus zero-mean noise.
        lesion_contrast: how much darker (L*) the lesion is than the skin; its chroma grows with it.
        irregularity: border irregularity (0 = round).
        blue_veil: add a blue-grey patch inside the lesion (a melanoma cue).
        hair: number of hair strands.
        vignette: darken everything outside a circular field of view (radius 0.5..0.62 of the side).
        sticker: a colour name of :data:`_STICKERS` for a sticker disc at the border, or None.
        pixel_noise: standard deviation of the per-pixel RGB noise (0..255 scale).
        lesion_radius: lesion radius as a fraction of the side (default random 0.12..0.22).

    Returns:
        ``(rgb uint8 (size, size, 3), masks)`` with boolean masks ``lesion``, ``hair``, ``sticker``, ``vignette``
        (any darkening) and ``skin`` (pure skin: none of the others, at least 3 pixels from the lesion, hair and
        sticker borders).
    """
    L, a, b = skin_lab
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    cy, cx = size * (0.5 + rng.uniform(-0.08, 0.08, size=2))
    r0 = size * (lesion_radius if lesion_radius is not None else rng.uniform(0.12, 0.22))
    theta = np.arctan2(yy - cy, xx - cx)
    radius = np.hypot(yy - cy, xx - cx)
    border = np.ones_like(theta)
    for k in range(2, 7):
        border += irregularity * rng.uniform(0.0, 0.3) / k**0.5 * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    border *= rng.uniform(0.8, 1.2) ** np.cos(theta - rng.uniform(0, np.pi)) ** 2  # elongation
    alpha = np.clip((r0 * border - radius) / 1.5 + 0.5, 0.0, 1.0)  # ~1.5 px soft edge
    lesion_lab = np.array([max(L - lesion_contrast, 8.0), a + 0.25 * lesion_contrast, b + 0.3 * lesion_contrast])
    lab = np.empty((size, size, 3))
    lab[:] = (L, a, b)
    lab = lab * (1 - alpha[..., None]) + lesion_lab * alpha[..., None]
    if blue_veil:
        vy, vx = cy + rng.uniform(-0.3, 0.3) * r0, cx + rng.uniform(-0.3, 0.3) * r0
        veil = np.clip((0.45 * r0 - np.hypot(yy - vy, xx - vx)) / 2.0, 0.0, 1.0) * alpha
        lab = lab * (1 - veil[..., None]) + np.array([max(lesion_lab[0] - 5.0, 8.0), 0.0, -6.0]) * veil[..., None]
    rgb = np.clip(_lab_to_srgb(lab), 0.0, 1.0) * 255.0
    if hair:
        from PIL import Image, ImageDraw

        layer = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(layer)
        for _ in range(hair):
            p0, p1, p2 = rng.uniform(-0.1, 1.1, size=(3, 2)) * size
            t = np.linspace(0, 1, 24)[:, None]
            pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
            draw.line([tuple(p) for p in pts], fill=255, width=int(rng.integers(1, 3)))
        hmask = np.asarray(layer, dtype=np.float64)[..., None] / 255.0
        rgb = rgb * (1 - hmask) + np.array([45.0, 30.0, 22.0]) * hmask
        hair_mask = hmask[..., 0] > 0
    else:
        hair_mask = np.zeros((size, size), dtype=bool)
    sticker_mask = np.zeros((size, size), dtype=bool)
    if sticker is not None:
        side = rng.integers(4)
        along = rng.uniform(0.2, 0.8) * size
        sy, sx = [(0.0, along), (along, size), (size, along), (along, 0.0)][side]
        sr = rng.uniform(0.18, 0.3) * size
        sticker_mask = np.hypot(yy - sy, xx - sx) <= sr
        rgb[sticker_mask] = _STICKERS[sticker]
    if vignette:
        rv = rng.uniform(0.5, 0.62) * size
        dist = np.hypot(yy - size / 2, xx - size / 2)
        fall = np.clip((dist - rv) / (0.04 * size), 0.0, 1.0)
        rgb = rgb * (1 - 0.92 * fall[..., None])
        vignette_mask = fall > 0
    else:
        vignette_mask = np.zeros((size, size), dtype=bool)
    rgb = rgb + rng.normal(0.0, pixel_noise, size=rgb.shape)
    from scipy import ndimage

    other = ndimage.binary_dilation((alpha > 0) | hair_mask | sticker_mask, iterations=3)
    masks = {
        "lesion": alpha > 0.5,
        "hair": hair_mask,
        "sticker": sticker_mask,
        "vignette": vignette_mask,
        "skin": ~other & ~vignette_mask,
    }
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8), masks


def _check_groups(name: str, probs: Mapping[str, float]) -> dict[str, float]:
    if set(probs) != {"light", "dark"} or not all(0.0 <= float(p) <= 1.0 for p in probs.values()):
        raise ValueError(f"{name} must map 'light' and 'dark' to values in [0, 1], got {dict(probs)}.")
    return {k: float(v) for k, v in probs.items()}


_PROB_PARAMS = (
    "repeat_prob",
    "dark_fraction",
    "hair_prob",
    "vignette_prob",
    "sticker_prob",
    "unknown_age_prob",
    "unknown_sex_prob",
)


def _check_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the per-group maps validated and as floats.

    Raises:
        ValueError: for invalid sizes or probabilities.
    """
    for name in ("prevalence", "malignant_contrast", "label_noise"):
        params[name] = _check_groups(name, params[name])
    n_lesions, size, jpeg_quality = params["n_lesions"], params["size"], params["jpeg_quality"]
    if n_lesions < 1 or size < 32 or not 1 <= jpeg_quality <= 100:
        raise ValueError(f"need n_lesions >= 1, size >= 32 and jpeg_quality in 1..100; got {n_lesions}, {size}.")
    for name in _PROB_PARAMS:
        if not 0.0 <= params[name] <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {params[name]}.")
    return params


@dataclass(frozen=True)
class _Lesion:
    """One lesion's draws: skin group and colour, truth and recorded diagnosis, metadata and rendering settings."""

    lesion_id: str
    group: str
    skin: tuple[float, float, float]
    malignant: bool
    contrast: float
    irregularity: float
    veil: bool
    flipped: bool
    recorded_malignant: bool
    dx: str
    dx_type: str
    age: str
    sex: str
    site: str
    radius: float
    n_images: int


def _draw_lesion(rng: np.random.Generator, p: dict[str, Any], index: int) -> _Lesion:
    """Draw a lesion (the draw order fixes the dataset of a seed); the planted bias enters here."""
    group = "dark" if rng.random() < p["dark_fraction"] else "light"
    skin = _sample_skin(rng, dark=group == "dark")
    malignant = bool(rng.random() < p["prevalence"][group])
    strength = p["malignant_contrast"][group] if malignant else 0.0
    contrast = rng.uniform(10.0, 18.0) if not malignant else 12.0 + 22.0 * strength + rng.uniform(-3.0, 3.0)
    irregularity = 0.5 + 2.5 * strength
    veil = malignant and rng.random() < 0.8 * strength
    flipped = bool(rng.random() < p["label_noise"][group])
    recorded_malignant = malignant != flipped
    dx_set = _MALIGNANT_DX if recorded_malignant else _BENIGN_DX
    dx = str(rng.choice(list(dx_set), p=list(dx_set.values())))
    dx_type = "histo" if recorded_malignant else str(rng.choice(["follow_up", "histo", "consensus", "confocal"]))
    age = float(np.clip(5 * round((rng.normal(62, 12) if malignant else rng.normal(45, 15)) / 5), 5, 85))
    age_text = "" if rng.random() < p["unknown_age_prob"] else f"{age:.1f}"
    sex = "unknown" if rng.random() < p["unknown_sex_prob"] else str(rng.choice(["male", "female"]))
    site = str(rng.choice(_SITES))
    radius = rng.uniform(0.12, 0.22)
    n_images = 2 if rng.random() < p["repeat_prob"] else 1
    return _Lesion(
        f"HAM_{index:07d}",
        group,
        skin,
        malignant,
        contrast,
        irregularity,
        veil,
        flipped,
        recorded_malignant,
        dx,
        dx_type,
        age_text,
        sex,
        site,
        radius,
        n_images,
    )


def _write_image(
    rng: np.random.Generator, p: dict[str, Any], lesion: _Lesion, image_id: str, img_dir: Path
) -> dict[str, Any]:
    """Render and save one image of ``lesion``; returns its ``ita_truth.csv`` row."""
    from PIL import Image

    hair = int(rng.integers(1, 9)) if rng.random() < p["hair_prob"] else 0
    vignette = bool(rng.random() < p["vignette_prob"])
    sticker = str(rng.choice(list(_STICKERS))) if rng.random() < p["sticker_prob"] else None
    rgb, masks = render_dermoscopy(
        rng,
        p["size"],
        lesion.skin,
        lesion.contrast,
        lesion.irregularity,
        lesion.veil,
        hair,
        vignette,
        sticker,
        p["pixel_noise"],
        lesion.radius,
    )
    path = img_dir / f"{image_id}.jpg"
    Image.fromarray(rgb).save(path, quality=p["jpeg_quality"])
    # JPEG shifts flat colours (colour-space rounding, chroma quantisation), which at small b* moves ITA: also
    # record the skin colour as it is in the file, measured over the known pure-skin pixels (an oracle mask,
    # independent of any ITA estimator)
    with Image.open(path) as im:
        decoded = srgb_to_lab(np.asarray(im.convert("RGB"))[masks["skin"]])
    # the mean, not the median: JPEG leaves chroma in discrete b* steps, and a median snaps to one of them
    l_file, b_file = float(decoded[:, 0].mean()), float(decoded[:, 2].mean())
    L, a, b = lesion.skin
    return {
        "image_id": image_id,
        "image": f"HAM10000_images_part_1/{image_id}.jpg",
        "l_star": L,
        "a_star": a,
        "b_star": b,
        "ita_true": math.degrees(math.atan((L - 50.0) / b)),
        "l_star_file": l_file,
        "b_star_file": b_file,
        "ita_file": math.degrees(math.atan((l_file - 50.0) / b_file)),
        "skin_group": lesion.group,
        "malignant_true": int(lesion.malignant),
        "malignant_recorded": int(lesion.recorded_malignant),
        "label_flipped": int(lesion.flipped),
        "lesion_contrast": lesion.contrast,
        "hair": hair,
        "vignette": int(vignette),
        "sticker": sticker or "",
        "sticker_pixels": int(masks["sticker"].sum()),
    }


def _write_tables(out: Path, meta: list[list], gt: list[list], truth: list[dict[str, Any]]) -> pd.DataFrame:
    """Write the HAM10000 metadata, the ISIC 2018 ground truth and ``ita_truth.csv``; returns the truth table."""
    meta_df = pd.DataFrame(meta, columns=["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"])
    meta_df.to_csv(out / "HAM10000_metadata.csv", index=False)
    gt_dir = out / "ISIC2018_Task3_Training_GroundTruth"
    pd.DataFrame(gt, columns=["image", *_GT_COLUMNS]).to_csv(
        gt_dir / "ISIC2018_Task3_Training_GroundTruth.csv", index=False
    )
    truth_df = pd.DataFrame(truth)
    truth_df.to_csv(out / "ita_truth.csv", index=False)
    return truth_df


def _completion_info(seed: int, params: dict[str, Any], truth_df: pd.DataFrame) -> dict[str, Any]:
    """The ``DEMO_COMPLETE.json`` record: parameters, planted bias and per-group counts."""
    counts = {
        g: {
            "images": int((truth_df["skin_group"] == g).sum()),
            "malignant_true": int(truth_df.loc[truth_df["skin_group"] == g, "malignant_true"].sum()),
            "label_flipped": int(truth_df.loc[truth_df["skin_group"] == g, "label_flipped"].sum()),
        }
        for g in ("light", "dark")
    }
    return {
        "dataset": "isic",
        "layout": "ISIC 2018 Task 3 / HAM10000",
        "seed": seed,
        "params": params,
        "groups": "skin tone by ITA: light > 45 >= dark (binary45); true ITA per image in ita_truth.csv",
        "planted_bias": {
            "prevalence": f"P(malignant | skin group) = {params['prevalence']}",
            "malignant_contrast": "malignant lesions are 12 + 22*c L* darker than skin (benign 10..18), border "
            f"irregularity and blue-grey veil scaled by c; c per group = {params['malignant_contrast']}",
            "label_noise": f"recorded dx switched between malignant/benign sets with p = {params['label_noise']}",
        },
        "counts": counts,
        "n_images": len(truth_df),
        "note": "synthetic demo data: results on it are not ISIC results",
    }


def make_isic_demo(
    root: str | Path | None = None,
    seed: int = 0,
    n_lesions: int = ISIC_DEMO_DEFAULTS["n_lesions"],
    repeat_prob: float = ISIC_DEMO_DEFAULTS["repeat_prob"],
    size: int = ISIC_DEMO_DEFAULTS["size"],
    dark_fraction: float = ISIC_DEMO_DEFAULTS["dark_fraction"],
    prevalence: Mapping[str, float] | None = None,
    malignant_contrast: Mapping[str, float] | None = None,
    label_noise: Mapping[str, float] | None = None,
    hair_prob: float = ISIC_DEMO_DEFAULTS["hair_prob"],
    vignette_prob: float = ISIC_DEMO_DEFAULTS["vignette_prob"],
    sticker_prob: float = ISIC_DEMO_DEFAULTS["sticker_prob"],
    pixel_noise: float = ISIC_DEMO_DEFAULTS["pixel_noise"],
    unknown_age_prob: float = ISIC_DEMO_DEFAULTS["unknown_age_prob"],
    unknown_sex_prob: float = ISIC_DEMO_DEFAULTS["unknown_sex_prob"],
    jpeg_quality: int = ISIC_DEMO_DEFAULTS["jpeg_quality"],
) -> Path:
    """Generate (or reuse) the demo ISIC 2018 / HAM10000 dataset; deterministic per seed and parameters.

    Skin tone groups follow the ``binary45`` scheme: "dark" skin has ITA <= 45 (a fraction ``dark_fraction`` of
    lesions, ITA in (-25, 45]), "light" skin ITA > 45. Planted bias (all tunable, defaults in
    :data:`ISIC_DEMO_DEFAULTS`, written into ``DEMO_COMPLETE.json``):

    * group-dependent prevalence: ``P(malignant | group) = prevalence[group]`` (default light 0.35, dark 0.20);
    * weaker malignant cues on dark skin: a malignant lesion is ``12 + 22 * malignant_contrast[group]`` L* darker
      than the skin (benign ones 10..18 darker), with border irregularity and a blue-grey veil scaled the same way
      (default light 1.0, dark 0.4), so malignant lesions on dark skin look more like benign ones;
    * group-dependent label noise: the recorded diagnosis switches between the malignant (mel, bcc, akiec) and
      benign (nv, bkl, df, vasc) sets with probability ``label_noise[group]`` (default light 0, dark 0.1). The
      images and ``ita_truth.csv`` (``malignant_true``) keep the truth.

    Age is older for malignant lesions (N(62, 12) vs N(45, 15) years, in 5-year steps as in HAM10000); sex is
    balanced. A fraction of lesions is imaged twice (``repeat_prob``), sharing a ``lesion_id``, as in HAM10000.

    Args:
        root: output folder; None uses the demo cache (see :func:`monai_fair.data.demo.cached_demo_dir`).
        seed: random seed.
        n_lesions: number of lesions.
        repeat_prob: probability that a lesion has a second image.
        size: image side in pixels.
        dark_fraction: fraction of lesions on dark skin (ITA <= 45).
        prevalence: malignant prevalence per skin group (``"light"``, ``"dark"``).
        malignant_contrast: strength of the malignant cues per group, in [0, 1].
        label_noise: probability per group that the recorded diagnosis is from the wrong (benign/malignant) set.
        hair_prob: probability that an image has hair (1..8 strands).
        vignette_prob: probability of a dark vignette outside a circular field of view.
        sticker_prob: probability of a coloured sticker at the border.
        pixel_noise: per-pixel RGB noise standard deviation (0..255 scale).
        unknown_age_prob: fraction of lesions with a missing age.
        unknown_sex_prob: fraction of lesions with sex ``unknown``.
        jpeg_quality: JPEG quality of the written images.

    Returns:
        the dataset folder.

    Raises:
        ValueError: for invalid sizes or probabilities.
    """
    params = _check_params(
        {
            "n_lesions": n_lesions,
            "repeat_prob": repeat_prob,
            "size": size,
            "dark_fraction": dark_fraction,
            "prevalence": prevalence or ISIC_DEMO_DEFAULTS["prevalence"],
            "malignant_contrast": malignant_contrast or ISIC_DEMO_DEFAULTS["malignant_contrast"],
            "label_noise": label_noise or ISIC_DEMO_DEFAULTS["label_noise"],
            "hair_prob": hair_prob,
            "vignette_prob": vignette_prob,
            "sticker_prob": sticker_prob,
            "pixel_noise": pixel_noise,
            "unknown_age_prob": unknown_age_prob,
            "unknown_sex_prob": unknown_sex_prob,
            "jpeg_quality": jpeg_quality,
        }
    )
    out, done = cached_demo_dir(root, "isic", seed, params)
    if done:
        import json

        # an explicit root is not keyed by the parameters: never serve a demo generated with other ones
        stored = json.loads((out / "DEMO_COMPLETE.json").read_text())
        if stored.get("seed") != seed or stored.get("params") != json.loads(json.dumps(params, default=str)):
            raise ValueError(
                f"{out} holds an ISIC demo generated with other parameters (seed {stored.get('seed')}, "
                f"{stored.get('params')}); choose another folder (--demo_dir) or delete it."
            )
        return out
    img_dir = out / "HAM10000_images_part_1"
    gt_dir = out / "ISIC2018_Task3_Training_GroundTruth"
    img_dir.mkdir(parents=True, exist_ok=True)
    gt_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    meta, gt, truth = [], [], []
    image_index = 24306  # HAM10000 image ids start at ISIC_0024306
    for index in range(n_lesions):
        lesion = _draw_lesion(rng, params, index)
        for _ in range(lesion.n_images):
            image_id = f"ISIC_{image_index:07d}"
            image_index += 1
            truth.append(_write_image(rng, params, lesion, image_id, img_dir))
            meta.append([lesion.lesion_id, image_id, lesion.dx, lesion.dx_type, lesion.age, lesion.sex, lesion.site])
            gt.append([image_id] + [1.0 if c.lower() == lesion.dx else 0.0 for c in _GT_COLUMNS])
    truth_df = _write_tables(out, meta, gt, truth)
    mark_complete(out, _completion_info(seed, params, truth_df))
    return out
