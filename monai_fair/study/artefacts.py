# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Save and reload what a study produces: debiased models, masks and post-processors, and per-seed results.

Files of one method in a seed's folder (all loadable with ``torch.load(..., weights_only=True)``):

* ``<method>.json``: ``{"method", "threshold", "kind": "model" | "postprocessor", "postprocessor_class"}``;
* ``<method>.pt``: the debiased model's state dict (unit masks of pruning included), or
  ``<method>_postprocessor.pt``: the post-processor's ``state_dict()``;
* ``<method>_state.pt``: extra state of the result (e.g. the pruning mask), when there is any.

``results.json`` holds the seed's records and trajectories (``results_reloaded.json`` after a re-evaluation).
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["load_debiased", "load_seed_results", "save_debiased", "save_seed_results"]


def save_debiased(folder: str | os.PathLike, method: str, result: Any) -> dict[str, Any]:
    """Write what :func:`load_debiased` needs to rebuild a ``DebiasResult`` exactly.

    Args:
        folder: the seed's output folder (created if needed).
        method: method name (file stem).
        result: a :class:`~monai_fair.debias.DebiasResult`.

    Returns:
        the ``<method>.json`` record.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {"method": method, "threshold": float(result.threshold), "kind": "model"}
    if result.postprocessor is not None:
        pp = result.postprocessor
        info["kind"] = "postprocessor"
        info["postprocessor_class"] = f"{type(pp).__module__}:{type(pp).__qualname__}"
        torch.save(pp.state_dict(), folder / f"{method}_postprocessor.pt")
    else:
        torch.save(result.model.state_dict(), folder / f"{method}.pt")
    (folder / f"{method}.json").write_text(json.dumps(info, indent=2))
    if result.state:
        torch.save(result.state, folder / f"{method}_state.pt")
    return info


def load_debiased(model: torch.nn.Module, folder: str | os.PathLike, method: str) -> tuple[Any, float]:
    """Rebuild a debiased model or post-processor saved by :func:`save_debiased`.

    Args:
        model: a freshly built network of the study's architecture with the standard weights loaded (modified in
            place for intra-processing methods; pruning's unit masks are re-applied).
        folder: the seed's output folder.
        method: method name.

    Returns:
        ``(model_or_postprocessor, threshold)``.

    Raises:
        FileNotFoundError: nothing saved for ``method`` in ``folder``.
    """
    from monai_fair.debias.unit_mask import load_unit_masked_state_dict

    folder = Path(folder)
    info_path = folder / f"{method}.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"no saved result for method {method!r} in {folder}.")
    info = json.loads(info_path.read_text())
    if info["kind"] == "postprocessor":
        module, qualname = info["postprocessor_class"].split(":")
        cls = getattr(importlib.import_module(module), qualname)
        state = torch.load(folder / f"{method}_postprocessor.pt", map_location="cpu", weights_only=True)
        return cls.from_state_dict(state), float(info["threshold"])
    state = torch.load(folder / f"{method}.pt", map_location="cpu", weights_only=True)
    load_unit_masked_state_dict(model, state)
    return model, float(info["threshold"])


def save_seed_results(folder: str | os.PathLike, results: dict[str, Any], name: str = "results.json") -> Path:
    """Write a seed's results (records, trajectories, settings) as JSON; returns the path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(results, indent=2, default=float))
    return path


def load_seed_results(folder: str | os.PathLike, name: str = "results.json") -> dict[str, Any]:
    """Read what :func:`save_seed_results` wrote (e.g. to rebuild a report without re-running the seeds)."""
    path = Path(folder) / name
    if not path.is_file():
        raise FileNotFoundError(f"no seed results {name!r} in {folder}.")
    return json.loads(path.read_text())
