# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Weighted group sums: the AUC-numerator identity against a direct pairwise count."""

from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

from monai_fair.metrics import build_grouped_scores
from monai_fair.metrics.group_sums import compute_group_sums


def pairwise_numerator(s, y, g, w, n_groups):
    out = torch.zeros(n_groups, dtype=torch.float64)
    for k in range(n_groups):
        m = g == k
        sp, wp = s[m & (y == 1)], w[m & (y == 1)]
        sn, wn = s[m & (y == 0)], w[m & (y == 0)]
        cmp = (sp[:, None] > sn[None, :]).double() + 0.5 * (sp[:, None] == sn[None, :]).double()
        out[k] = (wp[:, None] * wn[None, :] * cmp).sum()
    return out


class TestGroupSums(unittest.TestCase):
    @parameterized.expand([("no_ties", None), ("ties", 5)])
    def test_auc_numerator_and_counts(self, _, rounding):
        gen = torch.Generator().manual_seed(0)
        g = torch.randint(0, 3, (150,), generator=gen)
        y = (torch.rand(150, generator=gen) < 0.5).double()
        s = torch.rand(150, generator=gen, dtype=torch.float64)
        if rounding:
            s = torch.round(s * rounding) / rounding
        w = torch.rand(2, 150, generator=gen, dtype=torch.float64) * 2
        gs = build_grouped_scores(s, y, g)
        self.assertEqual(gs.has_ties[0], rounding is not None)
        sums = compute_group_sums(gs, w, threshold=torch.tensor([0.5], dtype=torch.float64), auc=True)
        for b in range(2):
            torch.testing.assert_close(sums.auc_numerator[b, :, 0], pairwise_numerator(s, y, g, w[b], 3))
            for k in range(3):
                m = g == k
                self.assertAlmostEqual(float(sums.n[b, k, 0]), float(w[b][m].sum()), places=10)
                self.assertAlmostEqual(float(sums.positives[b, k, 0]), float((w[b] * y)[m].sum()), places=10)
                self.assertAlmostEqual(
                    float(sums.true_positives[b, k, 0]), float((w[b] * y)[m & (s > 0.5)].sum()), places=10
                )
                self.assertAlmostEqual(
                    float(sums.predicted_positives[b, k, 0]), float(w[b][m & (s > 0.5)].sum()), places=10
                )
        self.assertIsNone(sums.calibration_residual)


if __name__ == "__main__":
    unittest.main()


class TestLowPrecisionReplicates(unittest.TestCase):
    def test_float32_counts_match_float64(self):
        from monai_fair.metrics import bootstrap_weights, make_generator

        gen = torch.Generator().manual_seed(3)
        n = 30_000
        g = torch.randint(0, 3, (n,), generator=gen)
        y = (torch.rand(n, generator=gen) < 0.3).double()
        s = torch.sigmoid(torch.randn(n, generator=gen) + 2 * y).float()  # float32 scores: some ties
        for scores in (s, torch.round(s * 40) / 40):
            gs = build_grouped_scores(scores, y, g)
            w = bootstrap_weights(gs.group_sizes, 4, generator=make_generator(0, "cpu"))
            kw = dict(threshold=torch.tensor([0.5], dtype=torch.float64), n_bins=15, auc=True, layout="sorted0")
            lo = compute_group_sums(gs, w, dtype=torch.float32, **kw)
            hi = compute_group_sums(gs, w, dtype=torch.float64, **kw)
            for name in ("n", "positives", "predicted_positives", "true_positives", "auc_numerator"):
                torch.testing.assert_close(getattr(lo, name), getattr(hi, name), rtol=0, atol=0)  # exact
            torch.testing.assert_close(
                lo.calibration_residual / lo.n, hi.calibration_residual / hi.n, rtol=0, atol=1e-6
            )
