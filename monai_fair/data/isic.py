# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Manifests of the ISIC 2018 Task 3 / HAM10000 and ISIC 2017 dermoscopy datasets: diagnosis, sex, age, skin tone.

One row per image with ``image`` (absolute path), ``image_id``, ``dx`` (diagnosis code) and ``malignant`` (binary
label), ``sex`` (shared F/M/O codes), ``age`` (years, NaN when unknown), ``age_group`` (``age >= 60`` → 1, else 0,
unknown -1), ``lesion_hash`` (salted hash of the lesion id: images of one lesion must stay in one split; also
written as ``patient_hash``, the column the generic split code groups by) and, when an ITA CSV from
``tools/label_ita.py`` is joined, ``ita`` and ``ita_group``.

Malignant diagnoses: melanoma (``mel``), basal cell carcinoma (``bcc``) and actinic keratosis / intraepithelial
carcinoma (``akiec``, precancerous to in-situ squamous carcinoma, conventionally grouped with the malignant classes);
ISIC 2017: melanoma only (seborrheic keratosis and nevus are benign).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .codes import SEX_NAMES, UNKNOWN, encode_age_group, encode_sex
from .manifest import Manifest, SkipReport
from .privacy import hash_patient_id

__all__ = [
    "ISIC2018_DX",
    "ISIC2017_DX",
    "MALIGNANT_DX",
    "AGE_GROUP_60_NAMES",
    "read_ham10000_metadata",
    "read_isic2018_ground_truth",
    "build_isic2018_manifest",
    "build_isic2017_manifest",
    "join_ita",
]

# ISIC 2018 Task 3 class order (the ground-truth CSV columns) and their HAM10000 ``dx`` names
ISIC2018_DX: tuple[str, ...] = ("mel", "nv", "bcc", "akiec", "bkl", "df", "vasc")
ISIC2017_DX: tuple[str, ...] = ("mel", "sk", "nv")
MALIGNANT_DX: frozenset[str] = frozenset({"mel", "bcc", "akiec"})
AGE_GROUP_60_NAMES: dict[int, str] = {0: "<60", 1: ">=60"}
_GT_COLUMNS = tuple(c.upper() for c in ISIC2018_DX)
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def _ages(values: pd.Series) -> np.ndarray:
    """Ages in years; ``unknown``, blanks, non-numbers and negative values become NaN (never 0)."""
    age = pd.to_numeric(values, errors="coerce").to_numpy(float)
    return np.where(age >= 0, age, np.nan)


def _check(frame: pd.DataFrame, columns: Sequence[str], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{path} lacks columns {missing}; found {list(frame.columns)}.")


def read_ham10000_metadata(path: str | Path) -> pd.DataFrame:
    """The HAM10000 metadata table (``lesion_id, image_id, dx, dx_type, age, sex, localization``).

    Raises:
        FileNotFoundError: the file does not exist.
        KeyError: a required column is missing.
        ValueError: an unknown ``dx`` value.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"HAM10000 metadata {path} does not exist.")
    meta = pd.read_csv(path, dtype={"lesion_id": str, "image_id": str, "dx": str, "sex": str})
    _check(meta, ("lesion_id", "image_id", "dx", "age", "sex"), path)
    meta["dx"] = meta["dx"].str.strip().str.lower()
    bad = sorted(set(meta["dx"].dropna()) - set(ISIC2018_DX))
    if bad or meta["dx"].isna().any():
        raise ValueError(f"{path}: unknown or missing dx values {bad}; expected {ISIC2018_DX}.")
    return meta


def read_isic2018_ground_truth(path: str | Path) -> pd.DataFrame:
    """The ISIC 2018 Task 3 one-hot ground truth (``image, MEL, NV, BCC, AKIEC, BKL, DF, VASC``) as ``image_id, dx``.

    Raises:
        FileNotFoundError: the file does not exist.
        KeyError: a required column is missing.
        ValueError: a row is not exactly one-hot.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ISIC 2018 ground truth {path} does not exist.")
    gt = pd.read_csv(path)
    _check(gt, ("image", *_GT_COLUMNS), path)
    onehot = gt[list(_GT_COLUMNS)].to_numpy(float)
    bad = ~((np.isclose(onehot, 0) | np.isclose(onehot, 1)).all(axis=1) & np.isclose(onehot.sum(axis=1), 1))
    if bad.any():
        raise ValueError(f"{path}: {int(bad.sum())} rows are not one-hot, e.g. {gt['image'][bad].iloc[0]!r}.")
    return pd.DataFrame(
        {"image_id": gt["image"].astype(str).str.strip(), "dx": [ISIC2018_DX[i] for i in onehot.argmax(axis=1)]}
    )


def _index_images(folder: Path) -> dict[str, Path]:
    """``image_id -> file`` for every image below ``folder`` (HAM10000 splits its images over two folders)."""
    found: dict[str, Path] = {}
    for p in folder.rglob("*"):
        if p.suffix.lower() in _IMAGE_EXTENSIONS and p.is_file() and not p.stem.endswith("_segmentation"):
            found.setdefault(p.stem, p.resolve())
    return found


def _find_one(root: Path, patterns: Sequence[str], what: str) -> Path | None:
    for pattern in patterns:
        hits = sorted(root.glob(pattern))
        if len(hits) > 1:
            raise FileNotFoundError(f"several {what} files match {pattern!r} in {root}: {hits[:3]}; pass one.")
        if hits:
            return hits[0]
    return None


def join_ita(frame: pd.DataFrame, ita_csv: str | Path, scheme: str = "binary45") -> dict[int, str]:
    """Add ``ita`` and ``ita_group`` (in place) from a ``tools/label_ita.py`` CSV, matching by image file stem.

    The group is recomputed from ``ita`` with ``scheme``, so any scheme can be used with one CSV. Images missing
    from the CSV, or with NaN ITA, get NaN and ``UNKNOWN``.

    Returns:
        the code→name map of ``ita_group``.

    Raises:
        FileNotFoundError: the CSV does not exist.
        KeyError: it lacks ``image`` or ``ita``.
    """
    from monai_fair.data.colour import ita_category, ita_group_names

    path = Path(ita_csv)
    if not path.is_file():
        raise FileNotFoundError(f"ITA CSV {path} does not exist.")
    table = pd.read_csv(path)
    _check(table, ("image", "ita"), path)
    stems = table["image"].astype(str).map(lambda s: Path(s).stem)
    by_stem = pd.Series(pd.to_numeric(table["ita"], errors="coerce").to_numpy(), index=stems)
    by_stem = by_stem[~by_stem.index.duplicated(keep="last")]
    ita = frame["image_id"].map(by_stem).to_numpy(float)
    frame["ita"] = ita
    frame["ita_group"] = np.asarray(ita_category(ita, scheme), dtype=np.int64)
    return ita_group_names(scheme)


def _finish(
    out: pd.DataFrame,
    ids: dict[str, Path] | None,
    report: SkipReport,
    ita_csv: str | Path | None,
    ita_scheme: str,
    dx_names: Sequence[str],
    check_files: bool,
) -> Manifest:
    if ids is not None:
        out.insert(0, "image", [str(ids[i]) if i in ids else "" for i in out["image_id"]])
        missing = out["image"] == ""
        report.add("missing image file", int(missing.sum()), out["image_id"][missing].tolist()[:5])
        if check_files:
            out = out[~missing].reset_index(drop=True)
    code_maps: dict[str, dict[int, str]] = {
        "dx": dict(enumerate(dx_names)),
        "malignant": {0: "benign", 1: "malignant"},
        "sex": dict(SEX_NAMES),
        "age_group": dict(AGE_GROUP_60_NAMES),
    }
    if ita_csv is not None:
        code_maps["ita_group"] = join_ita(out, ita_csv, ita_scheme)
    return Manifest(out, code_maps, report)


def build_isic2018_manifest(
    root: str | Path | None = None,
    *,
    metadata_csv: str | Path | None = None,
    ground_truth_csv: str | Path | None = None,
    images_dir: str | Path | None = None,
    ita_csv: str | Path | None = None,
    ita_scheme: str = "binary45",
    check_files: bool = True,
    salt: str | None = None,
) -> Manifest:
    """ISIC 2018 Task 3 / HAM10000 manifest with diagnosis, malignancy, sex, age (≥ 60 split) and hashed lesion.

    With the HAM10000 metadata the diagnosis comes from its ``dx``; a ground-truth CSV, if also given, must agree
    (a disagreement raises). With only the one-hot ground truth (e.g. the official validation/test sets), sex and
    age are unknown and each image is its own lesion.

    Args:
        root: dataset folder, searched for ``HAM10000_metadata*.csv``, ``*Task3*GroundTruth*.csv`` and images.
        metadata_csv: explicit HAM10000 metadata file.
        ground_truth_csv: explicit one-hot ground-truth file.
        images_dir: folder searched (recursively) for ``<image_id>.jpg``; default ``root``.
        ita_csv: optional ``tools/label_ita.py`` output to join (adds ``ita``, ``ita_group``).
        ita_scheme: category scheme for ``ita_group``.
        check_files: drop (and count in ``skipped``) rows whose image is not found; with False, ``image`` is ``""``
            for them. Unknown sex/age/ITA are kept as codes -1 / NaN, not skipped.
        salt: salt for hashing lesion ids.

    Returns:
        ``Manifest(frame, code_maps, skipped)``; columns ``image, image_id, dx, malignant, sex, age, age_group,
        lesion_hash, patient_hash`` (+ ``dx_type``, ``localization`` when known, ``ita``, ``ita_group``).

    Raises:
        FileNotFoundError: no metadata or ground truth found.
        ValueError: metadata and ground truth disagree.
    """
    root_p = Path(root) if root is not None else None
    meta_path = Path(metadata_csv) if metadata_csv is not None else None
    gt_path = Path(ground_truth_csv) if ground_truth_csv is not None else None
    if root_p is not None and meta_path is None:
        meta_path = _find_one(root_p, ("HAM10000_metadata*.csv", "*/HAM10000_metadata*.csv"), "HAM10000 metadata")
    if root_p is not None and gt_path is None:
        gt_path = _find_one(root_p, ("*Task3*GroundTruth*.csv", "*/*Task3*GroundTruth*.csv"), "ground truth")
    if meta_path is None and gt_path is None:
        raise FileNotFoundError(f"no HAM10000_metadata.csv or ISIC 2018 Task 3 ground truth found (root={root}).")
    report = SkipReport()
    if meta_path is not None:
        meta = read_ham10000_metadata(meta_path)
        out = pd.DataFrame({"image_id": meta["image_id"].str.strip(), "dx": meta["dx"]})
        if gt_path is not None:
            gt = read_isic2018_ground_truth(gt_path).set_index("image_id")["dx"]
            both = out["image_id"].isin(gt.index)
            clash = both & (out["image_id"].map(gt) != out["dx"])
            if clash.any():
                raise ValueError(
                    f"{int(clash.sum())} images have a different dx in {meta_path} and {gt_path}, "
                    f"e.g. {out['image_id'][clash].iloc[0]}."
                )
        out["sex"] = np.array([encode_sex(v) for v in meta["sex"].tolist()], dtype=np.int64)
        out["age"] = _ages(meta["age"])
        lesions = meta["lesion_id"].fillna(meta["image_id"]).astype(str).str.strip()
        for col in ("dx_type", "localization"):
            if col in meta.columns:
                out[col] = meta[col].fillna("unknown").astype(str).to_numpy()
    else:
        gt = read_isic2018_ground_truth(gt_path)
        out = gt.copy()
        out["sex"] = UNKNOWN
        out["age"] = np.nan
        lesions = out["image_id"]
    out["dx"] = np.array([ISIC2018_DX.index(d) for d in out["dx"]], dtype=np.int64)
    out["malignant"] = np.isin(out["dx"], [ISIC2018_DX.index(d) for d in MALIGNANT_DX]).astype(np.int64)
    out["age_group"] = np.array([encode_age_group(a, (0, 60)) for a in out["age"]], dtype=np.int64)
    out["lesion_hash"] = [hash_patient_id(v, salt) for v in lesions.tolist()]
    out["patient_hash"] = out["lesion_hash"]
    search = Path(images_dir) if images_dir is not None else root_p
    ids = _index_images(search) if search is not None else None
    return _finish(out, ids, report, ita_csv, ita_scheme, ISIC2018_DX, check_files)


def build_isic2017_manifest(
    root: str | Path | None = None,
    *,
    ground_truth_csv: str | Path | None = None,
    metadata_csv: str | Path | None = None,
    images_dir: str | Path | None = None,
    ita_csv: str | Path | None = None,
    ita_scheme: str = "binary45",
    check_files: bool = True,
    salt: str | None = None,
) -> Manifest:
    """ISIC 2017 (Part 3) manifest: melanoma / seborrheic keratosis / nevus, sex, approximate age, optional ITA.

    Reads ``ISIC-2017_*_Part3_GroundTruth.csv`` (``image_id, melanoma, seborrheic_keratosis``) and
    ``ISIC-2017_*_metadata.csv`` (``image_id, age_approximate, sex``, ``unknown`` for missing values). ISIC 2017 has
    no lesion ids, so each image is its own lesion.

    Args:
        root: folder searched for the two CSVs and the images.
        ground_truth_csv: explicit ground-truth file.
        metadata_csv: explicit metadata file (without one, sex and age are unknown).
        images_dir: folder searched for ``<image_id>.jpg``; default ``root``.
        ita_csv: optional ``tools/label_ita.py`` output to join.
        ita_scheme: category scheme for ``ita_group``.
        check_files: drop (and count) rows whose image is not found.
        salt: salt for hashing.

    Returns:
        ``Manifest``; ``dx`` codes follow :data:`ISIC2017_DX` (mel, sk, nv), ``malignant`` = melanoma.

    Raises:
        FileNotFoundError: no ground truth found.
        ValueError: a row marked both melanoma and seborrheic keratosis, or non-binary labels.
    """
    root_p = Path(root) if root is not None else None
    gt_path = Path(ground_truth_csv) if ground_truth_csv is not None else None
    meta_path = Path(metadata_csv) if metadata_csv is not None else None
    if root_p is not None and gt_path is None:
        gt_path = _find_one(root_p, ("ISIC-2017_*GroundTruth.csv", "*/ISIC-2017_*GroundTruth.csv"), "ground truth")
    if root_p is not None and meta_path is None:
        meta_path = _find_one(root_p, ("ISIC-2017_*metadata.csv", "*/ISIC-2017_*metadata.csv"), "metadata")
    if gt_path is None or not gt_path.is_file():
        raise FileNotFoundError(f"no ISIC-2017 ground truth CSV found (root={root}, ground_truth_csv={gt_path}).")
    gt = pd.read_csv(gt_path, dtype={"image_id": str})
    _check(gt, ("image_id", "melanoma", "seborrheic_keratosis"), gt_path)
    mel = pd.to_numeric(gt["melanoma"], errors="coerce").to_numpy(float)
    sk = pd.to_numeric(gt["seborrheic_keratosis"], errors="coerce").to_numpy(float)
    if not (np.isin(mel, (0.0, 1.0)).all() and np.isin(sk, (0.0, 1.0)).all()) or ((mel == 1) & (sk == 1)).any():
        raise ValueError(f"{gt_path}: labels must be 0/1 and not both melanoma and seborrheic keratosis.")
    report = SkipReport()
    out = pd.DataFrame({"image_id": gt["image_id"].str.strip()})
    out["dx"] = np.where(mel == 1, 0, np.where(sk == 1, 1, 2)).astype(np.int64)
    out["malignant"] = (mel == 1).astype(np.int64)
    if meta_path is not None:
        meta = pd.read_csv(meta_path, dtype={"image_id": str, "sex": str})
        _check(meta, ("image_id", "age_approximate", "sex"), meta_path)
        meta = meta.assign(image_id=meta["image_id"].str.strip()).drop_duplicates("image_id").set_index("image_id")
        out["sex"] = np.array([encode_sex(v) for v in out["image_id"].map(meta["sex"]).tolist()], dtype=np.int64)
        out["age"] = _ages(out["image_id"].map(meta["age_approximate"]))
    else:
        out["sex"] = UNKNOWN
        out["age"] = np.nan
    out["age_group"] = np.array([encode_age_group(a, (0, 60)) for a in out["age"]], dtype=np.int64)
    out["lesion_hash"] = [hash_patient_id(v, salt) for v in out["image_id"].tolist()]
    out["patient_hash"] = out["lesion_hash"]
    search = Path(images_dir) if images_dir is not None else root_p
    ids = _index_images(search) if search is not None else None
    return _finish(out, ids, report, ita_csv, ita_scheme, ISIC2017_DX, check_files)
