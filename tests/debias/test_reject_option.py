# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Reject option classification against a literal (loop) re-statement of AIF360's algorithm with correct groups."""

from __future__ import annotations

import io
import unittest
import warnings

import numpy as np
import torch
from parameterized import parameterized

from monai_fair.debias import RejectOptionClassification, RejectOptionPostprocessor, evaluate_binary, reject_option_grid
from monai_fair.networks import FairVGG
from tests.debias.planted_bias import SPEC, make_loader, make_planted_data, planted_spec

_THREADS = torch.get_num_threads()


def setUpModule():  # tiny tensors: one thread avoids oversubscription on a shared machine
    torch.set_num_threads(1)


def tearDownModule():
    torch.set_num_threads(_THREADS)


def planted_scores(n=400, n_groups=2, seed=0, gap=0.15):
    """Scores with a group shift: privileged (code 1) higher, so EOD/SPD (unpriv - priv) are negative."""
    g = torch.Generator().manual_seed(seed)
    groups = torch.randint(0, n_groups, (n,), generator=g)
    y = torch.bernoulli(torch.full((n,), 0.5), generator=g)
    shift = torch.tensor([0.0, gap, -gap / 2][:n_groups])[groups]
    probs = (0.5 + 0.25 * (2 * y - 1) + shift + 0.2 * torch.randn(n, generator=g)).clamp(0.0, 1.0)
    return probs.double(), y, groups


def loop_oracle(scores, y, groups, priv, kind, lb, ub, compat=False, n_t=100, n_m=50, unknown="group"):
    """AIF360 RejectOptionClassification.fit, written as its double loop (groups not swapped).

    Every non-reference sample gets the favourable band; with ``unknown="exclude"`` negative codes are no group of
    the constraint (they still count in balanced accuracy).
    """
    scores, y, groups = (np.asarray(a) for a in (scores, y, groups))
    is_priv = groups == priv
    others = [c for c in np.unique(groups) if c != priv and (c >= 0 or unknown == "group")]
    rows = []
    for t in np.linspace(0.01, 0.99, n_t):
        for m in np.linspace(0.0, min(t, 1.0 - t), n_m):
            pred = scores > t
            crit = (scores > t - m) & (scores <= t + m)
            pred = np.where(crit & is_priv, False, np.where(crit & ~is_priv, True, pred))
            ba = 0.5 * (pred[y == 1].mean() + (~pred[y == 0]).mean())

            def stat(mask):
                if kind == "spd":
                    return pred[mask].mean()
                tpr = pred[mask & (y == 1)].mean()
                return tpr if kind == "eod" else 0.5 * (tpr + pred[mask & (y == 0)].mean())

            gaps = [stat(groups == c) - stat(is_priv) for c in others]
            pooled = stat(np.isin(groups, others)) - stat(is_priv)
            rows.append((t, m, ba, gaps, pooled))
    feas = [i for i, r in enumerate(rows) if all(lb <= g <= ub for g in r[3])]
    if feas:
        best = max(feas, key=lambda i: (rows[i][2], -i))
    elif compat:
        best = min(range(len(rows)), key=lambda i: (max(rows[i][3]), i))
    else:
        best = min(range(len(rows)), key=lambda i: (max(abs(g) for g in rows[i][3]), i))
    return rows[best], len(rows)


class TestRejectOptionGrid(unittest.TestCase):
    @parameterized.expand(
        [["eod", 2, 100, 50], ["spd", 2, 40, 20], ["aod", 2, 40, 20], ["eod", 3, 40, 20], ["spd", 3, 100, 50]]
    )
    def test_matches_loop_oracle(self, kind, n_groups, n_t, n_m):
        probs, y, groups = planted_scores(240, n_groups, seed=n_groups)
        roc = RejectOptionClassification(
            spec=planted_spec(metric=kind, epsilon=0.03), num_class_thresh=n_t, num_roc_margin=n_m
        )
        res = roc.fit(probs=probs, labels=y, groups=groups)
        (t, m, ba, gaps, _), n_settings = loop_oracle(probs, y, groups, 1, kind, -0.03, 0.03, n_t=n_t, n_m=n_m)
        self.assertEqual(n_settings, n_t * n_m)
        self.assertEqual(len(res.trajectory), n_t)
        self.assertTrue(res.state["feasible"])
        self.assertAlmostEqual(res.threshold, t, places=12)
        self.assertAlmostEqual(res.state["margin"], m, places=12)
        self.assertAlmostEqual(res.validation.balanced_accuracy, ba, places=6)
        self.assertEqual(sorted(res.state["group_gaps"]), [c for c in range(n_groups) if c != 1])
        for got, want in zip(res.state["group_gaps"].values(), gaps):
            self.assertAlmostEqual(got, want, places=10)
            self.assertLessEqual(abs(got), 0.03 + 1e-12)

    @parameterized.expand([["eod", "exclude"], ["eod", "group"], ["spd", "exclude"], ["aod", "group"]])
    def test_random_case_with_unknown_codes_matches_numpy(self, kind, unknown):
        probs, y, groups = planted_scores(300, 3, seed=7)
        groups[torch.rand(300, generator=torch.Generator().manual_seed(8)) < 0.15] = -1
        spec = planted_spec(metric=kind, epsilon=0.04, unknown=unknown)
        res = RejectOptionClassification(spec=spec, num_class_thresh=30, num_roc_margin=15).fit(
            probs=probs, labels=y, groups=groups
        )
        (t, m, ba, gaps, pooled), _ = loop_oracle(
            probs, y, groups, 1, kind, -0.04, 0.04, n_t=30, n_m=15, unknown=unknown
        )
        self.assertAlmostEqual(res.threshold, t, places=12)
        self.assertAlmostEqual(res.state["margin"], m, places=12)
        self.assertAlmostEqual(res.validation.balanced_accuracy, ba, places=12)
        self.assertAlmostEqual(res.validation.bias, pooled, places=12)
        self.assertEqual(sorted(res.state["group_gaps"]), ([-1] if unknown == "group" else []) + [0, 2])
        for got, want in zip(res.state["group_gaps"].values(), gaps):
            self.assertAlmostEqual(got, want, places=12)
        # the fitted post-processor reproduces the decisions (unknown samples get the favourable band)
        pred = res.postprocessor.predict(probs, groups).numpy().astype(bool)
        t_ref = probs.numpy() > t + m
        t_rest = probs.numpy() > t - m
        np.testing.assert_array_equal(pred, np.where(groups.numpy() == 1, t_ref, t_rest))

    @parameterized.expand([[False], [True]])
    def test_infeasible_fallback(self, compat):
        probs, y, groups = planted_scores(200, 2, seed=5)
        roc = RejectOptionClassification(
            spec=planted_spec(metric="eod"),
            num_class_thresh=40,
            num_roc_margin=20,
            metric_lb=1.01,
            metric_ub=2.0,
            aif360_compat=compat,
        )
        with self.assertWarnsRegex(UserWarning, "no \\(threshold, margin\\)"):
            res = roc.fit(probs=probs, labels=y, groups=groups)
        (t, m, _, gaps, _), _ = loop_oracle(probs, y, groups, 1, "eod", 1.01, 2.0, compat=compat, n_t=40, n_m=20)
        self.assertFalse(res.state["feasible"])
        self.assertAlmostEqual(res.threshold, t, places=12)
        self.assertAlmostEqual(res.state["margin"], m, places=12)
        self.assertAlmostEqual(res.state["group_gaps"][0], gaps[0], places=10)
        if compat:  # AIF360 quirk: most negative gap, not the smallest one
            self.assertLess(res.state["group_gaps"][0], -0.1)
        else:
            self.assertLess(abs(res.state["group_gaps"][0]), 0.05)

    def test_grid_shapes_and_pooled_gap(self):
        probs, y, groups = planted_scores(150, 3, seed=1)
        grid = reject_option_grid(probs, y, groups, planted_spec(metric="spd"))
        self.assertEqual(tuple(grid["balanced_accuracy"].shape), (100, 50))
        self.assertEqual(tuple(grid["group_gaps"].shape), (2, 100, 50))
        self.assertTrue(torch.all(grid["margins"][:, 0] == 0))
        # pooled gap at one setting = the rest-minus-reference SPD of the explicit predictions
        ti, mi = 37, 11
        post = RejectOptionPostprocessor(float(grid["thresholds"][ti]), float(grid["margins"][ti, mi]), 1, [0, 1, 2])
        pred, g = post.predict(probs, groups).numpy(), groups.numpy()
        self.assertAlmostEqual(float(grid["pooled_gap"][ti, mi]), pred[g != 1].mean() - pred[g == 1].mean(), places=10)


class TestRejectOptionBehaviour(unittest.TestCase):
    def test_critical_region_favours_unprivileged(self):
        post = RejectOptionPostprocessor(threshold=0.5, margin=0.1, reference=1, group_codes=[0, 1, 2])
        probs = torch.tensor([0.45, 0.45, 0.45, 0.55, 0.55, 0.55, 0.65, 0.35, 0.39, 0.59], dtype=torch.float64)
        groups = torch.tensor([0, 1, 2, 0, 1, 2, 1, 0, 0, 1])
        # band (0.4, 0.6]: unprivileged -> 1, privileged -> 0; outside it the plain threshold applies
        expected = torch.tensor([1, 0, 1, 1, 0, 1, 1, 0, 0, 0])
        torch.testing.assert_close(post.predict(probs, groups), expected)

    def test_planted_gap_shrinks(self):
        probs, y, groups = planted_scores(600, 2, seed=3, gap=0.2)
        before = evaluate_binary(probs, y, groups, planted_spec(epsilon=0.05))
        res = RejectOptionClassification(spec=planted_spec(metric="eod", epsilon=0.05)).fit(
            probs=probs, labels=y, groups=groups
        )
        self.assertLess(before.bias, -0.1)  # planted: the privileged group is favoured
        self.assertLess(abs(res.validation.bias), 0.05)
        self.assertGreater(res.state["margin"], 0.0)
        self.assertEqual(len(res.trajectory), 100)
        print(
            f"\nROC eod: before |bias|={abs(before.bias):.3f} BA={before.balanced_accuracy:.3f}; "
            f"after |bias|={abs(res.validation.bias):.3f} BA={res.validation.balanced_accuracy:.3f}"
        )

    def test_save_reload_identical(self):
        probs, y, groups = planted_scores(300, 3, seed=2)
        res = RejectOptionClassification(spec=planted_spec(metric="spd")).fit(probs=probs, labels=y, groups=groups)
        buf = io.BytesIO()
        torch.save(res.postprocessor.state_dict(), buf)
        buf.seek(0)
        loaded = RejectOptionPostprocessor.from_state_dict(torch.load(buf, weights_only=True))
        new_probs, new_groups = torch.rand(500), torch.randint(0, 3, (500,))
        torch.testing.assert_close(
            loaded.predict(new_probs, new_groups), res.postprocessor.predict(new_probs, new_groups)
        )
        self.assertEqual(loaded.threshold, res.threshold)

    @parameterized.expand([[2], [3]])
    def test_fit_from_model_and_loader(self, spatial_dims):
        data = make_planted_data(48, size=4, spatial_dims=spatial_dims, seed=spatial_dims)
        order = torch.argsort(data["sex"], stable=True)  # first batch holds only group 0
        loader = make_loader(data, 8, order)
        self.assertEqual(torch.unique(loader[0]["sex"]).tolist(), [0])
        torch.manual_seed(0)
        net = FairVGG(spatial_dims, 2, 1, channels=[2, "M"], fc_channels=4, pool_size=1).eval()
        roc = RejectOptionClassification(spec=planted_spec(metric="spd", epsilon=0.1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            res = roc.fit(net, loader)
        probs, labels, groups = roc.outputs(net, loader)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            cached = roc.fit(probs=probs, labels=labels, groups=groups)
        self.assertIsNone(res.model)
        self.assertEqual((res.threshold, res.state["margin"]), (cached.threshold, cached.state["margin"]))
        self.assertEqual(res.postprocessor.group_codes, [1, 0])

    def test_errors(self):
        probs, y, groups = planted_scores(100, 2)
        roc = RejectOptionClassification(spec=SPEC)
        with self.assertRaisesRegex(ValueError, "at least one other group"):
            roc.fit(probs=probs, labels=y, groups=torch.ones_like(groups))
        with self.assertRaisesRegex(ValueError, "binary"):
            roc.fit(probs=probs, labels=y * 2, groups=groups)
        with self.assertRaisesRegex(ValueError, "no samples"):
            roc.fit(probs=probs[:0], labels=y[:0], groups=groups[:0])
        with self.assertRaisesRegex(ValueError, "no batch"):
            roc.fit(FairVGG(2, 2, 1, channels=[2], fc_channels=2, pool_size=1), [])
        with self.assertRaisesRegex(ValueError, "EOD is undefined.*group 0: no positives"):
            y2 = y.clone()
            y2[groups == 0] = 0
            roc.fit(probs=probs, labels=y2, groups=groups)
        with self.assertRaisesRegex(ValueError, "within \\[0, 1\\]"):
            roc.fit(probs=probs + 1, labels=y, groups=groups)
        with self.assertRaises(ValueError):
            RejectOptionClassification(spec=SPEC, metric_lb=0.1, metric_ub=-0.1)
        with self.assertRaises(ValueError):
            reject_option_grid(probs, y, groups, SPEC, low_class_thresh=0.9, high_class_thresh=0.1)
        post = RejectOptionPostprocessor(0.5, 0.1, 1, [0, 1])
        with self.assertRaisesRegex(ValueError, "not seen"):
            post.predict(torch.tensor([0.5]), torch.tensor([2]))
        lenient = RejectOptionPostprocessor(0.5, 0.1, 1, [0, 1], unseen_groups="threshold")
        torch.testing.assert_close(
            lenient.predict(torch.tensor([0.55, 0.45]), torch.tensor([2, 2])), torch.tensor([1, 0])
        )


class TestJsonConfig(unittest.TestCase):
    def test_bundle_config_builds_it(self):
        from monai.bundle import ConfigParser

        obj = ConfigParser(
            {
                "debiaser": {
                    "_target_": "RejectOptionClassification",
                    "spec": {"_target_": "monai_fair.metrics.FairnessSpec", "metric": "spd", "epsilon": 0.03},
                    **{"num_roc_margin": 10, "aif360_compat": True},
                }
            }
        ).get_parsed_content("debiaser")
        self.assertIsInstance(obj, RejectOptionClassification)
        self.assertEqual((obj.metric_lb, obj.metric_ub, obj.num_roc_margin), (-0.03, 0.03, 10))


if __name__ == "__main__":
    unittest.main()
