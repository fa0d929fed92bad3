# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""NIH ChestX-ray14 manifests from ``Data_Entry_2017*.csv``.

Layout read: ``<dataset_dir>/Data_Entry_2017[_v2020].csv[.gz]``; images either in ``<dataset_dir>/images/`` or in the
download's ``images_001/images/`` ... ``images_012/images/`` folders; optional official ``train_val_list.txt`` /
``test_list.txt`` give ``split`` (``train_val`` → ``train``; empty where the lists are absent). ``Finding Labels``
(``A|B``) becomes one 0/1 column per finding (14 findings + ``No Finding``). Ages over 120 years (data-entry errors
of the 2017 release) are unknown (NaN, counted).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .codes import DEFAULT_AGE_BINS, SEX_NAMES
from .manifest import Manifest, SkipReport, add_age_group, encode_sex_column, hash_column

__all__ = ["NIH_FINDINGS", "NIH_LABELS", "find_nih_table", "parse_nih_age", "build_nih_manifest"]

NIH_FINDINGS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)
NIH_LABELS: tuple[str, ...] = (*NIH_FINDINGS, "No Finding")

_TABLE_NAMES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")
_MAX_AGE = 120.0


def find_nih_table(dataset_dir: str | Path) -> Path:
    """The ``Data_Entry_2017*.csv[.gz]`` table in ``dataset_dir`` (the v2020 revision first).

    Raises:
        FileNotFoundError: none found.
    """
    folder = Path(dataset_dir)
    for name in _TABLE_NAMES:
        for suffix in ("", ".gz"):
            if (folder / (name + suffix)).is_file():
                return folder / (name + suffix)
    found = sorted(folder.glob("Data_Entry_2017*.csv*"))
    if found:
        return found[0]
    raise FileNotFoundError(f"no Data_Entry_2017*.csv in {folder}.")


def parse_nih_age(value: object) -> float:
    """Age in years from ``58``, ``"58"`` or the 2017 release's ``"058Y"`` (months/days → fractional years).

    Unparseable values and ages over 120 give NaN.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return float("nan")
    text = str(value).strip().upper()
    unit = 1.0
    if text and text[-1] in "YMWD":
        unit = {"Y": 1.0, "M": 1 / 12, "W": 7 / 365.25, "D": 1 / 365.25}[text[-1]]
        text = text[:-1]
    try:
        age = float(text) * unit
    except ValueError:
        return float("nan")
    return age if 0 <= age <= _MAX_AGE else float("nan")


def _image_index(root: Path) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for folder in sorted([root / "images", *root.glob("images_*/images"), *root.glob("images_*")]):
        if folder.is_dir():
            for p in folder.glob("*.png"):
                index.setdefault(p.name, p)
    return index


def build_nih_manifest(
    dataset_dir: str | Path,
    table: str | Path | None = None,
    views: Sequence[str] | None = None,
    age_bins: Sequence[float] = DEFAULT_AGE_BINS,
    check_files: bool = True,
    salt: str | None = None,
) -> Manifest:
    """NIH ChestX-ray14 images with the 15-column multi-label target, sex, age and hashed patient.

    Args:
        dataset_dir: dataset root.
        table: the ``Data_Entry`` CSV (default: found in ``dataset_dir``).
        views: ``View Position`` values to keep (None: all; the set has PA and AP, both frontal).
        age_bins: lower edges of the ``age_group`` codes.
        check_files: look images up in ``images/`` and ``images_*/images/``; skip (and count) missing ones. Without
            it, paths are ``<dataset_dir>/images/<Image Index>``.
        salt: salt for patient hashing.

    Returns:
        ``Manifest`` with ``image``, the 15 columns of :data:`NIH_LABELS`, ``view``, ``sex``, ``age``,
        ``age_group``, ``patient_hash``, ``split``.

    Raises:
        FileNotFoundError: no table.
        KeyError: the table lacks a needed column.
        ValueError: an unknown finding name in ``Finding Labels``.
    """
    root = Path(dataset_dir)
    path = Path(table) if table is not None else find_nih_table(root)
    raw = pd.read_csv(path)
    need = ["Image Index", "Finding Labels", "Patient Age", "Patient Gender", "View Position", "Patient ID"]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise KeyError(f"{path} lacks columns {missing}; has {list(raw.columns)}.")
    report = SkipReport()
    if views is not None:
        keep = raw["View Position"].astype(str).str.strip().isin(list(views))
        report.add("view not in " + "/".join(views), int((~keep).sum()))
        raw = raw[keep].reset_index(drop=True)

    findings = raw["Finding Labels"].fillna("").astype(str).str.split("|")
    names = {f.strip() for fs in findings for f in fs}
    unknown = sorted(names - set(NIH_LABELS) - {""})
    if unknown:
        raise ValueError(f"unknown findings {unknown} in {path}; expected {NIH_LABELS}.")
    out = pd.DataFrame(index=raw.index)
    if check_files:
        index = _image_index(root)
        out["image"] = [os.path.abspath(index[n]) if n in index else "" for n in raw["Image Index"].astype(str)]
    else:
        images = os.path.join(os.path.abspath(root), "images")
        out["image"] = [os.path.join(images, n) for n in raw["Image Index"].astype(str)]
    indicator = np.zeros((len(raw), len(NIH_LABELS)), dtype=np.float32)
    col_of = {n: i for i, n in enumerate(NIH_LABELS)}
    for r, fs in enumerate(findings):
        for f in fs:
            if f.strip():
                indicator[r, col_of[f.strip()]] = 1.0
    for i, name in enumerate(NIH_LABELS):
        out[name] = indicator[:, i]
    no_label = indicator.sum(1) == 0
    report.add("blank Finding Labels (all labels 0)", int(no_label.sum()))
    out["view"] = raw["View Position"].fillna("").astype(str).to_numpy()
    out["sex"] = encode_sex_column(raw["Patient Gender"])
    ages = {v: parse_nih_age(v) for v in raw["Patient Age"].dropna().unique()}
    out["age"] = raw["Patient Age"].map(ages).astype(float).to_numpy()
    report.add("age unknown or over 120", int(np.isnan(out["age"].to_numpy()).sum()))
    code_maps: dict[str, dict[int, str]] = {"sex": dict(SEX_NAMES)}
    code_maps["age_group"] = add_age_group(out, age_bins)
    out["patient_hash"] = hash_column(raw["Patient ID"], salt)
    out["split"] = ""
    for list_name, split in (("train_val_list.txt", "train"), ("test_list.txt", "test")):
        if (root / list_name).is_file():
            listed = set((root / list_name).read_text().split())
            out.loc[raw["Image Index"].isin(listed).to_numpy(), "split"] = split
    if check_files:
        gone = (out["image"] == "").to_numpy()
        report.add("missing image file", int(gone.sum()), raw["Image Index"][gone].tolist()[:5])
        out = out[~gone]
    return Manifest(out.reset_index(drop=True), code_maps, report)
