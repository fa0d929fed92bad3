# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Feature hooks on any classifier, batch-bias critics and the attribute adversary."""

from __future__ import annotations

import unittest

import torch
from monai.networks.nets import Classifier, resnet10
from parameterized import parameterized

from monai_fair.networks import (
    AttributeAdversary,
    BatchBiasCritic,
    FairVGG,
    FeatureHook,
    FlatBatchBiasCritic,
    default_feature_module,
)

_THREADS = torch.get_num_threads()


def setUpModule():  # tiny tensors: one thread avoids oversubscription on a shared machine
    torch.set_num_threads(1)


def tearDownModule():
    torch.set_num_threads(_THREADS)


class TestFeatureHook(unittest.TestCase):
    def test_fairvgg_penultimate(self):
        torch.manual_seed(0)
        net = FairVGG(2, 1, 1, channels=[4, "M"], fc_channels=8, pool_size=1).eval()
        x = torch.rand(3, 1, 8, 8)
        self.assertEqual(default_feature_module(net), "classifier.6")
        with FeatureHook(net) as hook:
            out = net(x)
            h_ref, logits = net.features_and_logits(x)
            torch.testing.assert_close(hook.features, h_ref)
        torch.testing.assert_close(out, logits)
        self.assertEqual(len(net.classifier[6]._forward_pre_hooks), 0)  # removed on exit

    @parameterized.expand(
        [
            ["classifier", lambda: Classifier((1, 8, 8), 1, (4, 8), (2, 2)), (2, 1, 8, 8), "final.1", 32],
            [
                "resnet3d",
                lambda: resnet10(spatial_dims=3, n_input_channels=1, num_classes=1),
                (2, 1, 8, 8, 8),
                "fc",
                512,
            ],
        ]
    )
    def test_monai_classifiers(self, _, factory, shape, name, n_features):
        torch.manual_seed(0)
        net = factory().eval()
        self.assertEqual(default_feature_module(net), name)
        with FeatureHook(net, name) as hook:
            out = net(torch.rand(shape))
            feats = hook.features
        self.assertEqual(tuple(feats.shape), (2, n_features))
        layer = dict(net.named_modules())[name]
        torch.testing.assert_close(layer(feats), out)

    def test_output_capture_keeps_graph(self):
        net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
        with FeatureHook(net, "0", capture="output") as hook:
            net(torch.rand(2, 3))
            hook.features.sum().backward()
        self.assertIsNotNone(net[0].weight.grad)

    def test_errors(self):
        net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1))
        with self.assertRaisesRegex(ValueError, "no nn.Linear"):
            default_feature_module(net)
        with self.assertRaisesRegex(ValueError, "no submodule"):
            FeatureHook(net, "head")
        with self.assertRaises(ValueError):
            FeatureHook(net, "0", capture="grad")
        hook = FeatureHook(net, "0")
        with self.assertRaisesRegex(RuntimeError, "no forward pass"):
            hook.features
        hook.remove()


class TestCritics(unittest.TestCase):
    def test_deepsets_any_batch_size_and_permutation_invariant(self):
        torch.manual_seed(0)
        critic = BatchBiasCritic(5, hidden=8).eval()
        h = torch.randn(7, 5)
        out = critic(h)
        self.assertEqual(out.shape, torch.Size([]))
        torch.testing.assert_close(critic(h[torch.randperm(7)]), out)
        self.assertEqual(critic(h[:1]).shape, torch.Size([]))
        with self.assertRaises(ValueError):
            critic(torch.randn(3, 4))
        with self.assertRaises(ValueError):
            critic(torch.randn(0, 5))

    def test_flat_critic_fixed_batch(self):
        critic = FlatBatchBiasCritic(5, batch_size=4, hidden=8, num_deep=3)
        self.assertEqual(critic(torch.randn(4, 5)).shape, torch.Size([]))
        n_linear = sum(isinstance(m, torch.nn.Linear) for m in critic.modules())
        self.assertEqual(n_linear, 1 + 3 + 1)  # Savani: fc0, num_deep hidden, output
        self.assertEqual(critic.net[0].in_features, 20)
        with self.assertRaisesRegex(ValueError, "exactly"):
            critic(torch.randn(3, 5))

    def test_deepsets_critic_learns_batch_spd(self):
        # features = (group indicator, score); target = batch SPD of the score. A DeepSets critic must beat the
        # constant predictor by a wide margin (mean pooling can represent the ratio of batch means).
        torch.manual_seed(0)
        critic = BatchBiasCritic(2, hidden=32, num_deep=1, dropout=0.0)
        opt = torch.optim.Adam(critic.parameters(), lr=3e-3)

        def batch():
            a = (torch.rand(32) < 0.5).float()
            a[0], a[1] = 0.0, 1.0
            shift = torch.rand(()) - 0.5
            s = torch.sigmoid(torch.randn(32) + 4 * shift * a)
            target = s[a == 0].mean() - s[a == 1].mean()
            return torch.stack([a, s], 1), target

        for _ in range(300):
            h, t = batch()
            loss = (critic(h) - t) ** 2
            opt.zero_grad()
            loss.backward()
            opt.step()
        tests = [batch() for _ in range(50)]
        targets = torch.stack([t for _, t in tests])
        with torch.no_grad():
            mse = torch.stack([(critic(h) - t) ** 2 for h, t in tests]).mean()
        self.assertLess(float(mse), 0.25 * float(targets.var()))


class TestAttributeAdversary(unittest.TestCase):
    def test_shapes_and_reversal(self):
        torch.manual_seed(0)
        feats = torch.randn(6, 10, requires_grad=True)
        plain = AttributeAdversary(10, out_features=3, hidden=(8,))
        reversed_ = AttributeAdversary(10, out_features=3, hidden=(8,), grad_reversal=1.0)
        reversed_.load_state_dict(plain.state_dict())
        self.assertEqual(tuple(plain(feats).shape), (6, 3))
        g_plain = torch.autograd.grad(plain(feats).sum(), feats)[0]
        g_rev = torch.autograd.grad(reversed_(feats).sum(), feats)[0]
        torch.testing.assert_close(g_rev, -g_plain)
        probe = AttributeAdversary(10, hidden=(), input_activation=True)
        self.assertEqual(tuple(probe(torch.randn(2, 10)).shape), (2, 1))
        with self.assertRaises(ValueError):
            AttributeAdversary(10, hidden=(0,))


if __name__ == "__main__":
    unittest.main()
