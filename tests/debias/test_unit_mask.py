# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import io
import unittest
import warnings

import numpy as np
import torch
from monai.networks.nets import Classifier
from parameterized import parameterized
from torch import nn

from monai_fair.debias import (
    UnitMaskedLayer,
    add_unit_masks,
    count_prunable_units,
    find_unit_masks,
    layer_output_shapes,
    load_unit_masked_state_dict,
    prunable_layer_names,
)
from monai_fair.networks import FairVGG
from tests.debias.planted_bias import TinyConvNet

VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def setUpModule():
    torch.set_num_threads(1)  # tiny tensors: threads only contend on a shared CPU


def vgg16_features() -> nn.Sequential:
    layers, c = [], 3
    for v in VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers)


def monai_classifier(spatial_dims: int) -> nn.Module:
    return Classifier(in_shape=(2,) + (8,) * spatial_dims, classes=1, channels=(4, 8), strides=(2, 2))


CASES = [
    ("tiny2d", lambda: TinyConvNet(2), (3, 2, 8, 8)),
    ("tiny3d", lambda: TinyConvNet(3), (3, 2, 6, 6, 6)),
    ("monai2d", lambda: monai_classifier(2), (3, 2, 8, 8)),
    ("monai3d", lambda: monai_classifier(3), (3, 2, 8, 8, 8)),
]


def reference_output(net: nn.Module, x: torch.Tensor, masks: dict[str, torch.Tensor]) -> torch.Tensor:
    """Output of the unwrapped ``net`` with ``masks`` applied by forward hooks (independent of the wrappers)."""
    handles = [
        net.get_submodule(n).register_forward_hook(lambda m, i, o, mask=mask: o * mask.to(o.dtype))
        for n, mask in masks.items()
    ]
    try:
        with torch.no_grad():
            return net.eval()(x)
    finally:
        for h in handles:
            h.remove()


class TestUnitCounts(unittest.TestCase):
    def test_vgg16_224_units_on_meta(self):
        with torch.device("meta"):
            net = vgg16_features()
            x = torch.empty(1, 3, 224, 224)
        self.assertEqual(len(prunable_layer_names(net)), 13)
        self.assertEqual(count_prunable_units(net, x), 13_547_520)
        shapes = layer_output_shapes(net, ["0", "28"], x)
        self.assertEqual(shapes, {"0": (64, 224, 224), "28": (512, 14, 14)})

    def test_masks_on_meta(self):
        with torch.device("meta"):
            net = vgg16_features()
            x = torch.empty(1, 3, 224, 224)
        masks = add_unit_masks(net, example_input=x)
        self.assertEqual(masks.n_units, 13_547_520)
        self.assertEqual(masks.offsets[1], 64 * 224 * 224)


class TestNormalisedUnits(unittest.TestCase):
    def test_conv_norm_pairs_mask_the_norm(self):
        net = TinyConvNet(2, batchnorm=True)
        self.assertEqual(prunable_layer_names(net), ["features.1", "features.3", "features.6"])
        vgg = FairVGG(spatial_dims=2, in_channels=1, out_channels=1, width=1 / 16, fc_channels=8, batch_norm=True)
        self.assertEqual(prunable_layer_names(vgg), vgg.prunable_layer_names())
        monai_net = monai_classifier(2)  # Convolution(conv, ADN(N, D, A)): the InstanceNorm is masked
        names = prunable_layer_names(monai_net)
        self.assertIn("net.layer_0.conv.unit0.adn.N", names)
        self.assertNotIn("net.layer_0.conv.unit0.conv", names)
        add_unit_masks(monai_net, example_input=torch.rand(1, 2, 8, 8))
        self.assertEqual(prunable_layer_names(monai_net), names)  # wrapped norms are reported once, by name

    def test_pruned_unit_is_removed_after_batch_norm(self):
        # zeroing a conv output before an eval-mode BN would leave beta - gamma*mean/std; the default masks the BN
        torch.manual_seed(0)
        net = TinyConvNet(2, batchnorm=True)
        bn = net.features[1]
        with torch.no_grad():
            bn.running_mean.uniform_(-1, 1)
            bn.bias.fill_(2.0)  # every unit positive after ReLU unless removed
        net.eval()
        masks = add_unit_masks(net, example_input=torch.rand(1, 2, 8, 8))
        masks.prune(torch.arange(0, 64))  # channel 0 of the first layer: 8 x 8 positions
        seen = {}
        net.features[2].register_forward_hook(lambda m, i, o: seen.setdefault("relu", o.detach().clone()))
        with torch.no_grad():
            net(torch.rand(3, 2, 8, 8))
        self.assertTrue(bool((seen["relu"][:, 0] == 0).all()))
        self.assertTrue(bool((seen["relu"][:, 1:] > 0).all()))


class TestUnitMask(unittest.TestCase):
    @parameterized.expand(CASES)
    def test_identity_and_pruning(self, _, make, shape):
        torch.manual_seed(0)
        net = make().eval()
        x = torch.randn(*shape)
        with torch.no_grad():
            ref = net(x)
        names = prunable_layer_names(net)
        masked = make()
        masked.load_state_dict(net.state_dict())
        masked.eval()
        masks = add_unit_masks(masked, example_input=x[:1])
        self.assertEqual(masks.names, names)
        self.assertEqual(prunable_layer_names(masked), names)  # wrappers are reported by their own names
        with torch.no_grad():
            torch.testing.assert_close(masked(x), ref, rtol=0, atol=0)
        # prune random units; compare with hooks that zero the same (c, *spatial) elements on the plain network
        gen = torch.Generator().manual_seed(1)
        idx = torch.randperm(masks.n_units, generator=gen)[: masks.n_units // 5]
        masks.prune(idx)
        self.assertEqual(masks.n_pruned(), idx.numel())
        flat = np.ones(masks.n_units, dtype=bool)
        flat[idx.numpy()] = False
        manual = {}
        for n, a, b, s in zip(masks.names, masks.offsets[:-1], masks.offsets[1:], masks.shapes):
            manual[n] = torch.from_numpy(flat[a:b].reshape(s))
        with torch.no_grad():
            torch.testing.assert_close(masked(x), reference_output(net, x, manual))
        self.assertTrue(torch.equal(masks.flat_mask(), torch.from_numpy(flat)))
        masks.reset()
        self.assertEqual(masks.n_pruned(), 0)

    @parameterized.expand(CASES)
    def test_state_dict_roundtrip_weights_only(self, _, make, shape):
        torch.manual_seed(0)
        net = make().eval()
        x = torch.randn(*shape)
        masks = add_unit_masks(net, example_input=x[:1])
        masks.prune(torch.arange(0, masks.n_units, 3))
        buf = io.BytesIO()
        torch.save(net.state_dict(), buf)
        buf.seek(0)
        state = torch.load(buf, weights_only=True)
        fresh = make().eval()
        restored = load_unit_masked_state_dict(fresh, state)
        self.assertEqual(restored.names, masks.names)
        self.assertTrue(torch.equal(restored.flat_mask(), masks.flat_mask()))
        with torch.no_grad():
            torch.testing.assert_close(fresh(x), net(x), rtol=0, atol=0)
        # a plain state dict (no mask) loads as usual
        plain = make()
        self.assertIsNone(load_unit_masked_state_dict(plain, make().state_dict()))

    @parameterized.expand(CASES)
    def test_torchscript(self, _, make, shape):
        torch.manual_seed(0)
        net = make().eval()
        x = torch.randn(*shape)
        masks = add_unit_masks(net, example_input=x[:1])
        masks.prune(torch.arange(1, masks.n_units, 2))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            scripted = torch.jit.script(net)
            buf = io.BytesIO()
            torch.jit.save(scripted, buf)
            buf.seek(0)
            loaded = torch.jit.load(buf)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)

    def test_monai_convert_to_torchscript(self):
        # the path ``python -m monai.bundle ckpt_export`` takes
        from monai.networks.utils import convert_to_torchscript

        net = monai_classifier(2).eval()
        x = torch.randn(2, 2, 8, 8)
        add_unit_masks(net, example_input=x[:1]).prune(torch.arange(0, 100, 7))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            scripted = convert_to_torchscript(net, verify=True, inputs=[x], device="cpu")
        with torch.no_grad():
            torch.testing.assert_close(scripted(x), net(x), rtol=0, atol=0)


class TestUnitMaskSet(unittest.TestCase):
    def setUp(self):
        self.net = TinyConvNet(2)
        self.x = torch.randn(1, 2, 8, 8)

    def test_offsets_and_split(self):
        masks = add_unit_masks(self.net, example_input=self.x)
        self.assertEqual(masks.shapes, [(4, 8, 8), (4, 8, 8), (8, 4, 4)])
        self.assertEqual(masks.offsets, [0, 256, 512, 640])
        flat = torch.arange(640.0)
        views = masks.split(flat)
        self.assertEqual(float(views[2][0, 0, 0]), 512.0)
        with self.assertRaises(ValueError):
            masks.split(torch.zeros(3))

    def test_existing_wrappers_are_kept(self):
        masks = add_unit_masks(self.net, ["features.0"], example_input=self.x)
        masks.prune(torch.tensor([0, 5]))
        again = add_unit_masks(self.net, ["features.0", "features.3"], example_input=self.x)
        self.assertEqual(again.n_pruned(), 2)
        self.assertIs(again.layers[0], masks.layers[0])
        found = find_unit_masks(self.net)
        self.assertEqual(found.names, ["features.0", "features.3"])
        self.assertIsNone(find_unit_masks(TinyConvNet(2)))

    def test_state_and_load_state(self):
        masks = add_unit_masks(self.net, example_input=self.x)
        masks.prune(torch.tensor([1, 300, 639]))
        saved = masks.state()
        masks.reset()
        masks.load_state(saved)
        self.assertEqual(masks.n_pruned(), 3)
        self.assertFalse(bool(masks.flat_mask()[639]))
        with self.assertRaises(ValueError):
            masks.load_state({"features.0": saved["features.0"]})

    def test_channels_last(self):
        net = TinyConvNet(3)
        x = torch.randn(2, 2, 4, 4, 4)
        masks = add_unit_masks(net, example_input=x[:1])
        net = net.to(memory_format=torch.channels_last_3d)
        self.assertTrue(masks.layers[0].unit_mask.is_contiguous(memory_format=torch.channels_last_3d))
        masks.prune(torch.tensor([0, 7, 63]))
        self.assertEqual(masks.n_pruned(), 3)
        self.assertFalse(bool(masks.layers[0].unit_mask[0, 0, 0, 1, 3]))  # flat 7 = (0, 0, 1, 3) of (4, 4, 4, 4)
        self.assertEqual(torch.nonzero(~masks.flat_mask()).reshape(-1).tolist(), [0, 7, 63])
        fresh = TinyConvNet(3)
        load_unit_masked_state_dict(fresh, net.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(fresh.eval()(x), net.eval()(x.contiguous(memory_format=torch.channels_last_3d)))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "no submodule"):
            add_unit_masks(self.net, ["features.99"], example_input=self.x)
        with self.assertRaisesRegex(ValueError, "nested"):
            add_unit_masks(self.net, ["features", "features.0"], example_input=self.x)
        with self.assertRaisesRegex(ValueError, "example_input"):
            add_unit_masks(self.net)
        with self.assertRaisesRegex(ValueError, "not called"):
            net = TinyConvNet(2)
            net.unused = nn.Conv2d(2, 2, 1)  # registered but never called by forward
            layer_output_shapes(net, ["features.0", "unused"], self.x)
        with self.assertRaisesRegex(ValueError, "no prunable layer"):
            add_unit_masks(nn.Sequential(nn.Flatten()), example_input=self.x)
        masks = add_unit_masks(self.net, example_input=self.x)
        with self.assertRaises(IndexError):
            masks.prune(torch.tensor([640]))
        with self.assertRaises(IndexError):
            masks.prune(torch.tensor([-1]))
        with self.assertRaises(TypeError):
            from monai_fair.debias import UnitMaskSet

            UnitMaskSet(TinyConvNet(2), ["features.0"])

    def test_bf16_output_dtype_kept(self):
        layer = UnitMaskedLayer(nn.Conv2d(2, 3, 1).to(torch.bfloat16), (3, 4, 4))
        out = layer(torch.randn(2, 2, 4, 4, dtype=torch.bfloat16))
        self.assertEqual(out.dtype, torch.bfloat16)


if __name__ == "__main__":
    unittest.main()
