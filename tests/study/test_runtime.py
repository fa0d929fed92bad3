# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import unittest

import torch
from monai.networks.nets import DenseNet121
from torch import nn

from monai_fair.networks import FairVGG
from monai_fair.study import conv_memory_format, prepare_network, resolve_device


def _vgg(spatial_dims: int) -> FairVGG:
    torch.manual_seed(0)
    return FairVGG(
        spatial_dims=spatial_dims, in_channels=1, out_channels=1, config="vgg11", width=0.125, fc_channels=16
    )


class TestPrepareNetwork(unittest.TestCase):
    def test_channels_last_2d_same_outputs(self):
        x = torch.randn(4, 1, 32, 32)
        plain = _vgg(2).eval()
        prepared = prepare_network(_vgg(2), "cpu").eval()
        conv = next(m for m in prepared.modules() if isinstance(m, nn.Conv2d) and m.in_channels > 1)
        self.assertTrue(conv.weight.is_contiguous(memory_format=torch.channels_last))
        self.assertFalse(conv.weight.is_contiguous())
        with torch.no_grad():
            torch.testing.assert_close(prepared(x), plain(x), rtol=1e-4, atol=1e-5)
        # a state dict saved from one layout loads into the other
        fresh = _vgg(2)
        fresh.load_state_dict(prepared.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(fresh.eval()(x), plain(x), rtol=1e-4, atol=1e-5)

    def test_formats(self):
        self.assertEqual(conv_memory_format(_vgg(2)), torch.channels_last)
        self.assertEqual(conv_memory_format(_vgg(3)), torch.channels_last_3d)
        self.assertEqual(
            conv_memory_format(DenseNet121(spatial_dims=3, in_channels=1, out_channels=1)), torch.channels_last_3d
        )
        self.assertIsNone(conv_memory_format(nn.Sequential(nn.Linear(3, 2))))
        self.assertIsNone(conv_memory_format(nn.Sequential(nn.Conv1d(1, 2, 3))))
        self.assertIsNone(conv_memory_format(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv3d(2, 2, 3))))

    def test_opt_out(self):
        net = prepare_network(_vgg(2), "cpu", channels_last=False)
        self.assertTrue(all(p.is_contiguous() for p in net.parameters()))

    def test_resolve_device(self):
        self.assertEqual(resolve_device("cpu"), torch.device("cpu"))
        expected = "cuda:0" if torch.cuda.is_available() else "cpu"
        self.assertEqual(resolve_device("auto"), torch.device(expected))


if __name__ == "__main__":
    unittest.main()
