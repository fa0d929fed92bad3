# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Fairness audit of saved predictions: the library behind ``tools/audit.py``."""

from __future__ import annotations

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
from .counterfactual import (
    AttributeNeutralised,
    CounterfactualAudit,
    fit_generator,
    load_classifier,
    score_classifier,
    stack_images,
)
