# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""ROC plots mark each group's operating point at the decision threshold."""

from __future__ import annotations

import unittest

import numpy as np
from sklearn.metrics import confusion_matrix

from monai_fair.report import plot_group_roc


def _points(fig) -> list[tuple[float, float]]:
    out = []
    for ax in fig.axes:
        for line in ax.get_lines():
            if line.get_marker() == "o" and len(line.get_xdata()) == 1:
                out.append((float(line.get_xdata()[0]), float(line.get_ydata()[0])))
    return out


class TestRocOperatingPoints(unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(0)
        self.g = rng.integers(0, 2, 200)
        self.y = rng.integers(0, 2, 200)
        self.s = np.clip(0.3 * self.y + 0.15 * self.g + rng.uniform(0, 0.6, 200), 0, 1)

    def test_points_match_confusion_matrices(self):
        for t in (0.3, 0.55):
            fig = plot_group_roc(self.s, self.y, self.g, group_codes=[0, 1], threshold=t)
            expected = []
            for code in (0, 1):
                m = self.g == code
                tn, fp, fn, tp = confusion_matrix(self.y[m], self.s[m] > t, labels=[0, 1]).ravel()
                expected.append((fp / (fp + tn), tp / (tp + fn)))
            np.testing.assert_allclose(_points(fig), expected, atol=1e-12)
            legend = [x.get_text() for x in fig.axes[0].get_legend().get_texts()]
            self.assertIn(f"● operating point, t={t:.3g}", legend)

    def test_score_equal_to_threshold_is_negative(self):
        s = np.array([0.5, 0.5, 0.9, 0.1])
        fig = plot_group_roc(s, np.array([1, 0, 1, 0]), np.zeros(4, dtype=int), threshold=0.5)
        self.assertEqual(_points(fig), [(0.0, 0.5)])

    def test_no_threshold_no_points_and_bad_length(self):
        self.assertEqual(_points(plot_group_roc(self.s, self.y, self.g)), [])
        with self.assertRaisesRegex(ValueError, "threshold has 2 values for 1 label"):
            plot_group_roc(self.s, self.y, self.g, threshold=[0.3, 0.4])


if __name__ == "__main__":
    unittest.main()
