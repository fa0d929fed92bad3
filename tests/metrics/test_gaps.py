# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Signed and max–min gaps: hand-computed cases, NaN handling, fairlearn's difference functions."""

from __future__ import annotations

import math
import unittest

import numpy as np
import torch
from fairlearn.metrics import demographic_parity_difference, equal_opportunity_difference, equalized_odds_difference

from monai_fair.metrics import (
    GAP_KEYS,
    SUMMARY_KEYS,
    compute_gap_summary,
    compute_group_stats,
    compute_signed_gaps,
    max_min_gap,
    signed_gap,
    worst_group,
)

NAN = float("nan")


class TestGapPrimitives(unittest.TestCase):
    def test_signed_gap(self):
        v = torch.tensor([[0.5, 0.2], [0.7, NAN], [0.4, 0.1]])
        torch.testing.assert_close(
            signed_gap(v, 0), torch.tensor([[0.0, 0.0], [0.2, NAN], [-0.1, -0.1]]), equal_nan=True
        )
        torch.testing.assert_close(signed_gap(v.T, 2, dim=1), signed_gap(v, 2).T, equal_nan=True)
        self.assertTrue(torch.isnan(signed_gap(v, 1)[:, 1]).all())  # NaN reference → NaN gaps

    def test_max_min_and_worst_ignore_nan_groups(self):
        v = torch.tensor([0.9, NAN, 0.6, 0.8])
        self.assertAlmostEqual(float(max_min_gap(v)), 0.3)
        self.assertAlmostEqual(float(worst_group(v)), 0.6)
        self.assertTrue(math.isnan(float(max_min_gap(torch.tensor([0.9, NAN])))))  # one estimable group
        self.assertTrue(math.isnan(float(worst_group(torch.tensor([NAN, NAN])))))
        batched = torch.tensor([[[0.1, 0.2], [0.4, NAN]], [[0.3, 0.3], [0.3, 0.5]]])  # (B=2, G=2, L=2)
        torch.testing.assert_close(max_min_gap(batched, dim=1), torch.tensor([[0.3, NAN], [0.0, 0.2]]), equal_nan=True)

    def test_compute_gaps_keys(self):
        pg = {k: torch.rand(3) for k in ("selection_rate", "tpr", "fpr", "auc", "balanced_accuracy", "ece")}
        gaps = compute_signed_gaps(pg, reference_index=2)
        self.assertEqual(tuple(gaps), GAP_KEYS)
        torch.testing.assert_close(gaps["aod"], 0.5 * ((pg["tpr"] - pg["tpr"][2]) + (pg["fpr"] - pg["fpr"][2])))
        summary = compute_gap_summary(pg)
        self.assertEqual(tuple(summary), SUMMARY_KEYS)
        self.assertAlmostEqual(
            float(summary["equalized_odds"]),
            max(float(pg["tpr"].max() - pg["tpr"].min()), float(pg["fpr"].max() - pg["fpr"].min())),
        )
        self.assertAlmostEqual(float(summary["worst_group_ba"]), float(pg["balanced_accuracy"].min()))


class TestAgainstFairlearn(unittest.TestCase):
    def test_differences(self):
        for n_groups in (2, 4):
            gen = torch.Generator().manual_seed(n_groups)
            g = torch.randint(0, n_groups, (1000,), generator=gen)
            y = (torch.rand(1000, generator=gen) < 0.3 + 0.1 * g).double()
            s = torch.rand(1000, generator=gen, dtype=torch.float64) * 0.7 + 0.3 * y
            st = compute_group_stats(s, y, g, 0.5, min_group_size=1)
            st["auc"] = st["ece"] = torch.zeros(n_groups)
            summary = compute_gap_summary(st)
            pred = (s > 0.5).int().numpy()
            kw = dict(sensitive_features=g.numpy())
            self.assertAlmostEqual(
                float(summary["spd_max_min"]), demographic_parity_difference(y.numpy(), pred, **kw), places=12
            )
            self.assertAlmostEqual(
                float(summary["eod_max_min"]), equal_opportunity_difference(y.numpy(), pred, **kw), places=12
            )
            self.assertAlmostEqual(
                float(summary["equalized_odds"]), equalized_odds_difference(y.numpy(), pred, **kw), places=12
            )
            self.assertTrue(np.isfinite(float(summary["aod_max_min"])))


if __name__ == "__main__":
    unittest.main()
