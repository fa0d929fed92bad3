# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import unittest

import numpy as np
import torch
from parameterized import parameterized
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from torch import nn

from monai_fair.debias import AdaptivePruningDebiaser, collect_outputs, evaluate_binary, kmeans, unit_weight_magnitude
from monai_fair.debias.adaptive_pruning import minmax_normalize
from monai_fair.debias.influence import FullSetProxyWeights
from monai_fair.debias.pruning import PruningRun
from monai_fair.debias.unit_mask import UnitMaskedLayer, add_unit_masks
from tests.debias.planted_bias import SPEC, biased_classifier, make_loader, planted_spec


def setUpModule():
    torch.set_num_threads(1)  # tiny tensors: threads only contend on a shared CPU


def inertia(points: np.ndarray, labels: np.ndarray) -> float:
    return float(sum(((points[labels == c] - points[labels == c].mean(0)) ** 2).sum() for c in np.unique(labels)))


class TestKMeans(unittest.TestCase):
    def test_separated_blobs_recovered(self):
        g = torch.Generator().manual_seed(0)
        centres = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5]])
        truth = torch.randint(0, 5, (5000,), generator=g)
        pts = centres[truth] + 0.02 * torch.randn(5000, 2, generator=g)
        centroids, assign = kmeans(pts, 5, sample_size=1000, seed=1)
        self.assertEqual(centroids.shape, (5, 2))
        self.assertEqual(adjusted_rand_score(truth.numpy(), assign.numpy()), 1.0)

    def test_inertia_close_to_sklearn(self):
        g = torch.Generator().manual_seed(1)
        pts = torch.rand(4000, 2, generator=g) ** 2
        _, assign = kmeans(pts, 8, seed=0)
        ref = KMeans(8, n_init=5, random_state=0).fit(pts.numpy())
        self.assertLess(inertia(pts.numpy(), assign.numpy()), 1.05 * ref.inertia_)

    def test_degenerate(self):
        _, assign = kmeans(torch.zeros(10, 2), 4)
        self.assertEqual(set(assign.tolist()), {0})
        with self.assertRaises(ValueError):
            kmeans(torch.zeros(0, 2), 3)
        with self.assertRaises(ValueError):
            kmeans(torch.zeros(5, 2), 0)


class TestFeatures(unittest.TestCase):
    def test_minmax(self):
        x = torch.tensor([3.0, -1.0, 5.0, 100.0])
        keep = torch.tensor([True, True, True, False])
        np.testing.assert_allclose(minmax_normalize(x, keep)[:3].numpy(), (np.array([3, -1, 5]) + 1) / 6)
        self.assertTrue(torch.equal(minmax_normalize(torch.full((4,), 2.0)), torch.zeros(4)))

    def test_weight_magnitude(self):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 16, 5))
        masks = add_unit_masks(net, ["0", "3"], example_input=torch.randn(1, 2, 4, 4))
        mag = unit_weight_magnitude(masks).numpy()
        w0 = net[0].module.weight.detach().numpy()
        w1 = net[3].module.weight.detach().numpy()
        expected = np.concatenate([np.repeat(np.abs(w0).sum((1, 2, 3)), 16), np.abs(w1).sum(1)])
        np.testing.assert_allclose(mag, expected, rtol=1e-6)
        masks_t = add_unit_masks(
            nn.Sequential(nn.ConvTranspose2d(2, 3, 2, stride=2)), example_input=torch.randn(1, 2, 2, 2)
        )
        wt = masks_t.layers[0].module.weight.detach().numpy()  # (in, out, k, k)
        np.testing.assert_allclose(
            unit_weight_magnitude(masks_t).numpy(), np.repeat(np.abs(wt).sum((0, 2, 3)), 16), rtol=1e-6
        )
        # conv → norm pairs: the masked norm's units weigh |gamma|, or without affine scale the conv's filter norm
        bn_net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU())
        with torch.no_grad():
            bn_net[1].weight.copy_(torch.tensor([0.5, -2.0, 1.0]))
        bn_masks = add_unit_masks(bn_net, example_input=torch.randn(1, 2, 4, 4))
        self.assertEqual(bn_masks.names, ["1"])
        np.testing.assert_allclose(unit_weight_magnitude(bn_masks).numpy(), np.repeat([0.5, 2.0, 1.0], 16))
        in_net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.InstanceNorm2d(3), nn.ReLU())
        in_masks = add_unit_masks(in_net, example_input=torch.randn(1, 2, 4, 4))
        w_in = in_net[0].weight.detach().numpy()
        np.testing.assert_allclose(
            unit_weight_magnitude(in_masks, in_net).numpy(), np.repeat(np.abs(w_in).sum((1, 2, 3)), 16), rtol=1e-6
        )
        with self.assertRaisesRegex(ValueError, "no weight"):
            unit_weight_magnitude(in_masks)  # without the model the producing conv cannot be found
        pool = nn.Sequential(nn.MaxPool2d(2))
        pool[0] = UnitMaskedLayer(pool[0], (2, 1, 1))
        from monai_fair.debias.unit_mask import UnitMaskSet

        with self.assertRaisesRegex(ValueError, "no weight"):
            unit_weight_magnitude(UnitMaskSet(pool, ["0"]))


class TestClusterSelection(unittest.TestCase):
    @parameterized.expand([("positive_bias", 1.0), ("negative_bias", -1.0)])
    def test_clusters_in_bias_reducing_order(self, _, direction):
        net = nn.Sequential(nn.Conv2d(1, 4, 1))
        masks = add_unit_masks(net, example_input=torch.zeros(1, 1, 5, 5))  # 100 units, magnitude per channel
        # saliency: channel 0 strongly positive, channel 1 mildly positive, channels 2 and 3 negative
        saliency = torch.cat([torch.full((25,), v) for v in (1.0, 0.5, -0.2, -1.0)]) + 0.001 * torch.arange(100.0)
        weights = FullSetProxyWeights(torch.ones(2), torch.tensor([0, 1]), 1)
        run = PruningRun(net, masks, [], weights, direction=direction)
        pruner = AdaptivePruningDebiaser(spec=SPEC, step_size=30, n_clusters=4)
        pruner.influence = lambda run: saliency
        first = set(pruner.select_units(run, 1).tolist())
        # the best cluster whole, then the next-best cluster's most bias-reducing units
        if direction > 0:
            self.assertEqual(first, set(range(0, 25)) | set(range(45, 50)))
            masks.prune(torch.tensor(sorted(first)))
            # only clusters whose mean saliency reduces the bias are pruned: channels 2 and 3 never are
            self.assertEqual(set(pruner.select_units(run, 2).tolist()), set(range(25, 45)))
        else:
            self.assertEqual(first, set(range(75, 100)) | set(range(50, 55)))


class TestAdaptivePruning(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net, cls.val = biased_classifier()

    @parameterized.expand([("static", False), ("dynamic", True)])
    def test_planted_gap_is_reduced_under_rho(self, _, dynamic):
        loader = make_loader(self.val, 32)
        before = evaluate_binary(*collect_outputs(self.net, loader), SPEC)
        self.assertLess(before.bias, -0.2)
        result = AdaptivePruningDebiaser(
            spec=SPEC, step_size=20, max_steps=5, n_clusters=8, rho=0.7, dynamic=dynamic
        ).fit(self.net, loader)
        traj = result.trajectory
        self.assertEqual(traj.step, list(range(len(traj))))
        self.assertTrue(result.state["qualified"])
        self.assertGreaterEqual(result.validation.balanced_accuracy, 0.7)
        self.assertLess(abs(result.validation.bias), abs(before.bias) - 0.1)
        again = evaluate_binary(*collect_outputs(result.model, loader), SPEC)  # the selected mask is applied
        self.assertAlmostEqual(again.bias, result.validation.bias)
        self.assertEqual(result.state["n_pruned"], int(traj.extra["n_pruned"][result.state["selected_step"]]))

    def test_nothing_qualifies(self):
        result = AdaptivePruningDebiaser(spec=SPEC, step_size=20, max_steps=2, n_clusters=4, rho=1.01).fit(
            self.net, make_loader(self.val, 64)
        )
        self.assertFalse(result.state["qualified"])
        self.assertEqual(result.state["n_pruned"], 0)
        with torch.no_grad():
            torch.testing.assert_close(
                result.model.eval()(self.val["image"]), self.net(self.val["image"]), rtol=0, atol=0
            )

    def test_bad_arguments(self):
        with self.assertRaises(ValueError):
            AdaptivePruningDebiaser(spec=SPEC, n_clusters=0)
        with self.assertRaises(ValueError):
            AdaptivePruningDebiaser(spec=planted_spec(metric="aod"))


if __name__ == "__main__":
    unittest.main()
