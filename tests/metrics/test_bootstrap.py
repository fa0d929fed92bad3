# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Vectorised bootstrap: resample counts, percentile intervals, replicates equal to explicit resampling."""

from __future__ import annotations

import unittest

import numpy as np
import torch

from monai_fair.metrics import (
    bootstrap_intervals,
    bootstrap_replicates,
    bootstrap_weights,
    build_grouped_scores,
    compute_fairness_table,
    compute_group_roc_auc,
    make_generator,
    percentile_interval,
)
from monai_fair.metrics.group_stats import threshold_tensor


def data(n=600, n_groups=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    g = torch.randint(0, n_groups, (n,), generator=gen)
    y = (torch.rand(n, generator=gen) < 0.4).double()
    s = torch.rand(n, generator=gen, dtype=torch.float64) * 0.7 + 0.3 * y
    return s, y, g


class TestWeights(unittest.TestCase):
    def test_counts(self):
        sizes = torch.tensor([5, 0, 12, 3])
        w = bootstrap_weights(sizes, 50, generator=make_generator(0, "cpu"))
        self.assertEqual(tuple(w.shape), (50, 20))
        self.assertTrue(bool((w.sum(1) == 20).all()))
        self.assertTrue(bool((w[:, :5].sum(1) == 5).all() and (w[:, 5:17].sum(1) == 12).all()))
        self.assertEqual(w.dtype, torch.float64)
        self.assertTrue(bool((w == w.round()).all() and (w >= 0).all()))
        w_all = bootstrap_weights(sizes, 200, stratified=False, generator=make_generator(0, "cpu"))
        self.assertTrue(bool((w_all.sum(1) == 20).all()))
        self.assertGreater(float(w_all[:, :5].sum(1).std()), 0.0)  # group size varies without stratification
        torch.testing.assert_close(
            bootstrap_weights(sizes, 7, generator=make_generator(3, "cpu")),
            bootstrap_weights(sizes, 7, generator=make_generator(3, "cpu")),
        )

    def test_percentile_interval(self):
        reps = torch.randn(1001, 3, dtype=torch.float64)
        reps[:10, 2] = float("nan")
        lo, hi = percentile_interval(reps, 0.9)
        np.testing.assert_allclose(lo.numpy(), np.nanpercentile(reps.numpy(), 5, axis=0))
        np.testing.assert_allclose(hi.numpy(), np.nanpercentile(reps.numpy(), 95, axis=0))
        with self.assertRaisesRegex(ValueError, "ci_level"):
            percentile_interval(reps, 1.5)


class TestReplicates(unittest.TestCase):
    def test_replicates_equal_explicit_resamples(self):
        s, y, g = data()
        s = torch.round(s * 12) / 12  # ties, so the tie path is exercised too
        gs = build_grouped_scores(s, y, g)
        thr = threshold_tensor(0.5, 1, "cpu")
        reps = bootstrap_replicates(gs, thr, 0, n_bootstrap=5, generator=make_generator(1, "cpu"), chunk_size=2)
        # regenerate the same weights (same generator stream per chunk) and resample explicitly
        gen = make_generator(1, "cpu")
        w_sorted = torch.cat([bootstrap_weights(gs.group_sizes, b, generator=gen) for b in (2, 2, 1)])
        w = torch.zeros_like(w_sorted)
        w[:, gs.order[0]] = w_sorted  # back to the original sample order
        for b in range(5):
            idx = torch.repeat_interleave(torch.arange(len(s)), w[b].long())
            table = compute_fairness_table(s[idx], y[idx], g[idx], reference=0, group_codes=[0, 1, 2])
            for key in ("per_group/auc", "per_group/tpr", "per_group/ece", "gaps/eod", "summary/auc_gap"):
                kind, name = key.split("/")
                torch.testing.assert_close(reps[key][b].squeeze(-1), getattr(table, kind)[name], equal_nan=True)

    def test_intervals_nan_for_nan_point_and_weights_api(self):
        s, y, g = data()
        gs = build_grouped_scores(s, y, g, group_codes=[0, 1, 2, 3])
        thr = threshold_tensor(0.5, 1, "cpu")
        point = {"per_group/auc": compute_group_roc_auc(s, y, g, group_codes=[0, 1, 2, 3]).unsqueeze(-1)}
        ci = bootstrap_intervals(gs, thr, 0, point, n_bootstrap=50, generator=make_generator(0, "cpu"))
        lo, hi = ci["per_group/auc"]
        self.assertTrue(bool(torch.isnan(lo[3]).all() and torch.isnan(hi[3]).all()))
        self.assertTrue(bool((lo[:3] < hi[:3]).all()))

    def test_seed_reproducible_and_different_seeds_differ(self):
        s, y, g = data()
        a = compute_fairness_table(s, y, g, n_bootstrap=40, seed=5).ci["summary/auc_gap"]
        b = compute_fairness_table(s, y, g, n_bootstrap=40, seed=5).ci["summary/auc_gap"]
        c = compute_fairness_table(s, y, g, n_bootstrap=40, seed=6).ci["summary/auc_gap"]
        self.assertEqual((float(a[0]), float(a[1])), (float(b[0]), float(b[1])))
        self.assertNotEqual((float(a[0]), float(a[1])), (float(c[0]), float(c[1])))
        whole = compute_fairness_table(s, y, g, n_bootstrap=40, seed=5, stratified=False).ci["summary/auc_gap"]
        self.assertNotEqual(float(whole[0]), float(a[0]))


if __name__ == "__main__":
    unittest.main()
