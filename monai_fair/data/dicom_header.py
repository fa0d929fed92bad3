# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""DICOM headers: demographics (sex, age, ethnic group, hashed patient) and removal of personal elements.

Works on both forms a header takes in a MONAI pipeline: a pydicom ``Dataset`` (e.g. a header-only read) and the
DICOM-JSON dict that ``PydicomReader(prune_metadata=False)`` puts in the image meta
(``meta["00100040"] == {"vr": "CS", "Value": ["F"]}``). Personal elements are names, IDs, dates, times, free
text, institution and device identifiers, instance UIDs and private tags (after the DICOM PS3.15 basic
de-identification profile); header values never appear in the reasons returned.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from .codes import DEFAULT_AGE_BINS, UNKNOWN, encode_age_group, encode_sex
from .patient_age import MAX_PLAUSIBLE_AGE, resolve_patient_age
from .privacy import hash_patient_id

__all__ = [
    "DEMOGRAPHIC_KEYWORDS",
    "PERSONAL_KEYWORDS",
    "PERSONAL_VRS",
    "DicomDemographics",
    "normalize_ethnic_group",
    "extract_dicom_demographics",
    "strip_personal_json",
    "strip_personal_dataset",
    "read_dicom_header",
]

# header fields read for demographics (also the `specific_tags` of header-only reads)
DEMOGRAPHIC_KEYWORDS: tuple[str, ...] = (
    "PatientSex",
    "PatientAge",
    "PatientBirthDate",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
    "EthnicGroup",
    "PatientID",
    "Modality",
)
_STUDY_DATE_KEYWORDS = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")

# tags that identify a person, a visit or a site, or carry free text, beyond what the VR rule below catches
# (after the DICOM PS3.15 basic de-identification profile). EthnicGroup is free text: it leaves as a code only.
PERSONAL_KEYWORDS: tuple[str, ...] = (
    "PatientID",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "IssuerOfPatientID",
    "AccessionNumber",
    "StudyID",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "InstitutionCodeSequence",
    "StationName",
    "StudyDescription",
    "SeriesDescription",
    "PerformedProcedureStepDescription",
    "PerformedProcedureStepID",
    "RequestedProcedureDescription",
    "RequestedProcedureID",
    "ScheduledProcedureStepDescription",
    "ScheduledProcedureStepID",
    "AdmissionID",
    "IssuerOfAdmissionID",
    "ServiceEpisodeID",
    "ServiceEpisodeDescription",
    "CurrentPatientLocation",
    "PatientInstitutionResidence",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "MilitaryRank",
    "BranchOfService",
    "MedicalRecordLocator",
    "Occupation",
    "PatientReligiousPreference",
    "ResponsibleOrganization",
    "CountryOfResidence",
    "RegionOfResidence",
    "PatientState",
    "PatientInsurancePlanCodeSequence",
    "ReferencedPatientSequence",
    "RequestAttributesSequence",
    "AdmittingDiagnosesDescription",
    "DerivationDescription",
    "FillerOrderNumberImagingServiceRequest",
    "PlacerOrderNumberImagingServiceRequest",
    "DeviceSerialNumber",
    "DetectorID",
    "ProtocolName",
    "ClinicalTrialSubjectID",
    "ClinicalTrialSubjectReadingID",
    "ClinicalTrialSiteID",
    "ClinicalTrialSiteName",
    "ClinicalTrialProtocolID",
    "ClinicalTrialTimePointID",
    "TextString",
    "EthnicGroup",
)
# value representations that are personal or free text wherever they occur: person names, dates, times,
# long/short/unlimited text, application entity titles, URIs and unknown-VR blobs
PERSONAL_VRS: frozenset[str] = frozenset({"PN", "DA", "DT", "TM", "LT", "ST", "UT", "AE", "UR", "UN"})
# UIDs name instances that can be traced back to a hospital record; only class UIDs (what kind of object) stay
_KEPT_UID_KEYWORDS = ("SOPClassUID", "ReferencedSOPClassUID", "MediaStorageSOPClassUID", "TransferSyntaxUID")


def _tag_int(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - guarded by a test over every keyword
        raise KeyError(f"unknown DICOM keyword {keyword!r}")
    return int(tag)


_PERSONAL_TAGS: frozenset[int] = frozenset(_tag_int(k) for k in PERSONAL_KEYWORDS)
_KEPT_UID_TAGS: frozenset[int] = frozenset(_tag_int(k) for k in _KEPT_UID_KEYWORDS)
_JSON_KEY = {k: f"{_tag_int(k):08X}" for k in DEMOGRAPHIC_KEYWORDS}


def _is_personal(tag: int, vr: str) -> bool:
    if (tag >> 16) % 2 == 1:  # private group: anything may be in there
        return True
    if tag in _PERSONAL_TAGS or vr in PERSONAL_VRS:
        return True
    return vr == "UI" and tag not in _KEPT_UID_TAGS


def strip_personal_json(meta: dict, all_tags: bool = False) -> int:
    """Remove personal DICOM-JSON elements (keys ``"GGGGEEEE"``) from ``meta`` in place, recursing into sequences.

    Args:
        meta: a DICOM-JSON dict, e.g. a MONAI image meta dict from ``PydicomReader(prune_metadata=False)``;
            non-tag keys (``affine``, ``spacing``, ``filename_or_obj`` ...) are left alone.
        all_tags: remove every DICOM tag, personal or not (only MONAI's own meta keys remain).

    Returns:
        the number of elements removed (top level and nested).
    """
    removed = 0
    for key in list(meta.keys()):
        if not (isinstance(key, str) and len(key) == 8):
            continue
        try:
            tag = int(key, 16)
        except ValueError:
            continue
        element = meta[key]
        vr = element.get("vr", "") if isinstance(element, Mapping) else ""
        if all_tags or _is_personal(tag, vr):
            del meta[key]
            removed += 1
        elif vr == "SQ" and isinstance(element, dict):
            for item in element.get("Value", []) or []:
                if isinstance(item, dict):
                    removed += strip_personal_json(item)
    return removed


def _strip_dataset_in_place(ds: Dataset) -> int:
    removed = 0
    for elem in list(ds):
        if _is_personal(int(elem.tag), elem.VR):
            del ds[elem.tag]
            removed += 1
        elif elem.VR == "SQ":
            for item in elem.value:
                removed += _strip_dataset_in_place(item)
    return removed


def strip_personal_dataset(ds: Dataset) -> Dataset:
    """A copy of a pydicom Dataset without personal elements (same rules as :func:`strip_personal_json`).

    Non-sequence elements are shared with ``ds`` (pixel data is not duplicated); sequences are deep-copied before
    they are cleaned, so ``ds`` itself is never changed. The File Meta Information keeps only class and
    transfer-syntax UIDs.
    """
    out = Dataset()
    for elem in ds:
        if not _is_personal(int(elem.tag), elem.VR):
            out.add(copy.deepcopy(elem) if elem.VR == "SQ" else elem)
    _strip_dataset_in_place(out)
    file_meta = getattr(ds, "file_meta", None)
    if file_meta is not None:
        fm = copy.deepcopy(file_meta)
        _strip_dataset_in_place(fm)
        out.file_meta = fm
    return out


def normalize_ethnic_group(value: object) -> str:
    """Canonical form of an EthnicGroup value (collapsed whitespace, upper case); ``""`` when missing."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    return " ".join(str(value).split()).upper()


class DicomDemographics(NamedTuple):
    """Demographics of one DICOM header.

    Attributes:
        sex: sex code (F=0, M=1, O=2, unknown=-1).
        age: years, NaN when unknown.
        age_group: age group code for the configured bins, -1 when unknown.
        ethnic_group: normalized EthnicGroup text (``""`` when absent); callers turn it into a code.
        age_source: ``"PatientAge"``, ``"dates"`` or ``""``.
        patient_hash: salted hash of PatientID (``""`` when absent); the ID itself is never returned.
        reasons: why any field is unknown (non-personal text, header values are never echoed).
    """

    sex: int
    age: float
    age_group: int
    ethnic_group: str
    age_source: str
    patient_hash: str
    reasons: tuple[str, ...]


def _json_first(meta: Mapping, keyword: str) -> Any:
    element = meta.get(_JSON_KEY[keyword])
    if not isinstance(element, Mapping):
        return None
    values = element.get("Value")
    if not values:
        return None
    value = values[0]
    if isinstance(value, Mapping):  # PN as {"Alphabetic": ...}
        value = value.get("Alphabetic")
    return value


def _dataset_first(ds: Dataset, keyword: str) -> Any:
    value = ds.get(keyword, None)
    if value is None:
        return None
    if isinstance(value, pydicom.multival.MultiValue):
        value = value[0] if len(value) else None
    return None if value is None else str(value)


def _header_getter(header: Mapping | Dataset):
    if isinstance(header, Dataset):
        return lambda kw: _dataset_first(header, kw)
    if isinstance(header, Mapping):
        return lambda kw: _json_first(header, kw)
    raise TypeError(f"expected a pydicom Dataset or a DICOM-JSON meta dict, got {type(header).__name__}.")


def extract_dicom_demographics(
    header: Mapping | Dataset,
    age_bins: Sequence[float] = DEFAULT_AGE_BINS,
    max_age: float = MAX_PLAUSIBLE_AGE,
    salt: str | None = None,
) -> DicomDemographics:
    """Sex, age, age group, ethnic group and hashed patient ID from one DICOM header.

    Args:
        header: a pydicom Dataset (full or header-only) or a DICOM-JSON dict (MONAI meta with
            ``prune_metadata=False``).
        age_bins: ascending lower edges of the age groups (see :func:`monai_fair.data.codes.encode_age_group`).
        max_age: ages above this are implausible and unknown.
        salt: salt of :func:`monai_fair.data.privacy.hash_patient_id`.

    Returns:
        a :class:`DicomDemographics`; unknown fields are -1/NaN/"" with a reason each.

    Raises:
        TypeError: when ``header`` is neither a Dataset nor a mapping.
    """
    get = _header_getter(header)
    reasons: list[str] = []

    raw_sex = get("PatientSex")
    sex = encode_sex(raw_sex)
    if sex == UNKNOWN:
        missing = raw_sex is None or str(raw_sex).strip() == ""
        reasons.append("sex: PatientSex missing or empty" if missing else "sex: PatientSex not one of M/F/O")

    study_date = next((d for d in (get(k) for k in _STUDY_DATE_KEYWORDS) if d), None)
    age = resolve_patient_age(get("PatientAge"), get("PatientBirthDate"), study_date, max_age)
    if age.reason:
        reasons.append(f"age: {age.reason}")
    age_group = encode_age_group(age.age, age_bins)

    ethnic = normalize_ethnic_group(get("EthnicGroup"))
    patient_id = get("PatientID")
    patient_hash = hash_patient_id(str(patient_id).strip(), salt) if patient_id and str(patient_id).strip() else ""
    if not patient_hash:
        reasons.append("patient_hash: PatientID missing or empty")
    return DicomDemographics(sex, age.age, age_group, ethnic, age.source, patient_hash, tuple(reasons))


def read_dicom_header(path: str | os.PathLike | Sequence[str | os.PathLike]) -> Dataset:
    """Header-only read (no pixel data) of a DICOM file, the first DICOM file of a series folder, or of a list.

    Raises:
        FileNotFoundError: when a folder holds no DICOM file.
        pydicom.errors.InvalidDicomError: when the file is not DICOM.
    """
    if isinstance(path, (list, tuple)):
        if not path:
            raise FileNotFoundError("empty list of DICOM files.")
        path = path[0]
    p = Path(path)
    if p.is_dir():
        first = next((f for f in sorted(p.iterdir()) if f.is_file() and pydicom.misc.is_dicom(f)), None)
        if first is None:
            raise FileNotFoundError(f"no DICOM file in folder {p}.")
        p = first
    return pydicom.dcmread(p, stop_before_pixels=True, specific_tags=list(DEMOGRAPHIC_KEYWORDS))
