# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Small run-time choices every study bundle makes: the device, the network on it, the process that reports."""

from __future__ import annotations

import os

import torch

__all__ = ["is_main_process", "prepare_network", "resolve_device"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: the first CUDA device when there is one, else the CPU; anything else as ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def prepare_network(
    network: torch.nn.Module,
    device: str | torch.device = "cpu",
    pretrained_weights: str | os.PathLike | None = None,
) -> torch.nn.Module:
    """The network on ``device``, optionally started from ImageNet weights on local disk.

    Args:
        network: a :class:`~monai_fair.networks.FairVGG` (any module when ``pretrained_weights`` is ``None``).
        device: target device.
        pretrained_weights: a torchvision-format VGG state-dict file (see
            :func:`~monai_fair.networks.load_imagenet_weights`); nothing is downloaded.
    """
    if pretrained_weights:
        from monai_fair.networks import load_imagenet_weights

        load_imagenet_weights(network, pretrained_weights)
    return network.to(device)


def is_main_process() -> bool:
    """``True`` outside ``torch.distributed`` and on rank 0: the process that debiases and writes the report."""
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) or (
        torch.distributed.get_rank() == 0
    )
