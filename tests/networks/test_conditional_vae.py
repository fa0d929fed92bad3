# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Conditional VAE: shapes, the HSIC penalty against a hand computation, conditioning and a short training run."""

from __future__ import annotations

import unittest

import numpy as np
import torch

from monai_fair.audit import fit_generator
from monai_fair.networks import ConditionalVAE, hsic


def _hsic_numpy(u: np.ndarray, a: np.ndarray) -> float:
    n = len(a)
    d2 = ((u[:, None, :] - u[None, :, :]) ** 2).sum(-1)
    pos = np.sort(d2[~np.eye(n, dtype=bool)])
    k = np.exp(-d2 / pos[(pos.size - 1) // 2])  # torch's median: the lower middle value
    l_mat = (a[:, None] == a[None, :]).astype(float)
    h = np.eye(n) - 1.0 / n
    return float(np.trace(k @ h @ l_mat @ h) / (n - 1) ** 2)


_THREADS = torch.get_num_threads()


def setUpModule():
    # tiny networks: one thread avoids thread overhead on a shared CPU
    torch.set_num_threads(1)


def tearDownModule():
    torch.set_num_threads(_THREADS)


class TestHsic(unittest.TestCase):
    def test_matches_numpy(self):
        g = torch.Generator().manual_seed(0)
        u = torch.randn(30, 4, generator=g, dtype=torch.float64)
        a = torch.randint(0, 2, (30,), generator=g)
        self.assertAlmostEqual(float(hsic(u, a)), _hsic_numpy(u.numpy(), a.numpy()), places=10)

    def test_dependence_scores_higher(self):
        g = torch.Generator().manual_seed(1)
        a = torch.randint(0, 2, (64,), generator=g)
        noise = torch.randn(64, 3, generator=g)
        self.assertGreater(float(hsic(noise + 3 * a[:, None].float(), a)), 5 * float(hsic(noise, a)))


class TestConditionalVAE(unittest.TestCase):
    def test_shapes_and_conditioning(self):
        torch.manual_seed(0)
        net = ConditionalVAE(spatial_size=16, in_channels=3, latent_size=5, channels=(4, 8)).eval()
        x = torch.rand(6, 3, 16, 16)
        u = net.encode(x)
        self.assertEqual(tuple(u.shape), (6, 5))
        x0, x1 = net.decode(u, 0), net.decode(u, torch.ones(6))
        self.assertEqual(tuple(x0.shape), (6, 3, 16, 16))
        self.assertTrue(bool(((x0 >= 0) & (x0 <= 1)).all()))
        self.assertFalse(torch.allclose(x0, x1))  # the attribute reaches the decoder
        torch.testing.assert_close(net.counterfactual(x, 1), x1)

    def test_bad_size(self):
        with self.assertRaisesRegex(ValueError, "multiple of 8"):
            ConditionalVAE(spatial_size=20, channels=(4, 8, 16))

    def test_training_lowers_the_loss_and_uses_the_attribute(self):
        # images whose top half is bright for A = 1: the decoder must learn to draw the attribute
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(0)
        a = torch.randint(0, 2, (128,), generator=g)
        x = 0.3 * torch.rand(128, 1, 8, 8, generator=g)
        x[:, :, :4] += 0.6 * a[:, None, None, None].float()
        net = ConditionalVAE(spatial_size=8, latent_size=4, channels=(8, 16))
        hist = fit_generator(net, x, a, epochs=25, batch_size=32, lr=5e-3, seed=0)
        self.assertLess(hist[-1]["reconstruction"], 0.5 * hist[0]["reconstruction"])
        with torch.no_grad():
            u = net.encode(x)
            top1 = net.decode(u, 1)[:, :, :4].mean()
            top0 = net.decode(u, 0)[:, :, :4].mean()
        self.assertGreater(float(top1 - top0), 0.2)


if __name__ == "__main__":
    unittest.main()
