# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""BA-optimal threshold search against scikit-learn's balanced_accuracy_score."""

from __future__ import annotations

import math
import unittest

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score

from monai_fair.metrics import balanced_accuracy_at_thresholds, best_balanced_accuracy_threshold, observed_thresholds


class TestThresholds(unittest.TestCase):
    def test_grid_vs_sklearn(self):
        gen = torch.Generator().manual_seed(0)
        y = (torch.rand(400, generator=gen) < 0.3).double()
        s = torch.round((torch.rand(400, generator=gen, dtype=torch.float64) * 0.7 + 0.3 * y) * 50) / 50  # ties
        grid, ba = balanced_accuracy_at_thresholds(s, y, 101)
        self.assertEqual(tuple(ba.shape), (101,))
        ref = [balanced_accuracy_score(y.numpy(), (s.numpy() > t).astype(int)) for t in grid.tolist()]
        np.testing.assert_allclose(ba.numpy(), ref, atol=1e-12)
        t_best, ba_best = best_balanced_accuracy_threshold(s, y, 101)
        self.assertEqual(t_best, float(grid[int(np.argmax(ref))]))  # first maximum, as numpy argmax
        self.assertAlmostEqual(ba_best, max(ref), places=12)

    def test_concentrated_scores_observed_search(self):
        # a narrow band just below 0.5 (as a model stuck near chance): no point of linspace(0, 1, 101) splits it
        gen = torch.Generator().manual_seed(2)
        y = (torch.rand(300, generator=gen) < 0.4).double()
        s = 0.4992 + 0.0004 * y + 0.0003 * torch.rand(300, generator=gen, dtype=torch.float64)
        s[0], y[0] = 0.4991, 1.0  # one positive below every negative: the best BA is below 1
        _, ba_grid = best_balanced_accuracy_threshold(s, y, 101)
        self.assertEqual(ba_grid, 0.5)
        t, ba = best_balanced_accuracy_threshold(s, y)
        # oracle: sklearn at every distinct score, the lowest maximum
        candidates = np.unique(s.numpy())
        ref = [balanced_accuracy_score(y.numpy(), (s.numpy() > c).astype(int)) for c in candidates]
        self.assertEqual(t, float(candidates[int(np.argmax(ref))]))
        self.assertAlmostEqual(ba, max(ref), places=12)
        self.assertGreater(ba, 0.99)
        self.assertTrue(0.499 <= t < 0.5 and t in s.tolist())  # an observed score, used as "score > t"

    def test_observed_thresholds(self):
        torch.testing.assert_close(
            observed_thresholds(torch.tensor([0.3, 0.1, 0.3, 0.2])), torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
        )
        with self.assertRaisesRegex(ValueError, "empty"):
            observed_thresholds(torch.tensor([]))
        with self.assertRaisesRegex(ValueError, "NaN"):
            observed_thresholds(torch.tensor([0.1, math.nan]))

    def test_batched_equals_rows(self):
        gen = torch.Generator().manual_seed(1)
        s = torch.rand(3, 200, generator=gen)
        y = (torch.rand(200, generator=gen) < 0.5).float()
        custom = torch.tensor([0.1, 0.3, 0.5, 0.9])
        _, ba = balanced_accuracy_at_thresholds(s, y, custom)
        self.assertEqual(tuple(ba.shape), (3, 4))
        for b in range(3):
            torch.testing.assert_close(ba[b], balanced_accuracy_at_thresholds(s[b], y, custom)[1])

    def test_single_class_and_errors(self):
        _, ba = balanced_accuracy_at_thresholds(torch.rand(10), torch.ones(10), 5)
        self.assertTrue(torch.isnan(ba).all())
        with self.assertRaisesRegex(ValueError, "single class"):
            best_balanced_accuracy_threshold(torch.rand(10), torch.zeros(10))
        with self.assertRaisesRegex(ValueError, "same length"):
            balanced_accuracy_at_thresholds(torch.rand(5), torch.tensor([0, 1, 0, 1]))
        with self.assertRaisesRegex(ValueError, "NaN"):
            balanced_accuracy_at_thresholds(torch.tensor([0.1, math.nan, 0.7]), torch.tensor([0, 1, 1]))


if __name__ == "__main__":
    unittest.main()
