# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""D and P heads (shared 16/32-channel convolutions, FC 128-32-1 each) and the G/C split of a VGG."""

from __future__ import annotations

import unittest

import torch

from monai_fair.debias.adversarial_multitask import batch_spd_label
from monai_fair.networks import BiasCriticHeads, fair_vgg11, group_ratio_spd, split_vgg


class TestBiasCriticHeads(unittest.TestCase):
    def test_paper_layout_and_shapes(self):
        heads = BiasCriticHeads(in_channels=64, spatial_size=2)
        convs = [m for m in heads.shared if isinstance(m, torch.nn.Conv2d)]
        self.assertEqual([(c.out_channels, c.kernel_size) for c in convs], [(16, (3, 3)), (32, (3, 3))])
        for head in (heads.discriminator, heads.critic):
            widths = [m.out_features for m in head if isinstance(m, torch.nn.Linear)]
            self.assertEqual(widths, [128, 32, 1])
        self.assertIsNot(heads.discriminator[0].weight, heads.critic[0].weight)
        h = torch.randn(5, 64, 2, 2)
        d, p = heads(h)
        self.assertEqual((d.shape, p.shape), (torch.Size([5]), torch.Size([5])))
        self.assertAlmostEqual(float(heads.predict_spd(h)), float(p.mean()), places=6)
        # the flattened features a FeatureHook captures give the same prediction
        self.assertAlmostEqual(float(heads.predict_spd(h.reshape(5, -1))), float(p.mean()), places=6)
        with self.assertRaisesRegex(ValueError, "expected features"):
            heads(torch.randn(5, 32, 2, 2))

    def test_group_ratio_readout_is_the_batch_spd(self):
        # hand-made batch: 3 unprivileged (code 1) and 5 reference (code 0) samples, unequal shares
        s = torch.tensor([0.9, 0.5, 0.1, 0.2, 0.4, 0.6, 0.8, 0.0])
        g = torch.tensor([1, 1, 1, 0, 0, 0, 0, 0])
        hand = (0.9 + 0.5 + 0.1) / 3 - (0.2 + 0.4 + 0.6 + 0.8 + 0.0) / 5  # 0.5 - 0.4
        self.assertAlmostEqual(float(group_ratio_spd(s, g.float())), hand, places=6)
        self.assertAlmostEqual(float(group_ratio_spd(s, g.float())), batch_spd_label(s, g, reference=0), places=6)
        # the heads' read-out of per-sample outputs (score logit, group logit) that carry the true scores and groups
        heads = BiasCriticHeads(in_channels=8, spatial_size=1, readout="group_ratio")
        p = torch.stack([torch.logit(s.clamp(1e-6, 1 - 1e-6)), 40.0 * (2.0 * g.float() - 1.0)], 1)
        self.assertAlmostEqual(float(heads.pool(p)), hand, places=5)
        # the mean read-out of the same batch is not the SPD: it cannot see the groups
        self.assertNotAlmostEqual(float(torch.sigmoid(p[:, 0]).mean()), hand, places=2)
        # shapes: P gives two outputs per sample, any batch size; a batch of one group stays finite
        h = torch.randn(5, 8, 1, 1)
        with torch.no_grad():
            d, out = heads(h)
            self.assertEqual((d.shape, out.shape), (torch.Size([5]), torch.Size([5, 2])))
            self.assertEqual(heads.predict_spd(h).shape, torch.Size([]))
            self.assertAlmostEqual(float(heads.predict_spd(h)), float(heads.pool(out)), places=6)
        self.assertTrue(torch.isfinite(group_ratio_spd(s, torch.zeros(8))))
        self.assertEqual(heads.critic[-1].out_features, 2)
        with self.assertRaisesRegex(ValueError, "readout"):
            BiasCriticHeads(in_channels=8, spatial_size=1, readout="attention")

    def test_split_vgg_shares_parameters(self):
        net = fair_vgg11(spatial_dims=2, in_channels=3, out_channels=1, width=0.0625, fc_channels=16, pool_size=2)
        net.eval()
        gen, clf = split_vgg(net)
        x = torch.rand(2, 3, 32, 32)
        self.assertTrue(torch.allclose(clf(gen(x)), net(x)))
        self.assertEqual(gen(x).shape[1:], (32, 2, 2))
        self.assertTrue(all(any(p is q for q in net.parameters()) for p in gen.parameters()))
        with self.assertRaisesRegex(ValueError, "features"):
            split_vgg(torch.nn.Linear(2, 2))


if __name__ == "__main__":
    unittest.main()
