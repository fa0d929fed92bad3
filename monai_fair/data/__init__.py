# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Manifest builders, patient-level splits and study sampling, demo-dataset generators."""

from __future__ import annotations

from .codes import DEFAULT_AGE_BINS, SEX_CODES, SEX_NAMES, UNKNOWN, age_group_names, encode_age_group, encode_sex, invert
from .privacy import hash_patient_id
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
from .dicom_series import DicomSeriesReader, order_slices, slice_normal, slice_positions
from .embeddings import NLST_SEX_MAP, EmbeddingDataset, EmbeddingTable, load_embedding_table, write_embedding_table
from .nifti_manifest import build_nifti_manifest, nifti_id
from .patient_age import (
    AgeResult,
    age_from_dates,
    parse_dicom_date,
    parse_patient_age,
    parse_patient_age_with_reason,
    resolve_patient_age,
)
