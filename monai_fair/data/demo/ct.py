# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Demo chest-CT DICOM series in an NLST-like layout, with a documented, tunable planted bias.

Layout (what :func:`monai_fair.data.dicom_scan.scan_dicom_folder` and ``LoadImaged`` read on real data)::

    <root>/<pid>/<study>/<series>/<random>.dcm   one CT series per patient, files in shuffled order
    <root>/nlst_demo_labels.csv                  pid, cancer_in_1, cancer_in_2 (recorded, noisy labels)
    <root>/nlst_demo_truth.csv                   pid, clean labels and the planted shortcut flag (for audits)
    <root>/DEMO_COMPLETE.json                    parameters and planted bias

Each series is ``n_slices`` axial int16 slices of ``size``×``size`` voxels (HU = stored − 1024 via
RescaleSlope/Intercept) with real PatientSex/PatientAge/PatientBirthDate/EthnicGroup tags, proper UIDs and
ImagePositionPatient/ImageOrientationPatient; InstanceNumber 1 is the most superior slice, as scanners write it.
Everything is synthetic: names and IDs are made up. Results on it are demo results, not NLST results.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from monai_fair.data.demo import cached_demo_dir, mark_complete

__all__ = ["CT_DEMO_DEFAULTS", "make_ct_demo"]

CT_DEMO_DEFAULTS: dict[str, Any] = {
    "n_patients": 32,
    "n_slices": 16,
    "size": 32,
    "prevalence": {"F": 0.2, "M": 0.45},
    "prevalence_2y_extra": 0.1,
    "shortcut_prob": {"F": 0.15, "M": 0.85},
    "label_noise": {"F": 0.15, "M": 0.0},
    "nodule_hu": 500.0,
    "sex_ratio_male": 0.5,
    "ethnic_groups": {"WHITE": 0.7, "BLACK": 0.2, "ASIAN": 0.1},
    "age_range": [55, 74],
    "shuffle_instance_numbers": False,
}
_STUDY_DATE = datetime.date(2001, 3, 15)


def _uid(seed: int, *parts: object) -> str:
    return generate_uid(entropy_srcs=["monai_fair-ct-demo", str(seed), *map(str, parts)])


def _volume(rng: np.random.Generator, n_slices: int, size: int, nodule: bool, shortcut: bool, nodule_hu: float):
    """A chest-like HU volume (slices, rows, cols): body, two lungs, optional nodule and shortcut marker."""
    z, y, x = np.meshgrid(
        np.linspace(-1, 1, n_slices), np.linspace(-1, 1, size), np.linspace(-1, 1, size), indexing="ij"
    )
    hu = np.full(z.shape, -1000.0)
    body = (x / 0.9) ** 2 + (y / 0.7) ** 2 <= 1.0
    hu[body] = 40.0
    for cx in (-0.42, 0.42):
        lung = ((x - cx) / 0.33) ** 2 + (y / 0.5) ** 2 + (z / 1.1) ** 2 <= 1.0
        hu[lung] = -820.0
    if nodule:
        cx = rng.choice([-0.42, 0.42]) + rng.uniform(-0.1, 0.1)
        cy, cz = rng.uniform(-0.25, 0.25), rng.uniform(-0.5, 0.5)
        r = rng.uniform(0.12, 0.2)
        hu[(x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= r**2] = 40.0 + nodule_hu
    if shortcut:  # a bright scanner-table-like strip under the patient: group-correlated, label-irrelevant
        hu[:, -2:, size // 4 : 3 * size // 4] = 1200.0
    hu += rng.normal(0.0, 20.0, hu.shape)
    return np.clip(np.round(hu + 1024.0), 0, 4095).astype(np.int16)


def _slice_dataset(
    seed: int,
    patient: dict[str, Any],
    k: int,
    size: int,
    pixels: np.ndarray,
    instance_number: int,
) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = _uid(seed, patient["pid"], "sop", k)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = _STUDY_DATE.strftime("%Y%m%d")
    ds.StudyTime = "101500"
    ds.AccessionNumber = f"ACC{patient['pid']}"
    ds.Modality = "CT"
    ds.Manufacturer = "MONAI_FAIR DEMO"
    ds.InstitutionName = "Demo General Hospital"
    ds.ReferringPhysicianName = "Demo^Referrer"
    ds.StudyDescription = "NLST DEMO LDCT"
    ds.SeriesDescription = "1.25mm demo"
    ds.PatientName = f"DEMO^{patient['pid']}"
    ds.PatientID = patient["pid"]
    ds.PatientBirthDate = patient["birth_date"]
    ds.PatientSex = patient["sex"]
    ds.PatientAge = f"{patient['age']:03d}Y"
    ds.EthnicGroup = patient["ethnic_group"]
    ds.StudyInstanceUID = _uid(seed, patient["pid"], "study")
    ds.SeriesInstanceUID = _uid(seed, patient["pid"], "series")
    ds.FrameOfReferenceUID = _uid(seed, patient["pid"], "frame")
    ds.StudyID = "1"
    ds.SeriesNumber = 2
    ds.InstanceNumber = instance_number
    spacing, thickness = 10.0, 2.5  # mm: a 32-voxel demo slice spans a 320 mm field of view
    # slice k sits at z = -k * thickness (k = 0 most superior); rows run posterior (+y), columns left (+x)
    ds.ImagePositionPatient = [-size * spacing / 2, -size * spacing / 2, -k * thickness]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [spacing, spacing]
    ds.SliceThickness = thickness
    ds.SliceLocation = -k * thickness
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds


def _check_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params``, validated.

    Raises:
        ValueError: for invalid sizes or probabilities.
    """
    n_patients, n_slices, size = params["n_patients"], params["n_slices"], params["size"]
    if n_patients < 1 or n_slices < 2 or size < 8:
        raise ValueError(f"need n_patients >= 1, n_slices >= 2, size >= 8; got {n_patients}, {n_slices}, {size}.")
    for name in ("prevalence", "shortcut_prob", "label_noise"):
        probs = params[name]
        if set(probs) != {"F", "M"} or not all(0.0 <= float(p) <= 1.0 for p in probs.values()):
            raise ValueError(f"{name} must map 'F' and 'M' to probabilities in [0, 1], got {probs}.")
    if not 0.0 <= params["sex_ratio_male"] <= 1.0 or not 0.0 <= params["prevalence_2y_extra"] <= 1.0:
        raise ValueError("sex_ratio_male and prevalence_2y_extra must be in [0, 1].")
    weights = np.asarray(list(params["ethnic_groups"].values()), dtype=float)
    if weights.min() < 0 or weights.sum() <= 0:
        raise ValueError(
            f"ethnic_groups needs non-negative weights with a positive sum, got {params['ethnic_groups']}."
        )
    return params


def _draw_patient(rng: np.random.Generator, p: dict[str, Any], i: int) -> tuple[dict[str, Any], bool, bool, bool, bool]:
    """Patient ``i``'s DICOM demographics and its ``(cancer_in_1, cancer_in_2, shortcut, label flipped)`` draws
    (the draw order fixes the dataset of a seed); the planted bias enters here."""
    lo, hi = p["age_range"]
    names = list(p["ethnic_groups"])
    weights = np.asarray(list(p["ethnic_groups"].values()), dtype=float)
    sex = "M" if rng.random() < p["sex_ratio_male"] else "F"
    age = int(rng.integers(lo, hi + 1))
    birth = _STUDY_DATE - datetime.timedelta(days=int(age * 365.25 + rng.integers(1, 360)))
    cancer_1 = bool(rng.random() < p["prevalence"][sex])
    cancer_2 = cancer_1 or bool(rng.random() < p["prevalence_2y_extra"])
    shortcut = bool(rng.random() < p["shortcut_prob"][sex])
    flip = bool(rng.random() < p["label_noise"][sex])
    patient = {
        "pid": f"{100001 + i:06d}",
        "sex": sex,
        "age": age,
        "birth_date": birth.strftime("%Y%m%d"),
        "ethnic_group": names[int(rng.choice(len(names), p=weights / weights.sum()))],
    }
    return patient, cancer_1, cancer_2, shortcut, flip


def _write_series(
    rng: np.random.Generator, seed: int, p: dict[str, Any], patient: dict[str, Any], volume: np.ndarray, folder: Path
) -> None:
    """Write the volume's slices as DICOM files with random names, in shuffled order (file order means nothing)."""
    n_slices, size = p["n_slices"], p["size"]
    folder.mkdir(parents=True, exist_ok=True)
    numbers = rng.permutation(n_slices) + 1 if p["shuffle_instance_numbers"] else np.arange(1, n_slices + 1)
    for k in rng.permutation(n_slices):
        ds = _slice_dataset(seed, patient, int(k), size, volume[k], int(numbers[k]))
        name = f"{int(rng.integers(0, 16**8)):08x}.dcm"
        while (folder / name).exists():  # random names must not overwrite a slice
            name = f"{int(rng.integers(0, 16**8)):08x}.dcm"
        pydicom.dcmwrite(folder / name, ds, enforce_file_format=True)


def _completion_info(seed: int, p: dict[str, Any], labels: list[dict[str, Any]], sexes: list[str]) -> dict[str, Any]:
    """The ``DEMO_COMPLETE.json`` record: parameters, layout, planted bias and counts."""
    return {
        "name": "ct",
        "seed": seed,
        "params": p,
        "synthetic": True,
        "note": "Synthetic demo data in an NLST-like layout; results on it are demo results, not NLST results.",
        "layout": "<pid>/<study>/<series>/<random>.dcm; labels keyed by pid in nlst_demo_labels.csv",
        "planted_bias": {
            "group_dependent_prevalence": f"P(cancer_in_1 | sex) = {p['prevalence']}",
            "shortcut_feature": f"bright table-like strip, P(present | sex) = {p['shortcut_prob']}; no disease signal",
            "label_noise": f"recorded labels flipped with P(flip | sex) = {p['label_noise']}; truth in "
            "nlst_demo_truth.csv",
        },
        "counts": {
            "patients": p["n_patients"],
            "files": p["n_patients"] * p["n_slices"],
            "per_sex": {s: sexes.count(s) for s in ("F", "M")},
            "cancer_in_1_recorded_per_sex": {
                s: sum(lab["cancer_in_1"] for lab, x in zip(labels, sexes) if x == s) for s in ("F", "M")
            },
        },
    }


def make_ct_demo(
    root: str | Path | None = None,
    seed: int = 0,
    n_patients: int = CT_DEMO_DEFAULTS["n_patients"],
    n_slices: int = CT_DEMO_DEFAULTS["n_slices"],
    size: int = CT_DEMO_DEFAULTS["size"],
    prevalence: Mapping[str, float] | None = None,
    prevalence_2y_extra: float = CT_DEMO_DEFAULTS["prevalence_2y_extra"],
    shortcut_prob: Mapping[str, float] | None = None,
    label_noise: Mapping[str, float] | None = None,
    nodule_hu: float = CT_DEMO_DEFAULTS["nodule_hu"],
    sex_ratio_male: float = CT_DEMO_DEFAULTS["sex_ratio_male"],
    ethnic_groups: Mapping[str, float] | None = None,
    shuffle_instance_numbers: bool = CT_DEMO_DEFAULTS["shuffle_instance_numbers"],
) -> Path:
    """Generate (or reuse) the demo CT DICOM dataset; deterministic per seed and parameters.

    Planted bias (all tunable, defaults in :data:`CT_DEMO_DEFAULTS`, written into ``DEMO_COMPLETE.json``):

    * group-dependent prevalence: ``P(cancer within 1 year | sex) = prevalence[sex]`` (default F 0.20, M 0.45);
      ``cancer_in_2`` adds ``prevalence_2y_extra`` new cases among the 1-year negatives;
    * a group-correlated shortcut: a bright table-like strip at the image bottom, present with probability
      ``shortcut_prob[sex]`` (default F 0.15, M 0.85). It carries no disease, but through the prevalence gap it
      predicts the label, so a standard model can learn it instead of the nodule;
    * group-dependent label noise: the recorded ``cancer_in_1``/``cancer_in_2`` labels are flipped with
      probability ``label_noise[sex]`` (default F 0.15, M 0). The images (a nodule is present iff the patient
      truly has cancer within 2 years) and ``nlst_demo_truth.csv`` keep the clean labels.

    Args:
        root: output folder; None uses the demo cache (see :func:`monai_fair.data.demo.cached_demo_dir`).
        seed: random seed (also seeds the deterministic UIDs).
        n_patients: number of patients (one study, one CT series each).
        n_slices: slices per series.
        size: rows = columns of each slice.
        prevalence: 1-year cancer prevalence per sex (``"F"``, ``"M"``).
        prevalence_2y_extra: extra 2-year cases among 1-year negatives.
        shortcut_prob: probability of the shortcut marker per sex.
        label_noise: label flip probability per sex.
        nodule_hu: nodule contrast in HU above soft tissue (lower = harder task).
        sex_ratio_male: fraction of male patients.
        ethnic_groups: EthnicGroup tag values and their probabilities.
        shuffle_instance_numbers: scramble InstanceNumber so only ImagePositionPatient gives the slice order
            (tests spatial ordering).

    Returns:
        the dataset folder.

    Raises:
        ValueError: for invalid sizes or probabilities.
    """
    params = _check_params(
        {
            "n_patients": n_patients,
            "n_slices": n_slices,
            "size": size,
            "prevalence": dict(prevalence or CT_DEMO_DEFAULTS["prevalence"]),
            "prevalence_2y_extra": prevalence_2y_extra,
            "shortcut_prob": dict(shortcut_prob or CT_DEMO_DEFAULTS["shortcut_prob"]),
            "label_noise": dict(label_noise or CT_DEMO_DEFAULTS["label_noise"]),
            "nodule_hu": nodule_hu,
            "sex_ratio_male": sex_ratio_male,
            "ethnic_groups": dict(ethnic_groups or CT_DEMO_DEFAULTS["ethnic_groups"]),
            "age_range": CT_DEMO_DEFAULTS["age_range"],
            "shuffle_instance_numbers": shuffle_instance_numbers,
        }
    )
    out, complete = cached_demo_dir(root, "ct", seed, params)
    if complete:
        return out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels, truth, sexes = [], [], []
    for i in range(n_patients):
        patient, cancer_1, cancer_2, shortcut, flip = _draw_patient(rng, params, i)
        sexes.append(patient["sex"])
        volume = _volume(rng, n_slices, size, cancer_2, shortcut, nodule_hu)
        _write_series(rng, seed, params, patient, volume, out / patient["pid"] / "01-T0-LDCT" / "2.000000-LUNG-DEMO")
        pid = patient["pid"]
        labels.append({"pid": pid, "cancer_in_1": int(cancer_1 != flip), "cancer_in_2": int(cancer_2 != flip)})
        truth.append(
            {
                "pid": pid,
                "cancer_in_1": int(cancer_1),
                "cancer_in_2": int(cancer_2),
                "shortcut": int(shortcut),
                "label_flipped": int(flip),
            }
        )
    pd.DataFrame(labels).to_csv(out / "nlst_demo_labels.csv", index=False)
    pd.DataFrame(truth).to_csv(out / "nlst_demo_truth.csv", index=False)
    mark_complete(out, _completion_info(seed, params, labels, sexes))
    return out
