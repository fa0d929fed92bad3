# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""DebiasedEmbedding reproduces VAEDebiaser.transform, and its state dict round-trips with weights_only=True."""

from __future__ import annotations

import tempfile
import unittest

import numpy as np
import torch

from monai_fair.debias import VAEDebiaser
from monai_fair.networks import DebiasedEmbedding


class TestDebiasedEmbedding(unittest.TestCase):
    def test_matches_debiaser_and_round_trips(self):
        rng = np.random.default_rng(0)
        x = (rng.normal(size=(30, 5)) * [1, 2, 3, 4, 5] + 7).astype(np.float32)
        deb = VAEDebiaser(latent_size=3, epochs=1, seed=0).fit(x, rng.integers(0, 2, 30), rng.normal(60, 5, 30))
        for output in ("recon_mean", "latent_mu"):
            net = DebiasedEmbedding.from_debiaser(deb, output)
            with torch.no_grad():
                got = net(torch.as_tensor(x))
            torch.testing.assert_close(got, deb.transform(x, output), rtol=1e-5, atol=1e-5)
            with tempfile.NamedTemporaryFile(suffix=".pt") as f:
                torch.save(net.state_dict(), f.name)
                fresh = DebiasedEmbedding(5, 3, output=output)
                fresh.load_state_dict(torch.load(f.name, weights_only=True))
                with torch.no_grad():
                    torch.testing.assert_close(fresh(torch.as_tensor(x)), got)

    def test_invalid(self):
        with self.assertRaisesRegex(ValueError, "deterministic"):
            DebiasedEmbedding(4, 2, output="recon_sample")
        with self.assertRaisesRegex(RuntimeError, "fitted"):
            DebiasedEmbedding.from_debiaser(VAEDebiaser())


if __name__ == "__main__":
    unittest.main()
