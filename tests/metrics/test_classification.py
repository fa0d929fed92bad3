# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Per-group support-weighted precision/recall/F1 against scikit-learn, Pearson's r against scipy."""

from __future__ import annotations

import math
import unittest

import numpy as np
import torch
from scipy.stats import pearsonr
from sklearn.metrics import precision_recall_fscore_support

from monai_fair.metrics import compute_group_weighted_prf, compute_weighted_prf, pearson_r


class TestWeightedPRF(unittest.TestCase):
    def test_matches_sklearn_binary_and_multiclass(self):
        rng = np.random.default_rng(0)
        for k in (2, 7):
            y = rng.integers(0, k, 300)
            p = np.where(rng.random(300) < 0.6, y, rng.integers(0, k, 300))
            p[p == k - 1] = 0  # a class never predicted: zero_division=0
            ours = compute_weighted_prf(torch.tensor(p), torch.tensor(y), num_classes=k)
            ref = precision_recall_fscore_support(y, p, average="weighted", zero_division=0, labels=list(range(k)))
            for i, key in enumerate(("precision", "recall", "f1")):
                self.assertAlmostEqual(ours[key], ref[i], places=10, msg=(k, key))

    def test_per_group(self):
        rng = np.random.default_rng(1)
        y, p, g = rng.integers(0, 2, 200), rng.integers(0, 2, 200), rng.integers(-1, 2, 200)
        out = compute_group_weighted_prf(p, y, g, num_classes=2)
        self.assertEqual(sorted(out), [0, 1])  # unknown (-1) left out
        for c in (0, 1):
            ref = precision_recall_fscore_support(y[g == c], p[g == c], average="weighted", zero_division=0)
            self.assertAlmostEqual(out[c]["f1"], ref[2], places=10)
            self.assertEqual(out[c]["n"], float((g == c).sum()))
        absent = compute_group_weighted_prf(p, y, g, group_codes=[5])[5]
        self.assertTrue(math.isnan(absent["precision"]))

    def test_length_mismatch(self):
        with self.assertRaisesRegex(ValueError, "length"):
            compute_weighted_prf([0, 1], [0])


class TestPearson(unittest.TestCase):
    def test_matches_scipy_and_degenerate_cases(self):
        rng = np.random.default_rng(2)
        x = rng.normal(size=50)
        y = 0.5 * x + rng.normal(size=50)
        self.assertAlmostEqual(pearson_r(x, y), pearsonr(x, y)[0], places=10)
        y_nan = y.copy()
        y_nan[3] = np.nan
        keep = np.isfinite(y_nan)
        self.assertAlmostEqual(pearson_r(x, y_nan), pearsonr(x[keep], y_nan[keep])[0], places=10)
        self.assertTrue(math.isnan(pearson_r(x, np.ones(50))))
        self.assertTrue(math.isnan(pearson_r([1.0, 2.0], [2.0, 1.0])))


if __name__ == "__main__":
    unittest.main()
