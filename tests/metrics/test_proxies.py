# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Differentiable SPD/EOD proxies: direct mean differences, exact mini-batch decomposition, no NaN batches."""

from __future__ import annotations

import math
import unittest

import torch
from parameterized import parameterized

from monai_fair.metrics import compute_bias_proxy, proxy_weights, soft_decisions, youden_weights


def data(n=300, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 3, (n,), generator=gen)  # reference = 1; codes 0 and 2 pooled as the rest
    y = (torch.rand(n, generator=gen) < 0.4).float()
    p = torch.rand(n, generator=gen, dtype=torch.float64)
    return p, y, a


class TestProxies(unittest.TestCase):
    @parameterized.expand([("spd",), ("eod",)])
    def test_equals_mean_difference(self, kind):
        p, y, a = data()
        sel = torch.ones_like(y, dtype=torch.bool) if kind == "spd" else y > 0.5
        expected = p[sel & (a != 1)].mean() - p[sel & (a == 1)].mean()
        torch.testing.assert_close(compute_bias_proxy(p, y, a, reference=1, metric=kind), expected)

    @parameterized.expand([("spd",), ("eod",)])
    def test_minibatch_sum_equals_full_set(self, kind):
        p, y, a = data()
        p = p.clone().requires_grad_(True)
        w = proxy_weights(y, a, reference=1, metric=kind)
        full = compute_bias_proxy(p, y, a, reference=1, metric=kind)
        parts = [compute_bias_proxy(p[i : i + 7], weights=w[i : i + 7]) for i in range(0, len(p), 7)]
        total = torch.stack(parts).sum()
        torch.testing.assert_close(total, full)
        self.assertFalse(any(torch.isnan(t) for t in parts))
        (g_full,) = torch.autograd.grad(full, p)
        (g_parts,) = torch.autograd.grad(total, p)
        torch.testing.assert_close(g_parts, g_full)

    def test_batch_missing_a_group_is_not_nan(self):
        p, y, a = data()
        w = proxy_weights(y, a, reference=1, metric="eod")
        only_priv = ((a == 1) & (y > 0.5)).nonzero().squeeze(1)[:5]  # privileged positives: non-zero EOD weight
        value = compute_bias_proxy(p[only_priv], weights=w[only_priv])
        self.assertTrue(torch.isfinite(value))
        self.assertLess(float(value), 0.0)  # privileged members only pull the proxy down
        with self.assertRaisesRegex(ValueError, "undefined"):
            compute_bias_proxy(p[only_priv], y[only_priv], a[only_priv], reference=1, metric="spd")

    def test_unknown_policy_hand_computed(self):
        # reference 1: p = 0.8, 0.6 (y = 1, 1); rest 0: p = 0.2 (y = 1), 0.4 (y = 0); unknown: p = 0.9 (y = 1)
        p = torch.tensor([0.8, 0.6, 0.2, 0.4, 0.9, 0.5], dtype=torch.float64)
        y = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 0.0])
        a = torch.tensor([1, 1, 0, 0, -1, -1])
        ref_mean = 0.7
        cases = {
            ("eod", "exclude"): 0.2 - ref_mean,  # the unknown positive is on neither side
            ("eod", "group"): (0.2 + 0.9) / 2 - ref_mean,  # ... or part of the rest
            ("spd", "exclude"): (0.2 + 0.4) / 2 - ref_mean,
            ("spd", "group"): (0.2 + 0.4 + 0.9 + 0.5) / 4 - ref_mean,
        }
        for (metric, unknown), expected in cases.items():
            value = compute_bias_proxy(p, y, a, reference=1, metric=metric, unknown=unknown)
            self.assertAlmostEqual(float(value), expected, places=6, msg=f"{metric}/{unknown}")
        w = proxy_weights(y, a, 1, "spd", "exclude")
        self.assertEqual(w[4:].tolist(), [0.0, 0.0])

    def test_errors(self):
        p, y, a = data(20)
        with self.assertRaisesRegex(ValueError, "metric"):
            proxy_weights(y, a, 1, metric="aod")
        with self.assertRaisesRegex(ValueError, "unknown"):
            proxy_weights(y, a, 1, unknown="drop")
        with self.assertRaisesRegex(ValueError, "same length"):
            proxy_weights(y[:-1], a, 1)
        with self.assertRaisesRegex(ValueError, "required"):
            compute_bias_proxy(p)
        with self.assertRaisesRegex(ValueError, "same length"):
            compute_bias_proxy(p, weights=torch.ones(3))


class TestSmoothedDecisions(unittest.TestCase):
    def test_soft_decisions_by_hand(self):
        z = torch.tensor([-2.0, 0.0, math.log(3.0), 4.0], dtype=torch.float64)
        # threshold 0.75 is logit log(3); temperature 0.5
        expected = [1 / (1 + math.exp(-(v - math.log(3.0)) / 0.5)) for v in z.tolist()]
        torch.testing.assert_close(soft_decisions(z, 0.75, 0.5), torch.tensor(expected, dtype=torch.float64))
        self.assertAlmostEqual(float(soft_decisions(z, 0.75, 0.5)[2]), 0.5)
        with self.assertRaisesRegex(ValueError, "temperature"):
            soft_decisions(z, 0.5, 0.0)

    def test_sharp_limit_is_the_thresholded_eod(self):
        p, y, a = data()
        z = torch.log(p) - torch.log1p(-p)
        hard = (p > 0.6).double()
        soft = soft_decisions(z, 0.6, 1e-6)
        expected = hard[(y > 0.5) & (a != 1)].mean() - hard[(y > 0.5) & (a == 1)].mean()
        torch.testing.assert_close(compute_bias_proxy(soft, y, a, reference=1, metric="eod"), expected)

    def test_youden_weights_give_tpr_minus_fpr(self):
        y = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0])
        d = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0])
        self.assertAlmostEqual(float((youden_weights(y) * d).sum()), 2 / 3 - 1 / 2, places=6)
        with self.assertRaisesRegex(ValueError, "undefined"):
            youden_weights(torch.ones(3))


if __name__ == "__main__":
    unittest.main()
