# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Single-group vs mixed training sets of equal size, with a test set for every group (the cross-group study).

Joshi's race study trains one model on one race (White) and one on a mixed-race set, then tests both on the same
race and on the other races. Its code samples images, so patients leak between training and test, and the two
training sets differ in size. :func:`cross_group_splits` does the study by patient:

1. every known group's patients are split into test / validation / training pools (``test_fraction``,
   ``val_fraction`` of each group's patients), so the test set holds every group and no patient is in two pools;
2. ``train_single`` draws ``train_size`` images from the chosen group's training pool, ``train_mixed`` the same
   number from the training pools of all groups together (so the two training sets have equal size and may share
   patients of the chosen group, but never with validation or test);
3. ``val_single`` and ``val_mixed`` are drawn the same way, with equal size, from the validation pools;
4. ``test`` is every test patient's images, each row carrying its group.

Unknown-group patients (negative codes) are left out of the test set; they enter the mixed training pool only
with ``mixed_includes_unknown``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .codes import UNKNOWN
from .manifest import frame_to_data_dicts, read_manifest

__all__ = ["TRAINING_SETS", "cross_group_splits", "cross_group_study_data"]

logger = logging.getLogger(__name__)

#: the training sets of the study, in report order
TRAINING_SETS = ("single", "mixed")


def _patient_groups(frame: pd.DataFrame, attribute: str, patient_column: str) -> pd.Series:
    """The group of every patient (its first row's code); a patient with rows in several groups is an error."""
    per = frame.groupby(patient_column, sort=True)[attribute]
    mixed = per.nunique() > 1
    if mixed.any():
        raise ValueError(f"{int(mixed.sum())} patient(s) have rows in several {attribute!r} groups.")
    return per.first().astype(int)


def _draw(pool: pd.DataFrame, n: int, rng: np.random.Generator, name: str) -> pd.DataFrame:
    if n > len(pool):
        raise ValueError(f"{name}: {n} images requested but only {len(pool)} available.")
    idx = np.sort(rng.choice(len(pool), size=n, replace=False))
    return pool.iloc[idx].reset_index(drop=True)


def cross_group_splits(
    frame: pd.DataFrame,
    attribute: str,
    train_group: int,
    *,
    train_size: int | None = None,
    val_size: int | None = None,
    test_fraction: float = 0.25,
    val_fraction: float = 0.15,
    seed: int = 0,
    patient_column: str = "patient_hash",
    mixed_includes_unknown: bool = False,
) -> dict[str, pd.DataFrame]:
    """The patient-level splits of the cross-group study (see the module docstring).

    Args:
        frame: manifest rows with ``attribute`` codes and a patient column.
        attribute: the group column (``race``, ``sex``, ...).
        train_group: code of the single training group.
        train_size: images per training set (default: the whole single-group training pool).
        val_size: images per validation set (default: the whole single-group validation pool).
        test_fraction: share of each group's patients held out for testing.
        val_fraction: share of each group's patients held out for validation.
        seed: random seed.
        patient_column: the (hashed) patient column.
        mixed_includes_unknown: unknown-group patients may enter the mixed training and validation sets.

    Returns:
        ``{"train_single", "train_mixed", "val_single", "val_mixed", "test"}`` → rows (re-indexed).

    Raises:
        ValueError: bad fractions, no patient of ``train_group`` or of another group, a patient in several groups, or
            sizes larger than the pools.
        KeyError: a missing column.
    """
    for col in (attribute, patient_column):
        if col not in frame.columns:
            raise KeyError(f"column {col!r} not found; available: {list(frame.columns)}.")
    if not (0.0 < test_fraction < 1.0 and 0.0 < val_fraction < 1.0 and test_fraction + val_fraction < 1.0):
        raise ValueError(
            f"test_fraction and val_fraction must be in (0, 1) with a sum below 1, got {test_fraction}, {val_fraction}."
        )
    groups = _patient_groups(frame, attribute, patient_column)
    known = sorted(int(g) for g in groups.unique() if g >= 0)
    if int(train_group) not in known or len(known) < 2:
        raise ValueError(
            f"need patients of the training group {train_group} and of another {attribute!r} group; "
            f"groups present: {known}."
        )
    rng = np.random.default_rng(seed)
    pools: dict[str, dict[int, set[str]]] = {"test": {}, "val": {}, "train": {}}
    for g in [*known, UNKNOWN]:
        patients = np.array(sorted(groups.index[groups == g].astype(str)))
        if g == UNKNOWN and not mixed_includes_unknown:
            continue
        perm = patients[rng.permutation(len(patients))]
        n_test = 0 if g == UNKNOWN else int(round(test_fraction * len(perm)))
        n_val = int(round(val_fraction * len(perm)))
        pools["test"][g] = set(perm[:n_test])
        pools["val"][g] = set(perm[n_test : n_test + n_val])
        pools["train"][g] = set(perm[n_test + n_val :])
    pid = frame[patient_column].astype(str)

    def rows(part: str, which: Sequence[int]) -> pd.DataFrame:
        chosen = set().union(*(pools[part][g] for g in which if g in pools[part]))
        return frame[pid.isin(chosen)]

    out: dict[str, pd.DataFrame] = {}
    every = list(pools["train"])
    for part, size in (("train", train_size), ("val", val_size)):
        single, mixed = rows(part, [int(train_group)]), rows(part, every)
        n = len(single) if size is None else int(size)
        if n < 1:
            raise ValueError(f"{part}_single would be empty; more patients of group {train_group} are needed.")
        out[f"{part}_single"] = _draw(single, n, rng, f"{part}_single")
        out[f"{part}_mixed"] = _draw(mixed, n, rng, f"{part}_mixed")
    out["test"] = rows("test", known).reset_index(drop=True)
    return out


def cross_group_study_data(
    dataset_dir: str | Path | None = None,
    manifest: str | Path | None = None,
    label_column: str | Sequence[str] | None = None,
    seed: int = 0,
    *,
    labels: Sequence[str] | None = None,
    attribute: str = "race",
    train_group: int | str = "White",
    attribute_columns: Sequence[str] = ("sex", "age_group", "race"),
    demographics: str | Path | None = None,
    uncertain: str = "zeros",
    train_size: int | None = None,
    val_size: int | None = None,
    test_fraction: float = 0.25,
    val_fraction: float = 0.15,
    patient_column: str = "patient_id",
    missing_patient: str = "error",
    mixed_includes_unknown: bool = False,
    check_files: bool = True,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[int, str]]]:
    """Data dicts of the cross-group study from CheXpert (or its demo) or a generic manifest.

    Args:
        dataset_dir: the CheXpert folder (``CheXpert-v1.0-small`` or the folder holding it and ``CHEXPERT DEMO``).
        manifest: a generic manifest CSV instead (``image``, the label columns, the attribute; a patient column).
        label_column: the label column(s) :class:`~monai_fair.study.StudySplits` passes; used when ``labels`` is None.
        seed: split seed.
        labels: the label columns (the network's outputs, in order); default the 14 CheXpert labels.
        attribute: the group attribute.
        train_group: the single training group, as a code or a name of the attribute's code map.
        attribute_columns: further attributes carried into the data dicts (for intersectional figures).
        demographics: the CHEXPERT DEMO table (default: found next to the dataset).
        uncertain: CheXpert's uncertain-label policy (``zeros`` U-Zeros, ``ones`` U-Ones, ``ignore`` NaN).
        train_size, val_size, test_fraction, val_fraction, mixed_includes_unknown: see :func:`cross_group_splits`.
        patient_column: the manifest's patient column.
        missing_patient: a manifest without a patient column: ``"error"``, or ``"image"`` to treat every image as its
            own patient (logged: patient leakage cannot be ruled out).
        check_files: skip (and count) rows whose image is missing.

    Returns:
        ``({"train_single", "train_mixed", "val_single", "val_mixed", "test"} → data dicts, code_maps)``; every
        dict has ``image``, a float32 ``label`` vector (NaN: ignored), the attributes and ``patient_hash``.
    """
    from .chexpert import CHEXPERT_LABELS, build_chexpert_manifest
    from .sampling import resolve_code

    if (dataset_dir is None) == (manifest is None):
        raise ValueError("give exactly one of dataset_dir (CheXpert) or manifest (CSV).")
    if labels is None:
        labels = list(CHEXPERT_LABELS) if manifest is None or label_column is None else label_column
    labels = [labels] if isinstance(labels, str) else list(labels)
    if manifest is not None:
        probe = pd.read_csv(manifest, nrows=0).columns
        missing = [c for c in [attribute, *labels] if c not in probe]
        if missing:
            raise KeyError(f"columns {missing} not found in {manifest}; available: {list(probe)}.")
        has_patient = patient_column in probe or "patient_hash" in probe
        if not has_patient and missing_patient != "image":
            raise KeyError(
                f"no patient column {patient_column!r} (nor patient_hash) in {manifest}; name it, or pass "
                "missing_patient='image' to treat every image as its own patient."
            )
        wanted = list(dict.fromkeys([attribute, *attribute_columns]))
        table, code_maps, skipped = read_manifest(
            manifest,
            labels,
            [c for c in wanted if c in probe],
            patient_column=patient_column,
            check_files=check_files,
            check_split_groups=False,
        )
        if "patient_hash" not in table.columns:
            logger.warning(
                "%s has no patient column: every image is its own patient (leakage not ruled out).", manifest
            )
            table = table.assign(patient_hash=[f"image{i}" for i in range(len(table))])
    else:
        unknown = [c for c in labels if c not in CHEXPERT_LABELS]
        if unknown:
            raise KeyError(f"labels {unknown} are not CheXpert labels; known: {list(CHEXPERT_LABELS)}.")
        table, code_maps, skipped = build_chexpert_manifest(
            dataset_dir, demographics, uncertain=uncertain, check_files=check_files
        )
    if skipped.total:
        logger.info("cross_group_study_data: %s", skipped.summary())
    group = resolve_code(train_group, code_maps.get(attribute), "train_group")
    splits = cross_group_splits(
        table,
        attribute,
        group,
        train_size=train_size,
        val_size=val_size,
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        seed=seed,
        mixed_includes_unknown=mixed_includes_unknown,
    )
    attrs = [c for c in dict.fromkeys([attribute, *attribute_columns]) if c in table.columns]
    data = {}
    for name, rows in splits.items():
        dicts = frame_to_data_dicts(rows, labels, attrs, extra_columns=["patient_hash"])
        for d in dicts:  # always a label vector, also for one label
            d["label"] = np.asarray(d["label"], dtype=np.float32).reshape(-1)
        data[name] = dicts
    return data, code_maps
