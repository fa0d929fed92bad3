# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Fairness metrics: pure-torch functional core, cumulative (DDP-safe) metric classes."""

from __future__ import annotations

from .auc import compute_group_roc_auc
from .bias import compute_binary_bias
from .bootstrap import bootstrap_intervals, bootstrap_replicates, bootstrap_weights, make_generator, percentile_interval
from .calibration import compute_group_ece
from .classification import PRF_KEYS, compute_group_weighted_prf, compute_weighted_prf, pearson_r
from .cumulative import FairnessCumulative, as_group_batch, as_prediction_batch
from .evaluation import (
    BIAS_KINDS,
    UNKNOWN_POLICIES,
    BinaryFairnessEvaluation,
    better_than_chance,
    evaluate_binary_fairness,
    group_flag,
    summarize_binary_fairness,
)
from .fairness_table import FairnessTable, compute_fairness_table, resolve_group_names
from .gaps import (
    GAP_KEYS,
    HIGHER_IS_BETTER_SUMMARIES,
    SUMMARY_KEYS,
    compute_gap_summary,
    compute_signed_gaps,
    max_min_gap,
    signed_gap,
    worst_group,
)
from .group_stats import GROUP_STAT_KEYS, compute_group_stats
from .grouped_scores import GroupedScores, build_grouped_scores
from .objective import constrained_objective
from .probes import PROBE_KINDS, make_probe, probe_attributes, probe_split, probe_task, weighted_roc_auc
from .proxies import compute_bias_proxy, proxy_weights, soft_decisions, youden_weights
from .spec import INTERSECTION_RADIX, INTERSECTION_SEPARATOR, FairnessSpec, combine_group_codes
from .thresholds import balanced_accuracy_at_thresholds, best_balanced_accuracy_threshold, observed_thresholds
from .underdiagnosis import best_f1_threshold, compute_underdiagnosis
from .weighted_table import PER_GROUP_KEYS, compute_weighted_table

__all__ = [
    "as_group_batch",
    "as_prediction_batch",
    "balanced_accuracy_at_thresholds",
    "best_balanced_accuracy_threshold",
    "best_f1_threshold",
    "better_than_chance",
    "BIAS_KINDS",
    "BinaryFairnessEvaluation",
    "bootstrap_intervals",
    "bootstrap_replicates",
    "bootstrap_weights",
    "build_grouped_scores",
    "combine_group_codes",
    "compute_bias_proxy",
    "compute_binary_bias",
    "compute_fairness_table",
    "compute_gap_summary",
    "compute_group_ece",
    "compute_group_roc_auc",
    "compute_group_stats",
    "compute_group_weighted_prf",
    "compute_signed_gaps",
    "compute_underdiagnosis",
    "compute_weighted_prf",
    "compute_weighted_table",
    "constrained_objective",
    "evaluate_binary_fairness",
    "FairnessCumulative",
    "FairnessSpec",
    "FairnessTable",
    "GAP_KEYS",
    "group_flag",
    "GROUP_STAT_KEYS",
    "GroupedScores",
    "HIGHER_IS_BETTER_SUMMARIES",
    "INTERSECTION_RADIX",
    "INTERSECTION_SEPARATOR",
    "make_generator",
    "make_probe",
    "max_min_gap",
    "observed_thresholds",
    "pearson_r",
    "PER_GROUP_KEYS",
    "percentile_interval",
    "PRF_KEYS",
    "probe_attributes",
    "PROBE_KINDS",
    "probe_split",
    "probe_task",
    "proxy_weights",
    "resolve_group_names",
    "signed_gap",
    "soft_decisions",
    "summarize_binary_fairness",
    "SUMMARY_KEYS",
    "UNKNOWN_POLICIES",
    "weighted_roc_auc",
    "worst_group",
    "youden_weights",
]
