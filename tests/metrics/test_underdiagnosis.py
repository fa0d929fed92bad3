# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import math
import unittest

import numpy as np
import torch
from sklearn.metrics import f1_score

from monai_fair.metrics import best_f1_threshold, combine_group_codes, compute_underdiagnosis


class TestUnderdiagnosisHandCase(unittest.TestCase):
    def setUp(self):
        # No Finding scores; label 1 = no finding, 0 = a finding; groups 0 and 1
        self.score = torch.tensor([0.9, 0.8, 0.2, 0.7, 0.1, 0.6, 0.3, 0.95, 0.4, 0.05])
        self.label = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, float("nan")])
        self.group = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])

    def test_rate_matches_hand_count(self):
        # threshold 0.5: group 0 has findings at 0.9, 0.8, 0.2, 0.7 -> 3 of 4 called "No Finding";
        # group 1 has findings at 0.6, 0.3, 0.4 (the NaN row is left out) -> 1 of 3
        res = compute_underdiagnosis(self.score, self.label, self.group, 0.5, min_group_size=1)
        self.assertEqual(res["codes"].tolist(), [0, 1])
        self.assertEqual(res["n"].tolist(), [4.0, 3.0])
        torch.testing.assert_close(res["rate"], torch.tensor([0.75, 1 / 3], dtype=torch.float64))
        self.assertEqual(res["small"].tolist(), [False, False])
        self.assertTrue(torch.isnan(res["ci_low"]).all())  # no resamples asked

    def test_small_groups_are_flagged_not_dropped(self):
        res = compute_underdiagnosis(self.score, self.label, self.group, 0.5, min_group_size=4)
        self.assertEqual(res["n"].tolist(), [4.0, 3.0])
        self.assertAlmostEqual(float(res["rate"][0]), 0.75)
        self.assertTrue(math.isnan(float(res["rate"][1])))
        self.assertEqual(res["small"].tolist(), [False, True])

    def test_declared_empty_group_and_unknown_codes(self):
        g = self.group.clone()
        g[0] = -1  # unknown: left out
        res = compute_underdiagnosis(self.score, self.label, g, 0.5, group_codes=[0, 1, 2], min_group_size=1)
        self.assertEqual(res["n"].tolist(), [3.0, 3.0, 0.0])
        self.assertAlmostEqual(float(res["rate"][0]), 2 / 3)
        self.assertTrue(math.isnan(float(res["rate"][2])))

    def test_intersection_codes(self):
        sex = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
        codes = combine_group_codes([self.group, sex])
        res = compute_underdiagnosis(self.score, self.label, codes, 0.5, min_group_size=1)
        # group 0 x sex 0: findings 0.9, 0.2 -> 1/2; 0 x 1: 0.8, 0.7 -> 2/2; 1 x 0: 0.3, 0.4 -> 0/2; 1 x 1: 0.6 -> 1/1
        self.assertEqual(res["codes"].tolist(), [0, 1, 1000, 1001])
        torch.testing.assert_close(res["rate"], torch.tensor([0.5, 1.0, 0.0, 1.0], dtype=torch.float64))

    def test_bootstrap_interval_brackets_point(self):
        rng = np.random.default_rng(0)
        s, y = torch.as_tensor(rng.random(400)), torch.as_tensor((rng.random(400) < 0.3).astype(float))
        g = torch.as_tensor(rng.integers(0, 3, 400))
        res = compute_underdiagnosis(s, y, g, 0.6, n_bootstrap=300, seed=1)
        self.assertTrue(bool((res["ci_low"] <= res["rate"]).all() and (res["rate"] <= res["ci_high"]).all()))
        again = compute_underdiagnosis(s, y, g, 0.6, n_bootstrap=300, seed=1)
        torch.testing.assert_close(res["ci_low"], again["ci_low"])


class TestBestF1Threshold(unittest.TestCase):
    def test_matches_brute_force_sklearn(self):
        rng = np.random.default_rng(3)
        for _ in range(5):
            y = (rng.random(60) < 0.3).astype(int)
            y[0] = 1
            s = np.round(rng.random(60) + 0.4 * y, 2)  # ties on purpose
            thr, f1 = best_f1_threshold(torch.as_tensor(s), torch.as_tensor(y))
            cands = np.concatenate([[s.min() - 1e-9], np.unique(s)])
            best = max(f1_score(y, (s > t).astype(int), zero_division=0) for t in cands)
            self.assertAlmostEqual(f1, best, places=10)
            self.assertAlmostEqual(f1_score(y, (s > thr).astype(int)), f1, places=10)

    def test_all_positive_can_win(self):
        thr, f1 = best_f1_threshold(torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64), torch.ones(3))
        self.assertLess(thr, 0.1)
        self.assertEqual(f1, 1.0)

    def test_no_positive_raises(self):
        with self.assertRaisesRegex(ValueError, "positive"):
            best_f1_threshold(torch.tensor([0.1, 0.2]), torch.tensor([0.0, 0.0]))


if __name__ == "__main__":
    unittest.main()
