# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Fresh probes: stratified split, sex/age figures against sklearn, task EOD from the evaluation core."""

from __future__ import annotations

import unittest

import numpy as np
from sklearn.metrics import accuracy_score, mean_absolute_error, roc_auc_score

from monai_fair.metrics import bootstrap_weights, make_generator, summarize_binary_fairness
from monai_fair.metrics.probes import make_probe, probe_attributes, probe_split, probe_task, weighted_roc_auc


def planted(seed=0, n=300, d=6):
    rng = np.random.default_rng(seed)
    sex = rng.integers(0, 2, size=n)
    age = rng.normal(65, 5, size=n)
    y = (rng.random(n) < 0.4).astype(int)
    x = rng.normal(size=(n, d))
    x[:, 0] += 2 * sex
    x[:, 1] += (age - 65) / 5
    x[:, 2] += 2 * y
    return x, sex, age, y


class TestProbes(unittest.TestCase):
    def test_split_stratified_and_seeded(self):
        strata = np.array([0] * 10 + [1] * 5 + [-1] * 3)
        tr, te = probe_split(strata, 0.5, seed=1)
        self.assertEqual(sorted(np.concatenate([tr, te]).tolist()), list(range(18)))
        self.assertEqual([int((strata[te] == c).sum()) for c in (0, 1, -1)], [5, 3, 2])
        np.testing.assert_array_equal(te, probe_split(strata, 0.5, seed=1)[1])
        self.assertFalse(np.array_equal(te, probe_split(strata, 0.5, seed=2)[1]))
        tr2, te2 = probe_split(np.stack([strata, strata % 2], 1), 0.5)
        self.assertEqual(len(tr2) + len(te2), 18)

    def test_attribute_figures_match_sklearn(self):
        x, sex, age, _ = planted()
        sex[:7] = -1
        tr, te = probe_split(sex, 0.5, seed=0)
        out = probe_attributes(x[tr], x[te], sex[tr], sex[te], age[tr], age[te], probes=("linear",), n_bootstrap=50)
        ktr, kte = sex[tr] >= 0, sex[te] >= 0
        clf = make_probe("linear").fit(x[tr][ktr], sex[tr][ktr])
        p = clf.predict_proba(x[te][kte])[:, 1]
        self.assertAlmostEqual(out["linear_sex_auc"], roc_auc_score(sex[te][kte], p))
        self.assertAlmostEqual(out["linear_sex_accuracy"], accuracy_score(sex[te][kte], p > 0.5))
        reg = make_probe("linear", "continuous").fit(x[tr], age[tr])
        self.assertAlmostEqual(out["linear_age_mae"], mean_absolute_error(age[te], reg.predict(x[te])))
        self.assertGreater(out["linear_sex_auc"], 0.8)
        self.assertLessEqual(out["linear_sex_auc_ci_low"], out["linear_sex_auc"])
        self.assertGreaterEqual(out["linear_sex_auc_ci_high"], out["linear_sex_auc"])
        self.assertEqual(out["n_sex_test"], float(kte.sum()))

    def test_nonlinear_probe_on_xor(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(400, 2))
        sex = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(int)
        out = probe_attributes(x[:200], x[200:], sex[:200], sex[200:], probes=("linear", "hgb"), n_bootstrap=0)
        self.assertLess(out["linear_sex_auc"], 0.7)
        self.assertGreater(out["hgb_sex_auc"], 0.9)
        self.assertNotIn("hgb_sex_auc_ci_low", out)

    def test_weighted_auc_resamples(self):
        rng = np.random.default_rng(1)
        s, y = rng.random(50), rng.integers(0, 2, 50)
        w = bootstrap_weights([50], 3, stratified=False, generator=make_generator(0, "cpu"))
        reps = weighted_roc_auc(s, y, w)
        for b in range(3):
            idx = np.repeat(np.arange(50), w[b].long().numpy())
            self.assertAlmostEqual(float(reps[b]), roc_auc_score(y[idx], s[idx]))

    def test_task_probe_uses_core_for_eod(self):
        x, sex, _, y = planted(2)
        tr, te = probe_split(np.stack([sex, y], 1), 0.5, seed=0)
        out = probe_task(x[tr], x[te], y[tr], y[te], sex[te], reference=1, n_bootstrap=20, seed=4)
        p = make_probe("linear").fit(x[tr], y[tr]).predict_proba(x[te])[:, 1]
        self.assertAlmostEqual(out["task_auc"], roc_auc_score(y[te], p))
        core = summarize_binary_fairness(p, y[te], sex[te], 1, n_bootstrap=20, seed=4)
        self.assertAlmostEqual(out["task_eod"], core["eod"])
        self.assertAlmostEqual(out["task_eod_ci_low"], core["eod_ci_low"])
        self.assertIn("task_auc_ci_high", out)

    def test_invalid(self):
        with self.assertRaises(ValueError):
            make_probe("forest")
        with self.assertRaises(ValueError):
            probe_split([0, 1], 1.0)
        with self.assertRaises(ValueError):
            probe_attributes(np.zeros((4, 2)), np.zeros((2, 2)), [0, 0, 0, -1], [0, 1])


if __name__ == "__main__":
    unittest.main()
