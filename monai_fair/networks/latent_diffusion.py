# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The GPU generator of the counterfactual audit: a latent diffusion model conditioned on the attribute, built from
MONAI's generative networks (``AutoencoderKL``, ``DiffusionModelUNet``, ``DDIMScheduler``,
``LatentDiffusionInferer``), with the interface of :class:`~monai_fair.networks.ConditionalVAE`.

* Conditioning: the attribute enters the U-Net as constant one-hot channels concatenated to the latent (the
  inferer's ``"concat"`` mode; cross-attention would need ``einops``), with one extra "no attribute" channel;
  training drops the attribute to that channel with probability ``drop_condition`` (classifier-free guidance
  dropout, as the paper's model).
* Abduction ``encode(x)``: the autoencoder's latent, inverted to noise by deterministic DDIM under the "no
  attribute" context (the released code never implemented this step, ``reference/methods.md`` section 3.2); U is
  that noise, flattened.
* ``decode(u, a)``: deterministic DDIM sampling from U with attribute ``a``, decoded by the autoencoder.

Training (:meth:`loss`, used by :func:`~monai_fair.audit.fit_generator`) adds the autoencoder's reconstruction and
KL terms to the noise-prediction loss of the diffusion model on the (detached) latents; at scale train the two stages
one after the other, as MONAI's tutorials do. It runs on CPU at a tiny size for tests; it is meant for a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ConditionalLatentDiffusion"]


class ConditionalLatentDiffusion(nn.Module):
    """Attribute-conditioned latent diffusion model with DDIM abduction.

    Args:
        spatial_size: image side.
        in_channels: image channels.
        n_classes: attribute values (the context has one more, "no attribute").
        ae_channels: ``AutoencoderKL`` channels (one down-sampling per level after the first).
        latent_channels: channels of the autoencoder latent.
        unet_channels: ``DiffusionModelUNet`` channels.
        num_res_blocks: residual blocks per level (both networks).
        norm_num_groups: group-norm groups (both networks).
        num_train_timesteps: diffusion steps of training.
        num_inference_steps: DDIM steps of abduction and sampling.
        drop_condition: probability of training with the "no attribute" context.
        scale_factor: latent scaling of the inferer.
    """

    def __init__(
        self,
        spatial_size: int = 64,
        in_channels: int = 1,
        n_classes: int = 2,
        ae_channels: Sequence[int] = (32, 64, 64),
        latent_channels: int = 3,
        unet_channels: Sequence[int] = (64, 128, 128),
        num_res_blocks: int = 1,
        norm_num_groups: int = 16,
        num_train_timesteps: int = 1000,
        num_inference_steps: int = 20,
        drop_condition: float = 0.2,
        scale_factor: float = 1.0,
    ) -> None:
        super().__init__()
        from monai.inferers import LatentDiffusionInferer
        from monai.networks.nets import AutoencoderKL, DiffusionModelUNet
        from monai.networks.schedulers import DDIMScheduler

        self.spatial_size, self.in_channels, self.n_classes = int(spatial_size), int(in_channels), int(n_classes)
        self.num_inference_steps, self.drop_condition = int(num_inference_steps), float(drop_condition)
        self.autoencoder = AutoencoderKL(
            spatial_dims=2,
            in_channels=in_channels,
            out_channels=in_channels,
            channels=tuple(ae_channels),
            latent_channels=latent_channels,
            num_res_blocks=num_res_blocks,
            attention_levels=(False,) * len(ae_channels),
            norm_num_groups=norm_num_groups,
            with_encoder_nonlocal_attn=False,
            with_decoder_nonlocal_attn=False,
        )
        self.unet = DiffusionModelUNet(
            spatial_dims=2,
            in_channels=latent_channels + n_classes + 1,
            out_channels=latent_channels,
            channels=tuple(unet_channels),
            attention_levels=(False,) * len(unet_channels),
            num_res_blocks=num_res_blocks,
            norm_num_groups=norm_num_groups,
        )
        self.scheduler = DDIMScheduler(num_train_timesteps=num_train_timesteps, clip_sample=False)
        self.inferer = LatentDiffusionInferer(self.scheduler, scale_factor=scale_factor)
        self.scale_factor = float(scale_factor)
        with torch.no_grad():
            probe = self.autoencoder.encode_stage_2_inputs(torch.zeros(1, in_channels, spatial_size, spatial_size))
        #: shape of the autoencoder latent (U is it flattened)
        self.latent_shape = tuple(probe.shape[1:])

    def _context(self, a: torch.Tensor | int | None, n: int, device: torch.device) -> torch.Tensor:
        """One-hot condition maps ``(n, n_classes + 1, h, w)`` of the latent's size; ``None`` (or code ``n_classes``)
        is "no attribute"."""
        code = torch.full((n,), self.n_classes, device=device) if a is None else torch.as_tensor(a, device=device)
        code = code.long().reshape(-1).expand(n)
        onehot = nn.functional.one_hot(code, self.n_classes + 1).float()
        return onehot[:, :, None, None].expand(-1, -1, *self.latent_shape[1:])

    def _latent(self, x: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.encode_stage_2_inputs(x) * self.scale_factor

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """U: the latent of ``x`` inverted to noise by DDIM under the "no attribute" context, flattened ``(N, k)``."""
        z = self._latent(x)
        ctx = self._context(None, x.shape[0], x.device)
        self.scheduler.set_timesteps(self.num_inference_steps)
        for t in reversed(self.scheduler.timesteps):
            t_batch = torch.full((z.shape[0],), int(t), device=x.device).long()
            z = self._invert_step(self.unet(torch.cat([z, ctx], dim=1), timesteps=t_batch), int(t), z)
        return z.flatten(1)

    def _invert_step(self, eps: torch.Tensor, t: int, sample: torch.Tensor) -> torch.Tensor:
        """The algebraic inverse of ``DDIMScheduler.step`` (eta = 0) at timestep ``t``: from the level ``step``
        lands on (``t - T // n``, or the clean end) back to ``t``, with the same predicted noise. MONAI's
        ``reversed_step`` assumes evenly spaced timesteps, which its ``set_timesteps`` does not produce."""
        sch = self.scheduler
        prev = t - sch.num_train_timesteps // sch.num_inference_steps
        a_prev = sch.alphas_cumprod[prev] if prev >= 0 else sch.final_alpha_cumprod
        a_t = sch.alphas_cumprod[t]
        x0 = (sample - (1 - a_prev) ** 0.5 * eps) / a_prev**0.5
        return a_t**0.5 * x0 + (1 - a_t) ** 0.5 * eps

    @torch.no_grad()
    def decode(self, u: torch.Tensor, a: torch.Tensor | int) -> torch.Tensor:
        """Images sampled by deterministic DDIM from U with attribute ``a``, decoded by the autoencoder, in [0, 1]."""
        z = u.reshape(u.shape[0], *self.latent_shape)
        self.scheduler.set_timesteps(self.num_inference_steps)
        x = self.inferer.sample(
            input_noise=z,
            autoencoder_model=self.autoencoder,
            diffusion_model=self.unet,
            scheduler=self.scheduler,
            conditioning=self._context(a, u.shape[0], u.device),
            mode="concat",
            verbose=False,
        )
        return x.clamp(0.0, 1.0)

    def counterfactual(self, x: torch.Tensor, a: torch.Tensor | int) -> torch.Tensor:
        """``decode(encode(x), a)``."""
        return self.decode(self.encode(x), a)

    def loss(
        self, x: torch.Tensor, a: torch.Tensor, beta: float = 1e-6, independence_weight: float = 0.0
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Autoencoder reconstruction (L1) + ``beta``·KL + noise-prediction MSE of the diffusion model.

        ``independence_weight`` is accepted for the common interface and unused: U here is abducted noise, not a
        learned code.
        """
        recon, mu, sigma = self.autoencoder(x)
        rec = (recon - x).abs().mean()
        kl = 0.5 * (mu.pow(2) + sigma.pow(2) - torch.log(sigma.pow(2) + 1e-8) - 1).flatten(1).sum(1).mean()
        drop = torch.rand(x.shape[0], device=x.device) < self.drop_condition
        code = torch.where(drop, torch.full_like(a.long(), self.n_classes), a.long())
        ctx = self._context(code, x.shape[0], x.device)
        with torch.no_grad():
            z = self._latent(x)
        noise = torch.randn_like(z)
        t = torch.randint(0, self.scheduler.num_train_timesteps, (x.shape[0],), device=x.device).long()
        pred = self.unet(torch.cat([self.scheduler.add_noise(z, noise, t), ctx], dim=1), timesteps=t)
        diff = nn.functional.mse_loss(pred.float(), noise.float())
        total = rec + beta * kl + diff
        return total, {"reconstruction": rec.item(), "kl": kl.item(), "diffusion": diff.item()}
