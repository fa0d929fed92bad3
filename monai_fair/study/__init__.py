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
    "conv_memory_format",
    "inference_data",
    "is_main_process",
    "load_debiased",
    "load_seed_results",
    "parse_bundle_command",
    "prepare_network",
    "publish_model",
    "resolve_device",
    "resolve_seed_workers",
    "run_seed",
    "save_debiased",
    "save_seed_results",
    "write_debiasing_report",
    "EmbeddingDebiasStudy",
    "EmbeddingStudyReport",
    "load_embedding_splits",
    "ct_embedding_splits",
    "debias_ct_folder",
    "debias_embedding_table",
    "embedding_inference",
    "embedding_study_tables",
    "gather_seed_results",
    "publish_debiasers",
]

from .cross_group import (  # noqa: E402  (appended after __all__ so parallel branches merge cleanly)
    CrossGroupEvaluation,
    CrossGroupLoop,
    CrossGroupReport,
    check_cross_group_settings,
    collect_cross_group_outputs,
    probe_group,
)

__all__ += [
    "CrossGroupEvaluation",
    "CrossGroupLoop",
    "CrossGroupReport",
    "check_cross_group_settings",
    "collect_cross_group_outputs",
    "probe_group",
]
from .adversarial import (
    ADVERSARIAL_STUDY_VARIANTS,
    AdversarialFairnessStudy,
    AdversarialStudyReport,
    critic_batches,
    isic_adversarial_study_data,
    publish_adversarial_model,
    validate_adversarial_config,
)

__all__ += [
    "ADVERSARIAL_STUDY_VARIANTS",
    "AdversarialFairnessStudy",
    "AdversarialStudyReport",
    "critic_batches",
    "isic_adversarial_study_data",
    "publish_adversarial_model",
    "validate_adversarial_config",
]

__all__ += [
    "AuditData",
    "CounterfactualAuditReport",
    "CounterfactualAuditStudy",
    "audit_test_table",
    "check_audit_inputs",
    "check_audit_settings",
    "planted_labels",
    "train_classifier",
]
