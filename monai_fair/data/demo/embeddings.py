# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Demo CT-foundation embedding tables of an NLST-like cohort, with a documented, tunable planted bias.

Files (named like the real release so the same loading code runs on both)::

    <root>/nlst_train_with_labels.npz        embeddings (N, dim) float32, pid, cancer_in_1, cancer_in_2
    <root>/nlst_tune_with_labels.npz         same for the tune (evaluation) split
    <root>/nlst_780_prsn_idc_20210527.csv    pid, age, gender (1 = male, 2 = female), race (NLST codes)
    <root>/embeddings.csv / .parquet         one flat table: pid, split, sex ("F"/"M"), age, labels, emb_0..
    <root>/DEMO_COMPLETE.json                parameters and planted bias

Vectors are synthetic: isotropic noise plus planted directions for sex, age, disease and a shortcut. Results on
them are demo results, not CT Foundation / NLST results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monai_fair.data.demo import cached_demo_dir, mark_complete
from monai_fair.data.embeddings import has_pyarrow, write_embedding_table

__all__ = ["EMBEDDINGS_DEMO_DEFAULTS", "NLST_RACE_NAMES", "make_embeddings_demo"]

# NLST person-table race codes (subset used by the demo)
NLST_RACE_NAMES: dict[int, str] = {1: "White", 2: "Black or African-American", 3: "Asian"}

EMBEDDINGS_DEMO_DEFAULTS: dict[str, Any] = {
    "n": 400,
    "dim": 1408,
    "tune_fraction": 0.3,
    "prevalence": {"F": 0.15, "M": 0.35},
    "prevalence_2y_extra": 0.08,
    "shortcut_prob": {"F": 0.15, "M": 0.85},
    "shortcut_strength": 3.0,
    "label_noise": {"F": 0.15, "M": 0.0},
    "signal_strength": {"F": 2.5, "M": 2.5},
    "sex_strength": 4.0,
    "age_strength": 2.0,
    "noise": 1.0,
    "sex_ratio_male": 0.55,
    "race_probs": {1: 0.85, 2: 0.1, 3: 0.05},
    "age_range": [55, 74],
    "formats": ["npz", "csv", "parquet"],
}


def _check_groups(name: str, probs: Mapping[str, float], bounded: bool = True) -> dict[str, float]:
    if set(probs) != {"F", "M"}:
        raise ValueError(f"{name} must map 'F' and 'M', got {dict(probs)}.")
    if bounded and not all(0.0 <= float(p) <= 1.0 for p in probs.values()):
        raise ValueError(f"{name} values must be probabilities in [0, 1], got {dict(probs)}.")
    return {k: float(v) for k, v in probs.items()}


def _check_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the per-sex maps validated and as floats.

    Raises:
        ValueError: for invalid sizes, probabilities or formats.
    """
    for name in ("prevalence", "shortcut_prob", "label_noise"):
        params[name] = _check_groups(name, params[name])
    params["signal_strength"] = _check_groups("signal_strength", params["signal_strength"], bounded=False)
    formats = params["formats"]
    if any(f not in ("npz", "csv", "parquet") for f in formats):
        raise ValueError(f"formats must be among 'npz', 'csv', 'parquet', got {formats}.")
    n, dim, tune_fraction = params["n"], params["dim"], params["tune_fraction"]
    if n < 10 or dim < 4 or not 0.0 < tune_fraction < 1.0:
        raise ValueError(f"need n >= 10, dim >= 4 and 0 < tune_fraction < 1; got {n}, {dim}, {tune_fraction}.")
    if not 0.0 <= params["sex_ratio_male"] <= 1.0 or not 0.0 <= params["prevalence_2y_extra"] <= 1.0:
        raise ValueError("sex_ratio_male and prevalence_2y_extra must be in [0, 1].")
    return params


@dataclass(frozen=True)
class _Cohort:
    """Per-row draws: sex, age, race, clean labels, shortcut presence and label flips."""

    male: np.ndarray
    age: np.ndarray
    race: np.ndarray
    clean_1: np.ndarray
    clean_2: np.ndarray
    shortcut: np.ndarray
    flip: np.ndarray

    def per_sex(self, table: Mapping[str, float]) -> np.ndarray:
        """``table["M"]`` for men, ``table["F"]`` for women, per row."""
        return np.where(self.male, table["M"], table["F"])

    @property
    def recorded_1(self) -> np.ndarray:
        return (self.clean_1 ^ self.flip).astype(np.int64)

    @property
    def recorded_2(self) -> np.ndarray:
        return (self.clean_2 ^ self.flip).astype(np.int64)


def _draw_cohort(rng: np.random.Generator, p: dict[str, Any]) -> _Cohort:
    """Draw demographics and labels (the draw order fixes the dataset of a seed); the planted bias enters here."""
    n = p["n"]
    male = rng.random(n) < p["sex_ratio_male"]
    lo, hi = p["age_range"]
    age = rng.integers(lo, hi + 1, size=n)
    race_codes = np.asarray(list(p["race_probs"]))
    race_p = np.asarray(list(p["race_probs"].values()), dtype=float)
    race = race_codes[rng.choice(len(race_codes), size=n, p=race_p / race_p.sum())]
    per_sex = lambda table: np.where(male, table["M"], table["F"])  # noqa: E731 - tiny per-sex lookup
    clean_1 = rng.random(n) < per_sex(p["prevalence"])
    clean_2 = clean_1 | (rng.random(n) < p["prevalence_2y_extra"])
    shortcut = rng.random(n) < per_sex(p["shortcut_prob"])
    flip = rng.random(n) < per_sex(p["label_noise"])
    return _Cohort(male, age, race, clean_1, clean_2, shortcut, flip)


def _embed(rng: np.random.Generator, p: dict[str, Any], c: _Cohort) -> np.ndarray:
    """The ``(n, dim)`` float32 vectors: noise plus the planted sex, age, disease and shortcut directions."""
    n, dim = p["n"], p["dim"]
    lo, hi = p["age_range"]
    basis, _ = np.linalg.qr(rng.normal(size=(dim, 4)))  # orthonormal sex, age, disease, shortcut directions
    u_sex, u_age, u_disease, u_shortcut = basis.T
    age_z = (c.age - (lo + hi) / 2.0) / (np.sqrt(((hi - lo + 1) ** 2 - 1) / 12.0))
    disease = np.where(c.clean_1, 1.0, np.where(c.clean_2, 0.5, 0.0)) * c.per_sex(p["signal_strength"])
    return (
        p["noise"] * rng.normal(size=(n, dim))
        + np.outer(np.where(c.male, 1.0, -1.0) * p["sex_strength"], u_sex)
        + np.outer(age_z * p["age_strength"], u_age)
        + np.outer(disease, u_disease)
        + np.outer(c.shortcut * p["shortcut_strength"], u_shortcut)
    ).astype(np.float32)


def _write_tables(
    out: Path, formats: list[str], c: _Cohort, vectors: np.ndarray, pid: np.ndarray, tune: np.ndarray
) -> list[str]:
    """Write the NLST-like NPZ splits, the person CSV and the flat tables; returns the file names written."""
    recorded_1, recorded_2 = c.recorded_1, c.recorded_2
    for split, mask in (("train", ~tune), ("tune", tune)):
        write_embedding_table(
            out / f"nlst_{split}_with_labels.npz",
            vectors[mask],
            {"pid": pid[mask], "cancer_in_1": recorded_1[mask], "cancer_in_2": recorded_2[mask]},
        )
    order = np.argsort(pid)
    pd.DataFrame(
        {"pid": pid[order], "age": c.age[order], "gender": np.where(c.male, 1, 2)[order], "race": c.race[order]}
    ).to_csv(out / "nlst_780_prsn_idc_20210527.csv", index=False)
    flat = {
        "pid": pid,
        "split": np.where(tune, "tune", "train"),
        "sex": np.where(c.male, "M", "F"),
        "age": c.age,
        "cancer_in_1": recorded_1,
        "cancer_in_2": recorded_2,
        "clean_cancer_in_1": c.clean_1.astype(np.int64),
        "clean_cancer_in_2": c.clean_2.astype(np.int64),
        "shortcut": c.shortcut.astype(np.int64),
    }
    written = ["nlst_train_with_labels.npz", "nlst_tune_with_labels.npz", "nlst_780_prsn_idc_20210527.csv"]
    for fmt in formats:
        if fmt == "npz" or (fmt == "parquet" and not has_pyarrow):
            continue
        write_embedding_table(out / f"embeddings.{fmt}", vectors, flat, float_format="%.5g")
        written.append(f"embeddings.{fmt}")
    return written


def _completion_info(seed: int, p: dict[str, Any], c: _Cohort, tune: np.ndarray, written: list[str]) -> dict[str, Any]:
    """The ``DEMO_COMPLETE.json`` record: parameters, files, codings, planted bias and counts."""
    male, recorded_1 = c.male, c.recorded_1
    return {
        "name": "embeddings",
        "seed": seed,
        "params": p,
        "synthetic": True,
        "files": written,
        "note": "Synthetic CT-foundation-like embeddings of an NLST-like cohort; demo results only.",
        "sex_coding": {"npz/person csv": "gender 1 = male, 2 = female (NLST)", "flat tables": "sex F/M"},
        "race_names": {str(k): v for k, v in NLST_RACE_NAMES.items()},
        "planted_bias": {
            "group_dependent_prevalence": f"P(cancer_in_1 | sex) = {p['prevalence']}",
            "shortcut_feature": f"magnitude {p['shortcut_strength']} along a fixed direction, "
            f"P(present | sex) = {p['shortcut_prob']}; no disease signal",
            "label_noise": f"recorded labels flipped with P(flip | sex) = {p['label_noise']}; clean labels in the "
            "flat tables (clean_cancer_in_1/2)",
            "signal_strength": f"disease direction magnitude per sex {p['signal_strength']}",
            "leakage": f"sex magnitude {p['sex_strength']}, age magnitude {p['age_strength']} per SD",
        },
        "counts": {
            "train": int((~tune).sum()),
            "tune": int(tune.sum()),
            "per_sex": {"F": int((~male).sum()), "M": int(male.sum())},
            "cancer_in_1_recorded_per_sex": {"F": int(recorded_1[~male].sum()), "M": int(recorded_1[male].sum())},
        },
    }


def make_embeddings_demo(
    root: str | Path | None = None,
    seed: int = 0,
    n: int = EMBEDDINGS_DEMO_DEFAULTS["n"],
    dim: int = EMBEDDINGS_DEMO_DEFAULTS["dim"],
    tune_fraction: float = EMBEDDINGS_DEMO_DEFAULTS["tune_fraction"],
    prevalence: Mapping[str, float] | None = None,
    prevalence_2y_extra: float = EMBEDDINGS_DEMO_DEFAULTS["prevalence_2y_extra"],
    shortcut_prob: Mapping[str, float] | None = None,
    shortcut_strength: float = EMBEDDINGS_DEMO_DEFAULTS["shortcut_strength"],
    label_noise: Mapping[str, float] | None = None,
    signal_strength: Mapping[str, float] | None = None,
    sex_strength: float = EMBEDDINGS_DEMO_DEFAULTS["sex_strength"],
    age_strength: float = EMBEDDINGS_DEMO_DEFAULTS["age_strength"],
    noise: float = EMBEDDINGS_DEMO_DEFAULTS["noise"],
    sex_ratio_male: float = EMBEDDINGS_DEMO_DEFAULTS["sex_ratio_male"],
    formats: Sequence[str] | None = None,
) -> Path:
    """Generate (or reuse) the demo embedding tables; deterministic per seed and parameters.

    Each vector is ``noise·N(0, I)`` plus planted unit directions (random, orthonormal, fixed per seed):
    ``sex_strength·(±1)`` along the sex direction (M +1, F −1: embeddings leak sex, as CT-Foundation's do),
    ``age_strength·z(age)`` along the age direction, ``signal_strength[sex]·(1 for a 1-year case, 0.5 for a
    2-year-only case)`` along the disease direction, and the shortcut below.

    Planted bias (all tunable, defaults in :data:`EMBEDDINGS_DEMO_DEFAULTS`, written into ``DEMO_COMPLETE.json``):

    * group-dependent prevalence: ``P(cancer_in_1 | sex) = prevalence[sex]`` (default F 0.15, M 0.35), plus
      ``prevalence_2y_extra`` new cases within 2 years;
    * a group-correlated shortcut feature: ``shortcut_strength`` along a shortcut direction, present with
      probability ``shortcut_prob[sex]`` (default F 0.15, M 0.85), unrelated to disease except through sex;
    * group-dependent label noise: recorded labels flipped with probability ``label_noise[sex]`` (default F 0.15,
      M 0); the vectors follow the clean labels, which are stored as ``clean_cancer_in_1/2`` in the flat tables
      only (the NPZ files hold the recorded labels, like the release).

    Args:
        root: output folder; None uses the demo cache.
        seed: random seed.
        n: total rows (split into train and tune).
        dim: embedding size (CT Foundation: 1408).
        tune_fraction: fraction of rows in the tune split.
        prevalence: 1-year prevalence per sex.
        prevalence_2y_extra: extra 2-year cases among 1-year negatives.
        shortcut_prob: shortcut presence probability per sex.
        shortcut_strength: shortcut magnitude (in noise standard deviations).
        label_noise: label flip probability per sex.
        signal_strength: disease signal magnitude per sex.
        sex_strength: sex leakage magnitude.
        age_strength: age leakage magnitude (per age standard deviation).
        noise: noise standard deviation per dimension.
        sex_ratio_male: fraction of men.
        formats: flat-table formats among ``"csv"``, ``"parquet"`` (skipped without pyarrow); NPZ is always
            written.

    Returns:
        the dataset folder.

    Raises:
        ValueError: for invalid sizes, probabilities or formats.
    """
    params = _check_params(
        {
            "n": n,
            "dim": dim,
            "tune_fraction": tune_fraction,
            "prevalence": prevalence or EMBEDDINGS_DEMO_DEFAULTS["prevalence"],
            "prevalence_2y_extra": prevalence_2y_extra,
            "shortcut_prob": shortcut_prob or EMBEDDINGS_DEMO_DEFAULTS["shortcut_prob"],
            "shortcut_strength": shortcut_strength,
            "label_noise": label_noise or EMBEDDINGS_DEMO_DEFAULTS["label_noise"],
            "signal_strength": signal_strength or EMBEDDINGS_DEMO_DEFAULTS["signal_strength"],
            "sex_strength": sex_strength,
            "age_strength": age_strength,
            "noise": noise,
            "sex_ratio_male": sex_ratio_male,
            "race_probs": EMBEDDINGS_DEMO_DEFAULTS["race_probs"],
            "age_range": EMBEDDINGS_DEMO_DEFAULTS["age_range"],
            "formats": list(EMBEDDINGS_DEMO_DEFAULTS["formats"] if formats is None else formats),
        }
    )
    out, complete = cached_demo_dir(root, "embeddings", seed, params)
    if complete:
        return out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cohort = _draw_cohort(rng, params)
    vectors = _embed(rng, params, cohort)
    pid = 100001 + rng.permutation(n).astype(np.int64)  # NLST-like 6-digit ids, not in row order
    tune = np.zeros(n, dtype=bool)
    tune[rng.permutation(n)[: int(round(n * tune_fraction))]] = True
    written = _write_tables(out, params["formats"], cohort, vectors, pid, tune)
    mark_complete(out, _completion_info(seed, params, cohort, tune, written))
    return out
