# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Counterfactual plots: PNG files, shape checks."""

from __future__ import annotations

import os
import tempfile
import unittest

import numpy as np

from monai_fair.report import plot_counterfactual_pairs, plot_null_calibration, plot_power_curve


class TestCounterfactualPlots(unittest.TestCase):
    def test_pngs(self):
        rng = np.random.default_rng(0)
        with tempfile.TemporaryDirectory() as tmp:
            grey = rng.random((3, 1, 8, 8))
            paths = [
                plot_counterfactual_pairs(
                    grey,
                    [grey[::-1], grey],
                    os.path.join(tmp, "pairs.png"),
                    row_labels=["a", "b", "c"],
                    data_label="DEMO DATA (synthetic)",
                ),
                plot_counterfactual_pairs(
                    rng.random((2, 3, 8, 8)), rng.random((2, 3, 8, 8)), os.path.join(tmp, "rgb.png")
                ),
                plot_null_calibration({"gcm": rng.random(50), "crt": rng.random(50)}, os.path.join(tmp, "null.png")),
                plot_power_curve([0, 1], {"gcm": [0.05, 0.9]}, os.path.join(tmp, "power.png")),
            ]
            for p in paths:
                with open(p, "rb") as f:
                    self.assertTrue(f.read(8).startswith(b"\x89PNG"))

    def test_shape_mismatch(self):
        with tempfile.TemporaryDirectory() as tmp:
            with self.assertRaisesRegex(ValueError, "shape"):
                plot_counterfactual_pairs(np.zeros((2, 1, 8, 8)), np.zeros((2, 1, 4, 4)), os.path.join(tmp, "x.png"))
            with self.assertRaisesRegex(ValueError, "no example"):
                plot_counterfactual_pairs(np.zeros((0, 1, 8, 8)), np.zeros((0, 1, 8, 8)), os.path.join(tmp, "x.png"))


if __name__ == "__main__":
    unittest.main()
