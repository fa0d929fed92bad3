# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Locate the bundle whose config is being resolved, so bundle paths work from any working directory."""

from __future__ import annotations

import inspect
import os

__all__ = ["current_bundle_root"]


def current_bundle_root(default: str = ".") -> str:
    """Return the root folder of the ``ConfigWorkflow`` currently resolving a config.

    MONAI does not set ``bundle_root``; ``"."`` would resolve to the working directory. Walking the call stack
    finds the running workflow, whose ``config_root_path`` is ``<bundle>/configs``.

    Args:
        default: returned when no ``ConfigWorkflow`` is on the stack (e.g. when a config is parsed directly).
    """
    from monai.bundle import ConfigWorkflow

    for info in inspect.stack(context=0):
        wf = info.frame.f_locals.get("self")
        if isinstance(wf, ConfigWorkflow):
            root = wf.config_root_path
            return os.path.abspath(str(root.parent if root.name == "configs" else root))
    return default
