# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Manifest builders, patient-level splits and study sampling, demo-dataset generators."""

from __future__ import annotations

from .chexpert import (
    CHEXPERT_LABELS,
    CHEXPERT_RACE_RULES,
    apply_uncertainty_policy,
    binary_disease_task,
    build_chexpert_manifest,
    read_chexpert_demographics,
)
from .codes import (
    DEFAULT_AGE_BINS,
    SEX_CODES,
    SEX_NAMES,
    UNKNOWN,
    age_group_names,
    encode_age_group,
    encode_sex,
    invert,
)
from .colour import (
    ITA_SCHEMES,
    UNKNOWN_ITA_GROUP,
    gray_world,
    ita_category,
    ita_from_lab,
    ita_group_names,
    srgb_to_lab,
    trimmed_median,
)
from .ct_embeddings import CTEmbedder, default_ct_encoder
from .demo import DEMO_DATASETS, default_demo_root, make_demo_dataset
from .dicom_header import (
    DEMOGRAPHIC_KEYWORDS,
    PERSONAL_KEYWORDS,
    DicomDemographics,
    extract_dicom_demographics,
    normalize_ethnic_group,
    read_dicom_header,
    strip_personal_dataset,
    strip_personal_json,
)
from .dicom_scan import DicomScanResult, load_dicom_manifest, scan_dicom_folder
from .dicom_series import DicomSeriesReader, order_slices, slice_normal, slice_positions, spacing_problem
from .embeddings import NLST_SEX_MAP, EmbeddingDataset, EmbeddingTable, load_embedding_table, write_embedding_table
from .isic import (
    AGE_GROUP_60_NAMES,
    ISIC2017_DX,
    ISIC2018_DX,
    MALIGNANT_DX,
    build_isic2017_manifest,
    build_isic2018_manifest,
    join_ita,
    read_ham10000_metadata,
    read_isic2018_ground_truth,
)
from .manifest import (
    Manifest,
    SkipReport,
    code_maps_path,
    encode_categories,
    frame_to_data_dicts,
    group_by_substring,
    load_manifest,
    read_code_maps,
    read_manifest,
    write_manifest,
)
from .mimic_cxr import MIMIC_CXR_LABELS, MIMIC_RACE_GROUPS, MIMIC_RACE_RULES, build_mimic_cxr_manifest
from .nifti_manifest import build_nifti_manifest, nifti_id
from .nih import NIH_FINDINGS, NIH_LABELS, build_nih_manifest
from .patient_age import (
    AgeResult,
    age_from_dates,
    parse_dicom_date,
    parse_patient_age,
    parse_patient_age_with_reason,
    resolve_patient_age,
)
from .poisoning import flip_count, flip_group_labels
from .privacy import hash_patient_id
from .race_splits import TRAINING_SETS, cross_group_splits, cross_group_study_data
from .sampling import (
    balance_negatives,
    group_balanced_weights,
    joshi_race_splits,
    marcinkevics_split,
    marcinkevics_study_data,
    resolve_code,
    subsample_to_proportions,
)
from .splits import assert_no_patient_leakage, patient_level_split, patient_overlap, split_frames
from .stratified_batches import GroupStratifiedBatchSampler
