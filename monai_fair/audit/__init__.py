# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Fairness audit of saved predictions: the library behind ``tools/audit.py``."""

from __future__ import annotations

from .counterfactual import (
    AttributeNeutralised,
    CounterfactualAudit,
    fit_generator,
    load_classifier,
    score_classifier,
    stack_images,
)
from .evaluate import POOLED_KEYS, AuditResult, encode_group_columns, resolve_threshold, run_audit
from .inputs import AuditInputError, check_columns, encode_groups, load_audit_frame, parse_group_names, read_predictions
from .invariance import (
    INVARIANCE_TESTS,
    REGRESSORS,
    InvarianceTestResult,
    counterfactual_flip_test,
    crossfit_predictions,
    crt_test,
    demographic_parity_test,
    equal_opportunity_test,
    gcm_test,
    paired_t_test,
    run_invariance_tests,
)
from .outputs import BAR_METRICS, TABLE_METRICS, render_report, wide_tables, write_outputs
from .synthetic_scm import LINKS, SyntheticCounterfactualData, make_synthetic_scm

__all__ = [
    "AttributeNeutralised",
    "AuditInputError",
    "AuditResult",
    "BAR_METRICS",
    "check_columns",
    "counterfactual_flip_test",
    "CounterfactualAudit",
    "crossfit_predictions",
    "crt_test",
    "demographic_parity_test",
    "encode_group_columns",
    "encode_groups",
    "equal_opportunity_test",
    "fit_generator",
    "gcm_test",
    "INVARIANCE_TESTS",
    "InvarianceTestResult",
    "LINKS",
    "load_audit_frame",
    "load_classifier",
    "make_synthetic_scm",
    "paired_t_test",
    "parse_group_names",
    "POOLED_KEYS",
    "read_predictions",
    "REGRESSORS",
    "render_report",
    "resolve_threshold",
    "run_audit",
    "run_invariance_tests",
    "score_classifier",
    "stack_images",
    "SyntheticCounterfactualData",
    "TABLE_METRICS",
    "wide_tables",
    "write_outputs",
]
