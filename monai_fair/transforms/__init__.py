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
