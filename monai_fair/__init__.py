# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""monai_fair: measure, monitor, mitigate and audit demographic bias in MONAI workflows."""

from __future__ import annotations

__version__ = "0.1.0"

from .bundle_root import current_bundle_root

__all__ = ["__version__", "current_bundle_root"]
