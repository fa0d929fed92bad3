# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Header-only scan of a DICOM folder into a de-identified manifest: one row per 2D image or per 3D series.

Each file is read with ``pydicom.dcmread(stop_before_pixels=True, specific_tags=...)`` (no pixel decoding), so a
scan of a whole archive costs a fraction of loading it. Slices are grouped by SeriesInstanceUID and put in spatial
order (ImagePositionPatient along the slice normal, as :class:`~monai_fair.data.dicom_series.DicomSeriesReader`
stacks them). The manifest holds codes, ages, salted hashes and file
paths, never names, IDs, dates or free text. Whatever cannot be used (not DICOM, truncated, no pixel data, a stray
localizer in a CT series ...) is skipped with a reason, logged and counted; the scan itself never fails on a bad
file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import struct
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pydicom
from pydicom.errors import InvalidDicomError

from monai_fair.data.codes import DEFAULT_AGE_BINS, SEX_NAMES, UNKNOWN, age_group_names
from monai_fair.data.dicom_header import DEMOGRAPHIC_KEYWORDS, DicomDemographics, extract_dicom_demographics
from monai_fair.data.dicom_series import slice_normal, spacing_problem
from monai_fair.data.manifest import Manifest, SkipReport
from monai_fair.data.patient_age import MAX_PLAUSIBLE_AGE
from monai_fair.data.privacy import hash_patient_id

__all__ = [
    "SCAN_KEYWORDS",
    "VOLUME_MODALITIES",
    "MANIFEST_COLUMNS",
    "DicomScanResult",
    "scan_dicom_folder",
    "load_dicom_manifest",
]

logger = logging.getLogger(__name__)

SCAN_KEYWORDS: tuple[str, ...] = DEMOGRAPHIC_KEYWORDS + (
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "InstanceNumber",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "SamplesPerPixel",
    "BitsAllocated",
    "Manufacturer",
)
# modalities whose same-series single-frame slices without geometry may still be stacked by InstanceNumber
VOLUME_MODALITIES: frozenset[str] = frozenset({"CT", "MR", "PT", "NM"})
MANIFEST_COLUMNS: tuple[str, ...] = (
    "image",
    "modality",
    "sex",
    "age",
    "age_group",
    "ethnic_group",
    "patient_hash",
    "n_slices",
    "series_hash",
    "slice_order",
    "age_source",
    "manufacturer",
    "demographics_note",
    "series_note",
)
_PIXEL_TAGS = {(0x7FE0, 0x0010), (0x7FE0, 0x0008), (0x7FE0, 0x0009)}
_LONG_LENGTH_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_UNDEFINED_LENGTH = 0xFFFFFFFF
_TAIL_BYTES = 1 << 16


@dataclass
class DicomScanResult:
    """What a folder scan found.

    Attributes:
        manifest: one row per 2D image or 3D series, columns :data:`MANIFEST_COLUMNS`.
        skipped: one row per unusable file: ``file`` (relative to the root) and ``reason``; no personal data.
        ethnic_group_names: code→name map of the ``ethnic_group`` column (alphabetical, so deterministic).
        age_group_names: code→name map of the ``age_group`` column.
        n_files: files looked at.
        note_counts: how often each demographics issue (unknown sex, unparseable age ...) occurred, per row.
    """

    manifest: pd.DataFrame
    skipped: pd.DataFrame
    ethnic_group_names: dict[int, str]
    age_group_names: dict[int, str]
    n_files: int
    note_counts: dict[str, int] = field(default_factory=dict)

    @property
    def skip_counts(self) -> dict[str, int]:
        """Number of skipped files per reason."""
        return {str(k): int(v) for k, v in self.skipped["reason"].value_counts().items()}

    def codes(self) -> dict[str, Any]:
        """The code→name maps and counts that travel with the manifest (JSON-serialisable)."""
        return {
            "sex": {str(k): v for k, v in SEX_NAMES.items()},
            "age_group": {str(k): v for k, v in self.age_group_names.items()},
            "ethnic_group": {str(k): v for k, v in self.ethnic_group_names.items()},
            "unknown": UNKNOWN,
            "n_files": self.n_files,
            "n_rows": int(len(self.manifest)),
            "n_skipped": int(len(self.skipped)),
            "skip_counts": self.skip_counts,
            "note_counts": self.note_counts,
        }

    def code_maps(self) -> dict[str, dict[int, str]]:
        """Code→name maps of the coded columns (``sex``, ``age_group``, ``ethnic_group``)."""
        return {
            "sex": dict(SEX_NAMES),
            "age_group": dict(self.age_group_names),
            "ethnic_group": dict(self.ethnic_group_names),
        }

    def with_labels(
        self,
        labels: str | os.PathLike | pd.DataFrame,
        label_columns: str | Sequence[str],
        id_column: str = "pid",
        salt: str | None = None,
    ) -> Manifest:
        """Join a per-patient label table (e.g. NLST's, keyed by ``pid`` = PatientID) onto the manifest.

        The table's ids are hashed with the same :func:`~monai_fair.data.privacy.hash_patient_id` (pass the salt
        the scan used) and matched to ``patient_hash``; raw ids never enter the result.

        Args:
            labels: CSV path or DataFrame with ``id_column`` and ``label_columns``.
            label_columns: label column(s), numeric.
            id_column: patient id column.
            salt: the salt the scan used.

        Returns:
            ``Manifest(frame, code_maps, skipped)``: manifest rows with labels; the skip report counts the scan's
            skipped files by reason, rows whose patient has no label row, and patients repeated in the table.

        Raises:
            FileNotFoundError: when the label CSV does not exist.
            KeyError: when a named column is missing.
            ValueError: when a label column is not numeric.
        """
        cols = [label_columns] if isinstance(label_columns, str) else list(label_columns)
        if isinstance(labels, pd.DataFrame):
            table = labels
        else:
            if not Path(labels).is_file():
                raise FileNotFoundError(f"label table {labels} does not exist.")
            table = pd.read_csv(labels, dtype={id_column: str})
        missing = [c for c in (id_column, *cols) if c not in table.columns]
        if missing:
            raise KeyError(f"label column(s) {missing} not found; available: {list(table.columns)}.")
        values = table[cols].apply(pd.to_numeric, errors="coerce")
        if (values.isna() & table[cols].notna()).any().any():
            raise ValueError(f"label columns {cols} must be numeric.")
        hashes = [hash_patient_id(_canonical_id(v), salt) if _canonical_id(v) else "" for v in table[id_column]]
        keyed = values.assign(patient_hash=hashes)
        keyed = keyed[keyed["patient_hash"] != ""]
        repeated = keyed["patient_hash"].duplicated(keep=False)
        report = SkipReport()
        for reason, n in self.skip_counts.items():
            report.add(f"scan: {reason}", n, self.skipped.loc[self.skipped["reason"] == reason, "file"].head(5))
        report.add("label table: patient repeated (all its rows ignored)", int(repeated.sum()))
        keyed = keyed[~repeated]
        frame = self.manifest.merge(keyed, on="patient_hash", how="left", validate="many_to_one")
        unlabeled = frame[cols].isna().any(axis=1)
        report.add(
            "no label row for the patient",
            int(unlabeled.sum()),
            [f"manifest row {i}" for i in np.flatnonzero(unlabeled.to_numpy())[:5]],
        )
        return Manifest(frame[~unlabeled].reset_index(drop=True), self.code_maps(), report)

    def write(self, folder: str | os.PathLike, prefix: str = "") -> dict[str, Path]:
        """Write ``manifest.csv``, ``skipped.csv`` and ``codes.json`` (optionally prefixed) into ``folder``.

        File lists of 3D series are written as JSON lists; :func:`load_dicom_manifest` reads them back.

        Returns:
            the paths written, keyed ``manifest``, ``skipped``, ``codes``.
        """
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "manifest": out / f"{prefix}manifest.csv",
            "skipped": out / f"{prefix}skipped.csv",
            "codes": out / f"{prefix}codes.json",
        }
        frame = self.manifest.copy()
        frame["image"] = [json.dumps(v) if isinstance(v, list) else v for v in frame["image"]]
        frame.to_csv(paths["manifest"], index=False)
        self.skipped.to_csv(paths["skipped"], index=False)
        paths["codes"].write_text(json.dumps(self.codes(), indent=2, sort_keys=True))
        return paths


def load_dicom_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest written by :meth:`DicomScanResult.write`; series file lists come back as Python lists."""
    frame = pd.read_csv(path, keep_default_na=False, na_values={"age": [""]})
    frame["image"] = [json.loads(v) if isinstance(v, str) and v.startswith("[") else v for v in frame["image"]]
    frame["age"] = frame["age"].astype(float)
    return frame


def _canonical_id(value: Any) -> str:
    """Patient ids read as ``123``, ``123.0`` or ``" 123"`` hash identically (as PatientID ``"123"`` does)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _sop_class_name(ds: pydicom.Dataset) -> str:
    uid = getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None) or ds.get("SOPClassUID")
    return pydicom.uid.UID(str(uid)).name if uid else "unknown SOP class"


def _pixel_data_problem(raw: Any, ds: pydicom.Dataset, size: int) -> str | None:
    """Why the pixel data of a header-only read is unusable, or None when it is complete.

    ``raw`` is the open file positioned where pydicom stopped (the pixel data element, or the end of file).
    """
    pos = raw.tell()
    if pos > size:
        return "truncated header (file ends inside an element)"
    if pos >= size:
        sop = _sop_class_name(ds)
        if "Image Storage" in sop:
            return "no pixel data in an image object (truncated or non-conformant file)"
        if "Directory" in sop:
            return "DICOMDIR (media directory, not an image)"
        return f"no pixel data ({sop})"
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    little = True if ts is None else bool(pydicom.uid.UID(str(ts)).is_little_endian)
    implicit = False if ts is None else bool(pydicom.uid.UID(str(ts)).is_implicit_VR)
    head = raw.read(12)
    if len(head) < 8:
        return "pixel data truncated (element header incomplete)"
    endian = "<" if little else ">"
    group, elem = struct.unpack(f"{endian}HH", head[:4])
    if (group, elem) not in _PIXEL_TAGS:
        return f"unexpected element ({group:04X},{elem:04X}) where pixel data should start"
    if implicit:
        (length,), header_len = struct.unpack(f"{endian}I", head[4:8]), 8
    elif head[4:6] in _LONG_LENGTH_VRS:
        if len(head) < 12:
            return "pixel data truncated (element header incomplete)"
        (length,), header_len = struct.unpack(f"{endian}I", head[8:12]), 12
    else:
        (length,), header_len = struct.unpack(f"{endian}H", head[6:8]), 8
    if length == _UNDEFINED_LENGTH:  # encapsulated (compressed) frames end with a sequence delimiter
        raw.seek(max(pos, size - _TAIL_BYTES))
        delimiter = b"\xfe\xff\xdd\xe0" if little else b"\xff\xfe\xe0\xdd"
        return None if delimiter in raw.read() else "pixel data truncated (encapsulated data has no end delimiter)"
    if size - pos - header_len < length:
        return "pixel data truncated (file shorter than the declared pixel data length)"
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        expected = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1) * frames
        expected = expected * int(ds.BitsAllocated) // 8
    except (AttributeError, TypeError, ValueError):
        return "Rows/Columns/BitsAllocated missing or invalid"
    if (group, elem) == (0x7FE0, 0x0010) and length < expected:
        return "pixel data shorter than Rows x Columns x frames"
    return None


def _read_file(path: Path, check_pixel_data: bool, force: bool) -> tuple[pydicom.Dataset | None, str | None]:
    """Header-only read of one file: the dataset, or None and a reason (no personal data in the reason)."""
    try:
        size = path.stat().st_size
        if size == 0:
            return None, "empty file"
        with open(path, "rb") as raw:
            ds = pydicom.dcmread(raw, stop_before_pixels=True, specific_tags=list(SCAN_KEYWORDS), force=force)
            problem = _pixel_data_problem(raw, ds, size) if check_pixel_data else None
    except InvalidDicomError:
        return None, "not a DICOM file (no DICM preamble)"
    except (EOFError, struct.error):
        return None, "truncated header"
    except OSError as e:
        return None, f"unreadable file ({type(e).__name__})"
    except Exception as e:  # noqa: BLE001 - any parser failure on a bad file is a skip, never a crash
        return None, f"unreadable DICOM header ({type(e).__name__})"
    if problem is not None:
        return None, problem
    if ds.get("Rows") is None or ds.get("Columns") is None:
        return None, "Rows/Columns missing"
    return ds, None


def _frames(ds: pydicom.Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def _text(ds: pydicom.Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else " ".join(str(value).split())


def _walk(root: Path, pattern: str | None) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if pattern is None or p.match(pattern):
                files.append(p)
    return files


class _Slice(NamedTuple):
    """What the grouping needs from one header, parsed once (pydicom element access is the scan's hot path)."""

    path: Path
    ds: pydicom.Dataset
    normal: tuple[float, ...] | None
    position: np.ndarray | None
    number: int | None
    rows: int
    cols: int
    frames: int
    demo_key: tuple[str, ...]

    @classmethod
    def of(cls, path: Path, ds: pydicom.Dataset) -> _Slice:
        normal = slice_normal(ds.get("ImageOrientationPatient"))
        try:
            position = np.asarray([float(v) for v in ds.get("ImagePositionPatient")], dtype=np.float64)
            position = position if position.shape == (3,) and np.isfinite(position).all() else None
        except (TypeError, ValueError):
            position = None
        try:
            number = int(ds.get("InstanceNumber"))
        except (TypeError, ValueError):
            number = None
        key = tuple(_text(ds, k) for k in ("PatientSex", "PatientAge", "PatientBirthDate", "PatientID", "EthnicGroup"))
        return cls(
            path,
            ds,
            None if normal is None else tuple(float(x) for x in normal),
            position,
            number,
            int(ds.Rows),
            int(ds.Columns),
            _frames(ds),
            key,
        )


def _volume(items: list[_Slice]) -> tuple[list[int], str]:
    """Indices (in slice order) of the slices forming the series' volume, and the ordering method.

    The volume is the largest group of single-frame slices sharing orientation and size (ties: the larger image,
    then the orientation key, so the choice never depends on file order); they are ordered by
    position along the normal, or by InstanceNumber for CT/MR/PT/NM series without geometry. No volume: ``[]``.
    """
    if len(items) < 2 or any(s.frames > 1 for s in items):
        return [], ""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, s in enumerate(items):
        key = None if s.normal is None else tuple(round(x, 3) + 0.0 for x in s.normal)
        groups[(key, s.rows, s.cols)].append(i)
    geometric = [(k, g) for k, g in groups.items() if k[0] is not None and len(g) >= 2]
    if geometric:
        # deterministic: most slices, then the larger image, then the orientation key (never the file order)
        best = max(geometric, key=lambda kg: (len(kg[1]), kg[0][1] * kg[0][2], kg[0]))[1]
        if all(items[i].position is not None for i in best):
            normal = np.asarray(items[best[0]].normal)
            pos = np.asarray([float(items[i].position @ normal) for i in best])
            return [best[int(j)] for j in np.argsort(pos, kind="stable")], "position"
    modality = _text(items[0].ds, "Modality").upper()
    if len(groups) == 1 and modality in VOLUME_MODALITIES and all(s.number is not None for s in items):
        return [int(j) for j in np.argsort([s.number for s in items], kind="stable")], "instance_number"
    return [], ""


class _Skips:
    """Files left out of the manifest, each with a reason, as paths relative to the scanned root (logged too)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rows: list[tuple[str, str]] = []

    def __call__(self, path: Path, reason: str) -> None:
        rel = path.relative_to(self.root).as_posix()
        self.rows.append((rel, reason))
        logger.info("skipped %s: %s", rel, reason)


def _read_series(files: list[Path], check_pixel_data: bool, force: bool, skip: _Skips) -> dict[str, list[_Slice]]:
    """Header records of the readable files grouped by SeriesInstanceUID (``file:<path>`` without one); unreadable
    files and repeated SOPInstanceUIDs are skipped."""
    series: dict[str, list[_Slice]] = defaultdict(list)
    seen_instances: set[str] = set()
    for path in files:
        ds, reason = _read_file(path, check_pixel_data, force)
        if ds is None:
            skip(path, reason or "unreadable")
            continue
        instance = _text(ds, "SOPInstanceUID")
        if instance and instance in seen_instances:  # the same image stored twice (copies, re-encodings)
            skip(path, "duplicate of an earlier file (same SOPInstanceUID)")
            continue
        seen_instances.add(instance)
        try:
            record = _Slice.of(path, ds)
        except Exception as e:  # noqa: BLE001 - a malformed value is a skip, never a crash
            skip(path, f"unreadable header values ({type(e).__name__})")
            continue
        uid = _text(ds, "SeriesInstanceUID")
        series[uid or f"file:{path}"].append(record)
    return series


def _misfit_reason(item: _Slice, kept: _Slice, n_kept: int) -> str:
    """Why a slice of a series is not part of the series' volume, in words that name the real difference."""
    parts = []
    if (item.rows, item.cols) != (kept.rows, kept.cols):
        parts.append(f"size {item.rows}x{item.cols} differs from the kept volume's {kept.rows}x{kept.cols}")
    if item.normal is None:
        parts.append("no usable ImageOrientationPatient")
    elif kept.normal is not None and not np.allclose(item.normal, kept.normal, atol=1e-3):
        parts.append("orientation differs from the kept volume's")
    what = "; ".join(parts) or "does not fit the kept volume"
    return (
        f"same SeriesInstanceUID but {what} ({n_kept} slices kept: the largest group of equal size and orientation, "
        "ties to the larger image)"
    )


def _series_units(
    series: dict[str, list[_Slice]], skip: _Skips, irregular_spacing: str = "skip"
) -> list[tuple[list[_Slice], str, str, str]]:
    """Manifest units ``(ordered slices, order method, series uid, series note)``: one volume per series that forms
    one, else one unit per file; slices that do not fit their volume (other geometry, repeated position) are
    skipped, and so is a volume with irregular slice spacing unless ``irregular_spacing="keep"`` (then noted)."""
    units: list[tuple[list[_Slice], str, str, str]] = []
    for uid, items in series.items():
        members, method = _volume(items)
        if not members:
            units.extend(([item], "", uid, "") for item in items)
            continue
        stack = [items[i] for i in members]
        if method == "position":
            normal = np.asarray(stack[0].normal)
            pos = [float(s.position @ normal) for s in stack]
            keep = [0] + [i for i in range(1, len(stack)) if not math.isclose(pos[i], pos[i - 1], abs_tol=1e-3)]
            for i in sorted(set(range(len(stack))) - set(keep)):
                skip(stack[i].path, "duplicate slice position in its series")
            stack = [stack[i] for i in keep]
        for i in sorted(set(range(len(items))) - set(members)):
            skip(items[i].path, _misfit_reason(items[i], stack[0], len(stack)))
        note = ""
        if method == "position" and len(stack) > 2:
            normal = np.asarray(stack[0].normal)
            problem = spacing_problem([float(s.position @ normal) for s in stack])
            if problem is not None and irregular_spacing == "skip":
                for s in stack:
                    skip(s.path, f"{problem}; series skipped (irregular_spacing='keep' keeps it with a note)")
                continue
            note = problem or ""
        units.append((stack, method if len(stack) > 1 else "", uid, note))
    return units


def _unit_image(stack: list[_Slice], series_as: str, files_in_folder: Counter[Path]) -> tuple[Any, int]:
    """``(image, n_slices)`` of a unit: the file, the series folder (when it holds exactly the series and
    ``series_as`` allows) or the ordered file list."""
    first = stack[0]
    if len(stack) == 1:
        return str(first.path), first.frames
    folder = first.path.parent
    same_folder = all(s.path.parent == folder for s in stack) and files_in_folder[folder] == len(stack)
    image = str(folder) if series_as in ("auto", "folder") and same_folder else [str(s.path) for s in stack]
    return image, len(stack)


def _unit_row(
    unit: tuple[list[_Slice], str, str, str],
    demo: DicomDemographics,
    image: Any,
    n_slices: int,
    notes: list[str],
    salt: str | None,
) -> dict[str, Any]:
    """The manifest row of one unit (ethnic group still as text)."""
    stack, method, uid, series_note = unit
    first = stack[0]
    real_uid = uid if not uid.startswith("file:") else ""
    return {
        "image": image,
        "modality": _text(first.ds, "Modality").upper(),
        "sex": demo.sex,
        "age": demo.age,
        "age_group": demo.age_group,
        "ethnic_group": demo.ethnic_group,
        "patient_hash": demo.patient_hash,
        "n_slices": n_slices,
        "series_hash": hash_patient_id(real_uid, salt) if real_uid else "",
        "slice_order": method,
        "age_source": demo.age_source,
        "manufacturer": _text(first.ds, "Manufacturer"),
        "demographics_note": "; ".join(notes),
        "series_note": series_note,
    }


def _unit_rows(
    units: list[tuple[list[_Slice], str, str, str]],
    files: list[Path],
    skip: _Skips,
    age_bins: Sequence[float],
    max_age: float,
    salt: str | None,
    series_as: str,
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Manifest rows of the units and the counts of demographics notes; a unit whose demographics cannot be read is
    skipped (arguments as in :func:`scan_dicom_folder`)."""
    files_in_folder = Counter(p.parent for p in files)
    rows = []
    note_counts: Counter[str] = Counter()
    for unit in units:
        stack = unit[0]
        try:
            demo = extract_dicom_demographics(stack[0].ds, age_bins, max_age, salt)
        except Exception as e:  # noqa: BLE001 - a malformed value is a skip, never a crash
            for s in stack:
                skip(s.path, f"unreadable demographics values ({type(e).__name__})")
            continue
        notes = list(demo.reasons)
        if len({s.demo_key for s in stack}) > 1:
            notes.append("slices disagree on demographics; first slice used")
        note_counts.update(notes)
        image, n_slices = _unit_image(stack, series_as, files_in_folder)
        rows.append(_unit_row(unit, demo, image, n_slices, notes, salt))
    return rows, note_counts


def _manifest_frame(rows: list[dict[str, Any]]) -> tuple[pd.DataFrame, dict[str, int]]:
    """The manifest with ethnic groups coded (sorted names → 0, 1, ...; none → ``UNKNOWN``) and integer columns."""
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    names = sorted({e for e in manifest["ethnic_group"] if e})
    ethnic_codes = {name: i for i, name in enumerate(names)}
    manifest["ethnic_group"] = [ethnic_codes.get(e, UNKNOWN) for e in manifest["ethnic_group"]]
    for col in ("sex", "age_group", "ethnic_group", "n_slices"):
        manifest[col] = manifest[col].astype("int64")
    manifest["age"] = manifest["age"].astype("float64")
    return manifest, ethnic_codes


def scan_dicom_folder(
    root: str | os.PathLike,
    age_bins: Sequence[float] = DEFAULT_AGE_BINS,
    salt: str | None = None,
    max_age: float = MAX_PLAUSIBLE_AGE,
    pattern: str | None = None,
    series_as: str = "auto",
    check_pixel_data: bool = True,
    force: bool = False,
    output_dir: str | os.PathLike | None = None,
    irregular_spacing: str = "skip",
) -> DicomScanResult:
    """Scan a folder of DICOM files (header only) into a de-identified manifest and a skip report.

    Rows: every multi-frame file and every single image is a 2D row (``n_slices`` = frames); single-frame slices
    of one SeriesInstanceUID with a common orientation and size are one 3D row ordered along the slice normal
    (``slice_order="position"``), or by InstanceNumber for CT/MR/PT/NM series without geometry. Slices of a
    series that do not fit its volume (a localizer, a duplicate position) are skipped with a reason.

    Args:
        root: folder scanned recursively (files in sorted order, any extension).
        age_bins: ascending lower edges of the ``age_group`` codes.
        salt: salt of the patient hash (default ``$MONAI_FAIR_SALT``).
        max_age: ages above this are unknown.
        pattern: optional glob a file name must match (e.g. ``"*.dcm"``); other files are ignored, not skipped.
        series_as: how a 3D row names its slices in ``image``: ``"folder"`` (the series folder; only when the
            folder holds exactly that series, else the file list), ``"files"`` (the spatially ordered file list,
            load it with :class:`~monai_fair.data.dicom_series.DicomSeriesReader`) or ``"auto"`` (= ``"folder"``).
        check_pixel_data: verify the pixel data element is complete (catches truncated files without decoding).
        force: read files without the DICM preamble (``pydicom.dcmread(force=True)``).
        output_dir: when given, :meth:`DicomScanResult.write` the result there.
        irregular_spacing: a position-ordered series whose slice gaps are not one spacing (a missing slice):
            ``"skip"`` (default; every slice skipped with the reason) or ``"keep"`` (kept, reason in ``series_note``).

    Returns:
        a :class:`DicomScanResult`.

    Raises:
        NotADirectoryError: when ``root`` is not a folder.
        ValueError: for an unknown ``series_as`` or ``irregular_spacing``.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"DICOM root {root} is not a folder.")
    if series_as not in ("auto", "folder", "files"):
        raise ValueError(f"series_as must be 'auto', 'folder' or 'files', got {series_as!r}.")
    if irregular_spacing not in ("skip", "keep"):
        raise ValueError(f"irregular_spacing must be 'skip' or 'keep', got {irregular_spacing!r}.")
    files = _walk(root, pattern)
    skip = _Skips(root)
    units = _series_units(_read_series(files, check_pixel_data, force, skip), skip, irregular_spacing)
    rows, note_counts = _unit_rows(units, files, skip, age_bins, max_age, salt, series_as)
    manifest, ethnic_codes = _manifest_frame(rows)
    skipped_frame = pd.DataFrame(skip.rows, columns=["file", "reason"]).sort_values("file", kind="stable")
    result = DicomScanResult(
        manifest=manifest,
        skipped=skipped_frame.reset_index(drop=True),
        ethnic_group_names={i: n for n, i in ethnic_codes.items()},
        age_group_names=age_group_names(age_bins),
        n_files=len(files),
        note_counts=dict(note_counts),
    )
    if skip.rows:
        logger.warning(
            "DICOM scan of %d files: %d rows, skipped %d files %s",
            len(files),
            len(manifest),
            len(skip.rows),
            result.skip_counts,
        )
    if output_dir is not None:
        result.write(output_dir)
    return result
