# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Data-poisoning split: exact flip counts, only the target group, deterministic by seed."""

from __future__ import annotations

import unittest

import numpy as np
import torch
from parameterized import parameterized

from monai_fair.data.poisoning import flip_count, flip_group_labels


class TestPoisoning(unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(0)
        self.labels = (rng.random(101) < 0.3).astype(np.int64)
        self.groups = rng.integers(-1, 2, size=101)

    @parameterized.expand([[0.0], [0.25], [0.5], [0.75], [1.0]])
    def test_flips_exactly_the_stated_labels(self, p):
        target = 1
        members = np.flatnonzero(self.groups == target)
        flipped, index = flip_group_labels(self.labels, self.groups, target, p, seed=3)
        self.assertEqual(len(index), int(np.floor(p * members.size + 0.5)))
        self.assertTrue(np.isin(index, members).all())  # only the target group
        changed = np.flatnonzero(flipped != self.labels)
        np.testing.assert_array_equal(changed, index)  # exactly those, each flipped 0 <-> 1
        np.testing.assert_array_equal(flipped[index], 1 - self.labels[index])
        self.assertEqual(flipped.dtype, self.labels.dtype)

    def test_deterministic_by_seed(self):
        a = flip_group_labels(self.labels, self.groups, 0, 0.5, seed=7)[1]
        b = flip_group_labels(self.labels, self.groups, 0, 0.5, seed=7)[1]
        c = flip_group_labels(self.labels, self.groups, 0, 0.5, seed=8)[1]
        np.testing.assert_array_equal(a, b)
        self.assertFalse(np.array_equal(a, c))

    def test_tensor_in_tensor_out(self):
        y = torch.as_tensor(self.labels, dtype=torch.float32)
        flipped, index = flip_group_labels(y, torch.as_tensor(self.groups), 1, 0.5, seed=1)
        self.assertIsInstance(flipped, torch.Tensor)
        self.assertEqual(flipped.dtype, torch.float32)
        np.testing.assert_array_equal(index.numpy(), flip_group_labels(self.labels, self.groups, 1, 0.5, seed=1)[1])

    def test_rounding_and_errors(self):
        self.assertEqual(flip_count(0.5, 5), 3)  # half rounds up
        self.assertEqual(flip_count(0.29, 100), 29)
        with self.assertRaises(ValueError):
            flip_count(1.5, 10)
        with self.assertRaises(ValueError):
            flip_group_labels([0, 2, 1], [0, 0, 1], 0, 0.5)
        with self.assertRaises(ValueError):
            flip_group_labels([0, 1], [0, 0, 1], 0, 0.5)


if __name__ == "__main__":
    unittest.main()
