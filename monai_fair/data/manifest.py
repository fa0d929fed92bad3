# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Manifests: one row per image with its labels and attribute codes, and the loader that turns one into data dicts.

A manifest is a CSV (or a DataFrame built by a dataset-specific builder) with

- ``image``: the image path, absolute or relative to the CSV's folder;
- one or more label columns;
- attribute columns: strings are encoded to small integer codes (the code→name map is kept), numbers are kept;
- optionally ``patient_id`` (hashed with :func:`~monai_fair.data.privacy.hash_patient_id` on load and never passed
  on) or an already hashed ``patient_hash``, and ``split``.

Code maps of a written manifest travel in a JSON sidecar ``<manifest>.codes.json`` (:func:`write_manifest`), so a
manifest built by ``tools/prepare_manifest.py`` loads back with the same names.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .codes import SEX_NAMES, UNKNOWN, age_group_names, encode_age_group, encode_sex
from .privacy import hash_patient_id
from .splits import assert_no_patient_leakage

__all__ = [
    "read_csv_table",
    "SkipReport",
    "Manifest",
    "encode_categories",
    "group_by_substring",
    "add_age_group",
    "encode_sex_column",
    "hash_column",
    "read_manifest",
    "frame_to_data_dicts",
    "load_manifest",
    "write_manifest",
    "read_code_maps",
    "code_maps_path",
]

logger = logging.getLogger(__name__)

RESERVED_COLUMNS = ("image", "patient_id", "patient_hash", "split")


def read_csv_table(path: str | os.PathLike, what: str = "CSV", **kwargs: Any) -> pd.DataFrame:
    """``pandas.read_csv`` whose errors name the file: an empty or unparsable file is a ``ValueError``.

    Args:
        path: the CSV file.
        what: how the message names the file (``"manifest CSV"``, ``"predictions CSV"``).
        kwargs: passed to ``pandas.read_csv``.
    """
    try:
        return pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{what} {path} is empty (no header, no rows).") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{what} {path} cannot be parsed as CSV: {e}") from None


# sex values read as "unknown" on purpose; any other unrecognised spelling is an error, never a silent UNKNOWN
SEX_UNKNOWN_SPELLINGS = frozenset({"U", "UNK", "UNKNOWN", "NA", "N/A", "NAN", "NONE", "?", "-", "NOT REPORTED"})
SEX_SPELLINGS = ("F", "Female", "W", "Woman", "M", "Male", "Man", "O", "Other")
# column names that suggest an identifier, and values that look like one (letters, then 5+ digits)
_ID_NAME = re.compile(r"(^|[_\s])(id|mrn|ssn|accession|patient|subject|name|dob|birth|nhs|uid)([_\s]|$)", re.I)
_ID_VALUE = re.compile(r"^[A-Za-z]{0,5}[-_ ]?\d{5,}$")


@dataclass
class SkipReport:
    """Counts (and a few examples) of rows left out of a manifest, by reason; nothing is dropped without a count."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    max_examples: int = 5

    def add(self, reason: str, n: int = 1, examples: Iterable[object] = ()) -> None:
        """Count ``n`` rows skipped for ``reason`` (``n == 0`` is recorded too, so reports show every filter)."""
        self.counts[reason] = self.counts.get(reason, 0) + int(n)
        kept = self.examples.setdefault(reason, [])
        for e in examples:
            if len(kept) >= self.max_examples:
                break
            kept.append(str(e))

    @property
    def total(self) -> int:
        return int(sum(self.counts.values()))

    def summary(self) -> str:
        """One line per reason, e.g. ``"missing image file: 3 (e.g. a.jpg, b.jpg)"``."""
        if not self.counts:
            return "nothing skipped"
        lines = []
        for reason, n in self.counts.items():
            ex = self.examples.get(reason) or []
            lines.append(f"{reason}: {n}" + (f" (e.g. {', '.join(ex)})" if ex else ""))
        return "; ".join(lines)


class Manifest(NamedTuple):
    """What every manifest builder returns: the table, the code→name map of each coded column, the skip report."""

    frame: pd.DataFrame
    code_maps: dict[str, dict[int, str]]
    skipped: SkipReport


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def encode_categories(
    values: Iterable[object], names: Sequence[str] | None = None
) -> tuple[np.ndarray, dict[int, str]]:
    """Encode categorical values to codes ``0..K-1`` (missing → ``UNKNOWN``), returning the codes and code→name map.

    Args:
        values: the raw values (strings or numbers); ``None``, NaN and blank strings are missing.
        names: a fixed code order; values not in it raise. Default: the sorted distinct non-missing values
            (deterministic for a given table).

    Raises:
        ValueError: when ``names`` is given and a value is not among them.
    """
    raw = [None if _is_missing(v) else str(v).strip() for v in values]
    if names is None:
        names = sorted({v for v in raw if v is not None})
    lookup = {n: i for i, n in enumerate(names)}
    unknown = sorted({v for v in raw if v is not None and v not in lookup})
    if unknown:
        raise ValueError(f"values {unknown[:10]} are not among the allowed categories {list(names)}.")
    codes = np.array([UNKNOWN if v is None else lookup[v] for v in raw], dtype=np.int64)
    return codes, {i: str(n) for i, n in enumerate(names)}


def group_by_substring(
    values: Iterable[object],
    rules: Sequence[tuple[str, str]],
    unknown_patterns: Sequence[str] = (),
    other: str | None = "OTHER",
    group_order: Sequence[str] | None = None,
) -> tuple[np.ndarray, dict[int, str]]:
    """Group free-text categories (e.g. race strings) by case-insensitive substring rules, then encode the groups.

    A value goes to the group of the *first* rule whose substring it contains; failing that, a value containing
    one of ``unknown_patterns`` (or missing) is ``UNKNOWN``; anything else goes to ``other`` (or ``UNKNOWN`` when
    ``other`` is None). Codes follow ``group_order`` (default: the order in which groups first appear in ``rules``,
    then ``other``), so the code→name map is the same for every table.

    Args:
        values: raw strings.
        rules: ``(substring, group name)`` pairs, tried in order.
        unknown_patterns: substrings marking an unknown/declined value.
        other: name of the catch-all group, or None to code unmatched values as unknown.
        group_order: the code order of the group names (must list every group of ``rules`` and ``other``).

    Raises:
        ValueError: ``group_order`` does not list exactly the groups.
    """
    group_names: list[str] = []
    for _, g in rules:
        if g not in group_names:
            group_names.append(g)
    if other is not None and other not in group_names:
        group_names.append(other)
    if group_order is not None:
        if sorted(group_order) != sorted(group_names):
            raise ValueError(f"group_order {list(group_order)} must list exactly the groups {group_names}.")
        group_names = list(group_order)
    code_of = {g: i for i, g in enumerate(group_names)}
    lowered_rules = [(s.lower(), code_of[g]) for s, g in rules]
    lowered_unknown = [s.lower() for s in unknown_patterns]
    out = np.full(len(values := list(values)), UNKNOWN, dtype=np.int64)
    cache: dict[str, int] = {}
    for i, v in enumerate(values):
        if _is_missing(v):
            continue
        key = str(v).strip().lower()
        if key not in cache:
            code = next((c for s, c in lowered_rules if s in key), None)
            if code is None:
                if any(p in key for p in lowered_unknown):
                    code = UNKNOWN
                else:
                    code = code_of[other] if other is not None else UNKNOWN
            cache[key] = code
        out[i] = cache[key]
    return out, {i: g for i, g in enumerate(group_names)}


def encode_sex_column(values: pd.Series | Sequence[object]) -> np.ndarray:
    """Shared sex codes (F=0, M=1, O=2, unknown=-1) of a column, evaluated once per distinct value."""
    series = pd.Series(values, dtype=object)
    lookup = {v: encode_sex(v) for v in series.dropna().unique()}
    return series.map(lookup).fillna(UNKNOWN).astype(np.int64).to_numpy()


def hash_column(values: pd.Series | Sequence[object], salt: str | None = None) -> list[str]:
    """Hashed patient identifiers of a column (each distinct identifier hashed once; missing stays missing)."""
    series = pd.Series(values, dtype=object)
    lookup = {v: hash_patient_id(_canonical_id(v), salt) for v in series.dropna().unique()}
    return series.map(lookup).tolist()


def add_age_group(frame: pd.DataFrame, bins: Sequence[float], age_column: str = "age") -> dict[int, str]:
    """Add an ``age_group`` column from ``age`` (missing age → ``UNKNOWN``) in place; return its code→name map."""
    ages = pd.to_numeric(frame[age_column], errors="coerce")
    lookup = {a: encode_age_group(a, bins) for a in ages.dropna().unique()}
    frame["age_group"] = ages.map(lookup).fillna(UNKNOWN).astype(np.int64).to_numpy()
    return age_group_names(bins)


def code_maps_path(csv_path: str | Path) -> Path:
    """The JSON sidecar holding a written manifest's code maps: ``<manifest>.codes.json``."""
    p = Path(csv_path)
    return p.with_name(p.name + ".codes.json")


def read_code_maps(csv_path: str | Path) -> dict[str, dict[int, str]]:
    """Code maps stored next to a manifest (empty when there is no sidecar)."""
    side = code_maps_path(csv_path)
    if not side.is_file():
        return {}
    raw = json.loads(side.read_text())
    return {str(col): {int(k): str(v) for k, v in m.items()} for col, m in raw.items()}


def write_manifest(frame: pd.DataFrame, csv_path: str | Path, code_maps: Mapping[str, Mapping[int, str]]) -> Path:
    """Write a manifest CSV and its code-map sidecar; refuses tables that still hold raw patient identifiers.

    Raises:
        ValueError: if ``frame`` has a ``patient_id`` (or ``subject_id``/``study_id``/``dicom_id``) column.
    """
    leaking = [c for c in ("patient_id", "subject_id", "study_id", "dicom_id", "Patient ID") if c in frame.columns]
    if leaking:
        raise ValueError(f"refusing to write identifier columns {leaking}; hash or drop them first.")
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(csv_path, index=False)
    maps = {col: {str(k): v for k, v in m.items()} for col, m in code_maps.items()}
    code_maps_path(csv_path).write_text(json.dumps(maps, indent=2, sort_keys=True))
    return csv_path


def _check_columns(frame: pd.DataFrame, columns: Iterable[str], what: str, source: object) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{what} column(s) {missing} not found in {source}; available: {list(frame.columns)}.")


def _encode_attribute(
    name: str,
    series: pd.Series,
    known: Mapping[int, str] | None,
    source: object = "the manifest",
    group_names: Mapping[Any, str] | None = None,
) -> tuple[np.ndarray | pd.Series, dict[int, str] | None]:
    """Encode one attribute column: strings → codes (+ map); numbers kept (with a stored map if there is one).

    ``group_names`` maps raw values (e.g. ``1``/``2``) to names first; a numeric ``sex`` column without it, or a
    sex spelling that is neither a known name nor a known "unknown", raises.
    """
    if group_names is not None:
        series = _apply_group_names(name, series, group_names, source)
    if pd.api.types.is_numeric_dtype(series) or series.dropna().map(lambda v: _number(v) is not None).all():
        if name == "sex" and known is None and series.notna().any():
            values = sorted({_canonical_id(v) for v in series.dropna()})
            raise ValueError(
                f"sex column in {source} is numeric (values {values[:10]}) and has no code map; give the mapping, "
                f"e.g. group_names={{'sex': {{{values[0]}: 'M', ...}}}} (prepare_manifest: --group-names "
                f"sex:{values[0]}=M,...), or recode it to {', '.join(SEX_SPELLINGS)}."
            )
        numeric = pd.to_numeric(series, errors="coerce")
        if known is not None:
            # a coded column written by write_manifest: missing codes stay UNKNOWN, not NaN
            return numeric.fillna(UNKNOWN).astype(np.int64).to_numpy(), dict(known)
        return numeric, None
    if name == "sex":
        codes = encode_sex_column(series)
        odd = sorted(
            {
                str(v).strip()
                for v, c in zip(series.tolist(), codes)
                if c == UNKNOWN and not pd.isna(v) and str(v).strip().upper() not in SEX_UNKNOWN_SPELLINGS | {""}
            }
        )
        if odd:
            raise ValueError(
                f"sex column in {source} has values {odd[:10]} that are not among the accepted spellings "
                f"{list(SEX_SPELLINGS)} (any case) nor an unknown marker {sorted(SEX_UNKNOWN_SPELLINGS)}; map them "
                "with group_names (prepare_manifest: --group-names sex:VALUE=F,...)."
            )
        return codes, dict(SEX_NAMES)
    names = None
    if known is not None:
        names = [known[k] for k in sorted(known)]
        if sorted(known) != list(range(len(known))):
            raise ValueError(f"stored code map of {name!r} is not 0..K-1: {known}.")
    codes, mapping = encode_categories(series.tolist(), names=names)
    return codes, mapping


def _apply_group_names(name: str, series: pd.Series, group_names: Mapping[Any, str], source: object) -> pd.Series:
    """Raw values → names with a user mapping (keys compared as text, so ``1``, ``1.0`` and ``"1"`` match)."""
    lookup = {_canonical_id(k): str(v) for k, v in group_names.items()}
    raw = series.map(lambda v: None if _is_missing(v) else _canonical_id(v))
    unmapped = sorted({v for v in raw.dropna() if v not in lookup})
    if unmapped:
        raise ValueError(
            f"attribute {name!r} in {source}: values {unmapped[:10]} are not in the given group names "
            f"{dict(group_names)}; add them to the mapping."
        )
    return pd.Series([None if v is None else lookup[v] for v in raw], index=series.index, dtype=object)


def _identifier_reason(name: str, series: pd.Series) -> str | None:
    """Why an attribute column looks like a personal identifier (None when it does not)."""
    values = series.dropna().map(_canonical_id)
    values = values[values != ""]
    if values.empty:
        return None
    n_unique, n = values.nunique(), len(values)
    if values.map(lambda v: bool(_ID_VALUE.match(v))).all():
        return "its values look like identifiers (letters then 5 or more digits)"
    if _ID_NAME.search(name) and n_unique > 0.5 * n:
        return "its name suggests an identifier and most of its values are distinct"
    numeric = values.map(lambda v: _number(v) is not None).all()
    if not numeric and n_unique > 20 and n_unique >= 0.9 * n:
        return "its text values are nearly unique per row"
    return None


def _number(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def read_manifest(
    csv_path: str | Path | pd.DataFrame,
    label_columns: str | Sequence[str],
    attribute_columns: Sequence[str] = (),
    image_column: str = "image",
    patient_column: str | None = "patient_id",
    split_column: str | None = "split",
    base_dir: str | Path | None = None,
    check_files: bool = True,
    missing_labels: str = "skip",
    age_bins: Sequence[float] | None = None,
    salt: str | None = None,
    report: SkipReport | None = None,
    group_names: Mapping[str, Mapping[Any, str]] | None = None,
    min_groups: int = 2,
    check_split_groups: bool = True,
    check_leakage: bool = True,
    verify_images: bool = False,
) -> Manifest:
    """Read a generic manifest into a normalised table: absolute ``image``, labels, coded attributes, hashed patients.

    Args:
        csv_path: the manifest CSV (or an in-memory DataFrame, then ``base_dir`` resolves relative paths).
        label_columns: one label column (binary/continuous label) or several (multi-label vector).
        attribute_columns: attribute columns to carry; strings are coded (``sex`` with the shared F/M/O codes).
        image_column: column holding the image path, absolute or relative to the CSV's folder.
        patient_column: raw patient identifier column, hashed into ``patient_hash`` and dropped; if absent but a
            ``patient_hash`` column exists, that one is used as is.
        split_column: optional split column (kept as strings, e.g. ``train``/``val``/``test``).
        base_dir: folder that relative image paths are relative to (default: the CSV's folder).
        check_files: skip (and count) rows whose image file does not exist.
        missing_labels: rows with a missing label value: ``"skip"`` (counted), ``"keep"`` (NaN stays, e.g. for a
            masked multi-label loss) or ``"error"``.
        age_bins: if given and an ``age`` attribute is carried, an ``age_group`` column is added.
        salt: salt for patient hashing (default: see :func:`hash_patient_id`).
        report: a :class:`SkipReport` to fill (a new one otherwise); also returned. Its examples name images
            relative to the dataset root (paths can hold patient IDs).
        group_names: ``{attribute: {raw value: name}}`` applied before coding, e.g. ``{"sex": {1: "M", 2: "F"}}``
            for a numeric sex column.
        min_groups: an attribute with fewer distinct values (after skips) raises: no comparison is possible.
        check_split_groups: with a split column, raise when a split has no row of a group that other splits have.
        check_leakage: with a split and a patient column, raise when a patient is in two splits.
        verify_images: decode every image (PIL; DICOM header and pixel data element) and skip, with the reason,
            those that cannot be read: one corrupt file must not stop a run that reads thousands later.

    Returns:
        ``Manifest(frame, code_maps, skipped)``.

    Raises:
        FileNotFoundError: the CSV does not exist.
        KeyError: a named column is missing.
        ValueError: bad ``missing_labels`` value, missing labels with ``missing_labels="error"``, an empty or
            unreadable CSV, no usable row left, an attribute with fewer than ``min_groups`` values or that looks
            like an identifier, a numeric ``sex`` column without ``group_names``, a split missing a group, or a
            patient in two splits. Every message names the CSV.
    """
    if missing_labels not in ("skip", "keep", "error"):
        raise ValueError(f"missing_labels must be 'skip', 'keep' or 'error', got {missing_labels!r}.")
    report = report if report is not None else SkipReport()
    labels = [label_columns] if isinstance(label_columns, str) else list(label_columns)
    if not labels:
        raise ValueError("at least one label column is required.")
    raw, source, stored_maps, root = _read_source(csv_path, base_dir)
    if raw.empty:
        raise ValueError(
            f"manifest {source} has a header but no rows (columns {list(raw.columns)}); nothing to train or evaluate."
        )
    attrs = list(attribute_columns)
    _check_columns(raw, [image_column], "image", source)
    _check_columns(raw, labels, "label", source)
    _check_columns(raw, attrs, "attribute", source)
    clash = [c for c in attrs if c in labels or c in RESERVED_COLUMNS]
    if clash:
        raise ValueError(f"attribute columns {clash} clash with label or reserved columns {RESERVED_COLUMNS}.")
    unknown_maps = sorted(set(group_names or {}) - set(attrs))
    if unknown_maps:
        raise ValueError(f"group names given for {unknown_maps}, which are not among the attributes {attrs}.")
    for col in attrs:
        why = _identifier_reason(col, raw[col]) if col not in stored_maps else None
        if why is not None:
            raise ValueError(
                f"attribute column {col!r} in {source} looks like a personal identifier ({why}); refusing to carry "
                "its values into the manifest and code maps. Drop it, or derive a group column (e.g. a site or an "
                "age band) from it first."
            )

    out = pd.DataFrame(index=raw.index)
    keep = _add_images(out, raw[image_column], root, check_files, report)
    if verify_images:
        keep &= _verify_images(out["image"], keep, root, report)
    keep &= _add_labels(out, raw, labels, keep, missing_labels, report)
    code_maps: dict[str, dict[int, str]] = {}
    for col in attrs:
        values, mapping = _encode_attribute(col, raw[col], stored_maps.get(col), source, (group_names or {}).get(col))
        out[col] = values
        if mapping is not None:
            code_maps[col] = mapping
    if age_bins is not None and "age" in attrs and "age_group" not in attrs:
        code_maps["age_group"] = add_age_group(out, age_bins)
    keep &= _add_patient_hash(out, raw, patient_column, salt, keep, report)
    if split_column is not None and split_column in raw.columns:
        out["split"] = raw[split_column].astype("string").str.strip()
    if "patient_hash" not in out.columns:
        logger.warning(
            "manifest %s has no patient column (%r) nor patient_hash: patient leakage between splits cannot be ruled "
            "out; name the patient column with patient_column (prepare_manifest: --patient-column).",
            source,
            patient_column,
        )

    if report.total:
        logger.warning("manifest %s: skipped rows: %s", source, report.summary())
    frame = out[keep].reset_index(drop=True)
    if frame.empty:
        raise ValueError(f"no usable row left in manifest {source}: all {len(raw)} rows skipped ({report.summary()}).")
    _check_groups(frame, attrs, code_maps, source, min_groups, check_split_groups)
    if check_leakage and "split" in frame.columns and "patient_hash" in frame.columns:
        try:
            assert_no_patient_leakage(frame)
        except ValueError as e:
            raise ValueError(
                f"manifest {source}: {e} Fix the split column (one split per patient), or drop it and split by patient."
            ) from None
    return Manifest(frame, code_maps, report)


def _check_groups(
    frame: pd.DataFrame,
    attrs: Sequence[str],
    code_maps: Mapping[str, Mapping[int, str]],
    source: object,
    min_groups: int,
    check_split_groups: bool,
) -> None:
    """Raise when an attribute has fewer than ``min_groups`` known values, or a split lacks a group.

    Raises:
        ValueError: naming the manifest, the attribute and the values it has.
    """
    for col in attrs:
        values = frame[col]
        known = values[values.notna() & (values != UNKNOWN)] if col in code_maps else values.dropna()
        names = code_maps.get(col, {})
        present = sorted({_scalar(v) for v in known})
        if len(present) < min_groups:
            shown = [names.get(v, v) for v in present]
            raise ValueError(
                f"attribute {col!r} in {source} has {len(present)} known value(s) {shown} after skips; a fairness "
                f"comparison needs at least {min_groups} groups. Drop the attribute or use a manifest with more groups."
            )
        if check_split_groups and "split" in frame.columns and col in code_maps:
            for split, rows in frame.groupby("split", dropna=True):
                missing = sorted(set(present) - set(rows[col].tolist()))
                if missing:
                    raise ValueError(
                        f"split {split!r} of {source} has no row of {col} = {[names.get(m, m) for m in missing]}; "
                        "that group's rates would be undefined there. Re-split stratified by the attribute, or pass "
                        "check_split_groups=False (prepare_manifest: --allow-missing-groups) to accept NaN for it."
                    )


def _read_source(
    csv_path: str | Path | pd.DataFrame, base_dir: str | Path | None
) -> tuple[pd.DataFrame, str, dict[str, dict[int, str]], str]:
    """``(table, source name, stored code maps, folder that relative image paths are relative to)``.

    Raises:
        FileNotFoundError: the CSV does not exist.
    """
    if isinstance(csv_path, pd.DataFrame):
        return csv_path.copy(), "the DataFrame", {}, os.path.abspath(base_dir if base_dir is not None else os.getcwd())
    path = Path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest CSV {path} does not exist.")
    root = os.path.abspath(base_dir if base_dir is not None else path.parent)
    return read_csv_table(path, "manifest CSV"), str(path), read_code_maps(path), root


def _add_images(out: pd.DataFrame, img: pd.Series, root: str, check_files: bool, report: SkipReport) -> np.ndarray:
    """Add absolute ``image`` paths; returns the rows to keep (a path, and with ``check_files`` an existing file)."""
    no_path = img.isna() | (img.astype(str).str.strip() == "")
    report.add("missing image path", int(no_path.sum()), img.index[no_path][:5].map(lambda i: f"row {i}"))
    out["image"] = [
        "" if bad else os.path.normpath(os.path.join(root, str(v).strip()))
        for v, bad in zip(img.tolist(), no_path.tolist())
    ]
    keep = ~no_path.to_numpy()
    if check_files:
        exists = np.array([k and os.path.isfile(p) for p, k in zip(out["image"], keep)], dtype=bool)
        gone = keep & ~exists
        report.add("missing image file", int(gone.sum()), [_relative(p, root) for p in out["image"][gone].tolist()[:5]])
        keep &= exists
    return keep


def _image_problem(path: str) -> str | None:
    """Why an image file cannot be read (None when it can): decoded with PIL, or a DICOM header and pixel data."""
    if path.lower().endswith((".dcm", ".dicom")):
        import pydicom

        try:
            ds = pydicom.dcmread(path)
        except Exception as e:  # noqa: BLE001 - any reader failure is a skip reason
            return f"unreadable DICOM file ({type(e).__name__})"
        return None if "PixelData" in ds else "DICOM file without pixel data"
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
    except Exception as e:  # noqa: BLE001 - any decoder failure is a skip reason
        return f"unreadable image file ({type(e).__name__}: corrupt, truncated or not an image)"
    return None


def _verify_images(images: pd.Series, keep: np.ndarray, root: str, report: SkipReport) -> np.ndarray:
    """Rows whose image decodes; the others are counted by reason with paths relative to ``root``."""
    ok = keep.copy()
    for i, (path, k) in enumerate(zip(images.tolist(), keep.tolist())):
        if not k or not os.path.isfile(path):
            continue
        problem = _image_problem(path)
        if problem is not None:
            ok[i] = False
            report.add(problem, 1, [_relative(path, root)])
    return ok


def _add_labels(
    out: pd.DataFrame, raw: pd.DataFrame, labels: list[str], keep: np.ndarray, missing_labels: str, report: SkipReport
) -> np.ndarray:
    """Add the label columns as numbers; returns the rows that may stay (a missing label drops the row with
    ``missing_labels="skip"``).

    Raises:
        ValueError: non-numeric label values, or a missing label with ``missing_labels="error"``.
    """
    for col in labels:
        out[col] = pd.to_numeric(raw[col], errors="coerce")
        bad_text = raw[col].notna() & out[col].isna()
        if bad_text.any():
            raise ValueError(f"label column {col!r} has non-numeric values, e.g. {raw[col][bad_text].iloc[0]!r}.")
    nan_label = out[labels].isna().any(axis=1).to_numpy() & keep
    if nan_label.any():
        if missing_labels == "error":
            raise ValueError(f"{int(nan_label.sum())} rows have a missing label in {labels}.")
        if missing_labels == "skip":
            report.add("missing label", int(nan_label.sum()), [f"row {i}" for i in np.flatnonzero(nan_label)[:5]])
            return ~nan_label
    return np.ones(len(out), dtype=bool)


def _add_patient_hash(
    out: pd.DataFrame,
    raw: pd.DataFrame,
    patient_column: str | None,
    salt: str | None,
    keep: np.ndarray,
    report: SkipReport,
) -> np.ndarray:
    """Add ``patient_hash`` (hashed ``patient_column``, else a stored ``patient_hash``); returns the rows that may
    stay (a row without a patient is dropped when there is a patient column)."""
    if patient_column is not None and patient_column in raw.columns:
        ids = raw[patient_column]
        hashed = hash_column(ids.where(ids.notna(), ""), salt)
        out["patient_hash"] = [None if _is_missing(v) else h for v, h in zip(ids.tolist(), hashed)]
    elif "patient_hash" in raw.columns:
        out["patient_hash"] = raw["patient_hash"].astype("string").where(raw["patient_hash"].notna(), None)
    if "patient_hash" not in out.columns:
        return np.ones(len(out), dtype=bool)
    no_patient = out["patient_hash"].isna().to_numpy() & keep
    report.add("missing patient id", int(no_patient.sum()), [f"row {i}" for i in np.flatnonzero(no_patient)[:5]])
    return ~no_patient


def _relative(path: str, root: str) -> str:
    """A path as named in reports: relative to the dataset root (absolute paths can hold patient IDs)."""
    rel = os.path.relpath(path, root)
    return rel if not rel.startswith("..") else os.path.basename(path)


def _canonical_id(value: object) -> str:
    """The same patient read as ``123`` or ``123.0`` (a float column with gaps) hashes identically."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return re.sub(r"\.0$", "", text) if re.fullmatch(r"\d+\.0", text) else text


def _scalar(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def frame_to_data_dicts(
    frame: pd.DataFrame,
    label_columns: str | Sequence[str] = "label",
    attribute_columns: Sequence[str] = (),
    label_key: str = "label",
    extra_columns: Sequence[Hashable] = (),
) -> list[dict[str, Any]]:
    """MONAI data dicts (``image``, ``label``, one key per attribute) from a manifest table.

    One label column gives a scalar ``float32`` label; several give a ``float32`` vector (NaN kept where missing,
    for masked losses). ``patient_hash`` and ``split`` are not passed on unless named in ``extra_columns``.

    Raises:
        KeyError: a named column is missing.
    """
    labels = [label_columns] if isinstance(label_columns, str) else list(label_columns)
    _check_columns(frame, ["image", *labels, *attribute_columns, *extra_columns], "requested", "the manifest table")
    if "patient_id" in attribute_columns or "patient_id" in extra_columns:
        raise ValueError("raw patient identifiers are never passed on; use 'patient_hash'.")
    label_values = frame[labels].to_numpy(dtype=np.float32)
    attr_values = {c: frame[c].tolist() for c in (*attribute_columns, *extra_columns)}
    images = frame["image"].astype(str).tolist()
    out = []
    for i, image in enumerate(images):
        d: dict[str, Any] = {"image": image}
        d[label_key] = label_values[i, 0] if len(labels) == 1 else label_values[i].copy()
        for c, vals in attr_values.items():
            d[str(c)] = _scalar(vals[i])
        out.append(d)
    return out


def load_manifest(
    csv_path: str | Path,
    label_columns: str | Sequence[str],
    attribute_columns: Sequence[str] = (),
    **kwargs: Any,
) -> tuple[list[dict[str, Any]], dict[str, dict[int, str]]]:
    """Load a manifest CSV straight into MONAI data dicts and the attribute code maps.

    ``kwargs`` go to :func:`read_manifest` (``image_column``, ``patient_column``, ``check_files``,
    ``missing_labels``, ``age_bins``, ``report`` ...). Rows with a missing image file are skipped and counted in
    the report (and logged), not raised. Use :func:`read_manifest` plus the splitters in
    :mod:`monai_fair.data.splits` / :mod:`monai_fair.data.sampling` when the manifest must be split first.

    Returns:
        ``(data_dicts, code_maps)``.
    """
    manifest = read_manifest(csv_path, label_columns, attribute_columns, **kwargs)
    attrs = list(attribute_columns)
    if "age_group" in manifest.frame.columns and "age_group" not in attrs:
        attrs.append("age_group")
    return frame_to_data_dicts(manifest.frame, label_columns, attrs), manifest.code_maps
