# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""monai_fair.handlers"""

from __future__ import annotations

from .critic_monitor import CriticFairnessMonitor
from .fairness_metric import (
    CONSOLE_METRICS,
    FAIRNESS_DETAILS,
    PRED_LABEL,
    FairnessDetails,
    GroupBufferMetric,
    GroupFairnessMetric,
    batch_group_codes,
    resolve_spec,
)
from .fairness_selection import FairnessObjectiveMetric, FairnessSummaryMetric, lower_is_better
from .tensorboard_fairness import FairnessTensorBoardHandler, fairness_markdown

__all__ = [
    "batch_group_codes",
    "CONSOLE_METRICS",
    "CriticFairnessMonitor",
    "FAIRNESS_DETAILS",
    "fairness_markdown",
    "FairnessDetails",
    "FairnessObjectiveMetric",
    "FairnessSummaryMetric",
    "FairnessTensorBoardHandler",
    "GroupBufferMetric",
    "GroupFairnessMetric",
    "lower_is_better",
    "PRED_LABEL",
    "resolve_spec",
]
