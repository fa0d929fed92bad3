# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Adversary and critic heads on a classifier's penultimate representation, and the hook that reads it.

* :class:`FeatureHook` captures the input (or output) of a named submodule of any MONAI classifier, so the
  penultimate representation is available without changing the network (``"classifier.6"`` for
  :class:`~monai_fair.networks.FairVGG`, ``"fc"`` for MONAI's ResNet, ``"class_layers.out"`` for DenseNet121).
* :class:`BatchBiasCritic` regresses the bias of a whole mini-batch from the batch's representations
  (Savani et al. 2020 adversarial fine-tuning). It is permutation invariant (DeepSets: per-sample encoder, mean
  pooling, batch-level decoder), so it accepts any batch size, including a last incomplete batch.
* :class:`FlatBatchBiasCritic` is the original critic, which flattens a fixed-size batch into one vector.
* :class:`AttributeAdversary` predicts the protected attribute of each sample (Zhang et al. 2018), optionally
  behind a gradient reversal.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .gradient_reversal import GradientReversal

__all__ = ["AttributeAdversary", "BatchBiasCritic", "FeatureHook", "FlatBatchBiasCritic", "default_feature_module"]


def default_feature_module(model: nn.Module) -> str:
    """Name of the module whose input is ``model``'s penultimate representation.

    ``model.output_layer_name`` when the model defines it (e.g. :class:`~monai_fair.networks.FairVGG`),
    otherwise the last ``nn.Linear`` registered in the model (the usual classification layer).

    Raises:
        ValueError: the model has neither.
    """
    name = getattr(model, "output_layer_name", None)
    if isinstance(name, str):
        return name
    linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linear:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer; name the feature module explicitly.")
    return linear[-1]


class FeatureHook:
    """Capture the input (default) or output of the submodule ``name`` of ``model`` during forward passes.

    Use as a context manager (the hook is removed on exit) or call :meth:`remove`. The captured tensor is
    flattened to ``(B, -1)`` and keeps its autograd graph, so losses on it reach the layers below.

    Args:
        model: any ``nn.Module``.
        name: dotted submodule name as in ``model.named_modules()``; ``None`` uses
            :func:`default_feature_module`.
        capture: ``"input"`` (the representation fed to the layer) or ``"output"``.

    Example::

        with FeatureHook(net, "classifier.6") as hook:
            logits = net(x)
            penultimate = hook.features  # (B, 4096)
    """

    def __init__(self, model: nn.Module, name: str | None = None, capture: str = "input") -> None:
        if capture not in ("input", "output"):
            raise ValueError(f"capture must be 'input' or 'output', got {capture!r}.")
        self.name = default_feature_module(model) if name is None else name
        modules = dict(model.named_modules())
        if self.name not in modules:
            raise ValueError(f"{type(model).__name__} has no submodule named {self.name!r}.")
        self.capture = capture
        self._features: torch.Tensor | None = None
        module = modules[self.name]
        if capture == "input":
            self._handle = module.register_forward_pre_hook(self._pre_hook)
        else:
            self._handle = module.register_forward_hook(self._post_hook)

    def _store(self, t: torch.Tensor) -> None:
        self._features = t.reshape(t.shape[0], -1)

    def _pre_hook(self, module: nn.Module, args: tuple) -> None:
        self._store(args[0])

    def _post_hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        self._store(output)

    @property
    def features(self) -> torch.Tensor:
        """The representation captured by the latest forward pass, ``(B, F)``."""
        if self._features is None:
            raise RuntimeError(f"no forward pass has reached {self.name!r} yet.")
        return self._features

    def clear(self) -> None:
        self._features = None

    def remove(self) -> None:
        self._handle.remove()
        self._features = None

    def __enter__(self) -> FeatureHook:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _mlp_block(width: int, depth: int, dropout: float) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU(), nn.Dropout(dropout)]
    return layers


class BatchBiasCritic(nn.Module):
    """Permutation-invariant critic: the bias of a mini-batch from its ``(B, F)`` representations.

    ``critic(H) = rho(mean_i phi(h_i))``. A group-wise difference of mean scores is a ratio of batch means of
    per-sample quantities (group indicator, indicator times score), which mean pooling can represent for any
    batch size; the flattened critic must instead be re-trained for every batch size and sees one sample order.

    Args:
        in_features: size of one sample's representation.
        hidden: width of the encoder and decoder.
        encoder_layers: number of ``Linear, ReLU`` layers of the per-sample encoder ``phi`` (at least 1).
        num_deep: number of ``Linear, ReLU, Dropout`` blocks of the decoder ``rho`` (Savani: 3).
        dropout: dropout of the decoder blocks (Savani: 0.2).

    Returns (forward):
        a scalar tensor, the predicted bias of the batch.
    """

    def __init__(
        self, in_features: int, hidden: int = 32, encoder_layers: int = 2, num_deep: int = 3, dropout: float = 0.2
    ) -> None:
        super().__init__()
        if in_features < 1 or hidden < 1 or encoder_layers < 1 or num_deep < 0:
            raise ValueError("in_features, hidden and encoder_layers must be positive and num_deep non-negative.")
        enc: list[nn.Module] = [nn.Linear(in_features, hidden), nn.ReLU()]
        for _ in range(encoder_layers - 1):
            enc += [nn.Linear(hidden, hidden), nn.ReLU()]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*_mlp_block(hidden, num_deep, dropout), nn.Linear(hidden, 1))
        self.in_features = in_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 2 or features.shape[1] != self.in_features or features.shape[0] < 1:
            raise ValueError(f"expected (B>=1, {self.in_features}) features, got {tuple(features.shape)}.")
        pooled = self.encoder(features).mean(0, keepdim=True)
        return self.decoder(pooled).reshape(())


class FlatBatchBiasCritic(nn.Module):
    """Savani et al.'s critic: the whole batch flattened into one vector, so the batch size is fixed.

    ``Linear(batch_size * in_features, hidden)``, ``num_deep`` x ``[Linear(hidden, hidden), ReLU, Dropout]``,
    ``Linear(hidden, 1)``.

    Args:
        in_features: size of one sample's representation.
        batch_size: the only batch size accepted.
        hidden: hidden width (32).
        num_deep: number of hidden blocks (3).
        dropout: dropout of the hidden blocks (0.2).
    """

    def __init__(
        self, in_features: int, batch_size: int, hidden: int = 32, num_deep: int = 3, dropout: float = 0.2
    ) -> None:
        super().__init__()
        if in_features < 1 or batch_size < 1 or hidden < 1 or num_deep < 0:
            raise ValueError("in_features, batch_size and hidden must be positive and num_deep non-negative.")
        self.in_features = in_features
        self.batch_size = batch_size
        self.net = nn.Sequential(
            nn.Linear(batch_size * in_features, hidden), *_mlp_block(hidden, num_deep, dropout), nn.Linear(hidden, 1)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if tuple(features.shape) != (self.batch_size, self.in_features):
            raise ValueError(
                f"FlatBatchBiasCritic takes exactly ({self.batch_size}, {self.in_features}) features, got "
                f"{tuple(features.shape)}."
            )
        return self.net(features.reshape(1, -1)).reshape(())


class AttributeAdversary(nn.Module):
    """Per-sample adversary predicting the protected attribute from a representation.

    Args:
        in_features: size of the representation.
        out_features: 1 (binary attribute, a logit) or the number of groups (logits for cross-entropy).
        hidden: widths of the hidden layers (Zhang et al.'s CXR adversary: ``(512,)``); empty for a linear probe.
        dropout: dropout after every hidden layer.
        grad_reversal: if not ``None``, a :class:`GradientReversal` with this scale is applied to the input, so a
            single optimiser trains the adversary and pushes the features the other way.
        input_activation: apply a ReLU to the input first (the reference adversary reads the ReLU'd logits).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int = 1,
        hidden: Sequence[int] = (512,),
        dropout: float = 0.0,
        grad_reversal: float | None = None,
        input_activation: bool = False,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1 or any(h < 1 for h in hidden):
            raise ValueError("in_features, out_features and hidden widths must be positive.")
        # reversal and input activation hold no parameters and sit outside ``net``, so state-dict keys do not
        # depend on them (a checkpoint trained behind a reversal loads into a plain adversary)
        self.reversal: nn.Module = GradientReversal(grad_reversal) if grad_reversal is not None else nn.Identity()
        self.input_activation: nn.Module = nn.ReLU() if input_activation else nn.Identity()
        layers: list[nn.Module] = []
        c = in_features
        for h in hidden:
            layers += [nn.Linear(c, int(h)), nn.ReLU(), nn.Dropout(dropout)]
            c = int(h)
        layers.append(nn.Linear(c, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(self.input_activation(self.reversal(features.reshape(features.shape[0], -1))))
