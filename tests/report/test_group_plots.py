# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of per-group ROC / reliability data and figures."""

from __future__ import annotations

import unittest

import numpy as np
import torch
from parameterized import parameterized
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score, roc_curve

from monai_fair.report.group_plots import (
    figure_to_array,
    figure_to_png,
    plot_group_calibration,
    plot_group_metric_bars,
    plot_group_roc,
    reliability_curve,
    roc_curve_points,
)


def _data(n=300, labels=1, seed=0, ties=True):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, labels, generator=g) < 0.4).double()
    s = (0.35 * y + 0.65 * torch.rand(n, labels, generator=g)).clamp(0, 1)
    if ties:
        s = torch.round(s * 20) / 20  # ties on purpose
    grp = torch.randint(0, 3, (n,), generator=g)
    return (s[:, 0], y[:, 0], grp) if labels == 1 else (s, y, grp)


class TestCurves(unittest.TestCase):
    @parameterized.expand([[0], [1], [2]])
    def test_roc_matches_sklearn(self, seed):
        s, y, _ = _data(seed=seed)
        fpr, tpr, thr = roc_curve_points(s, y)
        sk_fpr, sk_tpr, sk_thr = roc_curve(y.numpy(), s.numpy(), drop_intermediate=False)
        np.testing.assert_allclose(fpr.numpy(), sk_fpr)
        np.testing.assert_allclose(tpr.numpy(), sk_tpr)
        np.testing.assert_allclose(thr.numpy()[1:], sk_thr[1:])
        self.assertAlmostEqual(float(torch.trapezoid(tpr, fpr)), roc_auc_score(y.numpy(), s.numpy()), places=12)

    def test_roc_single_class_raises(self):
        with self.assertRaisesRegex(ValueError, "single class"):
            roc_curve_points(torch.rand(5), torch.ones(5))

    def test_reliability_matches_sklearn(self):
        # no score on a bin edge: sklearn closes bins on the right, we (like the ECE of the table) on the left
        s, y, _ = _data(n=500, ties=False)
        mean_s, frac, count = reliability_curve(s, y, n_bins=10)
        keep = count > 0
        sk_frac, sk_mean = calibration_curve(y.numpy(), s.numpy(), n_bins=10, strategy="uniform")
        np.testing.assert_allclose(frac[keep].numpy(), sk_frac)
        np.testing.assert_allclose(mean_s[keep].numpy(), sk_mean)
        self.assertEqual(int(count.sum()), 500)
        self.assertTrue(torch.isnan(frac[~keep]).all())

    def test_reliability_bad_bins(self):
        with self.assertRaises(ValueError):
            reliability_curve(torch.rand(4), torch.ones(4), n_bins=0)


class TestFigures(unittest.TestCase):
    def test_roc_figure_legend_keeps_single_class_group(self):
        s, y, g = _data()
        y = y.clone()
        y[g == 2] = 1.0  # group 2 has a single class: no curve, still in the legend
        fig = plot_group_roc(s, y, g, group_names={0: "A", 1: "B", 2: "C"}, title="roc")
        labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        self.assertEqual(len(labels), 3)
        self.assertIn("single class", labels[2])
        auc_a = roc_auc_score(y[g == 0].numpy(), s[g == 0].numpy())
        self.assertIn(f"AUC={auc_a:.3f}", labels[0])
        arr = figure_to_array(fig)
        self.assertEqual(arr.dtype, np.uint8)
        self.assertEqual(arr.ndim, 3)
        self.assertEqual(arr.shape[2], 3)

    def test_multilabel_panels_and_png(self):
        s, y, g = _data(labels=3)
        fig = plot_group_calibration(s, y, g, n_bins=5, label_names=["a", "b", "c"])
        self.assertEqual(len(fig.axes), 3)
        self.assertEqual([ax.get_title() for ax in fig.axes], ["a", "b", "c"])
        png = figure_to_png(fig)
        self.assertTrue(png.startswith(b"\x89PNG"))

    def test_shape_mismatch_raises(self):
        with self.assertRaises(ValueError):
            plot_group_roc(torch.rand(5), torch.ones(4), torch.zeros(5))

    def test_metric_bars_nan_and_whiskers(self):
        fig = plot_group_metric_bars(
            {"tpr": [0.5, float("nan")], "auc": [0.7, 0.8]},
            ["F", "M"],
            lower={"tpr": [0.4, float("nan")]},
            upper={"tpr": [0.6, float("nan")]},
        )
        self.assertEqual(len(fig.axes), 2)
        texts = [t.get_text() for t in fig.axes[0].texts]
        self.assertEqual(texts, ["NaN"])
        self.assertEqual(len(fig.axes[0].patches), 1)  # the NaN bar is not drawn as 0
        with self.assertRaises(ValueError):
            plot_group_metric_bars({"tpr": [0.5]}, ["F", "M"])


if __name__ == "__main__":
    unittest.main()
