# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Manifest of a folder of NIfTI volumes joined to a side CSV of demographics (and labels) by subject id.

NIfTI headers carry no demographics, so they come from a table keyed by an id that also names the file
(``<id>.nii.gz``, or a regular expression on the file name). The result is the project's usual
:class:`~monai_fair.data.manifest.Manifest`: ``image`` paths for ``LoadImaged(reader="NibabelReader")``, coded
``sex``, ``age``/``age_group``, hashed ``patient_hash``, labels; ids never leave as raw values. Files without a
table row, rows without a file, duplicates and unreadable headers are skipped and counted.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from monai_fair.data.codes import DEFAULT_AGE_BINS, SEX_NAMES, UNKNOWN, age_group_names, encode_age_group, encode_sex
from monai_fair.data.manifest import Manifest, SkipReport, encode_categories
from monai_fair.data.patient_age import MAX_PLAUSIBLE_AGE, parse_patient_age
from monai_fair.data.privacy import hash_patient_id

__all__ = ["NIFTI_SUFFIXES", "nifti_id", "build_nifti_manifest"]

logger = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii.gz", ".nii")


def nifti_id(path: str | os.PathLike, id_pattern: str | re.Pattern | None = None) -> str | None:
    """The subject id named by a NIfTI file: its name without ``.nii``/``.nii.gz``, or the first group of
    ``id_pattern`` matched against that name (None when it does not match or the file is not NIfTI)."""
    name = Path(path).name
    stem = next((name[: -len(s)] for s in NIFTI_SUFFIXES if name.lower().endswith(s)), None)
    if stem is None:
        return None
    if id_pattern is None:
        return stem
    match = re.search(id_pattern, stem)
    if match is None:
        return None
    return match.group(1) if match.groups() else match.group(0)


def _canonical(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def _age_value(value: Any, max_age: float) -> float:
    """Years from a number or an age string (``"65"``, ``"65Y"``, ``"030M"``); NaN when unusable."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    try:
        years = float(value)
    except (TypeError, ValueError):
        years = parse_patient_age(value, max_age)
    return years if (not math.isnan(years) and 0.0 <= years <= max_age) else math.nan


def build_nifti_manifest(
    image_dir: str | os.PathLike,
    demographics: str | os.PathLike | pd.DataFrame,
    id_column: str = "id",
    sex_column: str | None = "sex",
    age_column: str | None = "age",
    label_columns: Sequence[str] = (),
    category_columns: Sequence[str] = (),
    sex_map: Mapping[Any, str] | None = None,
    id_pattern: str | None = None,
    age_bins: Sequence[float] = DEFAULT_AGE_BINS,
    max_age: float = MAX_PLAUSIBLE_AGE,
    check_headers: bool = True,
    salt: str | None = None,
) -> Manifest:
    """Join a folder of ``.nii``/``.nii.gz`` volumes to a demographics CSV into a manifest.

    Args:
        image_dir: folder searched recursively for NIfTI files.
        demographics: CSV path or DataFrame with ``id_column`` and the demographic/label columns.
        id_column: subject id column; matched against :func:`nifti_id` of each file.
        sex_column: sex column (``M``/``F``/``male``..., or numbers through ``sex_map``); None for none.
        age_column: age column (years, or age strings like ``"65Y"``); None for none.
        label_columns: label columns copied as numbers (non-numeric values raise).
        category_columns: other categorical columns (e.g. ``race``, ``site``) coded 0..K-1 with a code map.
        sex_map: raw value → ``"F"``/``"M"``/``"O"``, e.g. ``{1: "M", 2: "F"}``.
        id_pattern: regular expression extracting the id from the file name (first group), e.g.
            ``r"^(sub-\\d+)_"``; default: the whole name without the NIfTI suffix.
        age_bins: ascending lower edges of the ``age_group`` codes.
        max_age: ages above this are unknown.
        check_headers: read each NIfTI header (not the voxels) and skip files nibabel cannot read.
        salt: salt of the patient hash.

    Returns:
        ``Manifest(frame, code_maps, skipped)``; ``frame`` columns: ``image``, ``patient_hash``, ``sex``,
        ``age``, ``age_group``, the category and label columns, ``demographics_note`` (why sex/age is unknown,
        ``""`` otherwise). Skip examples name files relative to
        ``image_dir`` and CSV rows by number, never by id.

    Raises:
        NotADirectoryError: when ``image_dir`` is not a folder.
        FileNotFoundError: when the CSV does not exist.
        KeyError: when a named column is missing.
        ValueError: when a label column is not numeric.
    """
    root = Path(image_dir)
    if not root.is_dir():
        raise NotADirectoryError(f"NIfTI folder {root} is not a folder.")
    wanted = [id_column, *(c for c in (sex_column, age_column) if c), *label_columns, *category_columns]
    table = _read_demographics(demographics, id_column, wanted)
    report = SkipReport()
    row_of = _rows_by_id(table, id_column, report)
    file_of = _files_by_id(root, row_of, id_pattern, check_headers, report)
    keep_ids = [i for i in row_of if i in file_of]
    rows = table.iloc[[row_of[i] for i in keep_ids]].reset_index(drop=True)
    frame = pd.DataFrame({"image": [str(file_of[i]) for i in keep_ids]})
    frame["patient_hash"] = [hash_patient_id(i, salt) for i in keep_ids]
    notes: list[list[str]] = [[] for _ in keep_ids]
    code_maps: dict[str, dict[int, str]] = {}
    if sex_column:
        _add_sex(frame, rows[sex_column].tolist(), sex_map, notes, code_maps)
    if age_column:
        _add_age(frame, rows[age_column].tolist(), age_bins, max_age, notes, code_maps)
    _add_categories_and_labels(frame, rows, category_columns, label_columns, code_maps)
    frame["demographics_note"] = ["; ".join(n) for n in notes]
    unknown = sum(1 for n in notes if n)
    if report.total or unknown:
        logger.warning(
            "NIfTI manifest of %s: %d rows (%d with unknown demographics); skipped: %s",
            root.name,
            len(frame),
            unknown,
            report.summary(),
        )
    return Manifest(frame, code_maps, report)


def _read_demographics(
    demographics: str | os.PathLike | pd.DataFrame, id_column: str, wanted: list[str]
) -> pd.DataFrame:
    """The demographics table (ids read as text), checked for the ``wanted`` columns.

    Raises:
        FileNotFoundError: when the CSV does not exist.
        KeyError: when a wanted column is missing.
    """
    if isinstance(demographics, pd.DataFrame):
        table = demographics.reset_index(drop=True)
    else:
        csv = Path(demographics)
        if not csv.is_file():
            raise FileNotFoundError(f"demographics CSV {csv} does not exist.")
        table = pd.read_csv(csv, dtype={id_column: str})
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        raise KeyError(f"demographics column(s) {missing} not found; available: {list(table.columns)}.")
    return table


def _rows_by_id(table: pd.DataFrame, id_column: str, report: SkipReport) -> dict[str, int]:
    """Row number of each id; rows without an id and every row of a repeated id are skipped."""
    ids = [_canonical(v) for v in table[id_column]]
    counts = pd.Series([i for i in ids if i is not None]).value_counts()
    duplicated = {i for i, c in counts.items() if c > 1}
    row_of: dict[str, int] = {}
    no_id, dup_rows = [], []
    for r, i in enumerate(ids):
        if i is None:
            no_id.append(f"csv row {r}")
        elif i in duplicated:
            dup_rows.append(f"csv row {r}")
        else:
            row_of[i] = r
    report.add("csv row without id", len(no_id), no_id)
    report.add("id repeated in csv (all its rows skipped)", len(dup_rows), dup_rows)
    return row_of


def _files_by_id(
    root: Path, row_of: dict[str, int], id_pattern: str | None, check_headers: bool, report: SkipReport
) -> dict[str, Path]:
    """The NIfTI file of each id that has a demographics row; files without a usable id, row or header and rows
    without a file are skipped."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and nifti_id(p) is not None)
    file_of: dict[str, Path] = {}
    for path in files:
        rel = path.relative_to(root).as_posix()
        sid = nifti_id(path, id_pattern)
        if sid is None:
            report.add("file name does not match id_pattern", 1, [rel])
        elif sid in file_of:
            report.add("second image for the same id", 1, [rel])
        elif sid not in row_of:
            report.add("no demographics row for this file", 1, [rel])
        elif check_headers and (problem := _header_problem(path)) is not None:
            report.add(problem, 1, [rel])
        else:
            file_of[sid] = path
    no_file = [f"csv row {r}" for i, r in row_of.items() if i not in file_of]
    report.add("csv row without an image file", len(no_file), no_file[:5])
    return file_of


def _add_sex(
    frame: pd.DataFrame,
    raw: list[Any],
    sex_map: Mapping[Any, str] | None,
    notes: list[list[str]],
    code_maps: dict[str, dict[int, str]],
) -> None:
    """Add the coded ``sex`` column (through ``sex_map`` when given) and a note for each unknown."""
    lookup = {_canonical(k): v for k, v in (sex_map or {}).items()}
    frame["sex"] = np.asarray(
        [encode_sex(lookup.get(_canonical(v)) if sex_map is not None else v) for v in raw], dtype=np.int64
    )
    code_maps["sex"] = dict(SEX_NAMES)
    for r in np.flatnonzero(frame["sex"].to_numpy() == UNKNOWN):
        notes[r].append("sex: missing or not one of M/F/O" + (" in sex_map" if sex_map is not None else ""))


def _add_age(
    frame: pd.DataFrame,
    raw: list[Any],
    age_bins: Sequence[float],
    max_age: float,
    notes: list[list[str]],
    code_maps: dict[str, dict[int, str]],
) -> None:
    """Add ``age`` (NaN when missing or implausible) and the coded ``age_group``, and a note for each unknown."""
    frame["age"] = np.asarray([_age_value(v, max_age) for v in raw], dtype=np.float64)
    frame["age_group"] = np.asarray([encode_age_group(a, age_bins) for a in frame["age"]], dtype=np.int64)
    code_maps["age_group"] = age_group_names(age_bins)
    for r in np.flatnonzero(frame["age"].isna().to_numpy()):
        notes[r].append("age: missing, unparseable or implausible")


def _add_categories_and_labels(
    frame: pd.DataFrame,
    rows: pd.DataFrame,
    category_columns: Sequence[str],
    label_columns: Sequence[str],
    code_maps: dict[str, dict[int, str]],
) -> None:
    """Add the category columns coded 0..K-1 (with code maps) and the label columns as numbers.

    Raises:
        ValueError: when a label column is not numeric.
    """
    for col in category_columns:
        codes, mapping = encode_categories(rows[col].tolist())
        frame[col] = codes
        code_maps[col] = mapping
    for col in label_columns:
        values = pd.to_numeric(rows[col], errors="coerce")
        bad = rows[col].notna() & values.isna()
        if bad.any():
            raise ValueError(f"label column {col!r} has non-numeric values.")
        frame[col] = values.to_numpy(np.float64)


def _header_problem(path: Path) -> str | None:
    """Why nibabel cannot use a file (header unreadable, or an uncompressed file shorter than its voxels)."""
    try:
        img = nib.load(str(path))  # lazy: reads the header, not the voxels
        shape = img.header.get_data_shape()
        if path.name.lower().endswith(".nii"):
            need = int(img.header["vox_offset"]) + int(np.prod(shape)) * img.header.get_data_dtype().itemsize
            if path.stat().st_size < need:
                return "NIfTI file shorter than its header says (truncated)"
    except Exception:  # noqa: BLE001 - any nibabel failure on a bad file is a skip, never a crash
        return "unreadable NIfTI header"
    return None
