# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""FairVAE: shapes, outputs, and the adversaries' gradient reaching the encoder with the right sign."""

from __future__ import annotations

import unittest

import torch
import torch.nn.functional as F

from monai_fair.networks.fair_vae import VAE_OUTPUTS, FairVAE

_THREADS = torch.get_num_threads()


def setUpModule():
    torch.set_num_threads(1)


def tearDownModule():
    torch.set_num_threads(_THREADS)


def encoder_grad(net, x, sex, reverse, detach=False, scale=1.0):
    net.zero_grad(set_to_none=True)
    net.reversal.scale = scale
    mu, logvar = net.encode(x)
    z = FairVAE.reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    logit, age = net.adversaries(z.detach() if detach else z, reverse=reverse)
    (F.binary_cross_entropy_with_logits(logit, sex) + age.pow(2).mean()).backward()
    g = net.encoder[0].weight.grad
    return torch.zeros_like(net.encoder[0].weight) if g is None else g.clone()


class TestFairVAE(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.net = FairVAE(12, latent_size=5, hidden=(8,), adversary_hidden=(4,))
        self.x = torch.randn(10, 12)
        self.sex = torch.randint(0, 2, (10,)).float()

    def test_shapes_and_outputs(self):
        out = self.net(self.x)
        self.assertEqual(out["recon"].shape, (10, 12))
        for k in ("mu", "logvar", "z"):
            self.assertEqual(out[k].shape, (10, 5))
        self.assertEqual(out["sex_logit"].shape, (10,))
        self.assertEqual(out["age"].shape, (10,))
        self.assertEqual(self.net.embed(self.x, "latent_mu").shape, (10, 5))
        mu, _ = self.net.encode(self.x)
        torch.testing.assert_close(self.net.embed(self.x, "recon_mean"), self.net.decode(mu))
        a = self.net.embed(self.x, "recon_sample", torch.Generator().manual_seed(1))
        b = self.net.embed(self.x, "recon_sample", torch.Generator().manual_seed(1))
        torch.testing.assert_close(a, b)
        self.assertFalse(torch.allclose(a, self.net.embed(self.x, "recon_mean")))
        self.assertEqual(set(VAE_OUTPUTS), {"recon_sample", "recon_mean", "latent_mu"})
        with self.assertRaises(ValueError):
            self.net.embed(self.x, "z")

    def test_kl_matches_torch_distributions(self):
        mu, logvar = torch.randn(4, 3), torch.randn(4, 3)
        q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
        p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
        torch.testing.assert_close(FairVAE.kl_divergence(mu, logvar), torch.distributions.kl_divergence(q, p))

    def test_adversary_gradient_reaches_encoder(self):
        plain = encoder_grad(self.net, self.x, self.sex, reverse=False)
        self.assertGreater(float(plain.abs().sum()), 0.0)
        # the released code's configuration (adversary on z.detach()): nothing reaches the encoder
        detached = encoder_grad(self.net, self.x, self.sex, reverse=False, detach=True)
        self.assertEqual(float(detached.abs().sum()), 0.0)

    def test_reversal_sign_and_scale(self):
        plain = encoder_grad(self.net, self.x, self.sex, reverse=False)
        for lam in (0.1, 1.0, 2.5):
            reversed_ = encoder_grad(self.net, self.x, self.sex, reverse=True, scale=lam)
            torch.testing.assert_close(reversed_, -lam * plain)
        # the adversary's own gradient is not reversed
        self.net.zero_grad(set_to_none=True)
        z = self.net(self.x)["z"].detach()
        F.binary_cross_entropy_with_logits(self.net.adversaries(z, reverse=True)[0], self.sex).backward()
        g_rev = self.net.sex_adversary[0].weight.grad.clone()
        self.net.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(self.net.adversaries(z)[0], self.sex).backward()
        torch.testing.assert_close(g_rev, self.net.sex_adversary[0].weight.grad)

    def test_invalid(self):
        with self.assertRaises(ValueError):
            FairVAE(0)
        with self.assertRaises(ValueError):
            FairVAE(4, hidden=(0,))


if __name__ == "__main__":
    unittest.main()
