# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""A small synthetic CheXpert dataset in the real layout, with the CHEXPERT DEMO race table and a planted race bias.

Written under ``root``::

    CheXpert-v1.0-small/train.csv, CheXpert-v1.0-small/valid.csv   (Path, Sex, Age, Frontal/Lateral, AP/PA, 14 labels)
    CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg (+ view2_lateral.jpg for some studies)
    CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg
    CHEXPERT DEMO.csv                 (PATIENT, GENDER, AGE_AT_CXR, PRIMARY_RACE, ETHNICITY)
    DEMO_COMPLETE.json

so ``build_chexpert_manifest(root)`` reads it through the real code. Frontal images are taller than wide (as in
CheXpert), so the square crop matters.

Planted bias (parameters of :func:`make_chexpert_demo`, recorded in DEMO_COMPLETE.json): each of the 13 findings
has its own visual cue (Enlarged Cardiomediastinum widens the mediastinum, Cardiomegaly the heart, the others are
local opacities/lucencies/lines). For non-White patients the cues are drawn weaker (gain
``1 - race_shift * (1 - RACE_CUE_GAIN[group])``: Black 0.55, Asian 0.70, Other 0.80 at ``race_shift=1``) and with a
group-specific acquisition style (contrast/brightness/rib texture), so a model trained on White patients only
transfers worse to other groups than one trained on a mixed-race set (Joshi's study design).
``race_shift=0`` removes the race bias.

Group-dependent disease appearance (``appearance_shift``, default 0: off): for patients outside
:data:`APPEARANCE_REFERENCE` (White), each present local finding is drawn with inverted polarity (an opacity becomes a
lucency of the same size and place, a lucency an opacity) with probability ``appearance_shift``. A model trained on
White patients only never sees that form and misses it on the other groups, while a mixed-race training set holds
both forms, so the mixed model's same-group vs other-group AUC drop is small (the mixed-training benefit of
Joshi's study). The cardiomediastinal width findings keep one form. Positive labels are uncertain (-1) with probability
``uncertain_fraction`` (cue drawn at half strength); women carry breast shadows.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..chexpert import CHEXPERT_LABELS
from . import cached_demo_dir, mark_complete
from .cxr_phantom import render_frontal, render_lateral, save_grey_jpeg

__all__ = ["APPEARANCE_REFERENCE", "CHEXPERT_DEMO_DEFAULTS", "RACE_CUE_GAIN", "make_chexpert_demo"]

#: the group whose findings keep the reference appearance under ``appearance_shift``
APPEARANCE_REFERENCE = "White"

CHEXPERT_DEMO_DEFAULTS: dict[str, Any] = {
    "n_patients": 800,
    "n_valid_patients": 40,
    "image_size": 128,
    "male_fraction": 0.58,
    "studies_per_patient": 1.5,
    "race_shift": 1.0,
    "uncertain_fraction": 0.10,
    "lateral_fraction": 0.20,
    "missing_demographics_fraction": 0.03,
    "appearance_shift": 0.0,
}

# (PRIMARY_RACE string as in the CHEXPERT DEMO table, coarse group, share of patients)
_RACE_STRINGS = (
    ("White", "White", 0.30),
    ("White, non-Hispanic", "White", 0.15),
    ("White or Caucasian", "White", 0.05),
    ("White, Hispanic", "White", 0.04),
    ("Black or African American", "Black", 0.07),
    ("Black, non-Hispanic", "Black", 0.03),
    ("Asian", "Asian", 0.10),
    ("Asian, non-Hispanic", "Asian", 0.04),
    ("Other", "Other", 0.08),
    ("Native Hawaiian or Other Pacific Islander", "Other", 0.02),
    ("Native American, non-Hispanic", "Other", 0.02),
    ("Unknown", "unknown", 0.06),
    ("Patient Refused", "unknown", 0.04),
)
RACE_CUE_GAIN: dict[str, float] = {"White": 1.0, "Black": 0.55, "Asian": 0.70, "Other": 0.80, "unknown": 0.85}
# acquisition style per group: (contrast, brightness, rib frequency); White is the reference
_RACE_STYLE: dict[str, tuple[float, float, float]] = {
    "White": (1.00, 0.00, 14.0),
    "Black": (0.80, 0.06, 11.0),
    "Asian": (1.15, -0.05, 17.0),
    "Other": (0.90, 0.03, 12.5),
    "unknown": (0.95, 0.02, 13.0),
}
_PREVALENCE: dict[str, float] = {
    "Enlarged Cardiomediastinum": 0.10,
    "Cardiomegaly": 0.15,
    "Lung Opacity": 0.30,
    "Lung Lesion": 0.06,
    "Edema": 0.18,
    "Consolidation": 0.08,
    "Pneumonia": 0.06,
    "Atelectasis": 0.18,
    "Pneumothorax": 0.10,
    "Pleural Effusion": 0.25,
    "Pleural Other": 0.04,
    "Fracture": 0.05,
    "Support Devices": 0.35,
}


def _clear_previous(out: Path) -> None:
    """Remove a previous demo's products (only called on a folder holding our completion marker)."""
    for name in ("CHEXPERT DEMO.csv", "DEMO_COMPLETE.json"):
        (out / name).unlink(missing_ok=True)
    if (out / "CheXpert-v1.0-small").is_dir():
        shutil.rmtree(out / "CheXpert-v1.0-small")


def _check_params(params: dict[str, Any]) -> dict[str, Any]:
    """The defaults overridden by ``params``, validated.

    Raises:
        ValueError: unknown parameters or out-of-range values.
    """
    unknown = sorted(set(params) - set(CHEXPERT_DEMO_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown CheXpert demo parameters {unknown}; known: {sorted(CHEXPERT_DEMO_DEFAULTS)}.")
    p = {**CHEXPERT_DEMO_DEFAULTS, **params}
    for key in (
        "male_fraction",
        "race_shift",
        "uncertain_fraction",
        "lateral_fraction",
        "missing_demographics_fraction",
        "appearance_shift",
    ):
        if not 0.0 <= float(p[key]) <= 1.0:
            raise ValueError(f"{key} must be in [0, 1], got {p[key]}.")
    if int(p["n_patients"]) < 10 or int(p["image_size"]) < 16:
        raise ValueError("n_patients must be >= 10 and image_size >= 16.")
    return p


@dataclass(frozen=True)
class _Patient:
    """One patient's draws: split, id, sex, age, race group with its cue gain and acquisition style, anatomy."""

    split: str
    pid: str
    male: bool
    age: int
    gain: float
    style: tuple[float, float, float]
    base_med: float
    base_heart: float
    n_studies: int
    group: str = "White"


def _demo_row(pid: str, male: bool, age: int, race_name: str, group: str) -> dict[str, Any]:
    """The patient's ``CHEXPERT DEMO.csv`` row."""
    hispanic = "Hispanic" in race_name and "non-Hispanic" not in race_name
    return {
        "PATIENT": pid,
        "GENDER": "Male" if male else "Female",
        "AGE_AT_CXR": age,
        "PRIMARY_RACE": race_name,
        "ETHNICITY": (
            "Hispanic/Latino" if hispanic else ("Unknown" if group == "unknown" else "Non-Hispanic/Non-Latino")
        ),
    }


def _draw_patient(
    rng: np.random.Generator, p: dict[str, Any], k: int, n_train: int, demo_rows: list[dict[str, Any]]
) -> _Patient:
    """Draw patient ``k`` (the draw order fixes the dataset of a seed) and append its demographics row unless it is
    one of the ``missing_demographics_fraction``; the race cue gain and style shift (the planted bias) enter here."""
    shift = float(p["race_shift"])
    race_names = np.array([r[0] for r in _RACE_STRINGS])
    race_groups = np.array([r[1] for r in _RACE_STRINGS])
    race_p = np.array([r[2] for r in _RACE_STRINGS])
    split = "train" if k < n_train else "valid"
    pid = f"patient{k + 1:05d}" if split == "train" else f"patient{64541 + k - n_train:05d}"
    male = rng.random() < float(p["male_fraction"])
    age = int(np.clip(round(rng.normal(60, 17)), 18, 90))
    r = int(rng.choice(len(race_names), p=race_p / race_p.sum()))
    group = str(race_groups[r])
    gain = 1.0 - shift * (1.0 - RACE_CUE_GAIN[group])
    c0, b0, f0 = _RACE_STYLE["White"]
    c, b, f = _RACE_STYLE[group]
    style = (c0 + shift * (c - c0), b0 + shift * (b - b0), f0 + shift * (f - f0))
    if rng.random() >= float(p["missing_demographics_fraction"]):
        demo_rows.append(_demo_row(pid, male, age, race_names[r], group))
    n_studies = 1 if split == "valid" else 1 + int(rng.poisson(float(p["studies_per_patient"]) - 1.0))
    base_med = rng.normal(0.070, 0.008) - (0.0 if male else 0.004)
    base_heart = rng.normal(0.120, 0.010) - (0.0 if male else 0.006)
    return _Patient(split, pid, male, age, gain, style, base_med, base_heart, n_studies, group)


def _draw_labels(rng: np.random.Generator, p: dict[str, Any], gain: float) -> tuple[dict[str, Any], dict[str, float]]:
    """A study's labels (1 positive, -1 uncertain, 0 negative, NaN unmentioned) and the image strength of each
    present finding (scaled by the patient's cue ``gain``)."""
    present = {name: rng.random() < prev for name, prev in _PREVALENCE.items()}
    labels: dict[str, Any] = {}
    strength: dict[str, float] = {}
    for name, pos in present.items():
        if pos:
            uncertain = rng.random() < float(p["uncertain_fraction"])
            labels[name] = -1.0 if uncertain else 1.0
            strength[name] = gain * (0.5 if uncertain else rng.uniform(0.7, 1.3))
        else:
            labels[name] = 0.0 if rng.random() < 0.15 else np.nan
    pathology = any(v in (1.0, -1.0) for n, v in labels.items() if n != "Support Devices")
    labels["No Finding"] = np.nan if pathology else 1.0
    return labels, strength


def _shift_appearance(rng: np.random.Generator, p: dict[str, Any], group: str, strength: dict[str, float]) -> None:
    """Invert the polarity of local findings of non-reference groups with probability ``appearance_shift`` (in
    place). No random number is drawn when the shift is off, so ``appearance_shift=0`` keeps earlier datasets."""
    shift = float(p["appearance_shift"])
    if shift <= 0.0 or group == APPEARANCE_REFERENCE:
        return
    for name in list(strength):
        if name in ("Enlarged Cardiomediastinum", "Cardiomegaly"):
            continue
        if rng.random() < shift:
            strength[name] = -strength[name]


def _render_study(
    rng: np.random.Generator, p: dict[str, Any], patient: _Patient, strength: dict[str, float]
) -> list[tuple[str, str, Any, np.ndarray]]:
    """The study's images as ``(file name, Frontal/Lateral, AP/PA, image)``: a frontal view (padded like
    CheXpert-small), and sometimes a lateral one. ``strength`` is consumed."""
    size = int(p["image_size"])
    pad = size // 16
    ec = strength.pop("Enlarged Cardiomediastinum", 0.0)
    cm = strength.pop("Cardiomegaly", 0.0)
    view = "PA" if rng.random() < 0.3 else "AP"
    img = render_frontal(
        rng,
        size,
        mediastinum_halfwidth=patient.base_med + 0.035 * ec,
        heart_halfwidth=patient.base_heart + 0.040 * cm,
        breast=0.0 if patient.male else 0.12,
        torso_halfwidth=(0.44 if patient.male else 0.40) + rng.normal(0, 0.01),
        findings=strength,
        contrast=patient.style[0] * rng.uniform(0.9, 1.1),
        brightness=patient.style[1] + rng.uniform(-0.03, 0.03),
        rib_frequency=patient.style[2],
    )
    img = np.pad(img, ((pad, pad), (0, 0)), constant_values=0.02)
    views = [("view1_frontal.jpg", "Frontal", view, img)]
    if rng.random() < float(p["lateral_fraction"]):
        views.append(("view2_lateral.jpg", "Lateral", np.nan, render_lateral(rng, size)))
    return views


def make_chexpert_demo(root: str | Path | None = None, seed: int = 0, **params: Any) -> Path:
    """Write (or reuse) the CheXpert demo dataset and return its root (holding ``CheXpert-v1.0-small/``).

    Args:
        root: output folder (default: a cache folder keyed by seed and parameters).
        seed: random seed; generation is deterministic per seed and parameters.
        params: overrides of :data:`CHEXPERT_DEMO_DEFAULTS` (see the module docstring).

    Raises:
        ValueError: unknown parameters or out-of-range values.
    """
    p = _check_params(params)
    out, complete = cached_demo_dir(root, "chexpert", seed, p)
    if complete:
        stored = json.loads((out / "DEMO_COMPLETE.json").read_text())
        if stored.get("seed") == seed and stored.get("params") == json.loads(json.dumps(p)):
            return out
        _clear_previous(out)
    base = out / "CheXpert-v1.0-small"
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    demo_rows: list[dict[str, Any]] = []
    tables: dict[str, list[dict[str, Any]]] = {"train": [], "valid": []}
    counts = {"images": 0, "frontal": 0, "lateral": 0}
    n_train, n_valid = int(p["n_patients"]), int(p["n_valid_patients"])
    for k in range(n_train + n_valid):
        patient = _draw_patient(rng, p, k, n_train, demo_rows)
        for study in range(1, patient.n_studies + 1):
            labels, strength = _draw_labels(rng, p, patient.gain)
            _shift_appearance(rng, p, patient.group, strength)
            for fname, fl, appa, arr in _render_study(rng, p, patient, strength):
                rel = f"CheXpert-v1.0-small/{patient.split}/{patient.pid}/study{study}/{fname}"
                save_grey_jpeg(arr, out / rel)
                counts["images"] += 1
                counts["frontal" if fl == "Frontal" else "lateral"] += 1
                tables[patient.split].append(
                    {
                        "Path": rel,
                        "Sex": "Male" if patient.male else "Female",
                        "Age": patient.age,
                        "Frontal/Lateral": fl,
                        "AP/PA": appa,
                        **{name: labels[name] for name in CHEXPERT_LABELS},
                    }
                )
    for split, rows in tables.items():
        pd.DataFrame(rows, columns=["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_LABELS]).to_csv(
            base / f"{split}.csv", index=False
        )
    pd.DataFrame(demo_rows).to_csv(out / "CHEXPERT DEMO.csv", index=False)
    shift = float(p["race_shift"])
    mark_complete(
        out,
        {
            "dataset": "chexpert",
            "seed": seed,
            "params": p,
            "counts": counts,
            "race_cue_gain": {g: 1.0 - shift * (1.0 - v) for g, v in RACE_CUE_GAIN.items()},
            "planted_bias": "finding cues weaker and acquisition style shifted for non-White patients "
            "(race_shift scales both); local findings of non-White patients drawn with inverted polarity with "
            "probability appearance_shift. DEMO DATA: synthetic, not CheXpert.",
        },
    )
    return out
