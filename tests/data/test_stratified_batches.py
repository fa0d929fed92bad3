# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Stratified batches: every batch holds both groups in proportion; each sample once per epoch."""

from __future__ import annotations

import unittest

from monai_fair.data.stratified_batches import GroupStratifiedBatchSampler


class TestGroupStratifiedBatchSampler(unittest.TestCase):
    def test_groups_in_every_batch_and_each_index_once(self):
        groups = [0] * 70 + [1] * 30
        sampler = GroupStratifiedBatchSampler(groups, batch_size=16, seed=3)
        epoch1 = list(sampler)
        self.assertEqual(len(epoch1), len(sampler))
        self.assertEqual(sorted(i for b in epoch1 for i in b), list(range(100)))
        for batch in epoch1:
            ones = sum(groups[i] for i in batch)
            self.assertTrue(3 <= ones <= 6, (len(batch), ones))  # about 30 % of 14-15
        epoch2 = list(sampler)
        self.assertNotEqual(epoch1, epoch2)  # reshuffled per epoch
        self.assertEqual(list(GroupStratifiedBatchSampler(groups, 16, seed=3)), epoch1)  # repeatable

    def test_ranks_split_the_batches_evenly(self):
        groups = [0] * 50 + [1] * 21
        ranks = [list(GroupStratifiedBatchSampler(groups, 16, seed=1, num_replicas=2, rank=r)) for r in (0, 1)]
        self.assertEqual(len(ranks[0]), len(ranks[1]))
        seen = sorted(i for r in ranks for b in r for i in b)
        self.assertEqual(seen, list(range(71)))
        with self.assertRaisesRegex(ValueError, "rank"):
            GroupStratifiedBatchSampler(groups, 16, num_replicas=2, rank=2)

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, "empty"):
            GroupStratifiedBatchSampler([], 4)
        with self.assertRaisesRegex(ValueError, "batch_size"):
            GroupStratifiedBatchSampler([0, 1], 0)


if __name__ == "__main__":
    unittest.main()
