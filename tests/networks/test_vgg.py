# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""FairVGG: torchvision-compatible layout and parameter counts, 2D/3D, TorchScript, bundle export, ImageNet loading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest
import warnings

import pytest
import torch
from monai.networks.utils import convert_to_torchscript
from parameterized import parameterized

from monai_fair.networks import FairVGG, fair_vgg11, fair_vgg13, fair_vgg16, load_imagenet_weights

_THREADS = torch.get_num_threads()


def setUpModule():  # tiny tensors: one thread avoids oversubscription on a shared machine
    torch.set_num_threads(1)


def tearDownModule():
    torch.set_num_threads(_THREADS)


# torchvision's published parameter counts (torchvision.models.vgg*_Weights meta "num_params")
TORCHVISION_COUNTS = [
    ["vgg11", False, 132863336],
    ["vgg11", True, 132868840],
    ["vgg13", False, 133047848],
    ["vgg13", True, 133053736],
    ["vgg16", False, 138357544],
    ["vgg16", True, 138365992],
]
# indices of the convolutions in torchvision's vgg16 / vgg16_bn ``features``
VGG16_CONV_IDX = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
VGG16_BN_CONV_IDX = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40]
TINY = {"channels": [4, "M", 8, "M"], "fc_channels": 16, "pool_size": 2}


def _tiny(spatial_dims: int = 2, in_channels: int = 1, out_channels: int = 1, **kw) -> FairVGG:
    torch.manual_seed(0)
    return FairVGG(spatial_dims, in_channels, out_channels, **{**TINY, **kw}).eval()


class TestFairVGGLayout(unittest.TestCase):
    @parameterized.expand(TORCHVISION_COUNTS)
    def test_parameter_count_matches_torchvision(self, config, bn, expected):
        with torch.device("meta"):
            net = FairVGG(config=config, batch_norm=bn)
        self.assertEqual(sum(p.numel() for p in net.parameters()), expected)

    def test_layer_names_match_torchvision(self):
        with torch.device("meta"):
            plain, bn = fair_vgg16(), fair_vgg16(batch_norm=True)
        self.assertEqual(plain.prunable_layer_names(), [f"features.{i}" for i in VGG16_CONV_IDX])
        # with batch norm the units are the normalised conv outputs (the BN layer right after each conv)
        self.assertEqual(bn.prunable_layer_names(), [f"features.{i + 1}" for i in VGG16_BN_CONV_IDX])
        self.assertTrue(all(isinstance(bn.get_submodule(n), torch.nn.BatchNorm2d) for n in bn.prunable_layer_names()))
        keys = set(plain.state_dict())
        self.assertTrue(
            {"features.28.weight", "classifier.0.weight", "classifier.3.bias", "classifier.6.weight"} <= keys
        )
        self.assertIn("features.41.running_var", bn.state_dict())  # bn after the last conv (index 40)
        self.assertEqual(plain.output_layer_name, "classifier.6")

    def test_vgg16_conv_units_at_224(self):
        # diffbias structural invariant: VGG-16 at 224^2 has 13,547,520 prunable conv units (C*H*W summed)
        with torch.device("meta"):
            net = fair_vgg16()
            modules = dict(net.named_modules())
            sizes = []
            hooks = [
                modules[n].register_forward_hook(lambda m, i, o: sizes.append(o[0].numel()))
                for n in net.prunable_layer_names()
            ]
            net(torch.empty(1, 3, 224, 224))
        for h in hooks:
            h.remove()
        self.assertEqual(sum(sizes), 13_547_520)

    @parameterized.expand([[fair_vgg11, 8], [fair_vgg13, 10], [fair_vgg16, 13]])
    def test_factories(self, factory, n_conv):
        net = factory(spatial_dims=2, in_channels=1, out_channels=2, width=1 / 16, fc_channels=8, pool_size=1)
        self.assertEqual(len(net.prunable_layer_names()), n_conv)
        self.assertEqual(net.features[0].out_channels, 4)  # 64 / 16
        self.assertEqual(tuple(net(torch.rand(2, 1, 32, 32)).shape), (2, 2))

    @parameterized.expand([[2, False], [2, True], [3, False], [3, True]])
    def test_forward_and_penultimate(self, spatial_dims, bn):
        net = _tiny(spatial_dims, in_channels=2, out_channels=3, batch_norm=bn)
        x = torch.rand((2, 2) + (8,) * spatial_dims)
        out = net(x)
        self.assertEqual(tuple(out.shape), (2, 3))
        h, logits = net.features_and_logits(x)
        self.assertEqual(tuple(h.shape), (2, 16))
        torch.testing.assert_close(logits, out)
        torch.testing.assert_close(net.classifier[6](h), out)
        conv = torch.nn.Conv3d if spatial_dims == 3 else torch.nn.Conv2d
        self.assertIsInstance(net.features[0], conv)

    def test_width_rounds_and_keeps_one_channel(self):
        net = FairVGG(2, 1, 1, channels=[64, "M", 2], width=0.125, fc_channels=4, pool_size=1)
        self.assertEqual([m.out_channels for m in net.features if isinstance(m, torch.nn.Conv2d)], [8, 1])

    @parameterized.expand(
        [
            [{"spatial_dims": 1}],
            [{"config": "vgg19"}],
            [{"width": 0.0}],
            [{"channels": [4, "X"]}],
            [{"channels": ["M"]}],
            [{"out_channels": 0}],
        ]
    )
    def test_bad_arguments(self, kwargs):
        with self.assertRaises(ValueError):
            FairVGG(**kwargs)


class TestFairVGGTorchScript(unittest.TestCase):
    @parameterized.expand([[2], [3]])
    def test_script_and_convert(self, spatial_dims):
        net = _tiny(spatial_dims, batch_norm=True)
        x = torch.rand((2, 1) + (8,) * spatial_dims)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            scripted = torch.jit.script(net)
            converted = convert_to_torchscript(net, verify=True, inputs=[x], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(scripted(x), net(x))
        torch.testing.assert_close(converted(x), net(x))

    @staticmethod
    def _bundle(root: str) -> tuple[FairVGG, dict[str, str]]:
        """A minimal bundle (metadata + a config that builds FairVGG) and a saved checkpoint under ``root``."""
        net_def = {"_target_": "monai_fair.networks.FairVGG", "spatial_dims": 2, "in_channels": 1, "out_channels": 1}
        meta = {
            "version": "0.1.0",
            "monai_version": "1.6.1",
            "pytorch_version": torch.__version__.split("+")[0],
            "numpy_version": "2.0.0",
            "task": "test",
            "network_data_format": {
                "inputs": {"image": {"type": "image", "num_channels": 1, "spatial_shape": [8, 8]}},
                "outputs": {"pred": {"type": "probabilities", "num_channels": 1}},
            },
        }
        paths = {
            "meta_file": os.path.join(root, "configs", "metadata.json"),
            "config_file": os.path.join(root, "configs", "inference.json"),
            "ckpt_file": os.path.join(root, "models", "model.pt"),
            "filepath": os.path.join(root, "models", "model.ts"),
        }
        os.makedirs(os.path.join(root, "configs"))
        os.makedirs(os.path.join(root, "models"))
        with open(paths["meta_file"], "w") as f:
            json.dump(meta, f)
        with open(paths["config_file"], "w") as f:
            json.dump({"network_def": {**net_def, **TINY}}, f)
        net = _tiny()
        torch.save(net.state_dict(), paths["ckpt_file"])
        return net, paths

    def _check_export(self, net: FairVGG, ts_path: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            loaded = torch.jit.load(ts_path)
        x = torch.rand(3, 1, 8, 8)
        torch.testing.assert_close(loaded(x), net(x))

    def test_bundle_ckpt_export(self):
        from monai.bundle import ckpt_export

        with tempfile.TemporaryDirectory() as root:
            net, paths = self._bundle(root)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ckpt_export("network_def", **paths)
            self._check_export(net, paths["filepath"])

    @pytest.mark.slow
    def test_bundle_ckpt_export_cli(self):
        with tempfile.TemporaryDirectory() as root:
            net, paths = self._bundle(root)
            cmd = [sys.executable, "-m", "monai.bundle", "ckpt_export", "network_def"]
            for k, v in paths.items():
                cmd += [f"--{k}", v]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root)
            self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
            self._check_export(net, paths["filepath"])


class TestImageNetWeights(unittest.TestCase):
    def _rgb_source(self, **kw) -> FairVGG:
        torch.manual_seed(1)
        return FairVGG(2, 3, 1000, **{**TINY, **kw}).eval()

    @parameterized.expand([["sum", 1.0], ["mean", 1.0 / 3.0]])
    def test_grey_first_conv(self, mode, scale):
        src = self._rgb_source()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "vgg_tiny.pth")
            torch.save(src.state_dict(), path)
            net = _tiny(in_channels=1, out_channels=1)
            report = load_imagenet_weights(net, path, first_conv=mode)
        self.assertEqual(report["skipped"], ["classifier.6.weight", "classifier.6.bias"])
        self.assertIn("features.0.weight", report["loaded"])
        torch.testing.assert_close(net.features[0].weight, src.features[0].weight.sum(1, keepdim=True) * scale)
        # with "sum", a grey image is seen exactly as the RGB model sees it repeated on three channels
        grey = torch.rand(2, 1, 8, 8)
        if mode == "sum":
            torch.testing.assert_close(net.features(grey), src.features(grey.repeat(1, 3, 1, 1)))
        torch.testing.assert_close(net.classifier[0].weight, src.classifier[0].weight)

    def test_same_head_loads_everything_and_nested_checkpoint(self):
        src = self._rgb_source(batch_norm=True)
        net = FairVGG(2, 3, 1000, batch_norm=True, **TINY).eval()
        report = load_imagenet_weights(net, {"state_dict": src.state_dict()})
        self.assertEqual(report["skipped"], [])
        x = torch.rand(2, 3, 8, 8)
        torch.testing.assert_close(net(x), src(x))

    def test_features_only(self):
        src = self._rgb_source()
        net = _tiny(in_channels=3, out_channels=2, fc_channels=32)
        with self.assertRaisesRegex(ValueError, "classifier.0.weight"):
            load_imagenet_weights(net, src.state_dict())
        report = load_imagenet_weights(net, src.state_dict(), load_classifier=False)
        self.assertTrue(all(k.startswith("classifier.") for k in report["skipped"]))
        torch.testing.assert_close(net.features[3].weight, src.features[3].weight)

    def test_refusals(self):
        src = self._rgb_source()
        with self.assertRaisesRegex(ValueError, "3D"):
            load_imagenet_weights(_tiny(3), src.state_dict())
        with self.assertRaisesRegex(ValueError, "in_channels=2"):
            load_imagenet_weights(_tiny(in_channels=2), src.state_dict())
        with self.assertRaisesRegex(ValueError, "missing"):
            load_imagenet_weights(_tiny(in_channels=3, batch_norm=True), src.state_dict())
        with self.assertRaises(ValueError):
            load_imagenet_weights(_tiny(in_channels=3), src.state_dict(), first_conv="max")
        with self.assertRaisesRegex(ValueError, "state dict"):
            load_imagenet_weights(_tiny(in_channels=3), {"a": 1})


if __name__ == "__main__":
    unittest.main()
