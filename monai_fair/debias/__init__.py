# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Debiasing: post-processing, intra-processing and in-training methods sharing one interface."""

from __future__ import annotations

from .base import (
    BinaryEvaluation,
    DebiasResult,
    Debiaser,
    Trajectory,
    collect_outputs,
    evaluate_binary,
    positive_probability,
)
