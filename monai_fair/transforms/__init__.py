# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""monai_fair.transforms"""

from __future__ import annotations
from .dicom_demographics import DicomDemographicsd, DicomDemographicsD, DicomDemographicsDict
