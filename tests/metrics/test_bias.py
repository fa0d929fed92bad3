# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Signed privileged-vs-rest bias of hard predictions against the fairness table and a direct computation."""

from __future__ import annotations

import math
import unittest

import torch
from parameterized import parameterized

from monai_fair.metrics import compute_binary_bias, compute_fairness_table


class TestBinaryBias(unittest.TestCase):
    @parameterized.expand([("spd", "spd"), ("eod", "eod"), ("aod", "aod")])
    def test_two_groups_match_table(self, kind, gap):
        gen = torch.Generator().manual_seed(0)
        a = torch.randint(0, 2, (500,), generator=gen)
        y = (torch.rand(500, generator=gen) < 0.4).float()
        s = torch.rand(500, generator=gen) * 0.6 + 0.4 * y
        pred = (s > 0.5).float()
        bias = compute_binary_bias(pred, y, a, reference=1, metric=kind)
        table = compute_fairness_table(s, y, a, reference=1)
        self.assertAlmostEqual(float(bias), float(table.gaps[gap][0]), places=12)

    def test_pooled_unprivileged_and_explicit_masks(self):
        # codes 0 and 2 pool into "unprivileged"; a multiplicative mask would mis-assign rows with y == 0
        pred = torch.tensor([1.0, 0, 1, 1, 0, 0])
        y = torch.tensor([1.0, 1, 0, 1, 1, 0])
        a = torch.tensor([0, 2, 0, 1, 1, 1])
        self.assertAlmostEqual(float(compute_binary_bias(pred, y, a, 1, "spd")), 2 / 3 - 1 / 3)
        self.assertAlmostEqual(float(compute_binary_bias(pred, y, a, 1, "eod")), 1 / 2 - 1 / 2)
        self.assertAlmostEqual(float(compute_binary_bias(pred, y, a, 1, "aod")), 0.5 * (0.0 + (1.0 - 0.0)))

    def test_batched_and_nan(self):
        pred = torch.tensor([[1.0, 0, 1, 0], [0, 0, 1, 1]])
        y = torch.tensor([1.0, 1, 0, 0])
        a = torch.tensor([0, 1, 0, 1])
        out = compute_binary_bias(pred, y, a, 1, "eod")
        self.assertEqual(out.tolist(), [1.0, 0.0])
        nan = compute_binary_bias(torch.tensor([1.0, 0]), torch.tensor([1.0, 0]), torch.tensor([0, 1]), 1, "eod")
        self.assertTrue(math.isnan(float(nan)))  # no privileged positives
        with self.assertRaisesRegex(ValueError, "metric"):
            compute_binary_bias(pred, y, a, metric="eo")
        with self.assertRaisesRegex(ValueError, "same length"):
            compute_binary_bias(pred, y[:3], a)

    def test_unknown_policy(self):
        # rest = code 0 (TPR 1/2); the unknown positive is predicted negative
        pred = torch.tensor([1.0, 0, 1, 1, 0, 0])
        y = torch.tensor([1.0, 1, 1, 1, 0, 1])
        a = torch.tensor([0, 0, 1, 1, 1, -1])
        self.assertAlmostEqual(float(compute_binary_bias(pred, y, a, 1, "eod")), 1 / 2 - 1)
        # "group": the unknown sample joins the rest, TPR_rest = 1/3
        self.assertAlmostEqual(float(compute_binary_bias(pred, y, a, 1, "eod", unknown="group")), 1 / 3 - 1)


if __name__ == "__main__":
    unittest.main()
