# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""monai_fair.transforms"""

from __future__ import annotations

from .batch_augment import BatchRandAffine, random_affine_matrices
from .cxr import CenterCropToSquared, CXRChannelsd, HistogramEqualized, cxr_preprocess_transforms, equalize_histogram
from .cxr_io import PIL_MODE_BITS, LoadCXRImaged, dicom_display_array, read_cxr_image
from .dicom_demographics import DicomDemographicsd, DicomDemographicsD, DicomDemographicsDict
from .ght import MET_CASE, OTSU_CASE, ght_scores, percentile_case, threshold_ght
from .gray_world import GrayWorld, GrayWorldd, gray_world
from .ita import (
    ITA_SCHEMES,
    SKIN_SAMPLERS,
    UNKNOWN_ITA_GROUP,
    OutsideLesionSampler,
    PatchSampler,
    SkinColourGate,
    SkinSample,
    SkinSampler,
    SkinToneITAd,
    as_rgb_uint8,
    compute_ita,
    ita_category,
    ita_from_lab,
    ita_group_names,
    load_rgb,
    make_skin_sampler,
    srgb_to_lab,
    trimmed_median,
)
from .ita_groups import ita_groups

__all__ = [
    "as_rgb_uint8",
    "BatchRandAffine",
    "CenterCropToSquared",
    "compute_ita",
    "cxr_preprocess_transforms",
    "CXRChannelsd",
    "dicom_display_array",
    "DicomDemographicsD",
    "DicomDemographicsd",
    "DicomDemographicsDict",
    "equalize_histogram",
    "ght_scores",
    "gray_world",
    "GrayWorld",
    "GrayWorldd",
    "HistogramEqualized",
    "ita_category",
    "ita_from_lab",
    "ita_group_names",
    "ita_groups",
    "ITA_SCHEMES",
    "load_rgb",
    "LoadCXRImaged",
    "make_skin_sampler",
    "MET_CASE",
    "OTSU_CASE",
    "OutsideLesionSampler",
    "PatchSampler",
    "percentile_case",
    "PIL_MODE_BITS",
    "random_affine_matrices",
    "read_cxr_image",
    "SKIN_SAMPLERS",
    "SkinColourGate",
    "SkinSample",
    "SkinSampler",
    "SkinToneITAd",
    "srgb_to_lab",
    "threshold_ght",
    "trimmed_median",
    "UNKNOWN_ITA_GROUP",
]
