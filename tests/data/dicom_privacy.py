# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Test helpers: real DICOM test files and the 'no personal value leaks' oracle (not a test module)."""

from __future__ import annotations

import unittest
from collections.abc import Iterable, Mapping

import pydicom
from pydicom.data import get_testdata_file

__all__ = ["PERSONAL_ORACLE_KEYWORDS", "real_file", "personal_values", "leaf_strings", "leaks"]

# header fields whose values must never leave ingestion (read with pydicom as the oracle); InstitutionName is
# checked by tag absence instead, since a real file names its institution like its manufacturer ("TOSHIBA")
PERSONAL_ORACLE_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "StudyDate",
    "SeriesDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
)


def real_file(name: str) -> str:
    """Path of a pydicom / pydicom-data test file; skips the test when it is not installed."""
    path = get_testdata_file(name)
    if path is None:
        raise unittest.SkipTest(f"{name} not available (pydicom-data missing)")
    return str(path)


def personal_values(ds: pydicom.Dataset) -> set[str]:
    """The non-empty personal values of a header."""
    out = set()
    for kw in PERSONAL_ORACLE_KEYWORDS:
        value = ds.get(kw)
        if value not in (None, ""):
            out.add(str(value))
    return out


def leaf_strings(obj: object) -> Iterable[str]:
    """Every string (and number rendered as string) inside nested dicts/lists, including dict keys' values only."""
    if isinstance(obj, Mapping):
        for v in obj.values():
            yield from leaf_strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from leaf_strings(v)
    elif obj is not None:
        yield str(obj)


def leaks(values: set[str], obj: object = None, text: str | None = None, min_substring: int = 6) -> list[str]:
    """Personal values found in ``obj`` (exact leaf match, or as a substring of a leaf for long values) and in
    ``text`` (substring, long values only: short IDs like "0010" occur innocently in numbers)."""
    found = []
    leaves = list(leaf_strings(obj)) if obj is not None else []
    for v in values:
        if v in leaves or (len(v) >= min_substring and any(v in leaf for leaf in leaves)):
            found.append(v)
        elif text is not None and len(v) >= min_substring and v in text:
            found.append(v)
    return found
