# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

from monai_fair.debias import FullSetProxyWeights, add_unit_masks, unit_influence
from monai_fair.metrics import compute_bias_proxy, proxy_weights
from tests.debias.planted_bias import TinyConvNet, make_loader, make_planted_data


def setUpModule():
    torch.set_num_threads(1)  # tiny tensors: threads only contend on a shared CPU


def oracle_influence(net, data, layers, reference=1, metric="eod"):
    """Full-batch gradient of the proxy w.r.t. each layer output with retain_grad (no in-place ops in ``net``)."""
    outs = {}

    def keep(name):
        def hook(m, i, o):
            o.retain_grad()
            outs[name] = o

        return hook

    handles = [net.get_submodule(n).register_forward_hook(keep(n)) for n in layers]
    net.eval()
    prob = torch.sigmoid(net(data["image"])[:, 0])
    compute_bias_proxy(prob, data["label"], data["sex"], reference, metric).backward()
    for h in handles:
        h.remove()
    return torch.cat([outs[n].grad.sum(0).reshape(-1) for n in layers])


class TestFullSetProxyWeights(unittest.TestCase):
    @parameterized.expand(
        [("eod", 1, "exclude"), ("spd", 1, "exclude"), ("eod", 0, "group"), ("spd", 2, "group"), ("spd", 2, "exclude")]
    )
    def test_pieces_equal_full_set_weights(self, metric, reference, unknown):
        g = torch.Generator().manual_seed(0)
        labels = torch.randint(0, 2, (50,), generator=g).float()
        groups = torch.randint(-1, 3, (50,), generator=g)  # -1: unknown
        full = proxy_weights(labels, groups, reference, metric, unknown)
        weights = FullSetProxyWeights(labels, groups, reference, metric, unknown)
        order = torch.randperm(50, generator=g)
        pieces = torch.cat([weights(labels[order[i : i + 7]], groups[order[i : i + 7]]) for i in range(0, 50, 7)])
        self.assertTrue(torch.equal(pieces, full[order]))
        self.assertEqual(weights.n_samples, 50)

    def test_undefined_proxy_raises(self):
        with self.assertRaisesRegex(ValueError, "undefined"):
            FullSetProxyWeights(torch.tensor([1.0, 0.0]), torch.tensor([1, 0]), 1, "eod")
        with self.assertRaises(ValueError):
            FullSetProxyWeights(torch.tensor([1.0, 1.0]), torch.tensor([1, 0]), 1, "aod")
        w = FullSetProxyWeights(torch.tensor([1.0, 1.0]), torch.tensor([1, 0]), 1)
        with self.assertRaises(ValueError):
            w(torch.ones(3), torch.ones(2))


class TestUnitInfluence(unittest.TestCase):
    @parameterized.expand([("eod2d", "eod", 2), ("spd2d", "spd", 2), ("eod3d", "eod", 3)])
    def test_matches_full_batch_oracle_and_any_batch_size(self, _, kind, dims):
        torch.manual_seed(0)
        data = make_planted_data(40, size=6 if dims == 3 else 8, spatial_dims=dims, seed=3)
        plain = TinyConvNet(dims, inplace=False)
        layers = ["features.0", "features.3", "features.6"]
        expected = oracle_influence(plain, data, layers, metric=kind)

        net = TinyConvNet(dims, inplace=True)  # in-place ReLUs after the masked outputs
        net.load_state_dict(plain.state_dict())
        masks = add_unit_masks(net, layers, example_input=data["image"][:1])
        weights = FullSetProxyWeights(data["label"], data["sex"], 1, kind)
        full = unit_influence(net, masks, make_loader(data, 40), weights)
        # batches of 3 sorted by group: most batches hold one group only (a per-batch proxy would be NaN)
        order = torch.argsort(data["sex"] * 2 + data["label"].long(), stable=True)
        small = unit_influence(net, masks, make_loader(data, 3, order), weights)
        self.assertEqual(full.shape, (masks.n_units,))
        self.assertFalse(bool(torch.isnan(small).any()))
        self.assertGreater(float(full.abs().max()), 0.0)
        torch.testing.assert_close(full, expected, rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(small, full, rtol=1e-4, atol=1e-7)

    def test_leaves_model_untouched(self):
        torch.manual_seed(0)
        data = make_planted_data(16, seed=4)
        net = TinyConvNet(2, batchnorm=True, dropout=0.5)
        net.train()
        masks = add_unit_masks(net, example_input=data["image"][:1])
        bn = net.features[1].module  # the masked layer after a conv → BN pair is the BN
        running = bn.running_mean.clone()
        weights = FullSetProxyWeights(data["label"], data["sex"], 1)
        loader = make_loader(data, 5)
        a = unit_influence(net, masks, loader, weights)
        b = unit_influence(net, masks, loader, weights, out=torch.full((masks.n_units,), 7.0))
        torch.testing.assert_close(a, b)  # eval mode: dropout off, so deterministic; ``out`` is zeroed first
        self.assertTrue(net.training)
        self.assertTrue(torch.equal(bn.running_mean, running))
        self.assertTrue(all(p.grad is None for p in net.parameters()))
        self.assertFalse(loader[0]["image"].requires_grad)

    def test_metatensor_batches(self):
        # MONAI pipelines collate labels into MetaTensors; the influence must not depend on it (a MetaTensor proxy
        # weight used to lose the activation gradients behind a masked BatchNorm + in-place ReLU)
        from monai.data import MetaTensor

        torch.manual_seed(0)
        data = make_planted_data(24, seed=6)
        net = TinyConvNet(2, batchnorm=True).eval()
        masks = add_unit_masks(net, example_input=data["image"][:1])
        weights = FullSetProxyWeights(data["label"], data["sex"], 1)
        plain = unit_influence(net, masks, make_loader(data, 8), weights)
        meta = [{k: MetaTensor(v) for k, v in b.items()} for b in make_loader(data, 8)]
        wrapped = unit_influence(net, masks, meta, weights)
        self.assertGreater(float(plain.abs().max()), 0.0)
        torch.testing.assert_close(wrapped, plain)

    def test_pruned_units_keep_gradient(self):
        # a pruned unit's output is zero, but the gradient w.r.t. it is not zero in general (here a BatchNorm with a
        # positive shift follows the masked convolution): callers must exclude pruned units explicitly (pruning does)
        torch.manual_seed(0)
        data = make_planted_data(20, seed=5)
        net = TinyConvNet(2, batchnorm=True)
        with torch.no_grad():
            net.features[1].bias.fill_(1.0)
        # mask the convolution itself (not the default, which masks the BN after it)
        masks = add_unit_masks(net, ["features.0", "features.3", "features.6"], example_input=data["image"][:1])
        masks.prune(torch.arange(0, 256))  # the whole first layer
        weights = FullSetProxyWeights(data["label"], data["sex"], 1)
        infl = unit_influence(net, masks, make_loader(data, 20), weights)
        self.assertTrue(bool((infl[:256] != 0).any()))


if __name__ == "__main__":
    unittest.main()
