# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Invariance tests: hand/scipy oracles for each statistic, calibration under a known null and power direction over
many cheap synthetic runs (never one run's numbers)."""

from __future__ import annotations

import math
import unittest

import numpy as np
from scipy import stats

from monai_fair.audit import (
    counterfactual_flip_test,
    crossfit_predictions,
    demographic_parity_test,
    equal_opportunity_test,
    gcm_test,
    make_synthetic_scm,
    paired_t_test,
    run_invariance_tests,
)
from monai_fair.audit.invariance import _RidgeLogistic


def _audit_data(seed: int, leak: float, n: int = 300, k: int = 6):
    d = make_synthetic_scm(n=2 * n, k=k, steps=2, seed=seed)
    logit = _RidgeLogistic().fit(d.u[:n], d.y[:n]).predict(d.u[n:])
    a = d.a[n:]
    return (logit + leak * (2 * a - 1) > 0).astype(float), a, d.u[n:]


class TestOracles(unittest.TestCase):
    def test_gcm_matches_hand_computation(self):
        rng = np.random.default_rng(0)
        u = rng.normal(size=(200, 3))
        a = (rng.random(200) < 0.5).astype(float)
        y = (u[:, 0] + a + rng.normal(size=200) > 0).astype(float)
        res = gcm_test(y, a, u, n_folds=2, seed=3)
        r_y = y - crossfit_predictions(u, y, 2, "logistic", 3)
        r_a = a - crossfit_predictions(u, a, 2, "logistic", 1003)
        prod = r_y * r_a
        t = math.sqrt(200) * prod.mean() / prod.std()
        self.assertAlmostEqual(res.statistic, t, places=10)
        self.assertAlmostEqual(res.p_value, 2 * stats.norm.sf(abs(t)), places=12)
        self.assertAlmostEqual(res.effect_size, np.corrcoef(r_y, r_a)[0, 1], delta=abs(prod.mean()) * 0 + 0.02)

    def test_ridge_logistic_agrees_with_sklearn(self):
        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(1)
        x = rng.normal(size=(400, 4))
        y = (x @ [1.0, -0.5, 0.0, 0.3] + rng.logistic(size=400) > 0).astype(int)
        ours = _RidgeLogistic(alpha=1e-6).fit(x, y).predict_proba(x)[:, 1]
        ref = LogisticRegression(C=1e6, max_iter=2000, tol=1e-10).fit(x, y).predict_proba(x)[:, 1]
        np.testing.assert_allclose(ours, ref, atol=1e-6)

    def test_crossfit_never_scores_its_own_training_fold(self):
        # a target that is pure noise: in-sample fits would track it, out-of-fold ones cannot
        rng = np.random.default_rng(2)
        x = rng.normal(size=(200, 30))
        y = rng.normal(size=200)
        oof = crossfit_predictions(x, y, 2, "logistic", 0)
        self.assertLess(abs(np.corrcoef(oof, y)[0, 1]), 0.3)

    def test_dp_and_eo_match_chi_square(self):
        rng = np.random.default_rng(4)
        a = (rng.random(500) < 0.4).astype(int)
        labels = (rng.random(500) < 0.5).astype(int)
        y_hat = (rng.random(500) < 0.3 + 0.2 * a).astype(float)
        dp = demographic_parity_test(y_hat, a, reference=0)
        table = [[np.sum(y_hat[a == g]), np.sum(1 - y_hat[a == g])] for g in (0, 1)]
        chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
        self.assertAlmostEqual(dp.p_value, p, places=10)
        self.assertAlmostEqual(dp.statistic**2, chi2, places=8)
        self.assertAlmostEqual(dp.effect_size, y_hat[a == 1].mean() - y_hat[a == 0].mean(), places=10)
        self.assertGreater(dp.statistic, 0)  # group 1 has the higher rate
        eo = equal_opportunity_test(y_hat, a, labels, reference=0)
        pos = labels == 1
        table = [[np.sum(y_hat[pos & (a == g)]), np.sum(1 - y_hat[pos & (a == g)])] for g in (0, 1)]
        chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
        self.assertAlmostEqual(eo.p_value, p, places=10)
        self.assertAlmostEqual(eo.effect_size, y_hat[pos & (a == 1)].mean() - y_hat[pos & (a == 0)].mean(), places=10)
        # the notebook's bug: its EO equalled its DP; here they differ whenever the label matters
        self.assertNotAlmostEqual(eo.p_value, dp.p_value, places=6)

    def test_flip_test_counts_and_mcnemar(self):
        p0 = np.array([0, 0, 0, 0, 1, 1, 0, 0, 1, 0], dtype=float)
        p1 = np.array([1, 1, 1, 0, 1, 0, 0, 1, 1, 0], dtype=float)
        res = counterfactual_flip_test(p0, p1)
        self.assertEqual(res.statistic, 4.0)  # 0 -> 1 flips
        self.assertAlmostEqual(res.effect_size, 5 / 10)
        self.assertAlmostEqual(res.p_value, stats.binomtest(4, 5, 0.5).pvalue)
        self.assertEqual(counterfactual_flip_test(p0, p0).effect_size, 0.0)

    def test_paired_t_matches_scipy(self):
        y, a, u = _audit_data(5, 1.0)
        res = paired_t_test(y, a, u, seed=5)
        self.assertEqual(res.test, "paired_t")
        self.assertTrue(np.isfinite(res.statistic) and 0 <= res.p_value <= 1)
        # d_z * sqrt(n) is the paired t statistic
        self.assertAlmostEqual(res.statistic, res.effect_size * math.sqrt(res.n), places=8)

    def test_bad_inputs_are_named(self):
        u = np.zeros((10, 2))
        with self.assertRaisesRegex(ValueError, "binary codes"):
            gcm_test(np.zeros(10), np.arange(10), u)
        with self.assertRaisesRegex(ValueError, "u has 9 rows"):
            gcm_test(np.zeros(10), np.zeros(10), np.zeros((9, 2)))
        with self.assertRaisesRegex(ValueError, "NaN"):
            gcm_test(np.full(10, np.nan), np.zeros(10), u)
        with self.assertRaisesRegex(ValueError, "unknown invariance tests"):
            run_invariance_tests(np.zeros(10), np.zeros(10), u, tests=["hsic"])
        with self.assertRaisesRegex(ValueError, "regressor"):
            gcm_test(np.zeros(10), np.zeros(10), u, regressor="forest")

    def test_degenerate_prediction_is_nan_with_reason(self):
        rng = np.random.default_rng(0)
        u = rng.normal(size=(40, 2))
        a = (rng.random(40) < 0.5).astype(float)
        res = gcm_test(np.ones(40), a, u)
        self.assertTrue(math.isnan(res.p_value))
        self.assertIn("constant", res.note)
        self.assertFalse(res.rejects())


class TestCalibrationAndPower(unittest.TestCase):
    """Many cheap runs: the rejection rate under the null stays near alpha, and grows with the leak."""

    RUNS = 60

    def _rates(self, leak: float, offset: int) -> dict[str, float]:
        rej = {"gcm": 0, "crt": 0}
        for s in range(self.RUNS):
            y, a, u = _audit_data(offset + s, leak)
            for name, r in run_invariance_tests(y, a, u, tests=("gcm", "crt"), seed=s, n_draws=200).items():
                rej[name] += r.rejects(0.05)
        return {k: v / self.RUNS for k, v in rej.items()}

    def test_null_rejection_rate_near_alpha(self):
        # 60 runs at alpha = 0.05: a calibrated test rejects more than 9 times with probability < 0.01
        rates = self._rates(0.0, 0)
        for name, rate in rates.items():
            self.assertLessEqual(rate, 9 / self.RUNS, name)

    def test_power_grows_with_the_leak(self):
        weak, strong = self._rates(0.3, 10_000), self._rates(1.5, 20_000)
        for name in weak:
            self.assertGreater(strong[name], weak[name], name)
            self.assertGreater(strong[name], 0.8, name)

    def test_gcm_null_p_values_are_roughly_uniform(self):
        p = [gcm_test(*_audit_data(50_000 + s, 0.0), seed=s).p_value for s in range(self.RUNS)]
        self.assertGreater(stats.kstest(p, "uniform").pvalue, 0.001)


class TestSyntheticScm(unittest.TestCase):
    def test_counterfactual_reuses_the_mechanisms(self):
        d = make_synthetic_scm(n=50, k=4, steps=3, seed=0)
        # flipping A twice gives the factual observation back: same matrices, same noise
        e = make_synthetic_scm(n=50, k=4, steps=3, seed=0)
        np.testing.assert_array_equal(d.x, e.x)
        self.assertFalse(np.allclose(d.x, d.x_cf))
        self.assertEqual(d.u.shape, (50, 4))
        # A enters X only through the mixing matrices: with one latent step (T = 2) and both groups ... X depends on A
        self.assertTrue(set(np.unique(d.a)) <= {0, 1})

    def test_u_is_independent_of_a(self):
        d = make_synthetic_scm(n=4000, k=4, seed=1)
        for j in range(4):
            self.assertLess(abs(np.corrcoef(d.u[:, j], d.a)[0, 1]), 0.06)

    def test_bad_settings(self):
        with self.assertRaisesRegex(ValueError, "steps"):
            make_synthetic_scm(steps=1)
        with self.assertRaisesRegex(ValueError, "link"):
            make_synthetic_scm(link="cubic")


if __name__ == "__main__":
    unittest.main()
