# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Equalized-odds post-processing: LP feasibility, equalised rates, fairlearn agreement, save/reload, errors."""

from __future__ import annotations

import io
import unittest

import numpy as np
import torch
from parameterized import parameterized

from monai_fair.debias import (
    EqualizedOddsPostprocessing,
    EqualizedOddsPostprocessor,
    equalized_odds_lp,
    evaluate_binary,
    group_confusion_rates,
)
from monai_fair.networks import FairVGG
from tests.debias.planted_bias import SPEC, make_loader, make_planted_data, planted_spec

_THREADS = torch.get_num_threads()


def setUpModule():  # tiny tensors: one thread avoids oversubscription on a shared machine
    torch.set_num_threads(1)


def tearDownModule():
    torch.set_num_threads(_THREADS)


def planted_scores(n=1500, n_groups=2, seed=0):
    """Scores whose TPR and FPR differ by group (privileged code 1 scored higher, group 2 lower)."""
    g = torch.Generator().manual_seed(seed)
    groups = torch.randint(0, n_groups, (n,), generator=g)
    y = torch.bernoulli(torch.full((n,), 0.4), generator=g)
    shift = torch.tensor([0.0, 0.8, -0.5][:n_groups])[groups]
    probs = torch.sigmoid(1.2 * (2 * y - 1) + shift + torch.randn(n, generator=g))
    return probs, y, groups


def rates(pred, y, groups, codes):
    out = group_confusion_rates(pred, y, groups, codes)
    return out["tpr"], out["fpr"]


class TestLinearProgram(unittest.TestCase):
    @parameterized.expand([["aif360", 2], ["hardt", 2], ["aif360", 3], ["hardt", 3]])
    def test_feasible_and_equalised_in_expectation(self, objective, n_groups):
        probs, y, groups = planted_scores(n_groups=n_groups, seed=n_groups)
        res = EqualizedOddsPostprocessing(spec=SPEC, objective=objective).fit(probs=probs, labels=y, groups=groups)
        post = res.postprocessor
        self.assertEqual(post.group_codes[0], 1)  # reference first
        self.assertTrue(torch.all((post.p_pos >= 0) & (post.p_pos <= 1) & (post.p_neg >= 0) & (post.p_neg <= 1)))
        # expected post-processed rates (exact, from the flip probabilities) are equal across groups
        p = post.predict_proba(probs, groups).numpy()
        yy, gg = y.numpy(), groups.numpy()
        tpr = [p[(gg == c) & (yy == 1)].mean() for c in post.group_codes]
        fpr = [p[(gg == c) & (yy == 0)].mean() for c in post.group_codes]
        self.assertLess(np.ptp(tpr), 1e-8)
        self.assertLess(np.ptp(fpr), 1e-8)
        np.testing.assert_allclose(res.state["tpr_expected"], tpr, atol=1e-10)
        # realised (exact-count flips): gaps limited by the floor() rounding within each cell
        t_real, f_real = rates(post.predict(probs, groups), y, groups, post.group_codes)
        n_min = min(int(((groups == c) & (y == k)).sum()) for c in post.group_codes for k in (0, 1))
        self.assertLess(np.ptp(t_real), 0.08)
        self.assertLess(np.ptp(f_real), 0.08)
        self.assertGreater(n_min, 50)
        before_t, before_f = rates((probs > res.threshold).long(), y, groups, post.group_codes)
        self.assertGreater(np.ptp(before_t) + np.ptp(before_f), 0.2)  # the planted gap was real

    def test_identity_when_odds_already_equal(self):
        # two groups with identical confusion rates: the best equalised classifier is the input itself
        r = {
            "tpr": np.array([0.8, 0.8]),
            "fnr": np.array([0.2, 0.2]),
            "fpr": np.array([0.1, 0.1]),
            "tnr": np.array([0.9, 0.9]),
            "tp": np.array([8.0, 16]),
            "fn": np.array([2.0, 4]),
            "fp": np.array([1.0, 2]),
            "tn": np.array([9.0, 18]),
            "n_pos": np.array([10.0, 20]),
            "n_neg": np.array([10.0, 20]),
        }
        for objective in ("aif360", "hardt"):
            p_pos, p_neg = equalized_odds_lp(r, objective)
            np.testing.assert_allclose(p_pos, [1.0, 1.0], atol=1e-9)
            np.testing.assert_allclose(p_neg, [0.0, 0.0], atol=1e-9)

    def test_aif360_two_group_rows(self):
        # hand-checked: group u can only move down to p's operating point; p keeps its predictions
        r = {
            "tpr": np.array([0.6, 0.9]),
            "fnr": np.array([0.4, 0.1]),
            "fpr": np.array([0.2, 0.2]),
            "tnr": np.array([0.8, 0.8]),
        }
        p_pos, p_neg = equalized_odds_lp(r, "aif360")
        tpr = r["tpr"] * p_pos + r["fnr"] * p_neg
        fpr = r["fpr"] * p_pos + r["tnr"] * p_neg
        self.assertAlmostEqual(tpr[0], tpr[1], places=9)
        self.assertAlmostEqual(fpr[0], fpr[1], places=9)
        self.assertAlmostEqual(tpr[0], 0.6, places=9)
        self.assertAlmostEqual(fpr[0], 0.2, places=9)

    def test_hardt_matches_fairlearn(self):
        from fairlearn.postprocessing import ThresholdOptimizer
        from sklearn.base import BaseEstimator, ClassifierMixin

        class HardPrediction(ClassifierMixin, BaseEstimator):
            """Pass-through estimator: the feature already is the hard prediction."""

            def __init__(self):
                self.fitted_ = True

            def fit(self, x, y):
                return self

            def predict(self, x):
                return np.asarray(x)[:, 0]

        probs, y, groups = planted_scores(n_groups=3, seed=7)
        res = EqualizedOddsPostprocessing(spec=SPEC, objective="hardt").fit(probs=probs, labels=y, groups=groups)
        y_hat = (probs > res.threshold).long()
        x = y_hat.numpy()[:, None].astype(float)
        opt = ThresholdOptimizer(
            estimator=HardPrediction(),
            constraints="equalized_odds",
            objective="accuracy_score",
            prefit=True,
            predict_method="predict",
            grid_size=2000,
        )
        opt.fit(x, y.numpy(), sensitive_features=groups.numpy())
        p_fl = opt._pmf_predict(x, sensitive_features=groups.numpy())[:, 1]
        p_ours = res.postprocessor.label_proba(y_hat, groups).numpy()
        yy = y.numpy()
        acc_fl = np.mean(yy * p_fl + (1 - yy) * (1 - p_fl))
        acc_ours = np.mean(yy * p_ours + (1 - yy) * (1 - p_ours))
        self.assertGreaterEqual(acc_ours, acc_fl - 1e-4)  # exact LP optimum vs fairlearn's grid
        self.assertAlmostEqual(acc_ours, acc_fl, delta=2e-3)
        gg = groups.numpy()
        for c in range(3):  # same common operating point
            self.assertAlmostEqual(p_ours[(gg == c) & (yy == 1)].mean(), p_fl[(gg == c) & (yy == 1)].mean(), delta=3e-3)
            self.assertAlmostEqual(p_ours[(gg == c) & (yy == 0)].mean(), p_fl[(gg == c) & (yy == 0)].mean(), delta=3e-3)


class TestPostprocessor(unittest.TestCase):
    def test_exact_count_flipping(self):
        post = EqualizedOddsPostprocessor(0.5, [1, 0], p_pos=[0.75, 1.0], p_neg=[0.0, 0.35], seed=3)
        y_hat = torch.tensor([1] * 8 + [0] * 6 + [1] * 5 + [0] * 10)
        groups = torch.tensor([1] * 14 + [0] * 15)
        out = post.postprocess_labels(y_hat, groups)
        # group 1: floor(8 * 0.25) = 2 positives flipped, negatives kept; group 0: floor(10 * 0.35) = 3 negatives
        self.assertEqual(int(out[:8].sum()), 6)
        self.assertEqual(int(out[8:14].sum()), 0)
        self.assertEqual(int(out[14:19].sum()), 5)
        self.assertEqual(int(out[19:].sum()), 3)
        torch.testing.assert_close(post.postprocess_labels(y_hat, groups), out)  # seeded
        self.assertFalse(torch.equal(post.postprocess_labels(y_hat, groups, seed=4), out))

    def test_bernoulli_mode(self):
        post = EqualizedOddsPostprocessor(0.5, [1, 0], p_pos=[0.7, 1.0], p_neg=[0.0, 0.2], flip_mode="bernoulli")
        groups = torch.tensor([1, 0]).repeat(20000)
        y_hat = torch.ones_like(groups)
        out = post.postprocess_labels(y_hat, groups).float()
        self.assertAlmostEqual(float(out[groups == 1].mean()), 0.7, delta=0.02)
        self.assertEqual(float(out[groups == 0].mean()), 1.0)
        zeros = post.postprocess_labels(torch.zeros_like(groups), groups).float()
        self.assertAlmostEqual(float(zeros[groups == 0].mean()), 0.2, delta=0.02)

    @parameterized.expand([["count"], ["bernoulli"]])
    def test_save_reload_identical(self, mode):
        probs, y, groups = planted_scores(n_groups=3, seed=1)
        res = EqualizedOddsPostprocessing(spec=SPEC, flip_mode=mode, seed=11).fit(probs=probs, labels=y, groups=groups)
        buf = io.BytesIO()
        torch.save(res.postprocessor.state_dict(), buf)
        buf.seek(0)
        loaded = EqualizedOddsPostprocessor.from_state_dict(torch.load(buf, weights_only=True))
        test_p, test_g = torch.rand(700), torch.randint(0, 3, (700,))
        torch.testing.assert_close(loaded.predict(test_p, test_g), res.postprocessor.predict(test_p, test_g))
        torch.testing.assert_close(loaded.p_pos, res.postprocessor.p_pos)
        # the post-processed fitting labels are reproduced and evaluate to the reported validation numbers
        again = evaluate_binary(loaded.predict(probs, groups).float(), y, groups, SPEC, threshold=0.5)
        self.assertAlmostEqual(again.balanced_accuracy, res.validation.balanced_accuracy, places=6)
        self.assertAlmostEqual(again.bias, res.validation.bias, places=9)


class TestDebiaser(unittest.TestCase):
    def test_planted_gap_shrinks(self):
        probs, y, groups = planted_scores(seed=9)
        res = EqualizedOddsPostprocessing(spec=planted_spec(metric="eod", epsilon=0.05)).fit(
            probs=probs, labels=y, groups=groups
        )
        before = res.trajectory.bias[0]
        self.assertLess(before, -0.1)
        self.assertLess(abs(res.validation.bias), 0.05)
        self.assertLess(res.trajectory.extra["tpr_spread"][1], res.trajectory.extra["tpr_spread"][0])
        self.assertLess(res.trajectory.extra["fpr_spread"][1], res.trajectory.extra["fpr_spread"][0])
        print(
            f"\nEqOdds eod: before |bias|={abs(before):.3f} BA={res.trajectory.balanced_accuracy[0]:.3f}; "
            f"after |bias|={abs(res.validation.bias):.3f} BA={res.validation.balanced_accuracy:.3f}"
        )

    @parameterized.expand([[2], [3]])
    def test_fit_from_model_and_loader(self, spatial_dims):
        data = make_planted_data(64, size=4, spatial_dims=spatial_dims, seed=spatial_dims)
        loader = make_loader(data, 16, torch.argsort(data["sex"], stable=True))  # first batch: group 0 only
        self.assertEqual(torch.unique(loader[0]["sex"]).tolist(), [0])
        torch.manual_seed(0)
        net = FairVGG(spatial_dims, 2, 1, channels=[2, "M"], fc_channels=4, pool_size=1).eval()
        debiaser = EqualizedOddsPostprocessing(spec=SPEC)
        res = debiaser.fit(net, loader)
        probs, labels, groups = debiaser.outputs(net, loader)
        cached = debiaser.fit(probs=probs, labels=labels, groups=groups)
        self.assertIsNone(res.model)
        self.assertEqual(res.threshold, cached.threshold)
        torch.testing.assert_close(res.postprocessor.p_pos, cached.postprocessor.p_pos)

    def test_errors(self):
        probs, y, groups = planted_scores(200)
        eq = EqualizedOddsPostprocessing(spec=SPEC)
        with self.assertRaisesRegex(ValueError, "at least one other group"):
            eq.fit(probs=probs, labels=y, groups=torch.zeros_like(groups))
        with self.assertRaisesRegex(ValueError, "binary"):
            eq.fit(probs=probs, labels=y + 0.5, groups=groups)
        with self.assertRaisesRegex(ValueError, "no samples"):
            eq.fit(probs=probs[:0], labels=y[:0], groups=groups[:0])
        with self.assertRaisesRegex(ValueError, "no batch"):
            eq.fit(FairVGG(2, 2, 1, channels=[2], fc_channels=2, pool_size=1), [])
        y2 = y.clone()
        y2[groups == 0] = 1
        with self.assertRaisesRegex(ValueError, "group 0 has"):
            eq.fit(probs=probs, labels=y2, groups=groups)
        with self.assertRaises(ValueError):
            EqualizedOddsPostprocessing(spec=SPEC, objective="accuracy")
        with self.assertRaises(ValueError):
            EqualizedOddsPostprocessing(spec=SPEC, flip_mode="coin")
        post = EqualizedOddsPostprocessor(0.5, [1, 0], [1.0, 1.0], [0.0, 0.0])
        with self.assertRaisesRegex(ValueError, "not seen"):
            post.predict(torch.tensor([0.7]), torch.tensor([5]))
        keep = EqualizedOddsPostprocessor(0.5, [1, 0], [0.0, 0.0], [0.0, 0.0], unseen_groups="keep")
        torch.testing.assert_close(keep.predict(torch.tensor([0.7, 0.7]), torch.tensor([5, 1])), torch.tensor([1, 0]))
        with self.assertRaises(ValueError):
            EqualizedOddsPostprocessor(0.5, [1, 0], [1.0], [0.0, 0.0])


class TestJsonConfig(unittest.TestCase):
    def test_bundle_config_builds_it(self):
        from monai.bundle import ConfigParser

        obj = ConfigParser(
            {
                "debiaser": {
                    "_target_": "EqualizedOddsPostprocessing",
                    "spec": {"_target_": "monai_fair.metrics.FairnessSpec", "reference": 0},
                    **{"objective": "hardt", "flip_mode": "bernoulli", "seed": 4},
                }
            }
        ).get_parsed_content("debiaser")
        self.assertIsInstance(obj, EqualizedOddsPostprocessing)
        self.assertEqual((obj.objective, obj.flip_mode, obj.seed, obj.spec.reference), ("hardt", "bernoulli", 4, 0))


if __name__ == "__main__":
    unittest.main()
