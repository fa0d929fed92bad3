# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Generalized Histogram Thresholding: its Otsu, MET and percentile limits against independent oracles, the
invariances of the paper, tie handling and a brute-force loop implementation."""

from __future__ import annotations

import math
import unittest
from pathlib import Path

import numpy as np
import skimage.data
from parameterized import parameterized
from skimage.color import rgb2gray
from skimage.exposure import histogram
from skimage.filters import threshold_otsu

from monai_fair.transforms.ght import MET_CASE, OTSU_CASE, ght_scores, percentile_case, threshold_ght

SHARED_VAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "isic2017_val"


def _images() -> dict[str, np.ndarray]:
    astro = rgb2gray(skimage.data.astronaut())
    rng = np.random.default_rng(0)
    return {
        "camera": skimage.data.camera(),
        "coins": skimage.data.coins(),
        "moon": skimage.data.moon(),
        "page": skimage.data.page(),
        "text": skimage.data.text(),
        "astronaut_u8": (astro * 255).astype(np.uint8),
        "astronaut_float": astro,
        "noisy_horse": skimage.data.horse().astype(float) + rng.normal(0, 0.1, skimage.data.horse().shape),
    }


def _loop_scores(n, x, nu, tau, kappa, omega):
    """Direct per-split evaluation of the GHT score, class statistics computed from scratch."""
    n, x = np.asarray(n, float), np.asarray(x, float)
    out = []
    for i in range(len(n) - 1):
        total = 0.0
        for idx, om in ((slice(0, i + 1), omega), (slice(i + 1, None), 1 - omega)):
            w = max(n[idx].sum(), 1e-30)
            mu = (n[idx] * x[idx]).sum() / w
            d = (n[idx] * (x[idx] - mu) ** 2).sum()
            p = w / max(n.sum(), 1e-30)
            v = max((p * nu * tau**2 + d) / (p * nu + w), 1e-30)
            total += -d / v - w * math.log(v) + 2 * (w + kappa * om) * math.log(w)
        out.append(total)
    return np.array(out)


class TestGHTLimits(unittest.TestCase):
    @parameterized.expand([(k,) for k in _images()])
    def test_otsu_case_matches_skimage(self, name):
        img = _images()[name]
        thr, scores = threshold_ght(img, **OTSU_CASE, return_scores=True)
        _, centers = histogram(img.ravel(), 256, source_range="image")
        tied = centers[:-1][scores == scores.max()]
        ref = threshold_otsu(img)
        # skimage returns the first of tied splits (empty bins), GHT the mean of the tied centres
        self.assertTrue(np.isclose(tied, ref).any(), f"{name}: Otsu {ref} not among tied GHT splits {tied}")
        self.assertAlmostEqual(thr, float(tied.mean()), places=9)
        if len(tied) == 1:
            self.assertAlmostEqual(thr, float(ref), places=9)

    def test_otsu_case_on_real_dermoscopy(self):
        if not SHARED_VAL.is_dir():
            self.skipTest(f"shared ISIC data not found at {SHARED_VAL}")
        from PIL import Image

        files = sorted(SHARED_VAL.glob("*.jpg"))[::25]
        self.assertGreater(len(files), 3)
        for f in files:
            grey = np.asarray(Image.open(f).convert("L"))
            thr, scores = threshold_ght(grey, **OTSU_CASE, return_scores=True)
            _, centers = histogram(grey.ravel(), 256, source_range="image")
            tied = centers[:-1][scores == scores.max()]
            self.assertTrue(np.isclose(tied, threshold_otsu(grey)).any(), f.name)

    @parameterized.expand([("camera", 0.3), ("coins", 0.5), ("moon", 0.8), ("page", 0.1), ("astronaut_u8", 0.3)])
    def test_large_kappa_is_the_percentile(self, name, omega):
        img = _images()[name]
        thr = threshold_ght(img, **percentile_case(omega))
        ref = np.percentile(img, 100 * omega)
        # the omega-quantile falls between two neighbouring integer levels; GHT returns one of them
        self.assertLessEqual(abs(thr - ref), 1.0)
        frac_below = (img <= thr).mean()
        lower = (img < thr).mean()
        self.assertTrue(lower - 1e-12 <= omega or frac_below >= omega)

    def test_percentile_exact_on_astronaut(self):
        img = _images()["astronaut_u8"]
        self.assertEqual(threshold_ght(img, **percentile_case(0.3)), float(np.percentile(img, 30)))

    def test_met_case_matches_kittler_illingworth(self):
        rng = np.random.default_rng(1)
        x = np.arange(64, dtype=float)
        agree = 0
        trials = 30
        for _ in range(trials):
            m0, m1 = rng.uniform(10, 25), rng.uniform(35, 55)
            s0, s1 = rng.uniform(2, 6), rng.uniform(2, 6)
            p = rng.uniform(0.2, 0.8)
            n = 1e4 * (
                p * np.exp(-0.5 * ((x - m0) / s0) ** 2) / s0 + (1 - p) * np.exp(-0.5 * ((x - m1) / s1) ** 2) / s1
            )
            n = np.round(n) + 1.0  # no empty bins: no zero-variance end class
            # Kittler & Illingworth minimum error criterion, evaluated split by split; single-bin classes have zero
            # variance and make both criteria degenerate (log 0), so both are compared on splits with >= 2 bins
            splits = range(1, len(n) - 2)
            crit = []
            for i in splits:
                j = 1.0
                for idx in (slice(0, i + 1), slice(i + 1, None)):
                    w = n[idx].sum() / n.sum()
                    mu = (n[idx] * x[idx]).sum() / n[idx].sum()
                    var = (n[idx] * (x[idx] - mu) ** 2).sum() / n[idx].sum()
                    j += w * math.log(var) - 2 * w * math.log(w)
                crit.append(j)
            scores = ght_scores(n, x, **MET_CASE)[1 : len(n) - 2]
            agree += int(np.argmax(scores)) == int(np.argmin(crit))
        self.assertGreaterEqual(agree / trials, 0.9)


class TestGHTProperties(unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(7)
        self.n = rng.integers(0, 50, size=40).astype(float) + rng.random(40)
        self.x = np.sort(rng.uniform(-3, 9, size=40))
        self.params = {"nu": 12.0, "tau": 0.8, "kappa": 5.0, "omega": 0.3}

    def test_loop_and_cumsum_agree(self):
        for params in (self.params, OTSU_CASE, MET_CASE, {"nu": 3.0, "tau": 2.0, "kappa": 100.0, "omega": 0.9}):
            fast = ght_scores(self.n, self.x, **params)
            slow = _loop_scores(self.n, self.x, **params)
            scale = np.abs(slow).max()
            np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-9 * scale)

    def test_count_scaling_invariance(self):
        base = threshold_ght(hist=(self.n, self.x), **self.params)
        for c in (0.1, 3.0, 250.0):
            p = dict(self.params, nu=self.params["nu"] * c, kappa=self.params["kappa"] * c)
            self.assertAlmostEqual(threshold_ght(hist=(self.n * c, self.x), **p), base, places=9)

    def test_affine_invariance(self):
        base = threshold_ght(hist=(self.n, self.x), **self.params)
        for a, b in ((2.5, -7.0), (0.01, 1000.0), (40.0, 3.0)):
            p = dict(self.params, tau=self.params["tau"] * a)
            self.assertAlmostEqual(threshold_ght(hist=(self.n, a * self.x + b), **p), a * base + b, places=6)

    def test_ties_average_the_tied_centres(self):
        # two equal masses with empty bins between them: every split in the gap scores the same
        self.assertEqual(threshold_ght(hist=np.array([5.0, 0, 0, 5.0]), **OTSU_CASE), 1.0)
        self.assertEqual(
            threshold_ght(hist=(np.array([3.0, 0, 0, 0, 3.0]), np.array([0.0, 1, 2, 4, 8])), **OTSU_CASE), 1.75
        )
        # a symmetric histogram under the entropy-like percentile prior with omega 0.5 ties at the middle
        _, scores = threshold_ght(hist=np.array([1.0, 1.0, 1.0, 1.0]), return_scores=True, **percentile_case(0.5))
        self.assertEqual(int(np.argmax(scores)), 1)

    def test_counts_only_histogram_uses_index_centres(self):
        n = np.array([0, 10, 30, 5, 0, 0, 8, 40, 12, 1], dtype=float)
        self.assertEqual(threshold_ght(hist=n, **OTSU_CASE), threshold_ght(hist=(n, np.arange(10.0)), **OTSU_CASE))

    def test_constant_image(self):
        self.assertEqual(threshold_ght(np.full((4, 4), 7, dtype=np.uint8)), 7.0)

    def test_bad_input(self):
        with self.assertRaises(ValueError):
            threshold_ght()
        with self.assertRaises(ValueError):
            threshold_ght(np.array([[0.0, np.nan]]))
        with self.assertRaises(ValueError):
            threshold_ght(hist=(np.array([1.0, -1.0]), np.array([0.0, 1.0])))
        with self.assertRaises(ValueError):
            threshold_ght(hist=(np.array([1.0, 1.0]), np.array([1.0, 0.0])))
        with self.assertRaises(ValueError):
            threshold_ght(hist=np.array([1.0, 2.0]), omega=1.5)
        with self.assertRaises(ValueError):
            percentile_case(-0.1)


if __name__ == "__main__":
    unittest.main()
