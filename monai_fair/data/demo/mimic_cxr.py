# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""A small synthetic MIMIC-CXR-JPG (+ MIMIC-IV ``hosp``) dataset in the real on-disk layout, with a planted sex bias.

Written under ``root``::

    mimic-cxr-2.0.0-metadata.csv.gz, mimic-cxr-2.0.0-split.csv.gz, mimic-cxr-2.0.0-chexpert.csv.gz
    files/p1x/p1xxxxxxx/sxxxxxxxx/<dicom_id>.jpg         (grey JPEGs, image_size²)
    mimic-iv/hosp/patients.csv.gz, mimic-iv/hosp/admissions.csv.gz
    DEMO_COMPLETE.json                                    (parameters and the planted bias, written last)

so ``build_mimic_cxr_manifest(root)`` (MIMIC-IV defaulting to ``<root>/mimic-iv``) reads it through the real code.

Planted bias (all knobs are parameters of :func:`make_mimic_cxr_demo`, recorded in DEMO_COMPLETE.json):

- **sex-dependent prevalence, learnable as a shortcut** (the default bias): ``prevalence_male`` (0.65) /
  ``prevalence_female`` (0.20) of studies are positive, and sex is visible in every image — women have breast shadows
  over the lower lung fields (``breast_shadow``), a narrower torso and a slightly narrower heart/mediastinum at
  baseline. After the protocol's label balancing most of men's and few of women's images are positive in every
  split, so a network trained on it learns "female → less likely enlarged" and under-calls women at any shared
  threshold (EOD < 0). The disease cue itself is equally visible in both sexes and deliberately imperfect (it
  overlaps with normal anatomical variation), so the shortcut matters; removing it costs little balanced accuracy,
  which is the situation the debiasing methods are built for;
- **disease cue**: Enlarged Cardiomediastinum widens the mediastinum and heart by ``cue_width`` (fraction of the
  image width) × severity and brightens the heart by ``cue_contrast`` × severity for men, and ``female_cue_ratio``
  times as much for women (default 1: the same);
- **label noise**: a fraction ``label_noise_female`` (``label_noise_male``) of truly enlarged studies is labelled
  No Finding (default 0);
- **filters matter**: ``lateral_fraction`` of studies add a lateral image, ``blank_view_fraction`` of frontal
  images have no ViewPosition, ``uncertain_fraction`` of studies have an uncertain (-1) label and
  ``other_finding_fraction`` have a different finding only (neither positive nor No Finding).

``female_cue_ratio < 1`` and ``label_noise_female > 0`` plant a different, *intrinsic* bias instead: the disease is
harder to see (or mislabelled) in women, an accuracy gap that no debiaser can close without losing accuracy.

The figures the ``mimic_vgg_pruning`` bundle reaches on the defaults are in that bundle's ``docs/README.md``, with
the commands that reproduce them. ``tests/data/test_demo_mimic_cxr_bias.py`` checks with an independent small CNN
that the bias shows up.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..chexpert import CHEXPERT_LABELS
from . import cached_demo_dir, mark_complete
from .cxr_phantom import render_frontal, render_lateral, save_grey_jpeg

__all__ = ["MIMIC_DEMO_DEFAULTS", "make_mimic_cxr_demo"]

MIMIC_DEMO_DEFAULTS: dict[str, Any] = {
    "n_subjects": 4000,
    "image_size": 128,
    "male_fraction": 0.55,
    "studies_per_subject": 1.8,
    "prevalence_male": 0.65,
    "prevalence_female": 0.20,
    "cue_width": 0.015,
    "cue_contrast": 0.05,
    "female_cue_ratio": 1.0,
    "breast_shadow": 0.12,
    "label_noise_male": 0.0,
    "label_noise_female": 0.0,
    "uncertain_fraction": 0.06,
    "other_finding_fraction": 0.10,
    "lateral_fraction": 0.25,
    "blank_view_fraction": 0.01,
    "missing_patient_fraction": 0.01,
    "no_admission_fraction": 0.04,
    "official_split": (0.90, 0.05, 0.05),
}

_RACES = (
    ("WHITE", 0.55),
    ("WHITE - OTHER EUROPEAN", 0.07),
    ("BLACK/AFRICAN AMERICAN", 0.16),
    ("HISPANIC/LATINO - PUERTO RICAN", 0.04),
    ("HISPANIC OR LATINO", 0.03),
    ("ASIAN", 0.02),
    ("ASIAN - CHINESE", 0.02),
    ("OTHER", 0.03),
    ("AMERICAN INDIAN/ALASKA NATIVE", 0.01),
    ("UNKNOWN", 0.04),
    ("UNABLE TO OBTAIN", 0.01),
    ("PATIENT DECLINED TO ANSWER", 0.02),
)
_INSURANCE = (("Medicare", 0.45), ("Medicaid", 0.15), ("Other", 0.40))
# column order of the real mimic-cxr-2.0.0-chexpert.csv (alphabetical)
_LABEL_COLUMNS = sorted(CHEXPERT_LABELS)
_OTHER_FINDINGS = ("Pleural Effusion", "Atelectasis", "Edema", "Lung Opacity", "Pneumonia")
_MARKER_FILES = (
    "mimic-cxr-2.0.0-metadata.csv.gz",
    "mimic-cxr-2.0.0-split.csv.gz",
    "mimic-cxr-2.0.0-chexpert.csv.gz",
)


def _choice(rng: np.random.Generator, table: tuple[tuple[str, float], ...], n: int) -> np.ndarray:
    names = np.array([t[0] for t in table])
    p = np.array([t[1] for t in table], dtype=float)
    return names[rng.choice(len(names), size=n, p=p / p.sum())]


def _write_csv_gz(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    # mtime=0: byte-identical files per seed
    with open(path, "wb") as raw, gzip.GzipFile(filename=path.name[:-3], mode="wb", fileobj=raw, mtime=0) as f:
        f.write(buf.getvalue().encode())


def _dicom_id(rng: np.random.Generator) -> str:
    return "-".join(f"{int(v):08x}" for v in rng.integers(0, 2**32, size=5))


def _clear_previous(out: Path) -> None:
    """Remove a previous demo's products (only ever called on a folder holding our completion marker)."""
    for name in (*_MARKER_FILES, "DEMO_COMPLETE.json"):
        (out / name).unlink(missing_ok=True)
    for sub in ("files", "mimic-iv"):
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)


_RANGE_PARAMS = (
    "male_fraction",
    "prevalence_male",
    "prevalence_female",
    "female_cue_ratio",
    "label_noise_male",
    "label_noise_female",
    "uncertain_fraction",
    "other_finding_fraction",
    "lateral_fraction",
    "blank_view_fraction",
    "missing_patient_fraction",
    "no_admission_fraction",
)
_PLANTED_BIAS = (
    "prevalence_* per sex (a shortcut: sex is visible through breast shadows and torso width); Enlarged "
    "Cardiomediastinum widens mediastinum+heart by cue_width*severity (men) and "
    "cue_width*female_cue_ratio*severity (women); label_noise_* of true positives are labelled No Finding. "
    "DEMO DATA: synthetic, not MIMIC-CXR."
)
_VIEW_MEANINGS = {"PA": "postero-anterior", "AP": "antero-posterior", "": ""}


@dataclass
class _Subjects:
    """Per-subject draws: ids, sex, MIMIC-IV anchors, race, baseline anatomy and number of studies."""

    ids: np.ndarray
    male: np.ndarray
    anchor_age: np.ndarray
    anchor_year: np.ndarray
    race: np.ndarray
    base_med: np.ndarray
    base_heart: np.ndarray
    torso: np.ndarray
    n_studies: np.ndarray


@dataclass
class _Tables:
    """Rows of the five CSV tables, the running study/admission ids and the counts, filled subject by subject."""

    meta: list[dict[str, Any]] = field(default_factory=list)
    split: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)
    patients: list[dict[str, Any]] = field(default_factory=list)
    admissions: list[dict[str, Any]] = field(default_factory=list)
    study_id: int = 50_000_000
    hadm_id: int = 20_000_000
    counts: dict[str, int] = field(
        default_factory=lambda: {"images": 0, "frontal": 0, "lateral": 0, "positive_studies": 0, "studies": 0}
    )


def _check_params(params: dict[str, Any]) -> dict[str, Any]:
    """The defaults overridden by ``params``, validated.

    Raises:
        ValueError: unknown parameter names or out-of-range values.
    """
    unknown = sorted(set(params) - set(MIMIC_DEMO_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown MIMIC-CXR demo parameters {unknown}; known: {sorted(MIMIC_DEMO_DEFAULTS)}.")
    p = {**MIMIC_DEMO_DEFAULTS, **params}
    p["official_split"] = tuple(float(v) for v in p["official_split"])
    for key in _RANGE_PARAMS:
        if not 0.0 <= float(p[key]) <= 1.0:
            raise ValueError(f"{key} must be in [0, 1], got {p[key]}.")
    if int(p["n_subjects"]) < 10 or int(p["image_size"]) < 16:
        raise ValueError("n_subjects must be >= 10 and image_size >= 16.")
    return p


def _sample_subjects(rng: np.random.Generator, p: dict[str, Any]) -> _Subjects:
    """Draw every subject-level value (the draw order fixes the dataset of a seed)."""
    n = int(p["n_subjects"])
    ids = np.sort(rng.choice(np.arange(10_000_000, 20_000_000), size=n, replace=False))
    male = rng.random(n) < float(p["male_fraction"])
    anchor_age = np.clip(np.round(rng.normal(62, 16, n)), 18, 91).astype(int)
    anchor_year = rng.integers(2110, 2190, n)
    race = _choice(rng, _RACES, n)
    # per-subject anatomy: women's heart/mediastinum slightly narrower at baseline
    base_med = rng.normal(0.070, 0.008, n) - 0.004 * (~male)
    base_heart = rng.normal(0.120, 0.010, n) - 0.006 * (~male)
    torso = np.where(male, 0.44, 0.40) + rng.normal(0, 0.01, n)
    n_studies = 1 + rng.poisson(max(float(p["studies_per_subject"]) - 1.0, 0.0), n)
    return _Subjects(ids, male, anchor_age, anchor_year, race, base_med, base_heart, torso, n_studies)


def _add_patient(rng: np.random.Generator, p: dict[str, Any], subjects: _Subjects, i: int, tables: _Tables) -> None:
    """The subject's MIMIC-IV ``patients`` row, unless it is one of the ``missing_patient_fraction``."""
    if rng.random() >= float(p["missing_patient_fraction"]):
        tables.patients.append(
            {
                "subject_id": int(subjects.ids[i]),
                "gender": "M" if subjects.male[i] else "F",
                "anchor_age": int(subjects.anchor_age[i]),
                "anchor_year": int(subjects.anchor_year[i]),
                "anchor_year_group": "2014 - 2016",
                "dod": "",
            }
        )


def _admission_row(sid: int, hadm_id: int, t: pd.Timestamp, insurance: str, race: str) -> dict[str, Any]:
    return {
        "subject_id": sid,
        "hadm_id": hadm_id,
        "admittime": t.strftime("%Y-%m-%d %H:%M:%S"),
        "dischtime": (t + pd.Timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S"),
        "deathtime": "",
        "admission_type": "EW EMER.",
        "admit_provider_id": "P00000",
        "admission_location": "EMERGENCY ROOM",
        "discharge_location": "HOME",
        "insurance": insurance,
        "language": "ENGLISH",
        "marital_status": "",
        "race": race,
        "edregtime": "",
        "edouttime": "",
        "hospital_expire_flag": 0,
    }


def _add_admissions(rng: np.random.Generator, p: dict[str, Any], subjects: _Subjects, i: int, tables: _Tables) -> None:
    """One to three MIMIC-IV ``admissions`` rows, unless the subject is one of the ``no_admission_fraction``."""
    if rng.random() >= float(p["no_admission_fraction"]):
        n_adm = int(rng.integers(1, 4))
        times = np.sort(rng.integers(0, 3 * 365 * 24 * 60, n_adm))
        for k in range(n_adm):
            tables.hadm_id += int(rng.integers(1, 50))
            t = pd.Timestamp(f"{int(subjects.anchor_year[i])}-01-01") + pd.Timedelta(minutes=int(times[k]))
            # earlier admissions sometimes lack race; the last one (the one kept) has the subject's race
            race = subjects.race[i] if (k == n_adm - 1 or rng.random() < 0.7) else "UNKNOWN"
            insurance = _choice(rng, _INSURANCE, 1)[0]
            tables.admissions.append(_admission_row(int(subjects.ids[i]), tables.hadm_id, t, insurance, race))


def _draw_labels(rng: np.random.Generator, p: dict[str, Any], male: bool) -> tuple[dict[str, Any], str, bool]:
    """A study's CheXpert label row (values by column), its state (pos/neg/uncertain/other) and whether it is
    diseased (what the image shows)."""
    prev = float(p["prevalence_male"] if male else p["prevalence_female"])
    noise = float(p["label_noise_male"] if male else p["label_noise_female"])
    state = "pos" if rng.random() < prev else "neg"
    v = rng.random()
    if v < float(p["uncertain_fraction"]):
        state = "uncertain"
    elif v < float(p["uncertain_fraction"]) + float(p["other_finding_fraction"]):
        state = "other"
    diseased = state == "pos" or (state == "uncertain" and rng.random() < 0.5)
    labels: dict[str, Any] = {c: "" for c in _LABEL_COLUMNS}
    if state == "pos":
        if rng.random() < noise:  # missed enlargement: reported as No Finding
            labels["No Finding"] = 1.0
        else:
            labels["Enlarged Cardiomediastinum"] = 1.0
            if rng.random() < 0.4:
                labels["Cardiomegaly"] = 1.0
    elif state == "neg":
        labels["No Finding"] = 1.0
        if rng.random() < 0.2:
            labels["Enlarged Cardiomediastinum"] = 0.0
    elif state == "uncertain":
        labels["Enlarged Cardiomediastinum"] = -1.0
    else:
        labels[_OTHER_FINDINGS[int(rng.integers(len(_OTHER_FINDINGS)))]] = 1.0
    if rng.random() < 0.1:
        labels["Support Devices"] = 1.0
    return labels, state, diseased


def _render_view(
    rng: np.random.Generator, p: dict[str, Any], subjects: _Subjects, i: int, view: str, severity: float
) -> np.ndarray:
    """The image of one view; a frontal view carries the sex cues and the disease cue scaled by ``severity``."""
    if view not in ("PA", "AP"):
        return render_lateral(rng, int(p["image_size"]))
    male = bool(subjects.male[i])
    ratio = 1.0 if male else float(p["female_cue_ratio"])
    widen = float(p["cue_width"]) * severity * ratio
    brighten = float(p["cue_contrast"]) * severity * ratio
    return render_frontal(
        rng,
        int(p["image_size"]),
        mediastinum_halfwidth=subjects.base_med[i] + widen,
        heart_halfwidth=subjects.base_heart[i] + widen,
        heart_intensity=0.40 + brighten,
        breast=0.0 if male else float(p["breast_shadow"]),
        torso_halfwidth=float(subjects.torso[i]),
        contrast=rng.uniform(0.9, 1.1) * (0.93 if view == "AP" else 1.0),
        brightness=rng.uniform(-0.05, 0.05),
    )


def _meta_row(dicom: str, sid: int, st: int, view: str, size: int, date: int, time: float) -> dict[str, Any]:
    return {
        "dicom_id": dicom,
        "subject_id": sid,
        "study_id": st,
        "PerformedProcedureStepDescription": "CHEST (PA AND LAT)",
        "ViewPosition": view,
        "Rows": size,
        "Columns": size,
        "StudyDate": date,
        "StudyTime": time,
        "ProcedureCodeSequence_CodeMeaning": "CHEST (PA AND LAT)",
        "ViewCodeSequence_CodeMeaning": _VIEW_MEANINGS.get(view, "lateral"),
        "PatientOrientationCodeSequence_CodeMeaning": "Erect",
    }


def _add_images(
    rng: np.random.Generator,
    p: dict[str, Any],
    subjects: _Subjects,
    i: int,
    study: tuple[int, int, str],
    diseased: bool,
    tables: _Tables,
    out: Path,
) -> None:
    """Render and save a study's frontal (and sometimes lateral) JPEGs with their metadata and split rows.

    ``study`` is ``(study_id, StudyDate, official split)``.
    """
    st, date, official = study
    sid, size = int(subjects.ids[i]), int(p["image_size"])
    severity = rng.uniform(0.6, 1.4) if diseased else 0.0
    views = ["PA" if rng.random() < 0.6 else "AP"]
    if rng.random() < float(p["lateral_fraction"]):
        views.append("LATERAL" if rng.random() < 0.7 else "LL")
    for view in views:
        dicom = _dicom_id(rng)
        img = _render_view(rng, p, subjects, i, view, severity)
        if view in ("PA", "AP"):
            tables.counts["frontal"] += 1
            if rng.random() < float(p["blank_view_fraction"]):
                view = ""
        else:
            tables.counts["lateral"] += 1
        tables.counts["images"] += 1
        s = str(sid)
        save_grey_jpeg(img, out / "files" / f"p{s[:2]}" / f"p{s}" / f"s{st}" / f"{dicom}.jpg")
        tables.meta.append(_meta_row(dicom, sid, st, view, size, date, float(rng.integers(0, 235959))))
        tables.split.append({"dicom_id": dicom, "study_id": st, "subject_id": sid, "split": official})


def _add_studies(
    rng: np.random.Generator, p: dict[str, Any], subjects: _Subjects, i: int, official: str, tables: _Tables, out: Path
) -> None:
    """The subject's studies: each a label row and its images."""
    sid = int(subjects.ids[i])
    for _ in range(int(subjects.n_studies[i])):
        tables.study_id += int(rng.integers(1, 20_000))
        st = tables.study_id
        tables.counts["studies"] += 1
        year = int(subjects.anchor_year[i]) + int(rng.integers(0, 4))
        date = int(f"{year}{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}")
        labels, state, diseased = _draw_labels(rng, p, bool(subjects.male[i]))
        if state == "pos":
            tables.counts["positive_studies"] += 1
        tables.labels.append({"subject_id": sid, "study_id": st, **labels})
        _add_images(rng, p, subjects, i, (st, date, official), diseased, tables, out)


def _write_tables(tables: _Tables, out: Path) -> None:
    _write_csv_gz(pd.DataFrame(tables.meta), out / "mimic-cxr-2.0.0-metadata.csv.gz")
    _write_csv_gz(pd.DataFrame(tables.split), out / "mimic-cxr-2.0.0-split.csv.gz")
    _write_csv_gz(
        pd.DataFrame(tables.labels)[["subject_id", "study_id", *_LABEL_COLUMNS]],
        out / "mimic-cxr-2.0.0-chexpert.csv.gz",
    )
    _write_csv_gz(pd.DataFrame(tables.patients), out / "mimic-iv" / "hosp" / "patients.csv.gz")
    _write_csv_gz(pd.DataFrame(tables.admissions), out / "mimic-iv" / "hosp" / "admissions.csv.gz")


def make_mimic_cxr_demo(root: str | Path | None = None, seed: int = 0, **params: Any) -> Path:
    """Write (or reuse) the MIMIC-CXR demo dataset and return its root.

    Args:
        root: output folder (default: a cache folder keyed by seed and parameters, see
            :func:`~monai_fair.data.demo.cached_demo_dir`).
        seed: random seed; generation is deterministic per seed and parameters.
        params: overrides of :data:`MIMIC_DEMO_DEFAULTS` (documented in the module docstring).

    Returns:
        The dataset root (MIMIC-CXR-JPG layout, MIMIC-IV under ``mimic-iv/``).

    Raises:
        ValueError: unknown parameter names or out-of-range values.
    """
    p = _check_params(params)
    out, complete = cached_demo_dir(root, "mimic_cxr", seed, p)
    info = {"dataset": "mimic_cxr", "seed": seed, "params": p}
    if complete:
        stored = json.loads((out / "DEMO_COMPLETE.json").read_text())
        if stored.get("seed") == seed and stored.get("params") == json.loads(json.dumps(p)):
            return out
        _clear_previous(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    subjects = _sample_subjects(rng, p)
    tables = _Tables()
    s_lo, s_mid, _ = p["official_split"]
    for i in range(len(subjects.ids)):
        u = rng.random()
        official = "train" if u < s_lo else ("validate" if u < s_lo + s_mid else "test")
        _add_patient(rng, p, subjects, i, tables)
        _add_admissions(rng, p, subjects, i, tables)
        _add_studies(rng, p, subjects, i, official, tables, out)
    _write_tables(tables, out)
    info["counts"] = tables.counts
    info["planted_bias"] = _PLANTED_BIAS
    mark_complete(out, info)
    return out
