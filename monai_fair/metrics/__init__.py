# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Fairness metrics: pure-torch functional core, cumulative (DDP-safe) metric classes."""

from __future__ import annotations

from .bias import BIAS_KINDS, compute_binary_bias
from .objective import constrained_objective
from .proxies import compute_bias_proxy, proxy_weights
from .thresholds import balanced_accuracy_at_thresholds, best_balanced_accuracy_threshold
