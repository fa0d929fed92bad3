# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Generators of small synthetic datasets written in each real dataset's own on-disk layout.

Every bundle defaults to one of these, so the exact ingestion code that reads the real data runs on the demo too.
Each generator plants a documented, tunable bias, is deterministic per seed, and caches its output.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["DEMO_DATASETS", "default_demo_root", "cached_demo_dir", "mark_complete", "make_demo_dataset"]

# name -> "module:function"; each function has the signature f(root: str | Path, seed: int = 0, **params) -> Path
DEMO_DATASETS: dict[str, str] = {
    "mimic_cxr": "monai_fair.data.demo.mimic_cxr:make_mimic_cxr_demo",
    "chexpert": "monai_fair.data.demo.chexpert:make_chexpert_demo",
    "isic": "monai_fair.data.demo.isic:make_isic_demo",
    "ct": "monai_fair.data.demo.ct:make_ct_demo",
    "embeddings": "monai_fair.data.demo.embeddings:make_embeddings_demo",
}


def default_demo_root() -> Path:
    """Where demo datasets are cached: ``$MONAI_FAIR_DEMO_DIR``, else ``~/.cache/monai_fair/demo``."""
    return Path(os.environ.get("MONAI_FAIR_DEMO_DIR", Path.home() / ".cache" / "monai_fair" / "demo"))


def cached_demo_dir(root: str | Path | None, name: str, seed: int, params: dict[str, Any]) -> tuple[Path, bool]:
    """Folder of a demo dataset keyed by its name, seed and parameters, and whether it is already complete.

    A generator writes ``DEMO_COMPLETE.json`` last; a folder without it (an interrupted run) is regenerated.
    """
    key = hashlib.sha256(json.dumps({"seed": seed, **params}, sort_keys=True, default=str).encode()).hexdigest()[:10]
    out = Path(root) if root is not None else default_demo_root() / f"{name}-seed{seed}-{key}"
    return out, (out / "DEMO_COMPLETE.json").is_file()


def mark_complete(folder: Path, info: dict[str, Any]) -> None:
    """Write the completion marker with the generation parameters (also documents the planted bias)."""
    (folder / "DEMO_COMPLETE.json").write_text(json.dumps(info, indent=2, sort_keys=True, default=str))


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """Hold an exclusive lock on ``lock_path`` (POSIX ``flock``; a no-op where it is unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def make_demo_dataset(name: str, root: str | Path | None = None, seed: int = 0, **params: Any) -> Path:
    """Make (or reuse) the demo dataset ``name``; see :data:`DEMO_DATASETS`.

    Generation holds a lock, so processes started together (e.g. the ranks of a ``torchrun`` job) generate the data
    once and the others wait for it and reuse it instead of reading a half-written folder.
    """
    if name not in DEMO_DATASETS:
        raise ValueError(f"unknown demo dataset {name!r}; choose one of {sorted(DEMO_DATASETS)}.")
    module, func = DEMO_DATASETS[name].split(":")
    import importlib

    fn: Callable[..., Path] = getattr(importlib.import_module(module), func)
    folder = Path(root).parent if root is not None else default_demo_root()
    with _exclusive(folder / f".{name}-seed{seed}.lock"):
        return fn(root, seed=seed, **params)
