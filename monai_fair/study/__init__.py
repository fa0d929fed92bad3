# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""What every study bundle shares: run a seed from a fresh config, loop over seeds, save and reload artefacts,
write the report (``docs/study.md``)."""

from __future__ import annotations

from .artefacts import load_debiased, load_seed_results, save_debiased, save_seed_results
from .command_line import BundleCommand, parse_bundle_command
from .counterfactual_audit import (
    AuditData,
    CounterfactualAuditReport,
    CounterfactualAuditStudy,
    audit_test_table,
    check_audit_inputs,
    check_audit_settings,
    planted_labels,
    train_classifier,
)
from .data_source import DATASET_KINDS, DataSource, StudySplits
from .debiasing import DebiasingStudy, accuracy_bounds
from .errors import BundleConfigError, StudyRunError, cause_line, install_cause_hook, root_cause
from .inference import IMAGE_SUFFIXES, audit_predictions, inference_data, publish_model
from .report import StudyReport, collect_study_results, write_debiasing_report
from .runtime import is_main_process, prepare_network, resolve_device
from .seeds import SeedLoop, run_seed
from .validation import MISSING_PATIENT_POLICIES, accepted_arguments, validate_study_config

__all__ = [
    "BundleCommand",
    "BundleConfigError",
    "MISSING_PATIENT_POLICIES",
    "StudyRunError",
    "accepted_arguments",
    "cause_line",
    "install_cause_hook",
    "root_cause",
    "validate_study_config",
    "DATASET_KINDS",
    "DataSource",
    "DebiasingStudy",
    "IMAGE_SUFFIXES",
    "SeedLoop",
    "StudyReport",
    "StudySplits",
    "accuracy_bounds",
    "audit_predictions",
    "collect_study_results",
    "inference_data",
    "is_main_process",
    "load_debiased",
    "load_seed_results",
    "parse_bundle_command",
    "prepare_network",
    "publish_model",
    "resolve_device",
    "run_seed",
    "save_debiased",
    "save_seed_results",
    "write_debiasing_report",
    "AuditData",
    "CounterfactualAuditReport",
    "CounterfactualAuditStudy",
    "audit_test_table",
    "check_audit_inputs",
    "check_audit_settings",
    "planted_labels",
    "train_classifier",
]
