# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Patient-level splits: every image of a (hashed) patient lands in the same split, deterministically per seed."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

__all__ = ["patient_level_split", "split_frames", "assert_no_patient_leakage", "patient_overlap"]


def _normalise_fractions(
    fractions: Sequence[float] | Mapping[str, float], names: Sequence[str]
) -> tuple[list[str], np.ndarray]:
    if isinstance(fractions, Mapping):
        names, values = list(fractions.keys()), np.asarray(list(fractions.values()), dtype=float)
    else:
        values = np.asarray(list(fractions), dtype=float)
        if len(values) != len(names):
            raise ValueError(f"{len(values)} fractions for {len(names)} split names {list(names)}.")
        names = list(names)
    if len(set(names)) != len(names):
        raise ValueError(f"split names must be unique, got {names}.")
    if (values < 0).any() or not np.isclose(values.sum(), 1.0, atol=1e-6):
        raise ValueError(f"fractions must be non-negative and sum to 1, got {values.tolist()}.")
    return names, values


def patient_level_split(
    frame: pd.DataFrame,
    fractions: Sequence[float] | Mapping[str, float] = (0.5, 0.25, 0.25),
    seed: int = 0,
    names: Sequence[str] = ("train", "val", "test"),
    patient_column: str = "patient_hash",
    split_column: str = "split",
    missing_patient: str = "error",
) -> pd.DataFrame:
    """Assign whole patients to splits with the given fractions **of patients**, returning a copy.

    Patients are sorted, then permuted with ``numpy.random.default_rng(seed)``, so the result depends only on the
    set of patients and the seed (not on row order). Split ``k`` receives the patients between the rounded
    cumulative boundaries ``round(cumsum(fractions) * n_patients)``.

    Args:
        frame: one row per image, with a patient column (hashed IDs).
        fractions: fractions per split (sequence matching ``names``, or a ``{name: fraction}`` mapping).
        seed: random seed.
        names: split names when ``fractions`` is a sequence.
        patient_column: patient column.
        split_column: column written (overwritten if present).
        missing_patient: without a patient column: ``"error"`` (default), or ``"image"`` to split by row with a
            logged warning that patient leakage cannot be ruled out (datasets without patient IDs, e.g. ISIC 2017).

    Raises:
        KeyError: no patient column (with ``missing_patient="error"``).
        ValueError: bad fractions, missing patient values, or an unknown ``missing_patient``.
    """
    if missing_patient not in ("error", "image"):
        raise ValueError(f"missing_patient must be 'error' or 'image', got {missing_patient!r}.")
    if patient_column not in frame.columns:
        if missing_patient == "error":
            raise KeyError(
                f"patient column {patient_column!r} not found; available: {list(frame.columns)}. Name the patient "
                "column, or split by image with missing_patient='image' (patient leakage then cannot be ruled out)."
            )
        logger.warning(
            "no patient column %r: splitting by image; patient leakage between splits cannot be ruled out.",
            patient_column,
        )
        frame = frame.assign(**{patient_column: [f"row{i:09d}" for i in range(len(frame))]})
        out = patient_level_split(frame, fractions, seed, names, patient_column, split_column)
        return out.drop(columns=[patient_column])
    names, values = _normalise_fractions(fractions, names)
    patients_col = frame[patient_column]
    if patients_col.isna().any():
        raise ValueError(f"{int(patients_col.isna().sum())} rows have no {patient_column}; drop or fill them first.")
    patients = np.array(sorted(patients_col.astype(str).unique()))
    perm = np.random.default_rng(seed).permutation(len(patients))
    bounds = np.rint(np.cumsum(values) * len(patients)).astype(int)
    bounds[-1] = len(patients)
    assignment = np.empty(len(patients), dtype=object)
    start = 0
    for name, stop in zip(names, bounds):
        assignment[perm[start:stop]] = name
        start = stop
    lookup = dict(zip(patients, assignment))
    out = frame.copy()
    out[split_column] = patients_col.astype(str).map(lookup).to_numpy()
    return out


def split_frames(
    frame: pd.DataFrame, split_column: str = "split", names: Sequence[str] | None = None
) -> dict[str, pd.DataFrame]:
    """``{split name: rows}`` (each re-indexed from 0); ``names`` fixes which splits (and order) are returned."""
    if split_column not in frame.columns:
        raise KeyError(f"split column {split_column!r} not found; available: {list(frame.columns)}.")
    names = list(names) if names is not None else sorted(frame[split_column].dropna().astype(str).unique())
    return {n: frame[frame[split_column] == n].reset_index(drop=True) for n in names}


def patient_overlap(
    frames: Mapping[str, pd.DataFrame], patient_column: str = "patient_hash"
) -> dict[tuple[str, str], int]:
    """Number of patients shared by each pair of frames (0 everywhere means no leakage)."""
    sets = {k: set(f[patient_column].astype(str)) for k, f in frames.items()}
    keys = list(sets)
    return {(a, b): len(sets[a] & sets[b]) for i, a in enumerate(keys) for b in keys[i + 1 :]}


def assert_no_patient_leakage(
    frames: pd.DataFrame | Mapping[str, pd.DataFrame], patient_column: str = "patient_hash", split_column: str = "split"
) -> None:
    """Raise if any patient appears in two splits (a frame with a split column, or a ``{name: frame}`` mapping).

    Raises:
        ValueError: with the number of shared patients, per pair of splits, and a few (hashed) patient values.
    """
    if isinstance(frames, pd.DataFrame):
        frames = split_frames(frames, split_column)
    shared = {k: v for k, v in patient_overlap(frames, patient_column).items() if v}
    if shared:
        sets = [set(f[patient_column].astype(str)) for f in frames.values()]
        leaked = sorted({p for i, a in enumerate(sets) for b in sets[i + 1 :] for p in a & b})
        pairs = ", ".join(f"{a}/{b}: {n}" for (a, b), n in shared.items())
        raise ValueError(
            f"{len(leaked)} patient(s) shared across splits ({pairs}; {patient_column} e.g. "
            f"{[p[:12] for p in leaked[:3]]})."
        )
