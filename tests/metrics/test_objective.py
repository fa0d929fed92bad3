# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The epsilon-constrained objective phi = BA * [|bias| < eps]."""

from __future__ import annotations

import math
import unittest

import torch

from monai_fair.metrics import constrained_objective


class TestObjective(unittest.TestCase):
    def test_values(self):
        ba = torch.tensor([0.8, 0.8, 0.8, 0.7, math.nan], dtype=torch.float64)
        bias = torch.tensor([0.01, -0.049, 0.05, -0.2, 0.0], dtype=torch.float64)
        out = constrained_objective(ba, bias, epsilon=0.05)
        self.assertEqual(out[:4].tolist(), [0.8, 0.8, 0.0, 0.0])  # |bias| == eps is not < eps
        self.assertTrue(math.isnan(float(out[4])))
        self.assertTrue(math.isnan(float(constrained_objective(0.9, math.nan))))
        self.assertEqual(float(constrained_objective(0.9, 0.02, epsilon=0.03)), 0.9)
        self.assertEqual(out.dtype, torch.float64)


if __name__ == "__main__":
    unittest.main()
