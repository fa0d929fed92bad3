# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Study sampling protocols (pure functions on manifest tables, deterministic per seed) and sampler weights.

- :func:`balance_negatives`: disease vs an equal number of No Finding images (Marcinkevics et al. 2022).
- :func:`marcinkevics_split`: patient-level 50/25/25, train subsampled to privileged : unprivileged = 3 : 1,
  validation and test balanced 1 : 1 on the attribute.
- :func:`joshi_race_splits`: single-race vs mixed-race training sets with same-race / other-race test sets
  (Joshi, race and CXR diagnosis), made patient-disjoint (the original image-level sampling leaks patients).
- :func:`group_balanced_weights`: per-sample weights for ``torch.utils.data.WeightedRandomSampler``.
- :func:`marcinkevics_study_data`: the one call a bundle makes to get train/val/test data dicts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .codes import SEX_NAMES, UNKNOWN, encode_sex
from .manifest import SEX_SPELLINGS, frame_to_data_dicts, read_manifest
from .splits import patient_level_split

__all__ = [
    "balance_negatives",
    "subsample_to_proportions",
    "marcinkevics_split",
    "joshi_race_splits",
    "group_balanced_weights",
    "resolve_code",
    "marcinkevics_study_data",
]

logger = logging.getLogger(__name__)


def _sample(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` rows without replacement, returned in their original order (so results do not depend on draw order)."""
    idx = rng.choice(len(frame), size=n, replace=False)
    return frame.iloc[np.sort(idx)]


def balance_negatives(
    frame: pd.DataFrame, label_column: str = "label", ratio: float = 1.0, seed: int = 0
) -> pd.DataFrame:
    """All positives plus a random sample of ``round(ratio * n_pos)`` negatives (all of them if fewer, with a warning).

    Raises:
        ValueError: labels other than 0/1, or no positives.
    """
    y = pd.to_numeric(frame[label_column], errors="coerce")
    if not y.isin([0.0, 1.0]).all():
        raise ValueError(f"{label_column!r} must be 0/1 for balancing; found {sorted(y.dropna().unique())[:5]}.")
    pos, neg = frame[y == 1.0], frame[y == 0.0]
    if len(pos) == 0:
        raise ValueError("no positives to balance against.")
    want = int(round(ratio * len(pos)))
    if want > len(neg):
        logger.warning("only %d negatives for %d wanted; keeping all negatives.", len(neg), want)
        want = len(neg)
    rng = np.random.default_rng(seed)
    return pd.concat([pos, _sample(neg, want, rng)]).sort_index()


def subsample_to_proportions(
    frame: pd.DataFrame, column: str, groups: Sequence[Sequence[int]], proportions: Sequence[float], seed: int = 0
) -> pd.DataFrame:
    """The largest random subset whose group sizes follow ``proportions`` (exactly for integer ratios such as 3 : 1).

    Group sizes are ``floor(r_g * k)`` with ``r_g = p_g / min(p)`` and ``k`` the largest number of whole ratio units
    every group can supply.

    Args:
        frame: rows to subsample.
        column: attribute column.
        groups: the codes making up each group, e.g. ``[[1], [0]]`` for M vs F.
        proportions: target share of each group, e.g. ``[0.75, 0.25]``.
        seed: random seed.

    Returns:
        Rows of the groups only (rows outside every group are left out), in original order.

    Raises:
        ValueError: shapes disagree, non-positive proportions, or overlapping groups.
    """
    props = np.asarray(proportions, dtype=float)
    if len(groups) != len(props) or (props <= 0).any():
        raise ValueError(f"need one positive proportion per group, got groups={groups}, proportions={proportions}.")
    flat = [c for g in groups for c in g]
    if len(set(flat)) != len(flat):
        raise ValueError(f"groups overlap: {groups}.")
    # whole "units" of the ratio (3 : 1 → units of 3 + 1 rows), so integer ratios come out exact
    ratios = props / props.min()
    members = [frame[frame[column].isin(list(g))] for g in groups]
    units = min(math.floor(len(m) / r + 1e-9) for m, r in zip(members, ratios))
    rng = np.random.default_rng(seed)
    parts = [_sample(m, math.floor(r * units + 1e-9), rng) for m, r in zip(members, ratios)]
    return pd.concat(parts).sort_index()


def _as_codes(value: int | Sequence[int]) -> list[int]:
    return [int(value)] if isinstance(value, (int, np.integer)) else [int(v) for v in value]


def marcinkevics_split(
    frame: pd.DataFrame,
    attribute: str = "sex",
    privileged: int | Sequence[int] = 1,
    unprivileged: int | Sequence[int] | None = 0,
    seed: int = 42,
    label_column: str = "label",
    fractions: Sequence[float] = (0.5, 0.25, 0.25),
    train_privileged_fraction: float = 0.75,
    balance_labels: bool = True,
    patient_column: str = "patient_hash",
    split_column: str = "split",
    missing_patient: str = "error",
) -> pd.DataFrame:
    """The Marcinkevics et al. (2022) MIMIC-CXR protocol on a binary-task manifest.

    1. (``balance_labels``) all positives and as many randomly drawn negatives;
    2. patient-level split 50/25/25 (``fractions``; patients, not images);
    3. train subsampled to privileged : unprivileged = ``p : 1 - p`` (default 3 : 1); val and test subsampled to
       1 : 1. Rows whose attribute is in neither group (e.g. unknown sex) are left out (logged).

    Args:
        frame: manifest rows with a 0/1 ``label_column``, the attribute and ``patient_column``.
        attribute: the protected attribute column (codes).
        privileged: code(s) of the privileged group (p=1; M for sex).
        unprivileged: code(s) of the unprivileged group (p=0; F for sex); None: every known code but privileged.
        seed: random seed (the split is redrawn per seed, as in the study).
        label_column: binary label column.
        fractions: train/val/test patient fractions.
        train_privileged_fraction: privileged share of the train set.
        balance_labels: subsample negatives to the number of positives first.
        patient_column: hashed patient column.
        split_column: output split column (an existing one, e.g. the official split, is replaced).
        missing_patient: without ``patient_column``: ``"error"``, or ``"image"`` to split by image with a logged
            warning (see :func:`~monai_fair.data.splits.patient_level_split`).

    Returns:
        The selected rows with ``split_column`` in {train, val, test}.
    """
    if not 0.0 < train_privileged_fraction < 1.0:
        raise ValueError(f"train_privileged_fraction must be in (0, 1), got {train_privileged_fraction}.")
    if attribute not in frame.columns:
        raise KeyError(f"attribute column {attribute!r} not found; available: {list(frame.columns)}.")
    priv = _as_codes(privileged)
    if unprivileged is None:
        unpriv = sorted(int(c) for c in frame[attribute].unique() if int(c) != UNKNOWN and int(c) not in priv)
    else:
        unpriv = _as_codes(unprivileged)
    # independent streams per step, so changing one step's input does not reshuffle the others
    seeds = np.random.SeedSequence(seed).generate_state(5)
    data = balance_negatives(frame, label_column, 1.0, int(seeds[0])) if balance_labels else frame
    data = patient_level_split(
        data, fractions, int(seeds[1]), ("train", "val", "test"), patient_column, split_column, missing_patient
    )
    outside = ~data[attribute].isin(priv + unpriv)
    if outside.any():
        logger.info(
            "marcinkevics_split: %d rows with %s outside %s/%s left out.", outside.sum(), attribute, priv, unpriv
        )
    parts = []
    for k, (name, props) in enumerate(
        (
            ("train", (train_privileged_fraction, 1.0 - train_privileged_fraction)),
            ("val", (0.5, 0.5)),
            ("test", (0.5, 0.5)),
        )
    ):
        part = data[data[split_column] == name]
        parts.append(subsample_to_proportions(part, attribute, [priv, unpriv], props, int(seeds[2 + k])))
    return pd.concat(parts).reset_index(drop=True)


def _patient_codes(frame: pd.DataFrame, column: str, patient_column: str) -> pd.Series:
    """Each patient's most frequent code (ties: the smallest code)."""
    counts = frame.groupby([patient_column, column]).size().reset_index(name="n")
    counts = counts.sort_values([patient_column, "n", column], ascending=[True, False, True])
    return counts.drop_duplicates(patient_column).set_index(patient_column)[column]


def joshi_race_splits(
    frame: pd.DataFrame,
    target_race: int,
    race_column: str = "race",
    train_size: int | None = None,
    test_size: int | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    patient_column: str = "patient_hash",
    mixed_includes_unknown: bool = True,
) -> dict[str, pd.DataFrame]:
    """Joshi's single-race vs mixed-race protocol, patient-disjoint.

    ``test_fraction`` of the target-race patients are held out for ``test_same`` and the same fraction of the other
    (known) races' patients for ``test_other``; ``train_single`` draws from the remaining target-race patients and
    ``train_mixed`` from all remaining patients regardless of race (unknown race included if
    ``mixed_includes_unknown``). Both training sets have ``train_size`` images and both test sets ``test_size``.

    Args:
        frame: manifest rows with race codes and hashed patients.
        target_race: code of the single training race (White in the study).
        race_column: race column.
        train_size: images per training set (default: all the single-race pool can give).
        test_size: images per test set (default: the smaller test pool).
        test_fraction: fraction of patients held out for testing, per race side.
        seed: random seed.
        patient_column: hashed patient column.
        mixed_includes_unknown: whether unknown-race patients may enter the mixed training set.

    Returns:
        ``{"train_single", "train_mixed", "test_same", "test_other"}`` → rows (re-indexed).

    Raises:
        ValueError: not enough images for the requested sizes, or no target/other-race patients.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
    race_of = _patient_codes(frame, race_column, patient_column)
    patients = np.array(sorted(race_of.index.astype(str)))
    race = race_of.reindex(patients).to_numpy()
    rng = np.random.default_rng(seed)
    target = patients[race == target_race]
    other = patients[(race != target_race) & (race != UNKNOWN)]
    unknown = patients[race == UNKNOWN]
    if len(target) == 0 or len(other) == 0:
        raise ValueError(f"need patients of race {target_race} and of other races, got {len(target)} and {len(other)}.")

    def hold_out(group: np.ndarray) -> tuple[set[str], set[str]]:
        perm = rng.permutation(len(group))
        n_test = max(1, int(round(test_fraction * len(group))))
        return set(group[perm[:n_test]]), set(group[perm[n_test:]])

    test_t, train_t = hold_out(target)
    test_o, train_o = hold_out(other)
    train_pool_mixed = train_t | train_o | (set(unknown) if mixed_includes_unknown else set())
    pid = frame[patient_column].astype(str)
    pools = {
        "train_single": frame[pid.isin(train_t)],
        "train_mixed": frame[pid.isin(train_pool_mixed)],
        "test_same": frame[pid.isin(test_t)],
        "test_other": frame[pid.isin(test_o)],
    }
    n_train = len(pools["train_single"]) if train_size is None else int(train_size)
    n_test = min(len(pools["test_same"]), len(pools["test_other"])) if test_size is None else int(test_size)
    out = {}
    for name, pool in pools.items():
        n = n_train if name.startswith("train") else n_test
        if n > len(pool):
            raise ValueError(f"{name}: {n} images requested but only {len(pool)} available.")
        out[name] = _sample(pool, n, rng).reset_index(drop=True)
    return out


def group_balanced_weights(
    groups: Sequence[int] | np.ndarray | torch.Tensor, labels: Sequence[float] | np.ndarray | torch.Tensor | None = None
) -> torch.Tensor:
    """Per-sample weights giving every group (or every group × label stratum) the same total weight.

    Weight of a sample in stratum ``s`` is ``N / (S * n_s)`` (``S`` strata present), so the weights average to 1
    and ``WeightedRandomSampler(weights, num_samples=N)`` draws each stratum equally often in expectation. Unknown
    codes (-1) form a stratum of their own (they are not dropped).

    Returns:
        ``float64`` tensor of shape ``(N,)``.
    """
    g = torch.as_tensor(np.asarray(groups)).reshape(-1).to(torch.int64)
    if labels is not None:
        y = torch.as_tensor(np.asarray(labels, dtype=float)).reshape(-1)
        if y.shape != g.shape:
            raise ValueError(f"groups and labels differ in length: {g.shape[0]} vs {y.shape[0]}.")
        if torch.isnan(y).any():
            raise ValueError("labels contain NaN; strata need a defined label.")
        key = torch.stack([g, y.to(torch.int64)], dim=1)
    else:
        key = g[:, None]
    if key.shape[0] == 0:
        return torch.zeros(0, dtype=torch.float64)
    _, inverse, counts = torch.unique(key, dim=0, return_inverse=True, return_counts=True)
    n, s = key.shape[0], counts.numel()
    return n / (s * counts.to(torch.float64)[inverse])


def resolve_code(value: int | str, code_map: Mapping[int, str] | None, what: str = "value") -> int:
    """A code from a code or a name (case-insensitive) of ``code_map``; for the shared sex map also the spellings
    :func:`~monai_fair.data.codes.encode_sex` accepts (``male``, ``Female``, ``woman`` ...).

    Raises:
        ValueError: a name not in the map (the message lists the accepted names), or no map at all.
    """
    if isinstance(value, (int, np.integer)):
        return int(value)
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    if not code_map:
        raise ValueError(
            f"{what} {value!r} is a name, but the attribute has no code map (a numeric column, or a column missing "
            "from the manifest); give its code, or the names with group_names (prepare_manifest: --group-names)."
        )
    for code, name in code_map.items():
        if name.lower() == text.lower():
            return int(code)
    if dict(code_map) == dict(SEX_NAMES) and encode_sex(text) != UNKNOWN:
        return encode_sex(text)
    accepted = list(code_map.values())
    if dict(code_map) == dict(SEX_NAMES):
        accepted += list(SEX_SPELLINGS)
    raise ValueError(f"{what} {value!r} is not a code or a name in {dict(code_map)}; accepted names: {accepted}.")


def marcinkevics_study_data(
    dataset_dir: str | Path | None = None,
    mimic_iv_dir: str | Path | None = None,
    manifest: str | Path | None = None,
    disease: str = "Enlarged Cardiomediastinum",
    attribute: str = "sex",
    privileged: int | str = "M",
    unprivileged: int | str | Sequence[int | str] | None = "F",
    seed: int = 42,
    label_column: str = "label",
    attribute_columns: Sequence[str] = ("sex", "age", "age_group", "race"),
    fractions: Sequence[float] = (0.5, 0.25, 0.25),
    train_privileged_fraction: float = 0.75,
    check_files: bool = True,
    verify_images: bool = False,
    patient_column: str = "patient_id",
    missing_patient: str = "error",
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[int, str]]]:
    """Train/val/test data dicts for the Marcinkevics protocol, from MIMIC-CXR-JPG (+MIMIC-IV) or a manifest CSV.

    Args:
        dataset_dir: MIMIC-CXR-JPG root (e.g. the path returned by ``make_demo_dataset("mimic_cxr")``).
        mimic_iv_dir: MIMIC-IV root (default ``<dataset_dir>/mimic-iv``).
        manifest: a generic manifest CSV instead (needs ``image``, ``label_column``, the attribute and
            ``patient_id``/``patient_hash``); exactly one of ``dataset_dir``/``manifest``.
        disease: the positive label of the MIMIC-CXR binary task (vs No Finding).
        attribute: protected attribute column.
        privileged: privileged group, as a code or a name of the attribute's code map (``"M"``).
        unprivileged: unprivileged group(s) (``"F"``); None: every other known group.
        seed: split seed.
        label_column: label column of the manifest (MIMIC-CXR: ``label`` is made by the binary task).
        attribute_columns: attributes carried into the data dicts (those present in the table).
        fractions: train/val/test patient fractions.
        train_privileged_fraction: privileged share of the train set (0.75 = 3 : 1).
        check_files: skip (and count) rows whose image is missing.
        verify_images: with ``manifest``, decode every image first and skip (and count) unreadable ones, so one
            corrupt file cannot stop training later.
        patient_column: with ``manifest``, its raw patient identifier column (hashed on load); a stored
            ``patient_hash`` column is used when it is absent.
        missing_patient: a manifest without a patient column: ``"error"``, or ``"image"`` to split by image with a
            logged warning that patient leakage cannot be ruled out (e.g. ISIC 2017).

    Returns:
        ``({"train": [...], "val": [...], "test": [...]}, code_maps)``.
    """
    if (dataset_dir is None) == (manifest is None):
        raise ValueError("give exactly one of dataset_dir (MIMIC-CXR-JPG) or manifest (CSV).")
    if manifest is not None:
        wanted = list(dict.fromkeys([attribute, *attribute_columns]))
        probe = pd.read_csv(manifest, nrows=0).columns
        if attribute not in probe:
            raise KeyError(f"attribute column {attribute!r} not found in {manifest}; available: {list(probe)}.")
        attrs = [c for c in wanted if c in probe]
        # the study re-splits by patient: a split column in the manifest is not used, so its groups are not checked
        table, code_maps, skipped = read_manifest(
            manifest,
            label_column,
            attrs,
            check_files=check_files,
            patient_column=patient_column,
            check_split_groups=False,
            verify_images=verify_images,
        )
    else:
        from .mimic_cxr import build_mimic_cxr_manifest

        table, code_maps, skipped = build_mimic_cxr_manifest(
            dataset_dir, mimic_iv_dir, task=disease, check_files=check_files
        )
        label_column = "label"
    if skipped.total:
        logger.info("marcinkevics_study_data: %s", skipped.summary())
    amap = code_maps.get(attribute)
    priv = resolve_code(privileged, amap, "privileged group")
    if unprivileged is None:
        unpriv = None
    elif isinstance(unprivileged, (int, str, np.integer)):
        unpriv = [resolve_code(unprivileged, amap, "unprivileged group")]
    else:
        unpriv = [resolve_code(u, amap, "unprivileged group") for u in unprivileged]
    split = marcinkevics_split(
        table,
        attribute,
        priv,
        unpriv,
        seed,
        label_column,
        fractions,
        train_privileged_fraction,
        missing_patient=missing_patient,
    )
    attrs = [c for c in dict.fromkeys([attribute, *attribute_columns]) if c in split.columns]
    data = {
        name: frame_to_data_dicts(split[split["split"] == name], label_column, attrs)
        for name in ("train", "val", "test")
    }
    return data, code_maps
