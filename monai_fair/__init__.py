# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""monai_fair: measure, monitor, mitigate and audit demographic bias in MONAI workflows."""

from __future__ import annotations

__version__ = "0.1.0"

# import the subpackages so that ``"$import monai_fair"`` makes every class findable by its short ``_target_`` name
from . import audit, data, debias, handlers, metrics, networks, report, study, transforms  # noqa: E402  isort: skip
from .metrics import FairnessSpec  # noqa: E402

__all__ = ["FairnessSpec", "__version__"]
