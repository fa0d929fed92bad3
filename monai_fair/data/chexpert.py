# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""CheXpert manifests (``train.csv``/``valid.csv`` + the CHEXPERT DEMO race table) and the CheXpert-labeler label
conventions shared with MIMIC-CXR (14 labels, values 1 / 0 / -1 uncertain / blank not mentioned).

Race grouping (default, :data:`CHEXPERT_RACE_RULES`): ``PRIMARY_RACE`` is matched case-insensitively, first rule
wins: contains "white" or "caucasian" → White; "black" or "african american" → Black; "asian" → Asian; otherwise
"unknown"/"refused"/"declined"/"unable"/blank → unknown (-1); anything else (Native American, Pacific Islander,
Other, ...) → Other. "White" is tried before "Asian" because "Caucasian" contains "asian"; ethnicity (Hispanic or
not) does not change the race group (it is kept as its own ``ethnicity`` code).
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .codes import DEFAULT_AGE_BINS, SEX_NAMES
from .manifest import (
    Manifest,
    SkipReport,
    add_age_group,
    encode_categories,
    encode_sex_column,
    group_by_substring,
    hash_column,
)

__all__ = [
    "CHEXPERT_LABELS",
    "CHEXPERT_RACE_RULES",
    "CHEXPERT_RACE_UNKNOWN",
    "UNCERTAINTY_POLICIES",
    "apply_uncertainty_policy",
    "binary_disease_task",
    "read_chexpert_demographics",
    "build_chexpert_manifest",
]

# the 14 CheXpert-labeler observations, in CheXpert's train.csv order
CHEXPERT_LABELS: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)

CHEXPERT_RACE_RULES: tuple[tuple[str, str], ...] = (
    ("white", "White"),
    ("caucasian", "White"),
    ("black", "Black"),
    ("african american", "Black"),
    ("asian", "Asian"),
)
CHEXPERT_RACE_UNKNOWN: tuple[str, ...] = ("unknown", "refused", "declined", "unable")

UNCERTAINTY_POLICIES = ("ignore", "zeros", "ones")


def apply_uncertainty_policy(
    frame: pd.DataFrame, labels: Sequence[str], uncertain: str = "ignore", blank: str = "zeros"
) -> pd.DataFrame:
    """Map CheXpert-labeler values to training targets, returning a copy.

    Args:
        frame: table with the raw label columns (1, 0, -1, blank).
        labels: the label columns to map.
        uncertain: ``-1`` becomes NaN (``"ignore"``: excluded from loss and metrics), 0 (``"zeros"``, U-Zeros) or
            1 (``"ones"``, U-Ones).
        blank: a blank ("not mentioned") becomes 0 (``"zeros"``, the labeler's negative-by-omission, default) or NaN
            (``"ignore"``).

    Raises:
        ValueError: an unknown policy, or label values other than 1/0/-1/blank.
    """
    if uncertain not in UNCERTAINTY_POLICIES:
        raise ValueError(f"uncertain must be one of {UNCERTAINTY_POLICIES}, got {uncertain!r}.")
    if blank not in ("zeros", "ignore"):
        raise ValueError(f"blank must be 'zeros' or 'ignore', got {blank!r}.")
    out = frame.copy()
    for col in labels:
        v = pd.to_numeric(out[col], errors="coerce")
        bad = ~(v.isin([1.0, 0.0, -1.0]) | v.isna()) | (out[col].notna() & v.isna())
        if bad.any():
            raise ValueError(f"label {col!r} has values other than 1/0/-1/blank, e.g. {out[col][bad].iloc[0]!r}.")
        result = v.where(v != -1.0, {"ignore": np.nan, "zeros": 0.0, "ones": 1.0}[uncertain])
        out[col] = result.where(v.notna(), 0.0 if blank == "zeros" else np.nan)
    return out


def binary_disease_task(
    frame: pd.DataFrame, disease: str, no_finding: str = "No Finding", label_column: str = "label"
) -> tuple[pd.DataFrame, int]:
    """The "disease vs No Finding" study task on raw labeler values: y=1 where ``disease == 1``, y=0 where
    ``No Finding == 1`` (and the disease is not positive); every other row (uncertain disease without No Finding,
    other findings only) is excluded.

    Returns:
        ``(rows kept with a new label column, number of rows excluded)``.

    Raises:
        KeyError: the disease or No Finding column is missing.
    """
    for col in (disease, no_finding):
        if col not in frame.columns:
            raise KeyError(f"label column {col!r} not found; available: {list(frame.columns)}.")
    d = pd.to_numeric(frame[disease], errors="coerce")
    nf = pd.to_numeric(frame[no_finding], errors="coerce")
    pos = d == 1.0
    neg = (nf == 1.0) & ~pos
    kept = frame[pos | neg].copy()
    kept[label_column] = pos[pos | neg].astype(np.float32).to_numpy()
    return kept, int(len(frame) - len(kept))


_PATIENT_RE = re.compile(r"(patient\d+)")


def read_chexpert_demographics(path: str | Path) -> pd.DataFrame:
    """Read the CHEXPERT DEMO table (``.csv``, or ``.xlsx`` when ``openpyxl`` is installed).

    Raises:
        FileNotFoundError: missing file.
        ImportError: an ``.xlsx`` table without ``openpyxl`` (convert it to CSV, or install openpyxl).
        KeyError: the table lacks ``PATIENT`` or ``PRIMARY_RACE``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CheXpert demographics table {path} does not exist.")
    if path.suffix.lower() in (".xlsx", ".xls"):
        if importlib.util.find_spec("openpyxl") is None:
            raise ImportError(
                f"reading {path.name} needs openpyxl; install it or save the sheet as CSV ({path.stem}.csv)."
            )
        table = pd.read_excel(path, engine="openpyxl")
    else:
        table = pd.read_csv(path)
    table.columns = [str(c).strip().upper() for c in table.columns]
    missing = [c for c in ("PATIENT", "PRIMARY_RACE") if c not in table.columns]
    if missing:
        raise KeyError(f"demographics table {path} lacks columns {missing}; has {list(table.columns)}.")
    return table


def _find_demo_table(dataset_dir: Path) -> Path | None:
    for folder in (dataset_dir, dataset_dir.parent):
        for name in ("CHEXPERT DEMO.csv", "CHEXPERT DEMO.xlsx", "chexpert_demo.csv"):
            if (folder / name).is_file():
                return folder / name
    return None


def _resolve_dataset_dir(dataset_dir: Path) -> Path:
    if (dataset_dir / "train.csv").is_file() or (dataset_dir / "valid.csv").is_file():
        return dataset_dir
    for name in ("CheXpert-v1.0-small", "CheXpert-v1.0"):
        if (dataset_dir / name / "train.csv").is_file():
            return dataset_dir / name
    raise FileNotFoundError(f"no CheXpert train.csv/valid.csv in {dataset_dir} (or its CheXpert-v1.0[-small]/).")


def build_chexpert_manifest(
    dataset_dir: str | Path,
    demographics: str | Path | None = None,
    csv_names: Sequence[str] = ("train.csv", "valid.csv"),
    frontal_only: bool = True,
    uncertain: str = "ignore",
    blank: str = "zeros",
    task: str | None = None,
    race_rules: Sequence[tuple[str, str]] = CHEXPERT_RACE_RULES,
    race_unknown: Sequence[str] = CHEXPERT_RACE_UNKNOWN,
    age_bins: Sequence[float] = DEFAULT_AGE_BINS,
    check_files: bool = True,
    salt: str | None = None,
) -> Manifest:
    """CheXpert images with labels, sex, age, race and hashed patient, one row per image.

    Args:
        dataset_dir: the ``CheXpert-v1.0-small`` (or ``-v1.0``) folder, or the folder holding it.
        demographics: the CHEXPERT DEMO table; default: ``CHEXPERT DEMO.csv|.xlsx`` in ``dataset_dir`` or its parent.
            Without one, ``race`` is unknown (-1) for everybody (counted in the report).
        csv_names: the label CSVs to read; their stem (``train``/``valid``) becomes ``split`` (``valid`` → ``val``).
        frontal_only: keep frontal views only (``Frontal/Lateral == "Frontal"``).
        uncertain: policy for -1 labels (see :func:`apply_uncertainty_policy`).
        blank: policy for blank labels.
        task: a label name for the binary "disease vs No Finding" task (adds ``label``), or None for all 14.
        race_rules: substring rules on ``PRIMARY_RACE`` (see :func:`~monai_fair.data.manifest.group_by_substring`).
        race_unknown: substrings of unknown race values.
        age_bins: lower edges of the ``age_group`` codes.
        check_files: skip (and count) images that do not exist.
        salt: salt for patient hashing.

    Returns:
        ``Manifest`` with columns ``image``, the 14 labels (or ``label`` too with ``task``), ``view``, ``sex``,
        ``age``, ``age_group``, ``race``, ``ethnicity``, ``patient_hash``, ``split``.
    """
    root = _resolve_dataset_dir(Path(dataset_dir))
    report = SkipReport()
    raw, patient = _read_label_rows(root, csv_names, frontal_only, task, report)
    labels = apply_uncertainty_policy(raw, CHEXPERT_LABELS, uncertain=uncertain, blank=blank)

    out = pd.DataFrame({"image": _image_paths(root, raw["Path"])})
    for col in CHEXPERT_LABELS:
        out[col] = labels[col].astype(np.float32).to_numpy()
    if task is not None:
        out["label"] = raw["label"].to_numpy(np.float32)
    out["view"] = raw["AP/PA"].fillna("").astype(str).to_numpy() if "AP/PA" in raw.columns else ""
    out["sex"] = encode_sex_column(raw["Sex"])
    out["age"] = pd.to_numeric(raw["Age"], errors="coerce").to_numpy(float)
    code_maps: dict[str, dict[int, str]] = {"sex": dict(SEX_NAMES)}
    code_maps["age_group"] = add_age_group(out, age_bins)

    table_path = Path(demographics) if demographics is not None else _find_demo_table(root)
    race_raw, eth_raw = _race_and_ethnicity(table_path, patient, report)
    out["race"], code_maps["race"] = group_by_substring(race_raw, race_rules, race_unknown, other="Other")
    # declined/unknown ethnicity is missing, not a category of its own
    unknown_eth = {v for v in set(map(str, eth_raw)) if any(u in v.lower() for u in race_unknown)}
    eth = [None if str(v) in unknown_eth else v for v in eth_raw]
    out["ethnicity"], code_maps["ethnicity"] = encode_categories(eth)
    out["patient_hash"] = hash_column(patient, salt)
    out["split"] = raw["split"].to_numpy()

    if check_files:
        exists = np.array([os.path.isfile(p) for p in out["image"]], dtype=bool)
        report.add("missing image file", int((~exists).sum()), out["image"][~exists].tolist()[:5])
        out = out[exists].reset_index(drop=True)
    return Manifest(out, code_maps, report)


def _read_label_rows(
    root: Path, csv_names: Sequence[str], frontal_only: bool, task: str | None, report: SkipReport
) -> tuple[pd.DataFrame, pd.Series]:
    """The rows of the label CSVs (with ``split``) that are kept, and their patient ids; lateral views (with
    ``frontal_only``), paths without a patient id and, with ``task``, rows outside the task are counted skips.

    Raises:
        FileNotFoundError: a label CSV is missing.
        KeyError: a label CSV lacks a needed column.
    """
    frames = []
    for name in csv_names:
        path = root / name
        if not path.is_file():
            raise FileNotFoundError(f"CheXpert label file {path} does not exist.")
        t = pd.read_csv(path)
        missing = [c for c in ("Path", "Sex", "Age", "Frontal/Lateral", *CHEXPERT_LABELS) if c not in t.columns]
        if missing:
            raise KeyError(f"{path} lacks columns {missing}.")
        split = Path(name).name.split(".")[0]
        t["split"] = {"valid": "val", "validation": "val"}.get(split, split)
        frames.append(t)
    raw = pd.concat(frames, ignore_index=True)
    if frontal_only:
        lateral = raw["Frontal/Lateral"].astype(str).str.strip().str.lower() != "frontal"
        report.add("lateral view", int(lateral.sum()))
        raw = raw[~lateral].reset_index(drop=True)

    patient = raw["Path"].astype(str).str.extract(_PATIENT_RE, expand=False)
    no_patient = patient.isna()
    report.add("no patient id in Path", int(no_patient.sum()), raw["Path"][no_patient].tolist()[:5])
    raw, patient = raw[~no_patient].reset_index(drop=True), patient[~no_patient].reset_index(drop=True)

    if task is not None:
        raw, excluded = binary_disease_task(raw, task)
        report.add(f"neither {task} nor No Finding", excluded)
        patient = patient.loc[raw.index].reset_index(drop=True)
        raw = raw.reset_index(drop=True)
    return raw, patient


def _race_and_ethnicity(table_path: Path | None, patient: pd.Series, report: SkipReport) -> tuple[list, list]:
    """Raw ``PRIMARY_RACE`` and ``ETHNICITY`` per row from the demographics table (None where unknown)."""
    if table_path is None:
        report.add("no demographics table (race unknown)", len(patient))
        return [None] * len(patient), [None] * len(patient)
    demo = read_chexpert_demographics(table_path)
    demo_patient = demo["PATIENT"].astype(str).str.extract(_PATIENT_RE, expand=False)
    demo = demo.assign(_patient=demo_patient).dropna(subset=["_patient"]).drop_duplicates("_patient", keep="last")
    by_patient = demo.set_index("_patient")
    race_raw = patient.map(by_patient["PRIMARY_RACE"]).tolist()
    eth_raw = patient.map(by_patient["ETHNICITY"]).tolist() if "ETHNICITY" in by_patient else [None] * len(patient)
    not_in_table = ~patient.isin(by_patient.index)
    report.add("patient not in demographics table (race unknown)", int(not_in_table.sum()))
    return race_raw, eth_raw


def _image_paths(root: Path, rel: pd.Series) -> np.ndarray:
    """Absolute image paths; CheXpert paths start with the dataset folder name (``CheXpert-v1.0-small/train/...``)."""
    rel = rel.astype(str).str.strip()
    under_parent = rel.str.split("/", n=1).str[0] == root.name
    parent, here = os.path.abspath(root.parent), os.path.abspath(root)
    joined = np.where(under_parent, parent + os.sep + rel, here + os.sep + rel)
    return np.where(rel.str.startswith(os.sep), rel, joined)
