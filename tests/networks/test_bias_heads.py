# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""D and P heads (shared 16/32-channel convolutions, FC 128-32-1 each) and the G/C split of a VGG."""

from __future__ import annotations

import unittest

import torch

from monai_fair.networks import BiasCriticHeads, fair_vgg11, split_vgg


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
