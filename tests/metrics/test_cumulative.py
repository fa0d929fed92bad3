# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of FairnessCumulative buffering and aggregation (single process; the DDP run is in tests/handlers)."""

from __future__ import annotations

import math
import unittest

import numpy as np
import torch
from fairlearn.metrics import equal_opportunity_difference, true_positive_rate
from monai.data import MetaTensor, decollate_batch
from parameterized import parameterized
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from monai_fair.metrics import FairnessCumulative, as_group_batch, as_prediction_batch, compute_fairness_table
from monai_fair.metrics.thresholds import best_balanced_accuracy_threshold


def _data(n=120, labels=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shape = (n,) if labels is None else (n, labels)
    y = (torch.rand(shape, generator=gen) < 0.5).float()
    g = torch.randint(0, 2, (n,), generator=gen)
    shift = (0.3 * (g == 1).float()).view(-1, *([1] * (len(shape) - 1)))
    s = (0.3 * y + 0.4 * torch.rand(shape, generator=gen) + shift).clamp(0, 1)
    return s, y, g


def _batches(s, y, g, size=32):
    for i in range(0, s.shape[0], size):
        yield s[i : i + size], y[i : i + size], g[i : i + size]


class TestNormalisation(unittest.TestCase):
    @parameterized.expand(
        [
            ["batch_1d", lambda s, y: (s, y), (4,)],
            ["batch_col", lambda s, y: (s[:, None], y[:, None]), (4,)],
            ["decollated", lambda s, y: (list(s[:, None]), list(y[:, None])), (4,)],
            ["decollated_scalars", lambda s, y: (list(s), [float(v) for v in y]), (4,)],
            ["numpy", lambda s, y: (s.numpy(), y.numpy()), (4,)],
        ]
    )
    def test_single_label_shapes(self, _, make, shape):
        s, y = torch.tensor([0.1, 0.6, 0.8, 0.3]), torch.tensor([0.0, 1.0, 1.0, 0.0])
        p, t = as_prediction_batch(*make(s, y))
        self.assertEqual(tuple(p.shape), shape)
        torch.testing.assert_close(p.double(), s.double())
        torch.testing.assert_close(t.double(), y.double())

    def test_multilabel_and_metatensor(self):
        s = MetaTensor(torch.rand(5, 3))
        p, t = as_prediction_batch(list(s), list(torch.ones(5, 3)))
        self.assertEqual(tuple(p.shape), (5, 3))
        self.assertNotIsInstance(p, MetaTensor)

    def test_output_index(self):
        probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
        onehot = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
        p, t = as_prediction_batch(probs, onehot, output_index=1)
        torch.testing.assert_close(p, torch.tensor([0.1, 0.8, 0.6]))
        torch.testing.assert_close(t, torch.tensor([0.0, 1.0, 0.0]))
        p2, t2 = as_prediction_batch(list(probs), [torch.tensor([0]), torch.tensor([1]), torch.tensor([0])], 1)
        torch.testing.assert_close(t2, t)
        with self.assertRaises(ValueError):
            as_prediction_batch(probs, onehot, output_index=2)
        # a single-column (sigmoid) output has only column 0, and its label is the label, not "label == 0"
        p3, t3 = as_prediction_batch(torch.tensor([[0.3], [0.7]]), torch.tensor([[0.0], [1.0]]), output_index=0)
        torch.testing.assert_close(t3, torch.tensor([0.0, 1.0]))
        p4, _ = as_prediction_batch(torch.tensor([0.3, 0.7]), torch.tensor([0.0, 1.0]), output_index=0)
        torch.testing.assert_close(p4, torch.tensor([0.3, 0.7]))

    def test_shape_mismatch(self):
        with self.assertRaises(ValueError):
            as_prediction_batch(torch.rand(4, 2), torch.rand(4, 3))

    def test_groups(self):
        torch.testing.assert_close(as_group_batch([0, 1, torch.tensor(2)]), torch.tensor([0, 1, 2]))
        torch.testing.assert_close(as_group_batch(torch.tensor([[1.0], [0.0]])), torch.tensor([1, 0]))
        with self.assertRaisesRegex(TypeError, "integers"):
            as_group_batch(["F", "M"])
        with self.assertRaisesRegex(ValueError, "integers"):
            as_group_batch(torch.tensor([0.5, 1.0]))
        with self.assertRaisesRegex(ValueError, "group codes for a batch"):
            as_group_batch([0, 1], batch_size=3)


class TestFairnessCumulative(unittest.TestCase):
    def test_batches_equal_functional_core(self):
        s, y, g = _data()
        metric = FairnessCumulative(reference=1, group_names={"0": "F", "1": "M"}, min_group_size=5)
        for i, (bs, by, bg) in enumerate(_batches(s, y, g)):
            if i % 2:  # mix MONAI's decollated lists and batch tensors
                metric(decollate_batch(bs[:, None]), decollate_batch(by[:, None]), decollate_batch(bg))
            else:
                metric(bs, by, bg)
        self.assertEqual(len(metric), s.shape[0])
        table = metric.aggregate()
        ref = compute_fairness_table(s, y, g, reference=1, group_names={0: "F", 1: "M"}, min_group_size=5)
        self.assertEqual(table.as_flat_dict(), ref.as_flat_dict())
        self.assertEqual(table.group_names, ["F", "M"])
        # independent oracles: sklearn per-group AUC, fairlearn equal-opportunity gap
        for code, name in ((0, "F"), (1, "M")):
            m = (g == code).numpy()
            self.assertAlmostEqual(table.as_flat_dict()[f"auc_{name}"], roc_auc_score(y.numpy()[m], s.numpy()[m]))
            tpr = true_positive_rate(y.numpy()[m], (s.numpy()[m] > 0.5).astype(float))
            self.assertAlmostEqual(table.as_flat_dict()[f"tpr_{name}"], tpr)
        eod = equal_opportunity_difference(y.numpy(), (s.numpy() > 0.5).astype(float), sensitive_features=g.numpy())
        self.assertAlmostEqual(float(table.summary["eod_max_min"]), eod)

    def test_reset_and_append(self):
        metric = FairnessCumulative(min_group_size=1)
        metric.append(torch.tensor(0.7), torch.tensor(1.0), 0)
        metric.append(torch.tensor(0.2), torch.tensor(0.0), 0)
        self.assertEqual(len(metric), 2)
        metric.reset()
        self.assertEqual(len(metric), 0)
        with self.assertRaisesRegex(ValueError, "no samples"):
            metric.aggregate()

    def test_multilabel(self):
        s, y, g = _data(labels=3)
        metric = FairnessCumulative(label_names=["a", "b", "c"], min_group_size=5)
        for batch in _batches(s, y, g, 50):
            metric(*batch)
        flat = metric.aggregate().as_flat_dict()
        m = (g == 1).numpy()
        self.assertAlmostEqual(flat["auc_b_1"], roc_auc_score(y.numpy()[m, 1], s.numpy()[m, 1]))
        with self.assertRaisesRegex(ValueError, "shape changed"):
            metric(s[:4, :2], y[:4, :2], g[:4])

    def test_ba_optimal_threshold(self):
        s, y, g = _data(seed=3)
        metric = FairnessCumulative(threshold="ba-optimal", min_group_size=5)
        metric(s, y, g)
        table = metric.aggregate()
        # oracle: sklearn's balanced accuracy of "score > t" at every distinct observed score, first maximum
        candidates = np.unique(s.numpy())
        bas = [balanced_accuracy_score(y.numpy(), (s.numpy() > t).astype(int)) for t in candidates]
        thr = float(candidates[int(np.argmax(bas))])
        self.assertAlmostEqual(float(table.threshold), thr)
        self.assertAlmostEqual(best_balanced_accuracy_threshold(s, y)[0], thr)
        m = (g == 0).numpy()
        ba = balanced_accuracy_score(y.numpy()[m], (s.numpy()[m] > thr).astype(int))
        self.assertAlmostEqual(table.as_flat_dict()["balanced_accuracy_0"], ba)
        with self.assertRaises(ValueError):
            FairnessCumulative(threshold="best")

    def test_ba_optimal_threshold_single_class_is_nan_and_flagged(self):
        s, _, g = _data(seed=3)
        metric = FairnessCumulative(threshold="ba-optimal", min_group_size=5)
        metric(s, torch.zeros_like(s), g)
        with self.assertLogs("monai_fair.metrics.cumulative", level="WARNING") as logs:
            table = metric.aggregate()
        self.assertIn("ba-optimal threshold undefined", logs.output[0])
        self.assertTrue(math.isnan(float(table.threshold)))
        for key in ("selection_rate", "fpr", "balanced_accuracy"):
            self.assertTrue(torch.isnan(table.per_group[key]).all(), key)
        self.assertTrue(torch.isnan(table.gaps["spd"]).all())
        self.assertTrue(math.isnan(float(table.summary["spd_max_min"])))
        self.assertTrue(torch.equal(table.per_group["n"], torch.bincount(g).double()))  # counts are kept
        self.assertTrue(all("ba-optimal threshold undefined" in f for f in table.flags.values()))

    def test_group_names_as_list(self):
        s, y, g = _data()
        metric = FairnessCumulative(group_names=["F", "M"], min_group_size=5)
        metric(s, y, g)
        self.assertEqual(metric.aggregate().group_names, ["F", "M"])
        bad = FairnessCumulative(group_names=["F"], min_group_size=5)
        bad(s, y, g)
        with self.assertRaisesRegex(ValueError, "group names"):
            bad.aggregate()

    def test_small_group_is_nan_and_flagged(self):
        s, y, g = _data()
        g = g.clone()
        g[:3] = 2
        metric = FairnessCumulative(min_group_size=10)
        metric(s, y, g)
        table = metric.aggregate()
        self.assertTrue(np.isnan(table.as_flat_dict()["tpr_2"]))
        self.assertEqual(table.as_flat_dict()["n_2"], 3.0)
        self.assertIn("min_group_size", table.flags[2])

    def test_extend_arity(self):
        with self.assertRaises(ValueError):
            FairnessCumulative().extend(torch.rand(3), torch.ones(3))


if __name__ == "__main__":
    unittest.main()
