# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the study plots: valid PNGs, NaN-safe, no pyplot state."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

from monai_fair.report import StudyResults, aggregate_results, plot_method_bars, plot_tradeoff, plot_trajectories


def _assert_png(case: unittest.TestCase, path: str) -> None:
    with Image.open(path) as img:
        case.assertEqual(img.format, "PNG")
        img.verify()
    with Image.open(path) as img:
        case.assertGreater(img.size[0], 100)
        case.assertGreater(np.unique(np.asarray(img.convert("L"))).size, 2)  # something was drawn


class TestStudyPlots(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.out = Path(cls.tmp.name)
        r = StudyResults(metric="eod", epsilon=0.03, methods=["default", "pruning", "broken"])
        for seed in (1, 2, 3):
            r.add(seed, "default", "test", balanced_accuracy=0.7 + 0.01 * seed, eod=0.05 + 0.01 * seed, spd=0.0)
            r.add(seed, "pruning", "test", balanced_accuracy=0.66 + 0.01 * seed, eod=0.01 * (seed - 2), spd=0.0)
            r.add(seed, "broken", "test", balanced_accuracy=0.5, eod=float("nan"), spd=0.0)
        r.add_trajectory(
            1,
            "pruning",
            {"step": [0, 1, 2], "bias": [0.08, 0.03, float("nan")], "balanced_accuracy": [0.72, 0.7, 0.69]},
        )
        r.add_trajectory(2, "pruning", {"step": [0, 1], "bias": [0.06, 0.0], "balanced_accuracy": [0.7, 0.68]})
        cls.results = r
        cls.summary = aggregate_results(r)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_method_bars_with_nan_method(self):
        backend = matplotlib.get_backend()
        path = plot_method_bars(self.summary, self.out / "bars.png", split="test", epsilon=0.03)
        _assert_png(self, path)
        self.assertEqual(matplotlib.get_backend(), backend)  # caller's backend untouched

    def test_tradeoff(self):
        _assert_png(self, plot_tradeoff(self.results, self.out / "trade.png", split="test", epsilon=0.03))
        df = self.results.to_dataframe()
        _assert_png(self, plot_tradeoff(df, self.out / "trade_df.png", methods=["pruning"]))

    def test_trajectories(self):
        trajs = self.results.method_trajectories("pruning")
        self.assertEqual(sorted(trajs), [1, 2])
        _assert_png(self, plot_trajectories(trajs, self.out / "traj.png", method="pruning", epsilon=0.03, rho=0.65))
        _assert_png(self, plot_trajectories({1: {"step": []}}, self.out / "empty.png", method="none"))

    def test_unknown_split(self):
        with self.assertRaises(ValueError):
            plot_method_bars(self.summary, self.out / "x.png", split="val")


if __name__ == "__main__":
    unittest.main()
