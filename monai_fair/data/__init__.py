# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Manifest builders, patient-level splits and study sampling, demo-dataset generators."""

from __future__ import annotations

from .codes import DEFAULT_AGE_BINS, SEX_CODES, SEX_NAMES, UNKNOWN, age_group_names, encode_age_group, encode_sex, invert
from .privacy import hash_patient_id
