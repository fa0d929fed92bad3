# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import os
import tempfile
import unittest
from collections import Counter

import numpy as np
import torch

from monai_fair.debias import (
    LOSS_WEIGHT_KEY,
    MaskedWeightedBCEWithLogitsLoss,
    distributed_group_sampler,
    group_sampler,
    weighted_target_batch,
    with_loss_weights,
)


class TestMaskedWeightedBCE(unittest.TestCase):
    def setUp(self):
        g = torch.Generator().manual_seed(0)
        self.logits = torch.randn(6, 3, generator=g)
        self.labels = (torch.rand(6, 3, generator=g) > 0.5).float()

    def test_unit_weights_equal_torch_bce(self):
        target = torch.cat([self.labels, torch.ones(6, 1)], 1)
        got = MaskedWeightedBCEWithLogitsLoss()(self.logits, target)
        torch.testing.assert_close(got, torch.nn.BCEWithLogitsLoss()(self.logits, self.labels))

    def test_nan_labels_are_ignored(self):
        labels = self.labels.clone()
        labels[0, 1] = labels[3, 2] = float("nan")
        got = MaskedWeightedBCEWithLogitsLoss()(self.logits, torch.cat([labels, torch.ones(6, 1)], 1))
        keep = ~torch.isnan(labels)
        expected = torch.nn.functional.binary_cross_entropy_with_logits(self.logits[keep], labels[keep])
        torch.testing.assert_close(got, expected)

    def test_integer_weights_equal_repeated_samples(self):
        w = torch.tensor([1.0, 2.0, 1.0, 3.0, 1.0, 1.0])
        got = MaskedWeightedBCEWithLogitsLoss()(self.logits, torch.cat([self.labels, w[:, None]], 1))
        rep = w.long()
        expected = torch.nn.BCEWithLogitsLoss()(
            self.logits.repeat_interleave(rep, 0), self.labels.repeat_interleave(rep, 0)
        )
        torch.testing.assert_close(got, expected)

    def test_wrong_target_width_raises(self):
        with self.assertRaisesRegex(ValueError, "weight column"):
            MaskedWeightedBCEWithLogitsLoss()(self.logits, self.labels)


class TestGroupWeights(unittest.TestCase):
    def setUp(self):
        self.data = [{"image": f"{i}.png", "label": np.zeros(2, np.float32), "race": int(i < 6)} for i in range(8)]

    def test_reweighting_gives_groups_equal_total(self):
        data = with_loss_weights(self.data, "race", "reweighting")
        totals = Counter()
        for d in data:
            totals[d["race"]] += float(d[LOSS_WEIGHT_KEY])
        self.assertAlmostEqual(totals[0], totals[1], places=5)
        self.assertAlmostEqual(sum(totals.values()), len(data), places=5)
        self.assertNotIn(LOSS_WEIGHT_KEY, self.data[0])  # copies, inputs untouched

    def test_none_gives_unit_weights_and_no_sampler(self):
        data = with_loss_weights(self.data, "race", "none")
        self.assertEqual({float(d[LOSS_WEIGHT_KEY]) for d in data}, {1.0})
        self.assertIsNone(group_sampler(self.data, "race", "none"))
        self.assertIsNone(group_sampler(self.data, "race", "reweighting"))

    def test_balanced_sampler_draws_groups_equally(self):
        data = self.data * 50
        sampler = group_sampler(data, "race", "balanced_sampling", seed=0)
        self.assertEqual(len(sampler), len(data))
        drawn = Counter(data[i]["race"] for i in sampler)
        self.assertLess(abs(drawn[0] - drawn[1]) / len(data), 0.1)  # 3:1 in the data, ~1:1 drawn

    def test_unknown_mitigation_and_missing_attribute(self):
        with self.assertRaisesRegex(ValueError, "mitigation"):
            with_loss_weights(self.data, "race", "oversample")
        with self.assertRaisesRegex(KeyError, "sex"):
            with_loss_weights(self.data, "sex", "reweighting")

    def test_weighted_target_batch(self):
        batch = {"image": torch.zeros(2, 1, 4, 4), "label": torch.tensor([[1.0, 0.0], [0.0, 1.0]])}
        image, target = weighted_target_batch(batch, "cpu")
        self.assertEqual(tuple(image.shape), (2, 1, 4, 4))
        torch.testing.assert_close(target, torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]))
        batch[LOSS_WEIGHT_KEY] = torch.tensor([0.5, 2.0])
        _, target = weighted_target_batch(batch, "cpu")
        torch.testing.assert_close(target[:, -1], torch.tensor([0.5, 2.0]))


class TestDistributedGroupSampler(unittest.TestCase):
    def test_one_process_group(self):
        from monai.data import DistributedSampler, DistributedWeightedRandomSampler

        data = [{"race": int(i < 300)} for i in range(400)]
        with tempfile.TemporaryDirectory() as tmp:
            torch.distributed.init_process_group(
                "gloo", init_method=f"file://{os.path.join(tmp, 'store')}", rank=0, world_size=1
            )
            try:
                plain = distributed_group_sampler(data, data, "race", "none")
                balanced = distributed_group_sampler(data, data, "race", "balanced_sampling", seed=1)
            finally:
                torch.distributed.destroy_process_group()
        self.assertIsInstance(plain, DistributedSampler)
        self.assertNotIsInstance(plain, DistributedWeightedRandomSampler)
        self.assertIsInstance(balanced, DistributedWeightedRandomSampler)
        drawn = Counter(data[i]["race"] for i in balanced)
        self.assertLess(abs(drawn[0] - drawn[1]) / len(data), 0.12)  # 1:3 in the data, ~1:1 drawn


if __name__ == "__main__":
    unittest.main()
