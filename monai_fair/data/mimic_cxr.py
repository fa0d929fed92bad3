# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""MIMIC-CXR-JPG manifests joined with MIMIC-IV demographics.

Reads the dataset's own layout::

    <dataset_dir>/mimic-cxr-2.0.0-metadata.csv[.gz]   dicom_id, subject_id, study_id, ViewPosition, StudyDate, ...
    <dataset_dir>/mimic-cxr-2.0.0-split.csv[.gz]      dicom_id, study_id, subject_id, split (train/validate/test)
    <dataset_dir>/mimic-cxr-2.0.0-chexpert.csv[.gz]   subject_id, study_id, 14 CheXpert-labeler labels
    <dataset_dir>/files/p10/p10000032/s50414267/<dicom_id>.jpg
    <mimic_iv_dir>/hosp/patients.csv[.gz]             subject_id, gender, anchor_age, anchor_year, ...
    <mimic_iv_dir>/hosp/admissions.csv[.gz]           subject_id, hadm_id, admittime, insurance, race|ethnicity, ...

Choices (as in the Marcinkevics et al. preprocessing, where they are not stated otherwise):

- Frontal views only (``ViewPosition`` PA or AP; other/blank views are counted and left out).
- Race and insurance come from each subject's **last** admission (largest ``admittime``; rows without one count as
  earliest). Subjects without an admission get unknown race/insurance (counted).
- Age at the study = ``anchor_age + (study year - anchor_year)`` when ``StudyDate`` and ``anchor_year`` exist
  (both are shifted by the same per-patient offset), else ``anchor_age``. Dates themselves never leave ingestion.
- Race grouping (default :data:`MIMIC_RACE_RULES`, case-insensitive, first rule wins): "hispanic"/"latino"/
  "south american" → HISPANIC/LATINO; "black"/"african" → BLACK; "asian" → ASIAN; "white"/"portuguese" → WHITE;
  "unknown"/"unable to obtain"/"declined" → unknown (-1); everything else (other, multiple, American Indian, Pacific
  Islander) → OTHER. Codes: WHITE 0, BLACK 1, HISPANIC/LATINO 2, ASIAN 3, OTHER 4 (:data:`MIMIC_RACE_GROUPS`).
  Pass your own ``race_rules``/``race_other`` to regroup (codes then follow the rules' order), or
  ``race_grouping="raw"`` to code every distinct string.
- The official split's ``validate`` is called ``val``.

The output holds no subject/study/dicom IDs and no dates (the image path necessarily contains the IDs; it is the
file to read, not a column to report).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .chexpert import CHEXPERT_LABELS, apply_uncertainty_policy, binary_disease_task
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
    "MIMIC_CXR_LABELS",
    "MIMIC_RACE_RULES",
    "MIMIC_RACE_UNKNOWN",
    "MIMIC_RACE_GROUPS",
    "FRONTAL_VIEWS",
    "find_table",
    "mimic_cxr_image_path",
    "build_mimic_cxr_manifest",
]

MIMIC_CXR_LABELS: tuple[str, ...] = CHEXPERT_LABELS
FRONTAL_VIEWS: tuple[str, ...] = ("PA", "AP")

MIMIC_RACE_RULES: tuple[tuple[str, str], ...] = (
    ("hispanic", "HISPANIC/LATINO"),
    ("latino", "HISPANIC/LATINO"),
    ("south american", "HISPANIC/LATINO"),
    ("black", "BLACK"),
    ("african", "BLACK"),
    ("asian", "ASIAN"),
    ("white", "WHITE"),
    ("portuguese", "WHITE"),
)
MIMIC_RACE_UNKNOWN: tuple[str, ...] = ("unknown", "unable to obtain", "declined")
# codes of the coarse race groups: WHITE (the usual reference group) first
MIMIC_RACE_GROUPS: tuple[str, ...] = ("WHITE", "BLACK", "HISPANIC/LATINO", "ASIAN", "OTHER")


def find_table(folder: str | Path, stem: str) -> Path:
    """``<folder>/<stem>.csv.gz`` or ``<folder>/<stem>.csv``.

    Raises:
        FileNotFoundError: neither exists.
    """
    folder = Path(folder)
    for name in (f"{stem}.csv.gz", f"{stem}.csv"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"neither {stem}.csv.gz nor {stem}.csv found in {folder}.")


def mimic_cxr_image_path(dataset_dir: str | Path, subject_id: int, study_id: int, dicom_id: str) -> Path:
    """``files/p{first 2 digits of subject}/p{subject_id}/s{study_id}/{dicom_id}.jpg`` under ``dataset_dir``."""
    s = str(int(subject_id))
    return Path(dataset_dir) / "files" / f"p{s[:2]}" / f"p{s}" / f"s{int(study_id)}" / f"{dicom_id}.jpg"


def _require(frame: pd.DataFrame, columns: Sequence[str], source: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{source} lacks columns {missing}; has {list(frame.columns)}.")


def _last_admission(admissions: pd.DataFrame) -> pd.DataFrame:
    """One row per subject: the admission with the largest ``admittime`` (ties and missing times: file order)."""
    adm = admissions.reset_index(drop=True).assign(_order=np.arange(len(admissions)))
    if "admittime" in adm.columns:
        adm["_time"] = pd.to_datetime(adm["admittime"], errors="coerce")
        adm = adm.sort_values(["_time", "_order"], na_position="first", kind="mergesort")
    return adm.drop_duplicates("subject_id", keep="last").set_index("subject_id")


def build_mimic_cxr_manifest(
    dataset_dir: str | Path,
    mimic_iv_dir: str | Path | None = None,
    views: Sequence[str] = FRONTAL_VIEWS,
    uncertain: str = "ignore",
    blank: str = "zeros",
    task: str | None = None,
    race_grouping: str = "coarse",
    race_rules: Sequence[tuple[str, str]] = MIMIC_RACE_RULES,
    race_unknown: Sequence[str] = MIMIC_RACE_UNKNOWN,
    race_other: str | None = "OTHER",
    age_bins: Sequence[float] = DEFAULT_AGE_BINS,
    check_files: bool = True,
    salt: str | None = None,
) -> Manifest:
    """MIMIC-CXR-JPG images (one row per image) with labels and MIMIC-IV demographics.

    Args:
        dataset_dir: the MIMIC-CXR-JPG root (holding the three ``mimic-cxr-2.0.0-*.csv[.gz]`` and ``files/``).
        mimic_iv_dir: the MIMIC-IV root (holding ``hosp/``); default ``<dataset_dir>/mimic-iv`` (the demo layout).
        views: ``ViewPosition`` values kept (default frontal: PA, AP).
        uncertain: policy for uncertain (-1) labels: ``ignore`` (NaN), ``zeros`` or ``ones``.
        blank: policy for blank (not mentioned) labels: ``zeros`` or ``ignore``.
        task: a label name for the binary study task "disease vs No Finding" (adds ``label``; uncertain disease
            labels without No Finding are excluded), or None to keep the 14 labels only.
        race_grouping: ``"coarse"`` (substring rules) or ``"raw"`` (every distinct string is its own code).
        race_rules: substring rules for ``"coarse"``.
        race_unknown: substrings of unknown race values.
        race_other: catch-all group name (None: unmatched values are unknown).
        age_bins: lower edges of the ``age_group`` codes.
        check_files: skip (and count) images that do not exist.
        salt: salt for patient hashing.

    Returns:
        ``Manifest`` whose frame has ``image`` (absolute path), the 14 labels (+ ``label`` with ``task``), ``view``,
        ``sex``, ``age``, ``age_group``, ``race``, ``insurance``, ``patient_hash``, ``split``; code maps for
        ``sex``, ``age_group``, ``race``, ``insurance``.

    Raises:
        FileNotFoundError: a table is missing.
        KeyError: a table lacks a needed column.
    """
    if race_grouping not in ("coarse", "raw"):
        raise ValueError(f"race_grouping must be 'coarse' or 'raw', got {race_grouping!r}.")
    root = Path(dataset_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"MIMIC-CXR-JPG folder {root} does not exist.")
    iv = Path(mimic_iv_dir) if mimic_iv_dir is not None else root / "mimic-iv"
    if not (iv / "hosp").is_dir():
        raise FileNotFoundError(f"MIMIC-IV folder {iv} has no hosp/ (pass mimic_iv_dir).")
    report = SkipReport()
    meta, split, lab, patients, admissions = _read_tables(root, iv)
    race_col = "race" if "race" in admissions.columns else "ethnicity"
    frame = _join_images(meta, lab, split, views, task, report)
    labels = apply_uncertainty_policy(frame, MIMIC_CXR_LABELS, uncertain=uncertain, blank=blank)

    pat = patients.drop_duplicates("subject_id", keep="last").set_index("subject_id")
    adm = _last_admission(admissions)
    subj = frame["subject_id"]
    no_patient = ~subj.isin(pat.index)
    report.add("subject not in patients (sex/age unknown)", int(no_patient.sum()))
    no_adm = ~subj.isin(adm.index)
    report.add("subject without admission (race/insurance unknown)", int(no_adm.sum()))

    out = pd.DataFrame({"image": _image_paths(root, frame)})
    for col in MIMIC_CXR_LABELS:
        out[col] = labels[col].astype(np.float32).to_numpy()
    if task is not None:
        out["label"] = frame["label"].to_numpy(np.float32)
    out["view"] = frame["view"].to_numpy()
    out["sex"] = encode_sex_column(subj.map(pat["gender"]))
    out["age"] = _age_at_study(frame, pat).to_numpy(float)
    code_maps: dict[str, dict[int, str]] = {"sex": dict(SEX_NAMES)}
    code_maps["age_group"] = add_age_group(out, age_bins)
    race_raw = subj.map(adm[race_col]).tolist()
    if race_grouping == "coarse":
        groups = list(dict.fromkeys([g for _, g in race_rules] + ([race_other] if race_other else [])))
        order = MIMIC_RACE_GROUPS if sorted(groups) == sorted(MIMIC_RACE_GROUPS) else None
        out["race"], code_maps["race"] = group_by_substring(race_raw, race_rules, race_unknown, race_other, order)
    else:
        out["race"], code_maps["race"] = encode_categories(race_raw)
    out["insurance"], code_maps["insurance"] = encode_categories(subj.map(adm["insurance"]).tolist())
    out["patient_hash"] = hash_column(subj, salt)
    out["split"] = frame["split"].to_numpy()

    if check_files:
        exists = np.array([os.path.isfile(p) for p in out["image"]], dtype=bool)
        report.add("missing image file", int((~exists).sum()), out["image"][~exists].tolist()[:5])
        out = out[exists].reset_index(drop=True)
    return Manifest(out, code_maps, report)


def _read_tables(root: Path, iv: Path) -> tuple[pd.DataFrame, ...]:
    """The MIMIC-CXR metadata, split and label tables and the MIMIC-IV patients and admissions tables.

    Raises:
        FileNotFoundError: a table is missing.
        KeyError: a table lacks a needed column.
    """
    meta_path = find_table(root, "mimic-cxr-2.0.0-metadata")
    meta = pd.read_csv(meta_path, dtype={"dicom_id": str})
    _require(meta, ["dicom_id", "subject_id", "study_id", "ViewPosition"], meta_path)
    split_path = find_table(root, "mimic-cxr-2.0.0-split")
    split = pd.read_csv(split_path, dtype={"dicom_id": str})
    _require(split, ["dicom_id", "split"], split_path)
    lab_path = find_table(root, "mimic-cxr-2.0.0-chexpert")
    lab = pd.read_csv(lab_path)
    _require(lab, ["subject_id", "study_id", *MIMIC_CXR_LABELS], lab_path)
    pat_path = find_table(iv / "hosp", "patients")
    patients = pd.read_csv(pat_path)
    _require(patients, ["subject_id", "gender", "anchor_age"], pat_path)
    adm_path = find_table(iv / "hosp", "admissions")
    admissions = pd.read_csv(adm_path)
    race_col = "race" if "race" in admissions.columns else "ethnicity"
    _require(admissions, ["subject_id", race_col, "insurance"], adm_path)
    return meta, split, lab, patients, admissions


def _join_images(
    meta: pd.DataFrame,
    lab: pd.DataFrame,
    split: pd.DataFrame,
    views: Sequence[str],
    task: str | None,
    report: SkipReport,
) -> pd.DataFrame:
    """Images of the kept views joined to their study's labels and their official split (and, with ``task``, the
    binary task label); skips are counted in ``report``."""
    view = meta["ViewPosition"].fillna("").astype(str).str.strip().str.upper()
    keep_view = view.isin([v.upper() for v in views])
    report.add("view not in " + "/".join(views), int((~keep_view).sum()))
    meta = meta[keep_view].assign(view=view[keep_view])

    frame = meta.merge(lab[["subject_id", "study_id", *MIMIC_CXR_LABELS]], on=["subject_id", "study_id"], how="left")
    # a study missing from the labeler table (not: all labels blank, which is a valid "nothing mentioned" study)
    in_table = frame.set_index(["subject_id", "study_id"]).index.isin(lab.set_index(["subject_id", "study_id"]).index)
    report.add("study not in chexpert labels", int((~in_table).sum()))
    frame = frame[in_table].reset_index(drop=True)

    frame = frame.merge(split[["dicom_id", "split"]].drop_duplicates("dicom_id"), on="dicom_id", how="left")
    frame["split"] = frame["split"].fillna("").astype(str).str.strip().replace({"validate": "val", "validation": "val"})
    report.add("image not in official split (split blank)", int((frame["split"] == "").sum()))

    if task is not None:
        frame, excluded = binary_disease_task(frame, task)
        report.add(f"neither {task} nor No Finding", excluded)
        frame = frame.reset_index(drop=True)
    return frame


def _image_paths(root: Path, frame: pd.DataFrame) -> np.ndarray:
    """Absolute JPEG paths ``files/p<2 digits>/p<subject>/s<study>/<dicom_id>.jpg`` of the rows."""
    base = os.path.join(os.path.abspath(root), "files")
    s_text = frame["subject_id"].astype("int64").astype(str)
    image = base + "/p" + s_text.str[:2] + "/p" + s_text + "/s" + frame["study_id"].astype("int64").astype(str)
    return (image + "/" + frame["dicom_id"].astype(str) + ".jpg").to_numpy()


def _age_at_study(frame: pd.DataFrame, pat: pd.DataFrame) -> pd.Series:
    """``anchor_age`` shifted to the study year (``StudyDate`` year minus ``anchor_year``) where both are known."""
    subj = frame["subject_id"]
    age = pd.to_numeric(subj.map(pat["anchor_age"]), errors="coerce")
    if "anchor_year" in pat.columns and "StudyDate" in frame.columns:
        study_year = pd.to_numeric(frame["StudyDate"].astype("string").str[:4], errors="coerce")
        shifted = age + (study_year - pd.to_numeric(subj.map(pat["anchor_year"]), errors="coerce"))
        age = shifted.where(shifted.notna(), age)
    return age
