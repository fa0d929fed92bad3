# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The evaluation core against fairlearn / scikit-learn / numpy oracles and hand-computed cases."""

from __future__ import annotations

import math
import unittest

import numpy as np
import torch
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from sklearn.metrics import balanced_accuracy_score

from monai_fair.metrics import (
    better_than_chance,
    bootstrap_weights,
    evaluate_binary_fairness,
    make_generator,
    summarize_binary_fairness,
)


def make_data(n: int, seed: int, n_groups: int = 3):
    gen = torch.Generator().manual_seed(seed)
    g = torch.randint(0, n_groups, (n,), generator=gen)
    y = (torch.rand(n, generator=gen) < 0.3 + 0.1 * g).long()
    s = torch.sigmoid((2.0 - 0.4 * g) * (2 * y - 1) + torch.randn(n, generator=gen, dtype=torch.float64))
    return s, y, g


def pooled_numpy(h: np.ndarray, y: np.ndarray, g: np.ndarray, ref: int) -> dict[str, float]:
    """Independent numpy computation of the pooled rest-vs-reference gaps (rest = known codes other than ref)."""
    r, u = g == ref, (g >= 0) & (g != ref)
    sel = h[u].mean() - h[r].mean()
    tpr = h[u & (y == 1)].mean() - h[r & (y == 1)].mean()
    fpr = h[u & (y == 0)].mean() - h[r & (y == 0)].mean()
    return {"spd": sel, "eod": tpr, "aod": 0.5 * (tpr + fpr)}


class TestAgainstOracles(unittest.TestCase):
    def test_per_group_rates_equal_fairlearn(self):
        s, y, g = make_data(600, 0)
        ev = evaluate_binary_fairness(s, y, g, reference=1, thresholds=0.45)
        yh = (s.numpy() > 0.45).astype(int)
        mf = MetricFrame(
            metrics={"sel": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
            y_true=y.numpy(),
            y_pred=yh,
            sensitive_features=g.numpy(),
        )
        for gi, code in enumerate(ev.group_codes):
            self.assertAlmostEqual(float(ev.selection_rate[0, 0, gi]), mf.by_group.loc[code, "sel"], places=14)
            self.assertAlmostEqual(float(ev.tpr[0, 0, gi]), mf.by_group.loc[code, "tpr"], places=14)
            self.assertAlmostEqual(float(ev.fpr[0, 0, gi]), mf.by_group.loc[code, "fpr"], places=14)
            eod = mf.by_group.loc[code, "tpr"] - mf.by_group.loc[1, "tpr"]
            self.assertAlmostEqual(float(ev.group_gaps["eod"][0, 0, gi]), eod, places=14)
        self.assertAlmostEqual(float(ev.balanced_accuracy[0, 0]), balanced_accuracy_score(y.numpy(), yh), places=14)
        ref = pooled_numpy(yh, y.numpy(), g.numpy(), 1)
        for k in ("spd", "eod", "aod"):
            self.assertAlmostEqual(float(getattr(ev, k)[0, 0]), ref[k], places=14)

    def test_threshold_grid_and_weights_equal_repeated_samples(self):
        s, y, g = make_data(300, 1)
        t = torch.linspace(0.05, 0.95, 7)
        w = bootstrap_weights([300], 5, stratified=False, generator=make_generator(3, "cpu"))
        ev = evaluate_binary_fairness(s, y, g, reference=0, thresholds=t, weights=w, metric="aod")
        self.assertEqual(tuple(ev.bias.shape), (5, 7))
        for b in (0, 4):
            rep = w[b].long().numpy()
            ss, yy, gg = (np.repeat(v.numpy(), rep) for v in (s, y, g))
            for ti, th in enumerate(t.tolist()):
                hh = (ss > th).astype(float)
                ref = pooled_numpy(hh, yy, gg, 0)
                self.assertAlmostEqual(float(ev.aod[b, ti]), ref["aod"], places=12)
                self.assertAlmostEqual(float(ev.bias[b, ti]), ref["aod"], places=12)
                self.assertAlmostEqual(float(ev.balanced_accuracy[b, ti]), balanced_accuracy_score(yy, hh), places=12)

    def test_group_dependent_thresholds(self):
        s, y, g = make_data(400, 2, n_groups=2)
        t = torch.tensor([0.3, 0.5, 0.7], dtype=torch.float64)
        ev = evaluate_binary_fairness(s, y, g, reference=1, thresholds={1: t + 0.1, None: t - 0.1})
        for ti, th in enumerate(t.tolist()):
            cut = np.where(g.numpy() == 1, th + 0.1, th - 0.1)
            hh = (s.numpy() > cut).astype(float)
            self.assertAlmostEqual(float(ev.eod[0, ti]), pooled_numpy(hh, y.numpy(), g.numpy(), 1)["eod"], places=14)

    def test_summary_bootstrap_interval_level(self):
        s, y, g = make_data(500, 4, n_groups=2)
        out = summarize_binary_fairness((s > 0.5).double(), y, g, 1, n_bootstrap=200, ci_level=0.5, seed=0)
        w = bootstrap_weights([500], 200, stratified=False, generator=make_generator(0, "cpu"))
        reps = evaluate_binary_fairness((s > 0.5).double(), y, g, 1, weights=w).eod[:, 0].numpy()
        # a 50 % interval spans the 25th..75th percentiles (alpha halved on each side)
        self.assertAlmostEqual(out["eod_ci_low"], float(np.quantile(reps, 0.25)), places=12)
        self.assertAlmostEqual(out["eod_ci_high"], float(np.quantile(reps, 0.75)), places=12)
        self.assertAlmostEqual(out["eod_boot_mean"], float(reps.mean()), places=12)


class TestBetterThanChance(unittest.TestCase):
    def test_reasons(self):
        s = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
        self.assertEqual(better_than_chance(s, 0.5, (0.7, 0.9)), (True, ""))
        self.assertEqual(better_than_chance(s, 0.5), (True, ""))
        # the interval contains 0.5 (boundary included)
        self.assertFalse(better_than_chance(s, 0.5, (0.45, 0.62))[0])
        ok, reason = better_than_chance(s, 0.5, (0.5, 0.62))
        self.assertFalse(ok)
        self.assertIn("contains 0.5", reason)
        self.assertTrue(better_than_chance(s, 0.5, (0.5001, 0.62))[0])
        ok, reason = better_than_chance(s, 1.0)
        self.assertEqual((ok, reason[:28]), (False, "one distinct hard prediction"))
        # IQR just below / at the bound
        band = torch.tensor([0.5, 0.5, 0.5004, 0.5009, 0.501], dtype=torch.float64)  # IQR 0.0009
        self.assertIn("near-constant", better_than_chance(band, 0.5002)[1])
        wide = torch.tensor([0.4, 0.5, 0.5, 0.502, 0.6], dtype=torch.float64)  # IQR 0.002
        self.assertTrue(better_than_chance(wide, 0.5)[0])
        self.assertIn("undefined", better_than_chance(s, 0.5, (math.nan, math.nan))[1])

    def test_summary_flags_a_chance_model(self):
        s, y, g = make_data(400, 7, n_groups=2)
        good = summarize_binary_fairness(s, y, g, 1, n_bootstrap=100, seed=0)
        self.assertEqual((good["better_than_chance"], good["chance_reason"]), (1.0, ""))
        noise = torch.rand(400, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        bad = summarize_binary_fairness(noise, y, g, 1, n_bootstrap=100, seed=0)
        self.assertEqual(bad["better_than_chance"], 0.0)
        self.assertLessEqual(bad["balanced_accuracy_ci_low"], 0.5)
        self.assertIn("contains 0.5", bad["chance_reason"])
        self.assertNotIn("better_than_chance", summarize_binary_fairness(s, y, g, 1))  # only with bootstrap


class TestPolicyAndEdgeCases(unittest.TestCase):
    # six samples, one with an unknown code: hand-computed figures of the glossary
    s = torch.tensor([0.9, 0.2, 0.8, 0.3, 0.1, 0.6])
    y = torch.tensor([1, 0, 1, 1, 0, 1])
    g = torch.tensor([1, 1, 0, 0, -1, 0])

    def test_unknown_excluded(self):
        ev = evaluate_binary_fairness(self.s, self.y, self.g, 1, thresholds=0.5)
        self.assertEqual(ev.group_codes, [0, 1])
        # known rest = group 0: TPR 2/3; reference TPR 1/1 → EOD −1/3; SPD 2/3 − 1/2
        self.assertAlmostEqual(float(ev.eod[0, 0]), 2 / 3 - 1, places=15)
        self.assertAlmostEqual(float(ev.spd[0, 0]), 2 / 3 - 1 / 2, places=15)
        self.assertTrue(math.isnan(float(ev.aod[0, 0])))  # group 0 has no negatives
        self.assertEqual(float(ev.n_unknown[0]), 1.0)
        # the overall BA counts the unknown sample: TPR 3/4, TNR 2/2
        self.assertAlmostEqual(float(ev.balanced_accuracy[0, 0]), 0.5 * (3 / 4 + 1), places=15)

    def test_unknown_as_group(self):
        ev = evaluate_binary_fairness(self.s, self.y, self.g, 1, thresholds=0.5, unknown="group")
        self.assertEqual(ev.group_codes, [-1, 0, 1])
        # rest = group 0 + unknown: selected 2 of 4; reference 1 of 2
        self.assertAlmostEqual(float(ev.spd[0, 0]), 2 / 4 - 1 / 2, places=15)
        self.assertAlmostEqual(float(ev.aod[0, 0]), 0.5 * ((0 / 1 - 0 / 1) + (2 / 3 - 1)), places=15)

    def test_small_and_empty_groups_are_nan(self):
        ev = evaluate_binary_fairness(self.s, self.y, self.g, 1, min_group_size=3, group_codes=[0, 1, 2])
        self.assertEqual(ev.group_codes, [0, 1, 2])
        self.assertTrue(math.isnan(float(ev.tpr[0, 0, 1])))  # reference has 2 < 3 samples
        self.assertTrue(math.isnan(float(ev.eod[0, 0])))
        self.assertEqual(float(ev.n[0, 2]), 0.0)
        flags = ev.flags()
        self.assertEqual(flags[2], "empty group")
        self.assertIn("too small", flags[1])
        self.assertIn("no negatives", flags[0])

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, "same length"):
            evaluate_binary_fairness(self.s, self.y[:3], self.g, 1)
        with self.assertRaisesRegex(ValueError, "binary"):
            evaluate_binary_fairness(self.s, self.y * 2, self.g, 1)
        with self.assertRaisesRegex(ValueError, "metric"):
            evaluate_binary_fairness(self.s, self.y, self.g, 1, metric="eodd")
        with self.assertRaisesRegex(ValueError, "unknown"):
            evaluate_binary_fairness(self.s, self.y, self.g, 1, unknown="drop")
        with self.assertRaisesRegex(ValueError, "NaN"):
            evaluate_binary_fairness(torch.tensor([float("nan")] * 6), self.y, self.g, 1)
        with self.assertRaisesRegex(ValueError, "known code"):
            evaluate_binary_fairness(self.s, self.y, self.g, -1)


if __name__ == "__main__":
    unittest.main()
