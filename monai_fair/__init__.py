# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""monai_fair: measure, monitor, mitigate and audit demographic bias in MONAI workflows."""

from __future__ import annotations

__version__ = "0.1.0"

from .bundle_root import current_bundle_root
from .per_seed import current_config_parser, run_per_seed

# import the subpackages so that ``"$import monai_fair"`` makes every class findable by its short ``_target_`` name
from . import data, debias, handlers, metrics, networks, report, transforms  # noqa: E402  isort: skip

__all__ = ["__version__", "current_bundle_root", "current_config_parser", "run_per_seed"]
