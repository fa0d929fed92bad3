# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The shape every fitted post-processor shares: ``predict(probs, groups)``, a plain state dict and a repr.

A post-processor maps positive-class probabilities and group codes to hard labels with a rule fitted on validation
data. Its settings are its constructor arguments, so the state dict is those arguments as plain values and tensors
(``torch.load(..., weights_only=True)`` reads it back) and ``from_state_dict`` rebuilds it.

Group codes seen when fitting are stored; a known (non-negative) code that was not seen is an error unless the
subclass's ``unseen_groups`` fallback is chosen. A negative (unknown) code that was not seen is not a group (the
``"exclude"`` policy of :class:`~monai_fair.metrics.FairnessSpec`): it always takes the fallback rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import torch

__all__ = ["Postprocessor"]


class Postprocessor:
    """Base class of the fitted post-processors.

    Subclasses list their constructor arguments in ``_fields`` (name → kind: ``"float"``, ``"int"``, ``"str"``,
    ``"codes"``, ``"floats"`` or ``"seed"``) and implement :meth:`predict`.

    Args:
        group_codes: the group codes seen when fitting.
        unseen_groups: ``"error"`` or the subclass's fallback for a known code not seen when fitting.
    """

    _fields: ClassVar[dict[str, str]] = {}
    _fallbacks: ClassVar[tuple[str, ...]] = ()

    def __init__(self, group_codes: Iterable[int], unseen_groups: str = "error") -> None:
        allowed = ("error",) + self._fallbacks
        if unseen_groups not in allowed:
            raise ValueError(f"unseen_groups must be one of {allowed}, got {unseen_groups!r}.")
        self.group_codes = [int(c) for c in group_codes]
        self.unseen_groups = unseen_groups

    def predict(self, probs: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """Hard 0/1 labels (long tensor on ``probs``' device) for positive-class probabilities ``probs``."""
        raise NotImplementedError(f"{type(self).__name__} must implement predict().")

    # --- shared input handling -----------------------------------------------------------------------------------
    @staticmethod
    def _inputs(values: torch.Tensor, groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values = torch.as_tensor(values).reshape(-1)
        groups = torch.as_tensor(groups, device=values.device).reshape(-1).long()
        if values.numel() != groups.numel():
            raise ValueError(f"inputs and groups differ in length: {values.numel()} vs {groups.numel()}.")
        return values, groups

    def _group_index(self, groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Position of each sample's code in ``group_codes`` (0 where not seen) and the mask of seen codes.

        Raises:
            ValueError: a known code not seen when fitting, with ``unseen_groups="error"``.
        """
        codes = torch.as_tensor(self.group_codes, dtype=torch.long, device=groups.device)
        match = groups.reshape(-1, 1) == codes.reshape(1, -1)
        seen = match.any(1)
        if self.unseen_groups == "error" and not bool((seen | (groups < 0)).all()):
            unseen = torch.unique(groups[~seen & (groups >= 0)]).tolist()
            raise ValueError(f"group codes {unseen} were not seen when fitting (fitted on {self.group_codes}).")
        return match.to(torch.long).argmax(1), seen

    # --- state ---------------------------------------------------------------------------------------------------
    def _arguments(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._fields}

    def state_dict(self) -> dict[str, Any]:
        """Plain values and tensors only, so ``torch.load(..., weights_only=True)`` reads it back."""
        out: dict[str, Any] = {}
        for name, kind in self._fields.items():
            v = getattr(self, name)
            if kind == "float":
                out[name] = torch.tensor(float(v), dtype=torch.float64)
            elif kind == "floats":
                out[name] = torch.as_tensor(v, dtype=torch.float64).clone()
            elif kind == "codes":
                out[name] = torch.tensor(list(v), dtype=torch.long)
            elif kind == "seed":
                out[name] = -1 if v is None else int(v)
            else:
                out[name] = v
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Re-initialise from :meth:`state_dict`'s output."""
        kwargs: dict[str, Any] = {}
        for name, kind in self._fields.items():
            v = state[name]
            if kind == "float":
                kwargs[name] = float(v)
            elif kind in ("floats", "codes"):
                kwargs[name] = torch.as_tensor(v).tolist()
            elif kind == "seed":
                kwargs[name] = None if int(v) < 0 else int(v)
            elif kind == "int":
                kwargs[name] = int(v)
            else:
                kwargs[name] = str(v)
        self.__init__(**kwargs)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> Postprocessor:
        """A post-processor rebuilt from :meth:`state_dict`'s output."""
        obj = cls.__new__(cls)
        obj.load_state_dict(state)
        return obj

    def __repr__(self) -> str:
        parts = []
        for name, kind in self._fields.items():
            v = getattr(self, name)
            if kind == "float":
                parts.append(f"{name}={v:.4f}")
            elif kind == "floats":
                parts.append(f"{name}={torch.as_tensor(v).tolist()}")
            else:
                parts.append(f"{name}={v!r}")
        return f"{type(self).__name__}({', '.join(parts)})"
