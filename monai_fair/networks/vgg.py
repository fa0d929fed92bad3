# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""VGG-11/13/16 for 2D and 3D inputs, built from MONAI layer factories, with torchvision-compatible layer names.

MONAI ships no VGG. :class:`FairVGG` keeps torchvision's module layout (``features.N``, ``avgpool``,
``classifier.N``) so that a torchvision-format ImageNet state dict stored on disk loads with
:func:`load_imagenet_weights` (nothing is ever downloaded), and it is TorchScript-able so that
``python -m monai.bundle ckpt_export`` can export it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from monai.networks.layers.factories import Act, Conv, Norm, Pool
from torch import nn

__all__ = ["VGG_CONFIGS", "FairVGG", "fair_vgg11", "fair_vgg13", "fair_vgg16", "load_imagenet_weights"]

#: Feature-extractor layouts: output channels of each 3x3 convolution, ``"M"`` for a 2x2 max pooling.
VGG_CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


def _scaled_layout(layout: Sequence[int | str], width: float) -> list[int | str]:
    out: list[int | str] = []
    for v in layout:
        if isinstance(v, str):
            if v != "M":
                raise ValueError(f"a channel layout holds ints and 'M' (max pooling) only, got {v!r}.")
            out.append("M")
        else:
            if int(v) < 1:
                raise ValueError(f"channel counts must be positive, got {v}.")
            out.append(max(1, int(round(int(v) * width))))
    return out


class FairVGG(nn.Module):
    """VGG classifier (Simonyan & Zisserman 2015) for ``spatial_dims`` 2 or 3.

    Module names follow torchvision's ``VGG``: ``features`` is a ``Sequential`` of
    ``conv[, batchnorm], relu`` triplets (pairs without batch norm) and max poolings, ``avgpool`` an adaptive
    average pooling to ``pool_size``, and ``classifier`` the head
    ``Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear`` (so ``classifier.6`` is the output layer and its
    input, the output of ``classifier.5``, is the penultimate representation).

    Args:
        spatial_dims: 2 or 3.
        in_channels: number of input channels.
        out_channels: number of outputs (logits).
        config: ``"vgg11"``, ``"vgg13"`` or ``"vgg16"``; ignored when ``channels`` is given.
        batch_norm: insert batch normalisation after every convolution (torchvision's ``vgg16_bn``).
        width: multiplier of every convolution's channel count (e.g. 0.125 for a CPU demo); at least 1 channel.
        channels: an explicit layout (ints and ``"M"``) instead of ``config`` (``width`` still applies).
        fc_channels: width of the two hidden fully connected layers (4096 in the original).
        dropout: dropout probability of the head.
        pool_size: output size of the adaptive average pooling along every spatial dimension (7 in the original).
        init_weights: torchvision's initialisation (Kaiming-normal convolutions, N(0, 0.01) linear layers).

    Example::

        net = FairVGG(spatial_dims=2, in_channels=1, out_channels=1, config="vgg16", width=0.125, fc_channels=256)
        logits = net(torch.rand(2, 1, 64, 64))  # (2, 1)
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 3,
        out_channels: int = 1000,
        config: str = "vgg16",
        batch_norm: bool = False,
        width: float = 1.0,
        channels: Sequence[int | str] | None = None,
        fc_channels: int = 4096,
        dropout: float = 0.5,
        pool_size: int = 7,
        init_weights: bool = True,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        if in_channels < 1 or out_channels < 1 or fc_channels < 1 or pool_size < 1:
            raise ValueError("in_channels, out_channels, fc_channels and pool_size must be positive.")
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}.")
        if channels is None:
            if config not in VGG_CONFIGS:
                raise ValueError(f"config must be one of {sorted(VGG_CONFIGS)}, got {config!r}.")
            channels = VGG_CONFIGS[config]
        layout = _scaled_layout(channels, width)
        if not any(isinstance(v, int) for v in layout):
            raise ValueError("the channel layout needs at least one convolution.")
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.batch_norm = batch_norm
        self.layout = layout

        conv_type = Conv[Conv.CONV, spatial_dims]
        pool_type = Pool[Pool.MAX, spatial_dims]
        norm_type = Norm[Norm.BATCH, spatial_dims]
        layers: list[nn.Module] = []
        c_in = in_channels
        for v in layout:
            if v == "M":
                layers.append(pool_type(kernel_size=2, stride=2))
                continue
            layers.append(conv_type(c_in, int(v), kernel_size=3, padding=1))
            if batch_norm:
                layers.append(norm_type(int(v)))
            layers.append(Act[Act.RELU](inplace=True))
            c_in = int(v)
        self.features = nn.Sequential(*layers)
        self.avgpool = Pool[Pool.ADAPTIVEAVG, spatial_dims](pool_size)
        self.classifier = nn.Sequential(
            nn.Linear(c_in * pool_size**spatial_dims, fc_channels),
            Act[Act.RELU](inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(fc_channels, fc_channels),
            Act[Act.RELU](inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(fc_channels, out_channels),
        )
        if init_weights:
            self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The penultimate representation (input of ``classifier.6``) and the logits, in one forward pass.

        Not part of the TorchScript interface (``forward`` is); use :class:`monai_fair.networks.FeatureHook`
        for models other than :class:`FairVGG`.
        """
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        h = self.classifier[:-1](x)
        return h, self.classifier[-1](h)

    @property
    def output_layer_name(self) -> str:
        """Name of the output layer, whose input is the penultimate representation (``"classifier.6"``)."""
        return f"classifier.{len(self.classifier) - 1}"

    def prunable_layer_names(self) -> list[str]:
        """Names of the layers (``features.N``) whose outputs hold the units that pruning may remove, in network order.

        The convolutions, or with ``batch_norm`` the batch normalisations right after them (zeroing a convolution
        output before batch normalisation would not remove the unit; see
        :func:`monai_fair.debias.unit_mask.prunable_layer_names`, which gives the same names).
        """
        convs = [i for i, m in enumerate(self.features) if isinstance(m, (nn.Conv2d, nn.Conv3d))]
        return [f"features.{i + 1 if self.batch_norm else i}" for i in convs]


def fair_vgg11(**kwargs: Any) -> FairVGG:
    """VGG-11 (configuration "A"); keyword arguments as :class:`FairVGG`."""
    return FairVGG(config="vgg11", **kwargs)


def fair_vgg13(**kwargs: Any) -> FairVGG:
    """VGG-13 (configuration "B"); keyword arguments as :class:`FairVGG`."""
    return FairVGG(config="vgg13", **kwargs)


def fair_vgg16(**kwargs: Any) -> FairVGG:
    """VGG-16 (configuration "D"); keyword arguments as :class:`FairVGG`."""
    return FairVGG(config="vgg16", **kwargs)


def _unwrap_state_dict(obj: Any) -> Mapping[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "network"):
            if key in obj and isinstance(obj[key], Mapping):
                return _unwrap_state_dict(obj[key])
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise ValueError("the file does not hold a state dict (a mapping of parameter names to tensors).")


def load_imagenet_weights(
    model: FairVGG,
    path: str | os.PathLike | Mapping[str, torch.Tensor],
    first_conv: str = "sum",
    load_classifier: bool = True,
    strict: bool = True,
) -> dict[str, list[str]]:
    """Copy a torchvision-format VGG state dict (e.g. ``vgg16-397923af.pth``) from a local file into ``model``.

    Nothing is downloaded. The file's keys are torchvision's (``features.0.weight``, ..., ``classifier.6.bias``);
    nested checkpoints under ``state_dict``/``model``/``network`` are unwrapped.

    * ``in_channels == 1``: the first convolution's RGB kernels are summed (``first_conv="sum"``; a grey image
      repeated on three channels then gives exactly the pretrained response) or averaged (``"mean"``).
    * The output layer (``classifier.6``) is skipped when its shape differs (a different number of classes); it
      keeps its initialisation.
    * 3D models are refused: there are no 3D ImageNet VGG weights and inflating them is a modelling choice.

    Args:
        model: the network to fill (2D).
        path: a ``.pth``/``.pt`` file (loaded with ``weights_only=True``) or an in-memory state dict.
        first_conv: ``"sum"`` or ``"mean"``, how RGB kernels become one channel.
        load_classifier: also load the head's hidden layers (``classifier.0``, ``classifier.3``); set ``False``
            when the head is configured differently (``fc_channels``/``pool_size``) to load the features only.
        strict: raise if a tensor the model needs is missing from the file or has a different shape (other than
            the output layer, and other than the head when ``load_classifier`` is ``False``).

    Returns:
        ``{"loaded": [...], "skipped": [...]}`` lists of the model's state-dict keys.

    Raises:
        ValueError: 3D model, unsupported ``in_channels``/``first_conv``, or (``strict``) a missing or mis-shaped
            tensor.
    """
    if getattr(model, "spatial_dims", 2) != 2:
        raise ValueError("ImageNet VGG weights are 2D; refusing to load them into a 3D FairVGG.")
    if first_conv not in ("sum", "mean"):
        raise ValueError(f"first_conv must be 'sum' or 'mean', got {first_conv!r}.")
    if isinstance(path, Mapping):
        source = _unwrap_state_dict(path)
    else:
        source = _unwrap_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    target = model.state_dict()
    first_conv_key = "features.0.weight"
    head_prefix = f"{model.output_layer_name}."
    new_state: dict[str, torch.Tensor] = {}
    loaded, skipped, problems = [], [], []
    for key, dst in target.items():
        optional = key.startswith(head_prefix) or (not load_classifier and key.startswith("classifier."))
        if key not in source:
            (skipped if optional else problems).append(key if optional else f"{key}: missing from the file")
            continue
        src = source[key]
        if key == first_conv_key and src.shape != dst.shape and src.ndim == 4 and src.shape[1] == 3:
            if dst.shape[1] != 1:
                raise ValueError(
                    f"cannot adapt 3-channel ImageNet kernels to in_channels={dst.shape[1]}; use 1 or 3 channels."
                )
            src = src.sum(1, keepdim=True) if first_conv == "sum" else src.mean(1, keepdim=True)
        if src.shape != dst.shape:
            if optional:
                skipped.append(key)
            else:
                problems.append(f"{key}: file {tuple(src.shape)} vs model {tuple(dst.shape)}")
            continue
        new_state[key] = src.to(dtype=dst.dtype)
        loaded.append(key)
    if problems and strict:
        raise ValueError("ImageNet weights do not fit the model:\n  " + "\n  ".join(problems))
    skipped.extend(p.split(":")[0] for p in problems)
    model.load_state_dict(new_state, strict=False)
    return {"loaded": loaded, "skipped": skipped}
