# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The bias discrimination module D and the fairness critic P of Li et al. 2021, and the G/C split of a VGG.

D and P read the feature generator's output ``h = G(x)`` (a feature map). They share two 3x3 convolutions (16 and
32 channels), then each has its own fully connected head 128-32-1: D gives a per-sample logit of the sensitive
group; P's per-sample outputs are pooled over the batch into the predicted statistical parity difference (SPD) of the
batch, by one of two read-outs (:data:`CRITIC_READOUTS`), both of which accept any batch size (unlike a critic that
flattens the batch):

* ``"mean"`` (the paper: "we average the output in the minibatch as the predicted fairness score"): one score
  ``p_i`` per sample, the prediction is ``mean_i p_i``;
* ``"group_ratio"``: two outputs per sample, a positive-class score ``s_i = sigmoid(a_i)`` and a soft membership of
  the unprivileged group ``w_i = sigmoid(b_i)``, pooled as the SPD of the scores between the soft groups,
  ``sum_i w_i s_i / sum_i w_i - sum_i (1 - w_i) s_i / sum_i (1 - w_i)``. With the true scores and 0/1 groups this
  *is* the batch SPD ("rest minus reference"), whatever the groups' shares in the batch, which a mean of per-sample
  scores cannot represent unless the shares are fixed.

:func:`split_vgg` views a :class:`~monai_fair.networks.FairVGG` as ``G`` (convolutions and pooling) and ``C`` (the
fully connected layers), sharing the network's parameters, as the paper splits VGG-11.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers import Conv
from torch import nn

__all__ = ["CRITIC_READOUTS", "BiasCriticHeads", "group_ratio_spd", "VGGClassifierHead", "VGGGenerator", "split_vgg"]


#: the critic's batch read-outs (see the module docstring)
CRITIC_READOUTS = ("mean", "group_ratio")


def _head(in_features: int, hidden: Sequence[int], out_features: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = in_features
    for h in hidden:
        layers += [nn.Linear(c, int(h)), nn.ReLU()]
        c = int(h)
    layers.append(nn.Linear(c, out_features))
    return nn.Sequential(*layers)


def group_ratio_spd(scores: torch.Tensor, weights: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """The SPD of ``scores`` between soft groups: ``sum w s / sum w - sum (1 - w) s / sum (1 - w)``.

    Args:
        scores: ``(B,)`` positive-class scores.
        weights: ``(B,)`` membership of the unprivileged group, in ``[0, 1]`` (0/1: the batch SPD "rest minus
            reference" exactly).
        eps: floor of each group's total weight (a batch of one group gives a finite value, not a division by 0).
    """
    w = weights.reshape(-1)
    s = scores.reshape(-1)
    rest = (w * s).sum() / w.sum().clamp(min=eps)
    reference = ((1.0 - w) * s).sum() / (1.0 - w).sum().clamp(min=eps)
    return rest - reference


class BiasCriticHeads(nn.Module):
    """Shared trunk of D and P, D's head and P's head.

    Args:
        in_channels: channels of the feature map ``h``.
        spatial_size: spatial size of ``h`` (an int for every dimension, or one per dimension).
        spatial_dims: 2 or 3.
        channels: the shared convolutions' channels (the paper: 16, 32).
        hidden: the hidden widths of each head (the paper: 128, 32; the output width is 1, or 2 for P with
            ``readout="group_ratio"``).
        readout: P's batch read-out, ``"mean"`` (the paper) or ``"group_ratio"`` (see the module docstring).

    Inputs may be the feature map ``(B, C, *spatial)`` or its flattening ``(B, C * prod(spatial))`` (what
    :class:`~monai_fair.networks.FeatureHook` captures).

    Example::

        heads = BiasCriticHeads(in_channels=64, spatial_size=2)
        d_logit, p_out = heads(h)              # (B,), (B,) ("mean") or (B, 2) ("group_ratio")
        predicted_spd = heads.predict_spd(h)   # scalar: heads.pool(p_out)
    """

    def __init__(
        self,
        in_channels: int,
        spatial_size: int | Sequence[int],
        spatial_dims: int = 2,
        channels: Sequence[int] = (16, 32),
        hidden: Sequence[int] = (128, 32),
        readout: str = "mean",
    ) -> None:
        super().__init__()
        if readout not in CRITIC_READOUTS:
            raise ValueError(f"readout must be one of {CRITIC_READOUTS}, got {readout!r}.")
        self.readout = readout
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        size = [int(spatial_size)] * spatial_dims if isinstance(spatial_size, int) else [int(s) for s in spatial_size]
        if len(size) != spatial_dims or min(size) < 1 or in_channels < 1 or not channels:
            raise ValueError("in_channels, spatial_size (one per dimension) and channels must be positive/non-empty.")
        self.in_shape = (int(in_channels), *size)
        conv = Conv[Conv.CONV, spatial_dims]
        layers: list[nn.Module] = []
        c = int(in_channels)
        for out in channels:
            layers += [conv(c, int(out), kernel_size=3, padding=1), nn.ReLU()]
            c = int(out)
        self.shared = nn.Sequential(*layers)
        flat = c * int(torch.tensor(size).prod())
        self.discriminator = _head(flat, hidden)
        self.critic = _head(flat, hidden, 2 if readout == "group_ratio" else 1)

    def _as_map(self, h: torch.Tensor) -> torch.Tensor:
        numel = int(torch.tensor(self.in_shape).prod())
        if h.ndim == 2 and h.shape[1] == numel:
            return h.reshape(h.shape[0], *self.in_shape)
        if tuple(h.shape[1:]) != self.in_shape:
            raise ValueError(f"expected features of shape (B, {self.in_shape}) or (B, {numel}), got {tuple(h.shape)}.")
        return h

    def trunk(self, h: torch.Tensor) -> torch.Tensor:
        """The shared representation, flattened ``(B, F)``."""
        return torch.flatten(self.shared(self._as_map(h)), 1)

    def critic_head(self, z: torch.Tensor) -> torch.Tensor:
        """P's per-sample outputs from the shared representation ``z = trunk(h)``."""
        p = self.critic(z)
        return p if self.readout == "group_ratio" else p.reshape(-1)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(D logits (B,), P per-sample outputs)``: ``(B,)`` scores (``"mean"``), or ``(B, 2)`` logits of the
        positive-class score and of the unprivileged-group membership (``"group_ratio"``)."""
        z = self.trunk(h)
        return self.discriminator(z).reshape(-1), self.critic_head(z)

    def critic_outputs(self, h: torch.Tensor) -> torch.Tensor:
        """P's per-sample outputs (the second item of :meth:`forward`) without running D."""
        return self.critic_head(self.trunk(h))

    def pool(self, p: torch.Tensor) -> torch.Tensor:
        """P's batch read-out of its per-sample outputs ``p``: the predicted SPD (a scalar)."""
        if self.readout == "group_ratio":
            return group_ratio_spd(torch.sigmoid(p[:, 0]), torch.sigmoid(p[:, 1]))
        return p.mean()

    def predict_spd(self, h: torch.Tensor) -> torch.Tensor:
        """P's prediction of the batch's statistical parity difference (its read-out of the batch)."""
        return self.pool(self.critic_outputs(h))

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.shared.parameters())

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return list(self.discriminator.parameters())

    def critic_parameters(self) -> list[nn.Parameter]:
        return list(self.critic.parameters())


class VGGGenerator(nn.Module):
    """``G``: the convolutions and the adaptive pooling of a :class:`~monai_fair.networks.FairVGG` (shared)."""

    def __init__(self, vgg: nn.Module) -> None:
        super().__init__()
        self.features, self.avgpool = vgg.features, vgg.avgpool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.avgpool(self.features(x))


class VGGClassifierHead(nn.Module):
    """``C``: the fully connected layers of a :class:`~monai_fair.networks.FairVGG` (shared), on ``G``'s map."""

    def __init__(self, vgg: nn.Module) -> None:
        super().__init__()
        self.classifier = vgg.classifier

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(h, 1))


def split_vgg(vgg: nn.Module) -> tuple[VGGGenerator, VGGClassifierHead]:
    """``(G, C)`` of a VGG with ``features``, ``avgpool`` and ``classifier`` (``C(G(x)) == vgg(x)``); the modules
    share the network's parameters, so training them trains ``vgg``. The feature module of ``G``'s output for
    :class:`~monai_fair.networks.FeatureHook` is ``"avgpool"`` (``capture="output"``).

    Raises:
        ValueError: the network lacks one of the three modules.
    """
    missing = [n for n in ("features", "avgpool", "classifier") if not hasattr(vgg, n)]
    if missing:
        raise ValueError(f"{type(vgg).__name__} has no {missing}; split_vgg needs a VGG (features/avgpool/classifier).")
    return VGGGenerator(vgg), VGGClassifierHead(vgg)
