# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""ITA skin-tone labelling: recovery of the known ITA of rendered skin, NaN-with-reason cases, the dictionary
transform, and real ISIC 2017 images (stickers excluded, plausible distribution). The colour maths is tested in
``tests/data/test_colour.py``."""

from __future__ import annotations

import math
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch
from parameterized import parameterized
from scipy import ndimage
from skimage.color import rgb2hsv

from monai_fair.data.demo.isic import _sample_skin, render_dermoscopy
from monai_fair.transforms.ita import (
    OutsideLesionSampler,
    PatchSampler,
    SkinColourGate,
    SkinToneITAd,
    as_rgb_uint8,
    compute_ita,
    ita_category,
    load_rgb,
    make_skin_sampler,
    srgb_to_lab,
)

SHARED_VAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "isic2017_val"
# validation images with a coloured sticker (blue, yellow, orange, green, cyan discs at the border)
STICKER_IMAGES = ("ISIC_0001769", "ISIC_0001852", "ISIC_0001871", "ISIC_0006651", "ISIC_0006671", "ISIC_0008025")


def _rendered(n: int, seed: int, stickers: bool = True) -> list[tuple[np.ndarray, float, dict]]:
    """Synthetic dermoscopy with known skin colour: lesion, hair, vignette and stickers."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        skin = _sample_skin(rng, dark=bool(i % 2))
        sticker = [None, "blue", "orange", "yellow", "green"][i % 5] if stickers else None
        rgb, masks = render_dermoscopy(
            rng,
            128,
            skin,
            lesion_contrast=float(rng.uniform(10, 35)),
            irregularity=1.5,
            blue_veil=i % 3 == 0,
            hair=int(rng.integers(1, 8)),
            vignette=i % 2 == 0,
            sticker=sticker,
        )
        out.append((rgb, math.degrees(math.atan((skin[0] - 50) / skin[2])), masks))
    return out


def _sticker_oracle(rgb: np.ndarray) -> np.ndarray:
    """Sticker pixels by an independent HSV rule: non-skin hue with some saturation, or strongly saturated."""
    hsv = rgb2hsv(rgb)
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    st = ((h > 0.15) & (h < 0.9) & (s > 0.25)) | ((s > 0.6) & (v > 0.5))
    return ndimage.binary_opening(st, iterations=2)


class TestSamplersOnRenderedSkin(unittest.TestCase):
    def test_outside_lesion_recovers_the_rendered_ita(self):
        errors = []
        for rgb, truth, _ in _rendered(20, seed=3):
            res = OutsideLesionSampler()(rgb)
            self.assertEqual(res.reason, "")
            errors.append(res.ita - truth)
        self.assertLess(float(np.max(np.abs(errors))), 1.0, np.round(errors, 2))

    def test_patch_sampler_recovers_the_rendered_ita(self):
        errors = [PatchSampler()(rgb).ita - truth for rgb, truth, _ in _rendered(10, seed=4)]
        self.assertLess(float(np.max(np.abs(errors))), 1.0, np.round(errors, 2))

    def test_ght_threshold_and_given_mask(self):
        for rgb, truth, masks in _rendered(6, seed=5):
            self.assertLess(abs(OutsideLesionSampler(threshold="ght")(rgb).ita - truth), 1.0)
            lesion = masks["lesion"] | masks["hair"]
            res = OutsideLesionSampler(threshold="none")(rgb, lesion_mask=lesion)
            self.assertLess(abs(res.ita - truth), 1.0)
            self.assertFalse((res.mask & masks["lesion"]).any())

    def test_gate_excludes_rendered_stickers(self):
        for rgb, _, masks in _rendered(10, seed=6):
            if not masks["sticker"].any():
                continue
            res = OutsideLesionSampler()(rgb)
            self.assertFalse((res.mask & masks["sticker"]).any())
        # without the gate, the sticker is taken for skin (so the gate is what removes it)
        rgb, _, masks = _rendered(5, seed=6)[2]  # an orange sticker inside the field of view
        self.assertTrue((OutsideLesionSampler(gate=None)(rgb).mask & masks["sticker"]).any())

    def test_confidence_record_and_mask(self):
        rgb, _, _ = _rendered(1, seed=7)[0]
        res = OutsideLesionSampler()(rgb)
        conf = res.confidence
        self.assertEqual(set(conf), {"n_pixels", "frac_kept", "l_star", "b_star", "l_std", "b_std", "reason"})
        self.assertEqual(res.mask.shape, rgb.shape[:2])
        self.assertEqual(int(res.mask.sum()), res.n_pixels)
        self.assertTrue(0 < res.frac_kept < 1)
        self.assertGreater(res.l_std, 0)
        self.assertEqual(res.sampler, "outside_lesion")

    def test_gray_world_measures_balanced_b_star(self):
        # kept skin of one colour next to bluish field-of-view pixels: gray world (channel means over the bright field
        # of view) gives the skin a known colour whose a* and b* differ; the measurement must read b*, not a*
        from skimage.color import rgb2lab

        skin, other = np.array([0.8, 0.6, 0.5]), np.array([0.5, 0.6, 0.9])
        pixels = np.concatenate([np.tile(skin, (100, 1)), np.tile(other, (100, 1))]).astype(np.float32)
        bright = np.ones(200, dtype=bool)
        keep = np.arange(200) < 100
        means = pixels.astype(np.float64).mean(0)
        balanced_skin = np.clip(skin * means.mean() / means, 0, 1)
        l_ref, a_ref, b_ref = rgb2lab(balanced_skin.reshape(1, 1, 3))[0, 0]
        self.assertGreater(abs(a_ref - b_ref), 5.0)  # the test can tell the two apart
        sampler = OutsideLesionSampler(gray_world=True)
        lab = srgb_to_lab(pixels)
        ita, l_val, b_val, _, _ = sampler._measure(pixels, lab, bright, keep)
        self.assertAlmostEqual(b_val, b_ref, delta=0.05)
        self.assertAlmostEqual(l_val, l_ref, delta=0.05)
        self.assertAlmostEqual(ita, math.degrees(math.atan((l_ref - 50) / b_ref)), delta=0.1)

    def test_gray_world_option_runs(self):
        rgb, _, _ = _rendered(1, seed=8)[0]
        res = OutsideLesionSampler(gray_world=True)(rgb)
        self.assertTrue(math.isfinite(res.ita))
        # balanced skin is nearly grey: b* shrinks towards 0
        self.assertLess(abs(res.b_star), abs(OutsideLesionSampler()(rgb).b_star))


class TestOtsuFastPath(unittest.TestCase):
    def test_matches_skimage_otsu(self):
        from skimage.filters import threshold_otsu

        from monai_fair.transforms.ita import _otsu_threshold

        rng = np.random.default_rng(0)
        for _ in range(300):
            k = int(rng.integers(3, 120))
            counts = rng.integers(0, 40, k).astype(float) * (rng.random(k) < 0.7)
            counts[[0, -1]] += 1.0
            centers = np.sort(rng.uniform(0, 100, k))
            ours = _otsu_threshold(counts, centers)
            w0 = np.cumsum(counts)[:-1]
            between = (
                w0
                * (counts.sum() - w0)
                * (
                    np.cumsum(counts * centers)[:-1] / w0
                    - ((counts * centers).sum() - np.cumsum(counts * centers)[:-1]) / (counts.sum() - w0)
                )
                ** 2
            )
            tied = centers[:-1][np.isclose(between, between.max(), rtol=1e-12)]
            self.assertIn(threshold_otsu(hist=(counts, centers)), tied)
            self.assertAlmostEqual(ours, float(tied.mean()), places=9)


class TestNoUsableSkin(unittest.TestCase):
    def test_all_lesion_mask_is_nan_with_reason(self):
        rgb, _, _ = _rendered(1, seed=9)[0]
        res = compute_ita(rgb, lesion_mask=np.ones(rgb.shape[:2], dtype=bool))
        self.assertTrue(math.isnan(res.ita))
        self.assertIn("lesion covers", res.reason)
        self.assertEqual(res.n_pixels, 0)
        res = PatchSampler()(rgb, lesion_mask=np.ones(rgb.shape[:2], dtype=bool))
        self.assertTrue(math.isnan(res.ita))
        self.assertTrue(res.reason)

    @parameterized.expand(
        [
            ("blue", (30, 90, 220), "skin-coloured"),
            ("black", (0, 0, 0), "no usable pixels"),
            ("white", (255, 255, 255), "no usable pixels"),
            ("grey", (128, 128, 128), "skin-coloured"),
        ]
    )
    def test_non_skin_images(self, _, colour, reason):
        img = np.zeros((64, 64, 3), dtype=np.uint8) + np.array(colour, dtype=np.uint8)
        for sampler in (OutsideLesionSampler(), PatchSampler()):
            res = sampler(img)
            self.assertTrue(math.isnan(res.ita), sampler.name)
            self.assertTrue(res.reason)
        self.assertIn(reason, OutsideLesionSampler()(img).reason)
        self.assertEqual(ita_category(OutsideLesionSampler()(img).ita, "binary45"), -1)


class TestInputsAndTransform(unittest.TestCase):
    def test_as_rgb_uint8(self):
        img = np.random.default_rng(0).integers(0, 256, (3, 8, 10)).astype(np.uint8)
        self.assertEqual(as_rgb_uint8(img).shape, (8, 10, 3))
        np.testing.assert_array_equal(as_rgb_uint8(torch.as_tensor(img).float() / 255.0), np.moveaxis(img, 0, -1))
        np.testing.assert_array_equal(as_rgb_uint8(np.moveaxis(img, 0, -1).astype(float)), np.moveaxis(img, 0, -1))
        with self.assertRaises(ValueError):
            as_rgb_uint8(np.zeros((8, 8)))
        with self.assertRaises(ValueError):
            as_rgb_uint8(np.full((3, 4, 4), np.nan))

    def test_load_rgb_downscales_large_images(self):
        from PIL import Image

        rng = np.random.default_rng(0)
        big = np.clip(np.array([200, 150, 120]) + rng.normal(0, 3, (700, 1000, 3)), 0, 255).astype(np.uint8)
        with tempfile.TemporaryDirectory() as tmp:
            for name in ("big.jpg", "big.png"):
                Image.fromarray(big).save(Path(tmp) / name)
                small = load_rgb(Path(tmp) / name, max_side=256)
                self.assertEqual(small.dtype, np.uint8)
                self.assertEqual(max(small.shape[:2]), 256)
                self.assertAlmostEqual(small.shape[0] / small.shape[1], 0.7, delta=0.01)
                np.testing.assert_allclose(small.reshape(-1, 3).mean(axis=0), [200, 150, 120], atol=2.5)  # JPEG shift
            self.assertEqual(load_rgb(Path(tmp) / "big.png", max_side=None).shape, big.shape)
            (Path(tmp) / "bad.jpg").write_bytes(b"nope")
            with self.assertRaises(OSError):
                load_rgb(Path(tmp) / "bad.jpg")

    def test_make_skin_sampler(self):
        self.assertIsInstance(make_skin_sampler("patches", inset=5), PatchSampler)
        s = OutsideLesionSampler()
        self.assertIs(make_skin_sampler(s), s)
        with self.assertRaises(ValueError):
            make_skin_sampler("kmeans_magic")
        with self.assertRaises(ValueError):
            OutsideLesionSampler(threshold="li")
        with self.assertRaises(ValueError):
            SkinColourGate(hue_range=(0, 200)).absolute(np.zeros(2), np.zeros(2))

    def test_dictionary_transform(self):
        rgb, truth, masks = _rendered(1, seed=10)[0]
        t = SkinToneITAd(keys="image", scheme="kinyanjui_fitz6", confidence_key="ita_conf")
        d = t({"image": torch.as_tensor(np.moveaxis(rgb, -1, 0)).float() / 255.0, "label": 1})
        self.assertAlmostEqual(d["ita"], truth, delta=1.0)
        self.assertEqual(d["ita_group"], ita_category(d["ita"], "kinyanjui_fitz6"))
        self.assertEqual(d["ita_conf"]["reason"], "")
        self.assertEqual(d["label"], 1)
        full = np.ones((1,) + rgb.shape[:2], dtype=np.uint8)
        d = SkinToneITAd(keys="image", mask_key="seg")({"image": np.moveaxis(rgb, -1, 0), "seg": full})
        self.assertTrue(math.isnan(d["ita"]))
        self.assertEqual(d["ita_group"], -1)


@unittest.skipUnless(SHARED_VAL.is_dir(), f"shared ISIC 2017 validation images not found at {SHARED_VAL}")
class TestRealISIC2017(unittest.TestCase):
    def test_sticker_pixels_are_excluded(self):
        sampler = OutsideLesionSampler()
        for name in STICKER_IMAGES:
            rgb = load_rgb(SHARED_VAL / f"{name}.jpg")
            sticker = _sticker_oracle(rgb)
            core = ndimage.binary_erosion(sticker, iterations=3)
            self.assertGreater(core.sum(), 1000, name)  # the oracle finds the sticker
            res = sampler(rgb)
            self.assertEqual(int((res.mask & core).sum()), 0, name)
            self.assertLess((res.mask & sticker).sum(), 0.01 * sticker.sum(), name)
            self.assertTrue(10.0 < res.ita < 75.0, (name, res.ita))
            # the kept pixels are skin-coloured: hue in the red-yellow quadrant
            lab = srgb_to_lab(rgb[res.mask])
            self.assertGreater(float(np.median(lab[:, 2])), 0.0)

    def test_population_distribution_is_plausible(self):
        files = sorted(SHARED_VAL.glob("*.jpg"))
        self.assertGreaterEqual(len(files), 100)
        sampler = OutsideLesionSampler(return_mask=False)
        results = [sampler(load_rgb(f)) for f in files]
        ita = np.array([r.ita for r in results])
        finite = np.isfinite(ita)
        self.assertGreaterEqual(finite.mean(), 0.95)
        self.assertTrue(all(r.reason for r, ok in zip(results, finite) if not ok))
        median = float(np.median(ita[finite]))
        self.assertTrue(30.0 <= median <= 60.0, median)
        # mostly light skin: Fitzpatrick-like types I-III (ITA > 28) for most images
        types = ita_category(ita[finite], "kinyanjui_fitz6")
        self.assertGreaterEqual(float(np.isin(types, (0, 1, 2)).mean()), 0.7)


if __name__ == "__main__":
    unittest.main()
