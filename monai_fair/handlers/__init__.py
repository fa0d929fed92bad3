# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""monai_fair.handlers"""

from __future__ import annotations

from .fairness_metric import (
    FAIRNESS_DETAILS,
    PRED_LABEL,
    FairnessDetails,
    GroupBufferMetric,
    GroupFairnessMetric,
    ci_flat_dict,
    group_batch_transform,
    select_flat_metrics,
)
from .fairness_selection import FairnessGapMetric, FairnessObjectiveMetric, WorstGroupMetric, lower_is_better
from .tensorboard_fairness import FairnessTensorBoardHandler, fairness_markdown
