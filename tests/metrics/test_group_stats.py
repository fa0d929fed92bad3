# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Per-group counts and rates against fairlearn MetricFrame / scikit-learn, NaN policy and weights."""

from __future__ import annotations

import math
import unittest

import numpy as np
import torch
from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate, selection_rate, true_positive_rate
from parameterized import parameterized
from sklearn.metrics import balanced_accuracy_score, precision_score

from monai_fair.metrics import GROUP_STAT_KEYS, compute_fairness_table, compute_group_stats, evaluate_binary_fairness


def data(n=800, n_groups=4, n_labels=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    g = torch.randint(0, n_groups, (n,), generator=gen)
    shape = (n,) if n_labels is None else (n, n_labels)
    y = (torch.rand(shape, generator=gen) < 0.4).float()
    s = (0.5 * torch.rand(shape, generator=gen) + 0.4 * y).clamp(0, 1)
    return s, y, g


class TestGroupStats(unittest.TestCase):
    @parameterized.expand([("binary_2", 2, None), ("binary_4", 4, None), ("multilabel_4", 4, 3)])
    def test_vs_fairlearn(self, _, n_groups, n_labels):
        s, y, g = data(n_groups=n_groups, n_labels=n_labels)
        out = compute_group_stats(s, y, g, threshold=0.45, min_group_size=1)
        self.assertEqual(set(GROUP_STAT_KEYS) | {"predicted_positives"}, set(out))
        for lab in [None] if n_labels is None else range(n_labels):
            col = (lambda t: t) if lab is None else (lambda t, lab=lab: t[..., lab])
            pred = (col(s) > 0.45).int().numpy()
            mf = MetricFrame(
                metrics={
                    "selection_rate": selection_rate,
                    "tpr": true_positive_rate,
                    "fpr": false_positive_rate,
                    "fnr": false_negative_rate,
                    "ppv": precision_score,
                    "balanced_accuracy": balanced_accuracy_score,
                },
                y_true=col(y).numpy(),
                y_pred=pred,
                sensitive_features=g.numpy(),
            )
            for k in mf.by_group.columns:
                np.testing.assert_allclose(col(out[k]).numpy(), mf.by_group[k].to_numpy(float), atol=1e-12, err_msg=k)
            np.testing.assert_array_equal(
                col(out["negatives"]).numpy(), np.bincount(g.numpy(), weights=1 - col(y).numpy())
            )

    def test_threshold_is_strict(self):
        s = torch.tensor([0.5, 0.5, 0.7, 0.2])
        out = compute_group_stats(
            s, torch.tensor([1, 0, 1, 0]), torch.zeros(4, dtype=torch.long), 0.5, min_group_size=1
        )
        self.assertEqual(float(out["selection_rate"][0]), 0.25)  # only 0.7 > 0.5
        self.assertEqual(float(out["tpr"][0]), 0.5)

    def test_min_group_size_is_inclusive(self):
        # a group of exactly min_group_size samples is estimable; one sample fewer is not
        s = torch.tensor([0.9, 0.2, 0.7, 0.4, 0.8, 0.1, 0.6], dtype=torch.float64)
        y = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
        g = torch.tensor([0, 0, 0, 0, 1, 1, 1])
        out = compute_group_stats(s, y, g, 0.5, min_group_size=4)
        self.assertEqual(float(out["tpr"][0]), 1.0)  # n = 4 = min_group_size
        self.assertEqual(float(out["selection_rate"][0]), 0.5)
        self.assertTrue(math.isnan(float(out["tpr"][1])))  # n = 3
        ev = evaluate_binary_fairness(s, y, g, 0, min_group_size=4)
        self.assertEqual(float(ev.tpr[0, 0, 0]), 1.0)
        self.assertTrue(math.isnan(float(ev.tpr[0, 0, 1])))
        self.assertTrue(math.isnan(float(ev.eod[0, 0])))  # the pooled rest (n = 3) is too small too
        self.assertEqual(float(evaluate_binary_fairness(s, y, g, 0, min_group_size=3).eod[0, 0]), 0.0)
        self.assertEqual(float(evaluate_binary_fairness(s, y, g, 1, min_group_size=3).eod[0, 0]), 0.0)  # ref n = 3
        table = compute_fairness_table(s, y, g, min_group_size=4)
        self.assertEqual(table.flags[0], "")
        self.assertIn("n=3 < min_group_size=4", table.flags[1])
        self.assertEqual(float(table.per_group["tpr"][0]), 1.0)

    def test_nan_policy(self):
        s = torch.tensor([0.9, 0.8, 0.1, 0.2, 0.3, 0.6, 0.4])
        y = torch.tensor([1, 1, 1, 0, 0, 0, 0])
        g = torch.tensor([0, 0, 0, 1, 1, 1, 2])  # group 1: no positives; group 2: n=1
        out = compute_group_stats(s, y, g, min_group_size=2)
        self.assertTrue(math.isnan(float(out["tpr"][1])) and math.isnan(float(out["fnr"][1])))
        self.assertTrue(math.isnan(float(out["balanced_accuracy"][1])))
        self.assertAlmostEqual(float(out["fpr"][1]), 1 / 3)
        self.assertTrue(torch.isnan(torch.stack([out[k][2] for k in GROUP_STAT_KEYS[3:]])).all())
        self.assertEqual(out["n"].tolist(), [3.0, 3.0, 1.0])
        self.assertTrue(math.isnan(float(out["fpr"][0])))  # group 0 has no negatives
        self.assertAlmostEqual(float(out["ppv"][0]), 1.0)
        out = compute_group_stats(s, y, g, threshold=0.95, min_group_size=1)
        self.assertTrue(math.isnan(float(out["ppv"][0])))  # nothing predicted positive
        self.assertEqual(float(out["selection_rate"][0]), 0.0)

    def test_integer_weights_equal_repetition(self):
        s, y, g = data(200, 3, 2, seed=1)
        w = torch.randint(0, 4, (200,))
        weighted = compute_group_stats(s, y, g, 0.4, weights=w.double(), min_group_size=1)
        rep = compute_group_stats(
            s.repeat_interleave(w, 0), y.repeat_interleave(w, 0), g.repeat_interleave(w), 0.4, min_group_size=1
        )
        for k in GROUP_STAT_KEYS:
            torch.testing.assert_close(weighted[k], rep[k], equal_nan=True)
        batch = compute_group_stats(
            s, y, g, 0.4, weights=torch.stack([w, torch.ones_like(w)]).double(), min_group_size=1
        )
        torch.testing.assert_close(batch["tpr"][0], rep["tpr"])
        torch.testing.assert_close(batch["tpr"][1], compute_group_stats(s, y, g, 0.4, min_group_size=1)["tpr"])

    def test_bad_weights(self):
        s, y, g = data(20)
        with self.assertRaisesRegex(ValueError, "non-negative"):
            compute_group_stats(s, y, g, weights=-torch.ones(20))
        with self.assertRaisesRegex(ValueError, "weights must have shape"):
            compute_group_stats(s, y, g, weights=torch.ones(19))


if __name__ == "__main__":
    unittest.main()
