# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The trained VAE debiaser as one network: embedding ``(B, D)`` → debiased embedding, with the input scaling inside.

:class:`~monai_fair.debias.vae_debias.VAEDebiaser` z-scores the features with the fit table's mean and std before its
:class:`~monai_fair.networks.fair_vae.FairVAE` and maps reconstructions back. :class:`DebiasedEmbedding` holds the
VAE and those scalers as buffers, so a bundle can declare it as ``network_def``, load a state dict with
``weights_only=True`` and run it like any MONAI network (``verify_net_in_out``, an evaluator, TorchScript tracing).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .fair_vae import VAE_OUTPUTS, FairVAE

__all__ = ["DebiasedEmbedding"]


class DebiasedEmbedding(nn.Module):
    """``x → unscale(decoder(mu(scale(x))))`` (``recon_mean``), or the latent mean ``mu`` (``latent_mu``).

    Args:
        in_features: embedding size D.
        latent_size: latent size k.
        hidden: encoder hidden sizes of the VAE.
        adversary_hidden: adversary hidden sizes (kept so the VAE's state dict loads whole).
        output: ``"recon_mean"`` or ``"latent_mu"`` (deterministic outputs; ``recon_sample`` is not a network output).

    Example::

        net = DebiasedEmbedding.from_debiaser(VAEDebiaser(...).fit(x, sex, age))
        debiased = net(torch.as_tensor(x))
    """

    def __init__(
        self,
        in_features: int,
        latent_size: int = 500,
        hidden: Sequence[int] = (),
        adversary_hidden: Sequence[int] = (),
        output: str = "recon_mean",
    ) -> None:
        super().__init__()
        if output not in ("recon_mean", "latent_mu"):
            raise ValueError(
                f"output must be 'recon_mean' or 'latent_mu' (one of {VAE_OUTPUTS} that is deterministic)."
            )
        self.output = output
        self.vae = FairVAE(in_features, latent_size, hidden, adversary_hidden)
        self.register_buffer("feature_mean", torch.zeros(in_features))
        self.register_buffer("feature_std", torch.ones(in_features))

    @classmethod
    def from_debiaser(cls, debiaser, output: str = "recon_mean") -> DebiasedEmbedding:
        """The network of a fitted :class:`~monai_fair.debias.vae_debias.VAEDebiaser` (weights and scalers copied)."""
        if debiaser.model is None:
            raise RuntimeError("the VAE debiaser has not been fitted.")
        c = debiaser.config
        net = cls(debiaser.model.in_features, c["latent_size"], c["hidden"], c["adversary_hidden"], output)
        net.vae.load_state_dict(debiaser.model.state_dict())
        if c["standardize"]:
            net.feature_mean.copy_(debiaser.feature_mean)
            net.feature_std.copy_(debiaser.feature_std)
        return net.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, _ = self.vae.encode((x - self.feature_mean) / self.feature_std)
        if self.output == "latent_mu":
            return mu
        return self.vae.decode(mu) * self.feature_std + self.feature_mean
