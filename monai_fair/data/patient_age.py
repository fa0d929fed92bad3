# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Patient age from DICOM headers: the ``PatientAge`` (AS) string, or StudyDate − PatientBirthDate as a fallback.

Every parser returns NaN for what it cannot read, together with a short reason (never a guess), so that callers can
count and report unknown ages instead of silently mislabelling them.
"""

from __future__ import annotations

import datetime
import math
import re
from typing import NamedTuple

__all__ = [
    "MAX_PLAUSIBLE_AGE",
    "AgeResult",
    "parse_patient_age",
    "parse_patient_age_with_reason",
    "parse_dicom_date",
    "age_from_dates",
    "resolve_patient_age",
]

MAX_PLAUSIBLE_AGE = 120.0
_DAYS_PER_YEAR = 365.25
# DICOM AS is exactly "nnnD|W|M|Y"; real headers also carry "65Y", "65 Y", lower-case units or bare "65" (years)
_AS_PATTERN = re.compile(r"^\s*(\d{1,3})\s*([DWMYdwmy]?)\s*$")
# PatientAge is truncated to whole units and StudyDate may differ from the acquisition: allow a year
_AGE_AGREEMENT_YEARS = 1.0
_UNIT_YEARS = {"D": 1.0 / _DAYS_PER_YEAR, "W": 7.0 / _DAYS_PER_YEAR, "M": 1.0 / 12.0, "Y": 1.0, "": 1.0}


class AgeResult(NamedTuple):
    """An age in years with where it came from and, when it is NaN, why.

    Attributes:
        age: years (float), NaN when unknown.
        source: ``"PatientAge"``, ``"dates"`` or ``""`` when unknown.
        reason: why ``age`` is NaN, or a note on a known age (PatientAge rejected and the dates used, PatientAge and
            the dates disagree, a ``000D`` placeholder); empty otherwise. Short and non-personal (no header values
            that could identify anyone: dates are never echoed).
    """

    age: float
    source: str
    reason: str


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if isinstance(value, (list, tuple)):  # DICOM-JSON "Value" lists or multi-valued elements
        if len(value) == 0:
            return None
        value = value[0]
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


def parse_patient_age_with_reason(value: object, max_age: float = MAX_PLAUSIBLE_AGE) -> tuple[float, str]:
    """Parse a DICOM Age String (``"065Y"``, ``"030M"``, ``"012W"``, ``"005D"``) into years.

    Lenient about what real headers contain (1–3 digits, optional spaces, lower-case unit, bare digits read as
    years) but strict about the rest.

    Args:
        value: the ``PatientAge`` value (str, bytes, a one-element list as in DICOM-JSON, or None).
        max_age: ages above this many years are implausible and give NaN.

    Returns:
        ``(years, reason)``; ``reason`` is ``""`` on success, else why the result is NaN.
    """
    text = _as_text(value)
    if text is None or text.strip() == "":
        return math.nan, "PatientAge missing or empty"
    match = _AS_PATTERN.match(text)
    if match is None:
        return math.nan, "PatientAge not in DICOM AS format (nnnD/W/M/Y)"
    years = int(match.group(1)) * _UNIT_YEARS[match.group(2).upper()]
    if years > max_age:
        return math.nan, f"PatientAge implausible (> {max_age:g} years)"
    return float(years), ""


def parse_patient_age(value: object, max_age: float = MAX_PLAUSIBLE_AGE) -> float:
    """Years from a DICOM ``PatientAge`` string; NaN when missing, malformed or implausible.

    ``parse_patient_age("065Y") == 65.0``, ``"030M"`` → 2.5, ``"012W"`` → 12·7/365.25, ``"005D"`` → 5/365.25.
    Use :func:`parse_patient_age_with_reason` to learn why a value gave NaN.
    """
    return parse_patient_age_with_reason(value, max_age)[0]


def parse_dicom_date(value: object) -> datetime.date | None:
    """A DICOM DA value (``YYYYMMDD``, or the ACR-NEMA ``YYYY.MM.DD``) as a date; None when missing or invalid."""
    text = _as_text(value)
    if text is None:
        return None
    text = text.strip().replace(".", "")
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return datetime.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def age_from_dates(birth_date: object, study_date: object, max_age: float = MAX_PLAUSIBLE_AGE) -> tuple[float, str]:
    """Fractional years between a birth date and a study date (both DICOM DA values).

    Returns:
        ``(years, reason)``; ``reason`` is ``""`` on success. The dates themselves never appear in the reason.
    """
    birth = parse_dicom_date(birth_date)
    if birth is None:
        return math.nan, "PatientBirthDate missing or invalid"
    study = parse_dicom_date(study_date)
    if study is None:
        return math.nan, "study date missing or invalid"
    days = (study - birth).days
    if days < 0:
        return math.nan, "PatientBirthDate after study date"
    years = days / _DAYS_PER_YEAR
    if years > max_age:
        return math.nan, f"age from dates implausible (> {max_age:g} years)"
    return years, ""


def resolve_patient_age(
    patient_age: object,
    birth_date: object = None,
    study_date: object = None,
    max_age: float = MAX_PLAUSIBLE_AGE,
) -> AgeResult:
    """Age from ``PatientAge``, falling back to ``study_date − birth_date`` when PatientAge is absent or invalid.

    Args:
        patient_age: the ``PatientAge`` value.
        birth_date: ``PatientBirthDate`` (YYYYMMDD).
        study_date: ``StudyDate`` (or another acquisition date) (YYYYMMDD).
        max_age: upper plausibility bound in years.

    Returns:
        an :class:`AgeResult`; when both sources fail the reason names both failures, and a known age carries a
        note when PatientAge was rejected (dates used), disagrees with the dates by more than a year, or is zero
        (``000D``: legal, usually a placeholder).
    """
    age, reason = parse_patient_age_with_reason(patient_age, max_age)
    fallback, fallback_reason = age_from_dates(birth_date, study_date, max_age)
    if not math.isnan(age):
        notes = []
        text = (_as_text(patient_age) or "").strip().upper()
        if age == 0.0:
            notes.append(f"PatientAge {text} is legal but usually a placeholder")
        if not math.isnan(fallback) and abs(fallback - age) > _AGE_AGREEMENT_YEARS:
            notes.append("PatientAge and the age from the dates disagree by more than a year; PatientAge used")
        return AgeResult(age, "PatientAge", "; ".join(notes))
    if not math.isnan(fallback):
        return AgeResult(fallback, "dates", f"{reason}; age from the dates used")
    return AgeResult(math.nan, "", f"{reason}; {fallback_reason}")
