# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""What every study bundle shares: run a seed from a fresh config, loop over seeds, save and reload artefacts,
write the report (``docs/study.md``)."""

from __future__ import annotations

from .adversarial import (
    ADVERSARIAL_STUDY_VARIANTS,
    CRITIC_EVAL_BATCHES,
    AdversarialFairnessStudy,
    AdversarialStudyReport,
    critic_batches,
    isic_adversarial_study_data,
    publish_adversarial_model,
    validate_adversarial_config,
)
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
from .cross_group import (
    CrossGroupEvaluation,
    CrossGroupLoop,
    CrossGroupReport,
    check_cross_group_settings,
    collect_cross_group_outputs,
    probe_group,
)
from .data_source import DATASET_KINDS, DataSource, SplitMapping, StudySplits
from .debiasing import DebiasingStudy, accuracy_bounds
from .embedding_debias import (
    EmbeddingDebiasStudy,
    EmbeddingStudyReport,
    ct_embedding_splits,
    debias_ct_folder,
    debias_embedding_table,
    embedding_inference,
    embedding_study_tables,
    gather_seed_results,
    load_embedding_splits,
    publish_debiasers,
)
from .errors import BundleConfigError, StudyRunError, cause_line, install_cause_hook, root_cause
from .inference import IMAGE_SUFFIXES, audit_predictions, inference_data, publish_model
from .report import StudyReport, collect_study_results, write_debiasing_report
from .runtime import conv_memory_format, is_main_process, prepare_network, resolve_device
from .seeds import SeedLoop, resolve_seed_workers, run_seed
from .validation import MISSING_PATIENT_POLICIES, accepted_arguments, validate_study_config

__all__ = [
    "accepted_arguments",
    "accuracy_bounds",
    "ADVERSARIAL_STUDY_VARIANTS",
    "AdversarialFairnessStudy",
    "AdversarialStudyReport",
    "audit_predictions",
    "audit_test_table",
    "AuditData",
    "BundleCommand",
    "BundleConfigError",
    "cause_line",
    "check_audit_inputs",
    "check_audit_settings",
    "check_cross_group_settings",
    "collect_cross_group_outputs",
    "collect_study_results",
    "conv_memory_format",
    "CounterfactualAuditReport",
    "CounterfactualAuditStudy",
    "critic_batches",
    "CRITIC_EVAL_BATCHES",
    "CrossGroupEvaluation",
    "CrossGroupLoop",
    "CrossGroupReport",
    "ct_embedding_splits",
    "DATASET_KINDS",
    "DataSource",
    "debias_ct_folder",
    "debias_embedding_table",
    "DebiasingStudy",
    "embedding_inference",
    "embedding_study_tables",
    "EmbeddingDebiasStudy",
    "EmbeddingStudyReport",
    "gather_seed_results",
    "IMAGE_SUFFIXES",
    "inference_data",
    "install_cause_hook",
    "is_main_process",
    "isic_adversarial_study_data",
    "load_debiased",
    "load_embedding_splits",
    "load_seed_results",
    "MISSING_PATIENT_POLICIES",
    "parse_bundle_command",
    "planted_labels",
    "prepare_network",
    "probe_group",
    "publish_adversarial_model",
    "publish_debiasers",
    "publish_model",
    "resolve_device",
    "resolve_seed_workers",
    "root_cause",
    "run_seed",
    "save_debiased",
    "save_seed_results",
    "SeedLoop",
    "SplitMapping",
    "StudyReport",
    "StudyRunError",
    "StudySplits",
    "train_classifier",
    "validate_adversarial_config",
    "validate_study_config",
    "write_debiasing_report",
]
