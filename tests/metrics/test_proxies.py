# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Differentiable SPD/EOD proxies: direct mean differences, exact mini-batch decomposition, no NaN batches."""

from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

from monai_fair.metrics import compute_bias_proxy, proxy_weights


def data(n=300, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 3, (n,), generator=gen)  # privileged = 1; codes 0 and 2 pooled as unprivileged
    y = (torch.rand(n, generator=gen) < 0.4).float()
    p = torch.rand(n, generator=gen, dtype=torch.float64)
    return p, y, a


class TestProxies(unittest.TestCase):
    @parameterized.expand([("spd",), ("eod",)])
    def test_equals_mean_difference(self, kind):
        p, y, a = data()
        sel = torch.ones_like(y, dtype=torch.bool) if kind == "spd" else y > 0.5
        expected = p[sel & (a != 1)].mean() - p[sel & (a == 1)].mean()
        torch.testing.assert_close(compute_bias_proxy(p, y, a, privileged=1, kind=kind), expected)

    @parameterized.expand([("spd",), ("eod",)])
    def test_minibatch_sum_equals_full_set(self, kind):
        p, y, a = data()
        p = p.clone().requires_grad_(True)
        w = proxy_weights(y, a, privileged=1, kind=kind)
        full = compute_bias_proxy(p, y, a, privileged=1, kind=kind)
        parts = [compute_bias_proxy(p[i : i + 7], weights=w[i : i + 7]) for i in range(0, len(p), 7)]
        total = torch.stack(parts).sum()
        torch.testing.assert_close(total, full)
        self.assertFalse(any(torch.isnan(t) for t in parts))
        (g_full,) = torch.autograd.grad(full, p)
        (g_parts,) = torch.autograd.grad(total, p)
        torch.testing.assert_close(g_parts, g_full)

    def test_batch_missing_a_group_is_not_nan(self):
        p, y, a = data()
        w = proxy_weights(y, a, privileged=1, kind="eod")
        only_priv = ((a == 1) & (y > 0.5)).nonzero().squeeze(1)[:5]  # privileged positives: non-zero EOD weight
        value = compute_bias_proxy(p[only_priv], weights=w[only_priv])
        self.assertTrue(torch.isfinite(value))
        self.assertLess(float(value), 0.0)  # privileged members only pull the proxy down
        with self.assertRaisesRegex(ValueError, "undefined"):
            compute_bias_proxy(p[only_priv], y[only_priv], a[only_priv], privileged=1, kind="spd")

    def test_errors(self):
        p, y, a = data(20)
        with self.assertRaisesRegex(ValueError, "kind"):
            proxy_weights(y, a, kind="aod")
        with self.assertRaisesRegex(ValueError, "same length"):
            proxy_weights(y[:-1], a)
        with self.assertRaisesRegex(ValueError, "required"):
            compute_bias_proxy(p)
        with self.assertRaisesRegex(ValueError, "same length"):
            compute_bias_proxy(p, weights=torch.ones(3))


if __name__ == "__main__":
    unittest.main()
