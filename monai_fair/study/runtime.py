# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Small run-time choices every study bundle makes: the device, the network on it, the process that reports."""

from __future__ import annotations

import os

import torch

__all__ = ["conv_memory_format", "is_main_process", "prepare_network", "resolve_device"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: the first CUDA device when there is one, else the CPU; anything else as ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def prepare_network(
    network: torch.nn.Module,
    device: str | torch.device = "cpu",
    pretrained_weights: str | os.PathLike | None = None,
    channels_last: bool = True,
) -> torch.nn.Module:
    """The network on ``device``, optionally started from ImageNet weights on local disk.

    Args:
        network: a :class:`~monai_fair.networks.FairVGG` (any module when ``pretrained_weights`` is ``None``).
        device: target device.
        pretrained_weights: a torchvision-format VGG state-dict file (see
            :func:`~monai_fair.networks.load_imagenet_weights`); nothing is downloaded.
        channels_last: store the weights of a 2D (3D) convolutional network channels-last: oneDNN on CPU and cuDNN
            on GPU pick their faster channels-last kernels (``benchmarks/headline_profile.py`` measures it).
            Outputs equal the contiguous network's up to float rounding; state dicts load either way.
    """
    if pretrained_weights:
        from monai_fair.networks import load_imagenet_weights

        load_imagenet_weights(network, pretrained_weights)
    network = network.to(device)
    memory_format = conv_memory_format(network) if channels_last else None
    return network if memory_format is None else network.to(memory_format=memory_format)


def conv_memory_format(network: torch.nn.Module) -> torch.memory_format | None:
    """``channels_last`` for a network of 2D convolutions, ``channels_last_3d`` for 3D, ``None`` otherwise."""
    dims = {m.weight.ndim - 2 for m in network.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)}
    if dims == {2}:
        return torch.channels_last
    if dims == {3}:
        return torch.channels_last_3d
    return None  # no convolution, 1D, or mixed


def is_main_process() -> bool:
    """``True`` outside ``torch.distributed`` and on rank 0: the process that debiases and writes the report."""
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()) or (
        torch.distributed.get_rank() == 0
    )
