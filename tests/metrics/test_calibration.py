# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Per-group ECE against a numpy hand computation and MONAI's CalibrationErrorMetric."""

from __future__ import annotations

import math
import unittest

import numpy as np
import torch
from monai.metrics import CalibrationErrorMetric
from parameterized import parameterized

from monai_fair.metrics import compute_group_ece


def numpy_ece(p: np.ndarray, y: np.ndarray, n_bins: int, w: np.ndarray | None = None) -> float:
    w = np.ones_like(p) if w is None else w
    bins = np.minimum(np.floor(p * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for k in range(n_bins):
        m = bins == k
        if w[m].sum() > 0:
            acc = np.average(y[m], weights=w[m])
            conf = np.average(p[m], weights=w[m])
            total += w[m].sum() / w.sum() * abs(acc - conf)
    return total


class TestGroupECE(unittest.TestCase):
    def test_bin_edge_convention_differs_from_monai(self):
        # docs/metrics.md "ECE bin edges": a score on an inner edge goes in the upper bin here, the lower in MONAI
        y, g = torch.tensor([1.0, 0.0]), torch.zeros(2, dtype=torch.long)
        monai = CalibrationErrorMetric(num_bins=5, include_background=True, calibration_reduction="expected")
        on_edge = torch.tensor([0.4, 0.3])
        ece = compute_group_ece(on_edge.double(), y, g, n_bins=5, min_group_size=1)
        self.assertAlmostEqual(float(ece[0]), (0.6 + 0.3) / 2, places=6)  # bins [0.4, 0.6) and [0.2, 0.4)
        monai(y_pred=on_edge.view(1, 1, 2), y=y.view(1, 1, 2))
        self.assertAlmostEqual(float(monai.aggregate()), abs(0.5 - 0.35), places=6)  # one bin (0.2, 0.4]
        # off the edges the two agree
        off_edge = torch.tensor([0.45, 0.3])
        monai.reset()
        monai(y_pred=off_edge.view(1, 1, 2), y=y.view(1, 1, 2))
        ece = compute_group_ece(off_edge.double(), y, g, n_bins=5, min_group_size=1)
        self.assertAlmostEqual(float(ece[0]), float(monai.aggregate()), places=6)

    @parameterized.expand([("bins15", 15, None), ("bins10_multilabel", 10, 2), ("bins1", 1, None)])
    def test_vs_numpy(self, _, n_bins, n_labels):
        gen = torch.Generator().manual_seed(n_bins)
        shape = (900,) if n_labels is None else (900, n_labels)
        g = torch.randint(0, 3, (900,), generator=gen)
        s = torch.rand(shape, generator=gen, dtype=torch.float64)
        y = (torch.rand(shape, generator=gen, dtype=torch.float64) < s**1.5).double()
        ece = compute_group_ece(s, y, g, n_bins=n_bins)
        for lab in [None] if n_labels is None else range(n_labels):
            col = (lambda t: t) if lab is None else (lambda t, lab=lab: t[..., lab])
            for gi in range(3):
                m = (g == gi).numpy()
                ref = numpy_ece(col(s).numpy()[m], col(y).numpy()[m], n_bins)
                self.assertAlmostEqual(float(col(ece)[gi]), ref, places=12)

    def test_vs_monai(self):
        gen = torch.Generator().manual_seed(1)
        g = torch.randint(0, 2, (500,), generator=gen)
        s = torch.rand(500, generator=gen)
        y = (torch.rand(500, generator=gen) < s).float()
        ece = compute_group_ece(s, y, g, n_bins=15)
        for gi in range(2):
            m = g == gi
            metric = CalibrationErrorMetric(num_bins=15, metric_reduction="none")
            metric(y_pred=s[m].reshape(1, 1, -1), y=y[m].reshape(1, 1, -1))
            self.assertAlmostEqual(float(ece[gi]), float(metric.aggregate().reshape(-1)[0]), places=5)

    def test_bin_edges_and_endpoints(self):
        # n_bins=4: 0.25 → bin 1, 1.0 → last bin; both bins perfectly calibrated except where stated
        s = torch.tensor([0.25, 0.25, 1.0, 1.0, 0.0, 0.0])
        y = torch.tensor([0, 1, 1, 1, 0, 1])
        ece = compute_group_ece(s, y, torch.zeros(6, dtype=torch.long), n_bins=4, min_group_size=1)
        # bin0: {0,0} labels {0,1}: |0.5-0|*2; bin1: {.25,.25} labels {0,1}: |0.5-0.25|*2; bin3: |1-1|*2
        self.assertAlmostEqual(float(ece[0]), (2 * 0.5 + 2 * 0.25) / 6)

    def test_weights_equal_repetition_and_policy(self):
        gen = torch.Generator().manual_seed(2)
        g = torch.randint(0, 3, (200,), generator=gen)
        s = torch.rand(200, generator=gen, dtype=torch.float64)
        y = (torch.rand(200, generator=gen) < 0.5).double()
        w = torch.randint(0, 3, (200,), generator=gen)
        torch.testing.assert_close(
            compute_group_ece(s, y, g, weights=w.double()),
            compute_group_ece(s.repeat_interleave(w), y.repeat_interleave(w), g.repeat_interleave(w)),
        )
        self.assertTrue(math.isnan(float(compute_group_ece(s, y, g, group_codes=[0, 1, 2, 3])[3])))
        with self.assertRaisesRegex(ValueError, r"\[0, 1\]"):
            compute_group_ece(s + 0.5, y, g)
        with self.assertRaisesRegex(ValueError, "n_bins"):
            compute_group_ece(s, y, g, n_bins=0)


if __name__ == "__main__":
    unittest.main()
