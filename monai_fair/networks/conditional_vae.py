# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""A conditional VAE of small images given a binary attribute: the CPU generator of the counterfactual audit.

X = φ(A, U): the encoder abducts U = μ(x) (it does not see A, so U carries no attribute label by construction, and an
independence penalty between U and A removes what the image itself tells about A); the decoder renders
x̂ = decode(U, a) for any attribute value a, so a counterfactual is decode(encode(x), 1 − a)
(``reference/methods.md`` section 3.6). The penalty is the biased HSIC estimate between the latent means (Gaussian
kernel, median bandwidth) and A (delta kernel) on each batch.

Every generator of the audit has this interface: ``encode(x) -> U (N, k)``, ``decode(u, a) -> x``,
``counterfactual(x, a) -> x`` (see :class:`~monai_fair.networks.latent_diffusion.ConditionalLatentDiffusion` for
the GPU one).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ConditionalVAE", "hsic"]


def _gaussian_gram(x: torch.Tensor) -> torch.Tensor:
    d2 = torch.cdist(x, x).pow(2)
    off = d2[~torch.eye(x.shape[0], dtype=torch.bool, device=x.device)]
    # median heuristic over the pairs (torch's median: the lower middle value), detached so the bandwidth does not
    # chase the penalty
    med = off.median().detach() if bool((off > 0).any()) else torch.ones((), device=x.device, dtype=x.dtype)
    return torch.exp(-d2 / med.clamp_min(1e-8))


def hsic(u: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Biased HSIC estimate tr(K H L H) / (n − 1)² between rows of ``u`` (Gaussian kernel, median bandwidth) and the
    discrete codes ``a`` (delta kernel); 0 when they are independent in the batch.

    Args:
        u: ``(n, k)`` latent codes.
        a: ``(n,)`` integer codes.
    """
    n = u.shape[0]
    if n < 2:
        return u.sum() * 0.0
    k = _gaussian_gram(u.reshape(n, -1))
    a = a.reshape(-1)
    l_mat = (a[:, None] == a[None, :]).to(k.dtype)
    h = torch.eye(n, device=u.device, dtype=k.dtype) - 1.0 / n
    return torch.trace(k @ h @ l_mat @ h) / (n - 1) ** 2


class ConditionalVAE(nn.Module):
    """Convolutional conditional VAE: encoder x → (μ, log σ²) of U, decoder (U, a) → x in [0, 1].

    Args:
        spatial_size: image side (a multiple of ``2 ** len(channels)``).
        in_channels: image channels.
        latent_size: dimension k of U.
        channels: encoder channels, one stride-2 convolution each (the decoder mirrors them).
        n_classes: number of attribute values (the decoder's one-hot condition).

    Raises:
        ValueError: a spatial size the convolutions cannot halve exactly.
    """

    def __init__(
        self,
        spatial_size: int = 32,
        in_channels: int = 1,
        latent_size: int = 16,
        channels: Sequence[int] = (16, 32, 64),
        n_classes: int = 2,
    ) -> None:
        super().__init__()
        factor = 2 ** len(channels)
        if spatial_size % factor:
            raise ValueError(f"spatial_size {spatial_size} must be a multiple of {factor} (2 ** len(channels)).")
        self.spatial_size, self.in_channels = int(spatial_size), int(in_channels)
        self.latent_size, self.n_classes = int(latent_size), int(n_classes)
        self._bottom = (int(channels[-1]), spatial_size // factor)
        enc: list[nn.Module] = []
        prev = in_channels
        for c in channels:
            enc += [nn.Conv2d(prev, c, 4, stride=2, padding=1), nn.BatchNorm2d(c), nn.LeakyReLU(0.2)]
            prev = c
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        flat = channels[-1] * (spatial_size // factor) ** 2
        self.to_stats = nn.Linear(flat, 2 * latent_size)
        self.from_latent = nn.Sequential(nn.Linear(latent_size + n_classes, flat), nn.LeakyReLU(0.2))
        dec: list[nn.Module] = []
        rev = list(channels[::-1])
        for c_in, c_out in zip(rev, rev[1:] + [rev[-1]]):
            dec += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]
        self.decoder = nn.Sequential(*dec, nn.Conv2d(rev[-1], in_channels, 3, padding=1), nn.Sigmoid())

    def encode_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(μ, log σ²)`` of U given images ``(N, C, H, W)``."""
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-10.0, 10.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The abducted exogenous factors U = μ(x), ``(N, k)``."""
        return self.encode_stats(x)[0]

    def decode(self, u: torch.Tensor, a: torch.Tensor | int) -> torch.Tensor:
        """Images rendered from U with attribute value(s) ``a`` (one code or one per row)."""
        a = torch.as_tensor(a, device=u.device).long().reshape(-1).expand(u.shape[0])
        cond = nn.functional.one_hot(a, self.n_classes).to(u.dtype)
        c, s = self._bottom
        return self.decoder(self.from_latent(torch.cat([u, cond], dim=1)).reshape(-1, c, s, s))

    def counterfactual(self, x: torch.Tensor, a: torch.Tensor | int) -> torch.Tensor:
        """``decode(encode(x), a)``: the images with the attribute set to ``a``."""
        return self.decode(self.encode(x), a)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction from a sampled U (training), ``μ`` and ``log σ²``."""
        mu, logvar = self.encode_stats(x)
        u = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decode(u, a), mu, logvar

    def loss(
        self, x: torch.Tensor, a: torch.Tensor, beta: float = 1.0, independence_weight: float = 10.0
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss: reconstruction (sum of squared errors per image) + β·KL + weight·HSIC(μ, A)·n_pixels.

        Returns:
            ``(loss, parts)`` with the batch means of each part.
        """
        recon, mu, logvar = self(x, a)
        rec = (recon - x).pow(2).flatten(1).sum(1).mean()
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()
        dep = hsic(mu, a)
        # the HSIC is O(1); scaled by the pixel count so its weight does not depend on the image size
        total = rec + beta * kl + independence_weight * x[0].numel() * dep
        return total, {"reconstruction": rec.item(), "kl": kl.item(), "hsic": dep.item()}
