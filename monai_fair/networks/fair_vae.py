# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""A variational autoencoder of embedding vectors with sex (binary) and age (regression) adversaries on its latent.

Zheng et al. 2025 (``reference/methods.md`` section 2): the encoder maps an embedding to ``2k`` numbers split into
the latent mean ``mu`` and log-variance; the decoder maps a latent ``z`` back to the embedding space; one adversary
head per attribute reads ``z``. The released code detached ``z`` before its adversaries, so no adversarial gradient
ever reached the encoder. Here the heads read ``z`` itself, optionally through a :class:`GradientReversal` whose
``scale`` the trainer schedules (:class:`~monai_fair.debias.vae_debias.VAEDebiaser`).

The debiased embedding is one of three outputs (:data:`VAE_OUTPUTS`): ``recon_sample`` (decoder of a sampled
``z``, as released: stochastic), ``recon_mean`` (decoder of ``mu``: deterministic) or ``latent_mu`` (``mu`` itself).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .gradient_reversal import GradientReversal

__all__ = ["VAE_OUTPUTS", "FairVAE", "mlp"]

VAE_OUTPUTS = ("recon_sample", "recon_mean", "latent_mu")


def mlp(in_features: int, hidden: Sequence[int], out_features: int, dropout: float = 0.0) -> nn.Sequential:
    """``Linear → ReLU [→ Dropout]`` for each hidden size, then a final ``Linear`` (one ``Linear`` without hidden).

    Args:
        in_features: input size.
        hidden: hidden layer sizes (may be empty).
        out_features: output size.
        dropout: dropout probability after each hidden activation.
    """
    layers: list[nn.Module] = []
    size = int(in_features)
    for h in hidden:
        if int(h) < 1:
            raise ValueError(f"hidden sizes must be positive, got {list(hidden)}.")
        layers += [nn.Linear(size, int(h)), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        size = int(h)
    layers.append(nn.Linear(size, int(out_features)))
    return nn.Sequential(*layers)


class FairVAE(nn.Module):
    """VAE (input → hidden → ``2k`` → ``mu``, log σ²; ``k`` → hidden → input) with sex and age adversary heads.

    Args:
        in_features: embedding size D (CT Foundation: 1408).
        latent_size: latent size ``k`` (the paper: 500).
        hidden: encoder hidden sizes (the release: none); the decoder mirrors them.
        adversary_hidden: hidden sizes of each adversary head (the release: none, i.e. one ``Linear(k, 1)``).
        dropout: dropout after hidden activations of the encoder and decoder.
        reversal_scale: initial strength of the gradient reversal in front of the adversaries (used when
            :meth:`adversaries` is called with ``reverse=True``; trainers set ``self.reversal.scale``).

    Example::

        net = FairVAE(1408, latent_size=500)
        out = net(x)  # dict: recon, mu, logvar, z, sex_logit, age
        debiased = net.embed(x, "recon_mean")
    """

    def __init__(
        self,
        in_features: int,
        latent_size: int = 500,
        hidden: Sequence[int] = (),
        adversary_hidden: Sequence[int] = (),
        dropout: float = 0.0,
        reversal_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if in_features < 1 or latent_size < 1:
            raise ValueError(f"in_features and latent_size must be positive, got {in_features}, {latent_size}.")
        self.in_features = int(in_features)
        self.latent_size = int(latent_size)
        self.encoder = mlp(in_features, hidden, 2 * latent_size, dropout)
        self.decoder = mlp(latent_size, list(hidden)[::-1], in_features, dropout)
        self.sex_adversary = mlp(latent_size, adversary_hidden, 1)
        self.age_adversary = mlp(latent_size, adversary_hidden, 1)
        self.reversal = GradientReversal(reversal_scale)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)``, each ``(B, k)``."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``z = mu + eps * exp(logvar / 2)`` with ``eps ~ N(0, I)`` (drawn from ``generator`` if given)."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + eps * torch.exp(0.5 * logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``(B, D)`` of latents ``(B, k)``."""
        return self.decoder(z)

    def adversaries(self, z: torch.Tensor, reverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Sex logit ``(B,)`` and age prediction ``(B,)`` from latents ``z``.

        Args:
            z: latents ``(B, k)``; their graph is kept, so adversary losses reach the encoder.
            reverse: pass ``z`` through the gradient reversal first (the GRL scheme).
        """
        h = self.reversal(z) if reverse else z
        return self.sex_adversary(h).squeeze(-1), self.age_adversary(h).squeeze(-1)

    @staticmethod
    def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)) per element, ``-(1 + logvar - mu^2 - exp(logvar)) / 2``, shape of ``mu``."""
        return -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp())

    def forward(
        self, x: torch.Tensor, reverse: bool = False, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Encode, sample, decode and run the adversaries on the sampled ``z``.

        Args:
            x: embeddings ``(B, D)``.
            reverse: put the gradient reversal between ``z`` and the adversaries.
            generator: source of the reparameterisation noise.

        Returns:
            ``recon`` (B, D), ``mu`` and ``logvar`` (B, k), ``z`` (B, k), ``sex_logit`` (B,), ``age`` (B,).
        """
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator)
        sex_logit, age = self.adversaries(z, reverse=reverse)
        return {"recon": self.decode(z), "mu": mu, "logvar": logvar, "z": z, "sex_logit": sex_logit, "age": age}

    def embed(
        self, x: torch.Tensor, output: str = "recon_mean", generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The debiased embedding of ``x``: one of :data:`VAE_OUTPUTS`.

        Args:
            x: embeddings ``(B, D)``.
            output: ``"recon_mean"`` (decode ``mu``), ``"recon_sample"`` (decode a sampled ``z``) or
                ``"latent_mu"`` (``mu``, ``(B, k)``).
            generator: noise source for ``"recon_sample"``.
        """
        if output not in VAE_OUTPUTS:
            raise ValueError(f"output must be one of {VAE_OUTPUTS}, got {output!r}.")
        mu, logvar = self.encode(x)
        if output == "latent_mu":
            return mu
        if output == "recon_mean":
            return self.decode(mu)
        return self.decode(self.reparameterize(mu, logvar, generator))
