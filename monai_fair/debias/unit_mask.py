# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Masking of individual units (channel, spatial position) of the outputs of chosen layers of any network.

A *unit* is one element of the per-sample output of a prunable layer: ``(c, h, w)`` of a 2D conv output,
``(c, d, h, w)`` in 3D, ``(f,)`` of a linear layer. Each prunable layer is replaced by a :class:`UnitMaskedLayer`
that holds a boolean mask as a buffer and returns ``layer(x) * mask``. Because the mask is a buffer:

* it lives on the model's device and moves with ``.to()``;
* it is part of ``state_dict()``, so a debiased model saved with ``torch.save(model.state_dict())`` is reproduced
  exactly by :func:`load_unit_masked_state_dict` on a freshly built network (``weights_only=True`` loading works);
* the masked model is TorchScript-exportable (``torch.jit.script``) like the original network.

Units of all masked layers share one global flat index (layer offsets in network order), which is how pruning
selects units across layers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

__all__ = [
    "UnitMaskSet",
    "UnitMaskedLayer",
    "add_unit_masks",
    "count_prunable_units",
    "find_unit_masks",
    "layer_output_shapes",
    "load_unit_masked_state_dict",
    "prunable_layer_names",
]

MASK_BUFFER = "unit_mask"


class UnitMaskedLayer(nn.Module):
    """A layer whose output is multiplied by a boolean unit mask (``True`` = unit kept).

    Args:
        module: the wrapped layer (its parameters appear under ``module.`` in the state dict).
        mask_shape: per-sample output shape of ``module`` (without the batch dimension).
        device: device of the mask; defaults to the device of ``module``'s first parameter (CPU if none).
    """

    __jit_unused_properties__ = ["mask_shape"]

    def __init__(self, module: nn.Module, mask_shape: Sequence[int], device: torch.device | str | None = None) -> None:
        super().__init__()
        if device is None:
            p = next(module.parameters(), None)
            device = p.device if p is not None else torch.device("cpu")
        self.module = module
        # a leading batch axis of 1 makes the mask's rank that of the activation, so that
        # ``model.to(memory_format=torch.channels_last[_3d])`` converts it together with the rest of the network
        shape = (1,) + tuple(int(s) for s in mask_shape)
        self.register_buffer(MASK_BUFFER, torch.ones(shape, dtype=torch.bool, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a bool mask keeps the output dtype (bf16 under autocast stays bf16)
        return self.module(x) * self.unit_mask

    @property
    def mask_shape(self) -> tuple[int, ...]:
        """Per-sample mask shape (the output shape without the batch dimension)."""
        return tuple(self.unit_mask.shape[1:])

    def extra_repr(self) -> str:
        return f"mask_shape={self.mask_shape}"


NORM_LAYER_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def _inside_wrapper(model: nn.Module, name: str) -> bool:
    parent = name.rsplit(".", 1)[0] if "." in name else ""
    return name.endswith(".module") and isinstance(model.get_submodule(parent), UnitMaskedLayer)


def prunable_layer_names(model: nn.Module) -> list[str]:
    """Names of the layers whose output elements are the prunable units of ``model``, in module order.

    One per convolution (1D/2D/3D, transposed included): the convolution itself, or the normalisation layer that
    directly follows it (the next leaf module in registration order, as in ``conv → BatchNorm → ReLU`` of VGG-BN and
    MONAI's ``Convolution`` with ``NDA`` ordering). Zeroing a unit must remove it: a zeroed convolution output fed
    into batch normalisation would come out as the constant ``β - γ·μ/σ`` instead of 0 (eval mode), so there the
    normalised output is masked. A layer already wrapped by :class:`UnitMaskedLayer` is reported by the wrapper's name.
    """
    leaves = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, UnitMaskedLayer) or (len(list(module.children())) == 0 and name)
    ]
    names = []
    for i, (name, module) in enumerate(leaves):
        if isinstance(module, UnitMaskedLayer):
            names.append(name)
            continue
        if not isinstance(module, nn.modules.conv._ConvNd) or _inside_wrapper(model, name):
            continue
        nxt = leaves[i + 1][1] if i + 1 < len(leaves) else None
        if isinstance(nxt, UnitMaskedLayer) and isinstance(nxt.module, NORM_LAYER_TYPES):
            continue  # its normalisation is already wrapped, and reported by the wrapper's name
        names.append(leaves[i + 1][0] if isinstance(nxt, NORM_LAYER_TYPES) else name)
    return names


def _check_layer_names(model: nn.Module, layers: Sequence[str]) -> None:
    if len(layers) == 0:
        raise ValueError("no prunable layer given (the model has no convolution layer and layers=None?).")
    if len(set(layers)) != len(layers):
        raise ValueError(f"duplicate layer names in {list(layers)}.")
    for name in layers:
        if name == "":
            raise ValueError("the model itself cannot be a prunable layer; name a submodule.")
        try:
            model.get_submodule(name)
        except AttributeError as e:
            raise ValueError(f"the model has no submodule named {name!r}.") from e
    for a in layers:
        for b in layers:
            if a != b and b.startswith(a + "."):
                raise ValueError(f"prunable layers must not be nested: {b!r} is inside {a!r}.")


@torch.no_grad()
def layer_output_shapes(
    model: nn.Module, layers: Sequence[str], example_input: torch.Tensor
) -> dict[str, tuple[int, ...]]:
    """Per-sample output shapes of ``layers`` from one forward pass of ``example_input`` (in eval mode).

    Works on the ``meta`` device (model and input both on ``meta``), which gives the shapes of large networks at
    full resolution without computing anything.

    Args:
        model: the network.
        layers: submodule names.
        example_input: a batch at the validation input size (one sample is enough).

    Raises:
        ValueError: unknown layer name, or a layer that the forward pass did not call.
    """
    _check_layer_names(model, layers)
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name in layers:

        def hook(module, inputs, output, name=name):
            if not isinstance(output, torch.Tensor):
                raise ValueError(f"layer {name!r} does not return a single tensor; it cannot be unit-masked.")
            shapes[name] = tuple(output.shape[1:])

        handles.append(model.get_submodule(name).register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        model(example_input)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    missing = [n for n in layers if n not in shapes]
    if missing:
        raise ValueError(f"layers {missing} were not called by the forward pass.")
    return shapes


def count_prunable_units(model: nn.Module, example_input: torch.Tensor, layers: Sequence[str] | None = None) -> int:
    """Number of units of ``layers`` (default: every convolution) at the size of ``example_input``."""
    layers = prunable_layer_names(model) if layers is None else list(layers)
    shapes = layer_output_shapes(model, layers, example_input)
    return sum(int(torch.Size(s).numel()) for s in shapes.values())


class UnitMaskSet:
    """The masked layers of one model, with a global flat unit index (layer offsets in the given order).

    Args:
        model: a model whose ``names`` submodules are :class:`UnitMaskedLayer`.
        names: names of the masked layers, in flat-index order.
    """

    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        self.names = list(names)
        self.layers: list[UnitMaskedLayer] = []
        for n in self.names:
            m = model.get_submodule(n)
            if not isinstance(m, UnitMaskedLayer):
                raise TypeError(f"submodule {n!r} is a {type(m).__name__}, not a UnitMaskedLayer.")
            self.layers.append(m)
        sizes = [int(m.unit_mask.numel()) for m in self.layers]
        self.offsets = [0]
        for s in sizes:
            self.offsets.append(self.offsets[-1] + s)

    @property
    def n_units(self) -> int:
        """Total number of units."""
        return self.offsets[-1]

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        """Per-layer mask shapes."""
        return [m.mask_shape for m in self.layers]

    @property
    def device(self) -> torch.device:
        return self.layers[0].unit_mask.device

    def flat_mask(self) -> torch.Tensor:
        """All masks as one flat bool tensor (``True`` = kept) on the masks' device."""
        return torch.cat([m.unit_mask.reshape(-1) for m in self.layers])

    def n_pruned(self) -> int:
        """Number of masked-out units."""
        return self.n_units - int(sum(int(m.unit_mask.sum()) for m in self.layers))

    def split(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer views (mask-shaped) of a flat per-unit tensor of length :attr:`n_units`."""
        if flat.shape != (self.n_units,):
            raise ValueError(f"expected a flat tensor of {self.n_units} units, got shape {tuple(flat.shape)}.")
        return [flat[a:b].view(s) for a, b, s in zip(self.offsets[:-1], self.offsets[1:], self.shapes)]

    @torch.no_grad()
    def prune(self, flat_index: torch.Tensor) -> None:
        """Mask out the units with the given global flat indices.

        Raises:
            IndexError: an index outside ``[0, n_units)``.
        """
        idx = torch.as_tensor(flat_index, device=self.device).reshape(-1).long()
        if idx.numel() == 0:
            return
        if int(idx.min()) < 0 or int(idx.max()) >= self.n_units:
            raise IndexError(f"unit indices must lie in [0, {self.n_units}), got [{int(idx.min())}, {int(idx.max())}].")
        for m, a, b in zip(self.layers, self.offsets[:-1], self.offsets[1:]):
            sel = idx[(idx >= a) & (idx < b)] - a
            if sel.numel():
                # unravel keeps this independent of the mask's memory format
                m.unit_mask[0][torch.unravel_index(sel, m.mask_shape)] = False

    @torch.no_grad()
    def reset(self) -> None:
        """Unmask every unit."""
        for m in self.layers:
            m.unit_mask.fill_(True)

    def state(self) -> dict[str, torch.Tensor]:
        """A copy of every mask (shape ``(1, *mask_shape)``), keyed by layer name."""
        return {n: m.unit_mask.detach().clone() for n, m in zip(self.names, self.layers)}

    @torch.no_grad()
    def load_state(self, state: Mapping[str, torch.Tensor]) -> None:
        """Set the masks from :meth:`state` output (same layer names and shapes)."""
        if set(state) != set(self.names):
            raise ValueError(f"mask state has layers {sorted(state)}, expected {sorted(self.names)}.")
        for n, m in zip(self.names, self.layers):
            m.unit_mask.copy_(torch.as_tensor(state[n]).to(m.unit_mask.device, torch.bool))


def add_unit_masks(
    model: nn.Module,
    layers: Sequence[str] | None = None,
    example_input: torch.Tensor | None = None,
    shapes: Mapping[str, Sequence[int]] | None = None,
    device: torch.device | str | None = None,
) -> UnitMaskSet:
    """Replace ``layers`` of ``model`` (in place) by :class:`UnitMaskedLayer` wrappers with all-``True`` masks.

    Layers that already are wrappers are kept with their current masks (so pruning can continue on a pruned
    model).

    Args:
        model: the network, modified in place.
        layers: submodule names; default every convolution (:func:`prunable_layer_names`).
        example_input: a batch at the validation input size, used to infer the output shapes (one forward).
        shapes: per-layer per-sample output shapes, instead of ``example_input``.
        device: device of the masks; default the device of each wrapped layer.

    Returns:
        the :class:`UnitMaskSet` of the wrapped layers, in the order of ``layers``.

    Raises:
        ValueError: unknown or nested layer names, or neither ``example_input`` nor ``shapes`` given.
    """
    layers = prunable_layer_names(model) if layers is None else list(layers)
    _check_layer_names(model, layers)
    todo = [n for n in layers if not isinstance(model.get_submodule(n), UnitMaskedLayer)]
    if todo:
        if shapes is None:
            if example_input is None:
                raise ValueError("add_unit_masks needs example_input (or shapes) to know the layer output shapes.")
            shapes = layer_output_shapes(model, todo, example_input)
        for name in todo:
            if name not in shapes:
                raise ValueError(f"no output shape given for layer {name!r}.")
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            layer = getattr(parent, child)
            setattr(parent, child, UnitMaskedLayer(layer, shapes[name], device=device))
    return UnitMaskSet(model, layers)


def find_unit_masks(model: nn.Module) -> UnitMaskSet | None:
    """The :class:`UnitMaskSet` of every wrapper in ``model`` (module order), or ``None`` if there is none."""
    names = [n for n, m in model.named_modules() if isinstance(m, UnitMaskedLayer)]
    return UnitMaskSet(model, names) if names else None


def load_unit_masked_state_dict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], strict: bool = True
) -> UnitMaskSet | None:
    """Re-apply the unit-mask wrappers recorded in ``state_dict`` to a fresh ``model``, then load it.

    The layer names and mask shapes are read from the ``<layer>.unit_mask`` entries, so a state dict saved from a
    pruned model (``torch.save(pruned.state_dict(), f)``, loaded with ``torch.load(f, weights_only=True)``) and a
    freshly built network of the same architecture reproduce the pruned model exactly.

    Args:
        model: a freshly built network (modified in place).
        state_dict: the saved state dict.
        strict: passed to ``load_state_dict``.

    Returns:
        the restored :class:`UnitMaskSet`, or ``None`` when the state dict holds no mask (plain load).
    """
    suffix = "." + MASK_BUFFER
    masks = {k[: -len(suffix)]: v for k, v in state_dict.items() if k.endswith(suffix)}
    if masks:
        mask_set = add_unit_masks(model, list(masks), shapes={k: tuple(v.shape[1:]) for k, v in masks.items()})
    else:
        mask_set = None
    model.load_state_dict(state_dict, strict=strict)
    return mask_set
