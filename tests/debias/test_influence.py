# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

from monai_fair.debias import (
    FullSetProxyWeights,
    ThresholdProxyWeights,
    ThresholdTaskWeights,
    add_unit_masks,
    positive_logit,
    positive_probability,
    unit_influence,
)
from monai_fair.metrics import compute_bias_proxy, proxy_weights, soft_decisions, youden_weights
from tests.debias.planted_bias import TinyConvNet, make_loader, make_planted_data


def setUpModule():
    torch.set_num_threads(1)  # tiny tensors: threads only contend on a shared CPU


def oracle_influence(net, data, layers, reference=1, metric="eod", objective=None):
    """Full-batch gradient of the proxy (or of ``objective(logits)``) w.r.t. each layer output with retain_grad (no
    in-place ops in ``net``)."""
    outs = {}

    def keep(name):
        def hook(m, i, o):
            o.retain_grad()
            outs[name] = o

        return hook

    handles = [net.get_submodule(n).register_forward_hook(keep(n)) for n in layers]
    net.eval()
    logits = net(data["image"])[:, 0]
    if objective is None:
        compute_bias_proxy(torch.sigmoid(logits), data["label"], data["sex"], reference, metric).backward()
    else:
        objective(logits).backward()
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


class TestThresholdWeights(unittest.TestCase):
    def setUp(self):
        gen = torch.Generator().manual_seed(0)
        self.n = 60
        self.y = (torch.rand(self.n, generator=gen) < 0.5).float()
        self.a = torch.randint(0, 2, (self.n,), generator=gen)
        self.z = torch.randn(self.n, generator=gen, dtype=torch.float64) + self.y - 0.5 * (self.a == 0)

    def test_value_is_the_smoothed_thresholded_eod(self):
        w = ThresholdProxyWeights(self.y, self.a, 1, self.z, threshold=0.4, temperature=0.3)
        s = soft_decisions(self.z, 0.4, 0.3)
        pos = self.y > 0.5
        expected = s[pos & (self.a == 0)].mean() - s[pos & (self.a == 1)].mean()
        self.assertAlmostEqual(w.value(torch.sigmoid(self.z), self.y, self.a), float(expected), places=6)

    def test_centred_weights_ignore_a_global_shift(self):
        # the first-order change of sum(w' s(z)) under z -> z + c is zero: a global shift is not a bias change
        w = ThresholdProxyWeights(self.y, self.a, 1, self.z, threshold=0.4, temperature=0.3)
        z = self.z.clone().requires_grad_(True)
        centred = torch.sum(w(self.y, self.a).double() * soft_decisions(z, 0.4, 0.3))
        (grad,) = torch.autograd.grad(centred, z)
        self.assertAlmostEqual(float(grad.sum()), 0.0, places=6)
        # ... while the uncentred proxy's is not, and both agree on a change within one group
        raw = torch.sum(proxy_weights(self.y, self.a, 1).double() * soft_decisions(z, 0.4, 0.3))
        (grad_raw,) = torch.autograd.grad(raw, z)
        self.assertGreater(abs(float(grad_raw.sum())), 1e-3)
        # negatives stay out of the EOD proxy
        self.assertTrue(bool((w(self.y, self.a)[self.y < 0.5] == 0).all()))

    def test_task_weights_and_scores(self):
        t = ThresholdTaskWeights(self.y, threshold=0.5, temperature=0.2)
        torch.testing.assert_close(t(self.y, self.a), youden_weights(self.y))
        out = self.z.float()[:, None]
        torch.testing.assert_close(t.score(out), soft_decisions(self.z.float(), 0.5, 0.2))
        with self.assertRaisesRegex(ValueError, "undefined"):
            ThresholdTaskWeights(torch.ones(4), 0.5, 1.0)

    def test_positive_logit_matches_the_probability(self):
        out = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
        for activation in ("sigmoid", "softmax"):
            torch.testing.assert_close(
                torch.sigmoid(positive_logit(out, activation, 1)), positive_probability(out, activation, 1)
            )
        p = torch.tensor([[0.2], [0.9]])
        torch.testing.assert_close(torch.sigmoid(positive_logit(p, "none")), p[:, 0])
        with self.assertRaisesRegex(ValueError, "activation"):
            positive_logit(out, "relu")

    def test_threshold_influence_matches_full_batch_oracle(self):
        torch.manual_seed(0)
        data = make_planted_data(40, seed=3)
        plain = TinyConvNet(2, inplace=False).eval()
        layers = ["features.0", "features.3", "features.6"]
        with torch.no_grad():
            z0 = plain(data["image"])[:, 0].double()
        w = ThresholdProxyWeights(data["label"], data["sex"], 1, z0, threshold=0.5, temperature=0.7)
        expected = oracle_influence(
            plain,
            data,
            layers,
            objective=lambda z: torch.sum(w(data["label"], data["sex"]) * soft_decisions(z, 0.5, 0.7)),
        )
        net = TinyConvNet(2, inplace=True)
        net.load_state_dict(plain.state_dict())
        masks = add_unit_masks(net, layers, example_input=data["image"][:1])
        got = unit_influence(net, masks, make_loader(data, 7), w)
        self.assertGreater(float(got.abs().max()), 0.0)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-7)


if __name__ == "__main__":
    unittest.main()
