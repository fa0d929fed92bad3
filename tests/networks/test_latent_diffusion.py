# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The latent diffusion generator at a tiny size on CPU: the generator interface, conditioning, a training step."""

from __future__ import annotations

import importlib.util
import unittest

import torch

from monai_fair.audit import fit_generator
from monai_fair.networks import ConditionalLatentDiffusion

_THREADS = torch.get_num_threads()


def setUpModule():
    torch.set_num_threads(1)


def tearDownModule():
    torch.set_num_threads(_THREADS)


def _tiny() -> ConditionalLatentDiffusion:
    torch.manual_seed(0)
    return ConditionalLatentDiffusion(
        spatial_size=16,
        in_channels=1,
        ae_channels=(8, 8),
        latent_channels=2,
        unet_channels=(8, 8),
        norm_num_groups=4,
        num_train_timesteps=50,
        num_inference_steps=3,
    )


# MONAI's DiffusionModelUNet always builds a self-attention mid block, which imports einops (a MONAI optional
# dependency of its generative networks)
@unittest.skipUnless(importlib.util.find_spec("einops"), "einops is not installed (needed by DiffusionModelUNet)")
class TestConditionalLatentDiffusion(unittest.TestCase):
    def test_interface_and_conditioning(self):
        net = _tiny().eval()
        # MONAI zero-initialises the U-Net's output convolution (noise prediction 0 before training)
        for p in net.unet.out.parameters():
            torch.nn.init.normal_(p, std=0.5)
        x = torch.rand(3, 1, 16, 16)
        u = net.encode(x)
        self.assertEqual(tuple(u.shape), (3, 2 * 8 * 8))
        self.assertEqual(net.latent_shape, (2, 8, 8))
        x0, x1 = net.decode(u, 0), net.decode(u, torch.ones(3))
        self.assertEqual(tuple(x0.shape), (3, 1, 16, 16))
        self.assertTrue(bool(((x0 >= 0) & (x0 <= 1)).all()))
        self.assertFalse(torch.allclose(x0, x1))  # the attribute reaches the U-Net (concatenated channels)
        torch.testing.assert_close(net.decode(u, 0), x0)  # deterministic DDIM

    def test_inversion_inverts_the_sampler_step(self):
        net = _tiny()
        net.scheduler.set_timesteps(net.num_inference_steps)
        x, eps = torch.randn(2, 2, 8, 8), torch.randn(2, 2, 8, 8)
        for t in net.scheduler.timesteps:
            back, _ = net.scheduler.step(eps, int(t), net._invert_step(eps, int(t), x))
            torch.testing.assert_close(back, x, atol=1e-5, rtol=1e-5)

    def test_training_steps(self):
        net = _tiny()
        x = torch.rand(8, 1, 16, 16)
        a = torch.tensor([0, 1] * 4)
        before = [p.detach().clone() for p in net.unet.parameters()]
        hist = fit_generator(net, x, a, epochs=2, batch_size=4, lr=1e-3, seed=0)
        self.assertEqual(set(hist[-1]), {"reconstruction", "kl", "diffusion"})
        self.assertTrue(all(torch.isfinite(torch.tensor(list(h.values()))).all() for h in hist))
        self.assertTrue(any(not torch.equal(b, p) for b, p in zip(before, net.unet.parameters())))


if __name__ == "__main__":
    unittest.main()
