# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Precomputed embedding tables (NPZ, CSV, Parquet) with demographics and labels, as a dataset of dicts.

A table holds one vector per row (e.g. Google CT Foundation's 1408-d embeddings of NLST CT scans), labels such as
``cancer_in_1``/``cancer_in_2``, and sex/age either in the table or in a side table joined by an id (NLST ships
demographics in a separate person CSV). Loading validates shapes, dtypes and NaNs with errors that say what is
wrong and where; samples are dicts ``{"embedding", "label", "sex", "age", "age_group"}`` like image samples.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from monai.utils import optional_import

from monai_fair.data.codes import DEFAULT_AGE_BINS, SEX_CODES, SEX_NAMES, UNKNOWN, age_group_names, encode_sex
from monai_fair.data.privacy import hash_patient_id

pa, has_pyarrow = optional_import("pyarrow")

__all__ = [
    "NLST_SEX_MAP",
    "EmbeddingTable",
    "EmbeddingDataset",
    "load_embedding_table",
    "write_embedding_table",
]

# NLST person table: gender 1 = male, 2 = female
NLST_SEX_MAP: dict[Any, str] = {1: "M", 2: "F"}
_NPZ_EMBEDDING_KEYS = ("embeddings", "embedding", "features", "x", "X")


@dataclass
class EmbeddingTable:
    """A validated embedding table.

    Attributes:
        embeddings: ``(N, D)`` float32.
        labels: ``(N, K)`` float32 (one column per label name).
        label_names: the K label names.
        sex: ``(N,)`` int64 sex codes (F=0, M=1, O=2, unknown=-1).
        age: ``(N,)`` float32 years (NaN unknown).
        age_group: ``(N,)`` int64 age-group codes.
        patient_hash: ``(N,)`` salted hashes of the row ids (``""`` when there is no id column).
        code_maps: code→name maps (``sex``, ``age_group``).
        notes: counts of rows with unknown demographics, by reason.
    """

    embeddings: np.ndarray
    labels: np.ndarray
    label_names: list[str]
    sex: np.ndarray
    age: np.ndarray
    age_group: np.ndarray
    patient_hash: np.ndarray
    code_maps: dict[str, dict[int, str]] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def dim(self) -> int:
        """Embedding size D."""
        return int(self.embeddings.shape[1])

    def subset(self, index: np.ndarray | Sequence[int]) -> EmbeddingTable:
        """Rows ``index`` of the table (a boolean mask or integer positions)."""
        idx = np.asarray(index)
        return EmbeddingTable(
            self.embeddings[idx],
            self.labels[idx],
            list(self.label_names),
            self.sex[idx],
            self.age[idx],
            self.age_group[idx],
            self.patient_hash[idx],
            dict(self.code_maps),
            dict(self.notes),
        )

    def dataset(self, transform: Callable | None = None, device: torch.device | str | None = None) -> EmbeddingDataset:
        """This table as an :class:`EmbeddingDataset`."""
        return EmbeddingDataset(self, transform=transform, device=device)


class EmbeddingDataset(torch.utils.data.Dataset):
    """Map-style dataset of an :class:`EmbeddingTable`: item ``i`` is a dict of tensors.

    Keys: ``embedding`` (D,) float32, ``label`` () float32 for one label column or (K,) for several, ``sex`` ()
    int64, ``age`` () float32, ``age_group`` () int64. The whole table is held as tensors (on ``device`` if given),
    so the default collation stacks items without copying Python objects, and
    :meth:`tensors` gives the full-batch view for probes.

    Args:
        table: the embedding table.
        transform: optional callable applied to each item dict (e.g. a MONAI ``Compose``).
        device: where the tensors live.
    """

    def __init__(
        self, table: EmbeddingTable, transform: Callable | None = None, device: torch.device | str | None = None
    ) -> None:
        self.table = table
        self.transform = transform
        self._data = {
            "embedding": torch.as_tensor(table.embeddings, dtype=torch.float32, device=device),
            "label": torch.as_tensor(
                table.labels[:, 0] if table.labels.shape[1] == 1 else table.labels, dtype=torch.float32, device=device
            ),
            "sex": torch.as_tensor(table.sex, dtype=torch.int64, device=device),
            "age": torch.as_tensor(table.age, dtype=torch.float32, device=device),
            "age_group": torch.as_tensor(table.age_group, dtype=torch.int64, device=device),
        }

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = {k: v[index] for k, v in self._data.items()}
        return self.transform(item) if self.transform is not None else item

    def tensors(self) -> dict[str, torch.Tensor]:
        """All rows at once (no transform), keyed like the items."""
        return dict(self._data)


def _read_columns(path: Path, embedding_key: str | None) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """The embedding matrix (if stored as one array/list column) and the other columns of a table file."""
    suffix = "".join(path.suffixes[-1:]).lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        key = embedding_key or next((k for k in _NPZ_EMBEDDING_KEYS if k in arrays), None)
        if key is None or key not in arrays:
            raise KeyError(
                f"{path.name}: no embedding array {embedding_key or _NPZ_EMBEDDING_KEYS}; arrays: {sorted(arrays)}."
            )
        return arrays.pop(key), arrays
    if suffix in (".parquet", ".pq"):
        if not has_pyarrow:
            raise ImportError(f"reading {path.name} needs pyarrow: pip install pyarrow (or monai_fair[parquet]).")
        frame = pd.read_parquet(path)
    elif suffix in (".csv", ".tsv", ".gz"):
        frame = pd.read_csv(path, sep="\t" if ".tsv" in path.name else ",")
    else:
        raise ValueError(f"unsupported embedding table format {path.name!r}; use .npz, .csv or .parquet.")
    key = embedding_key or "embedding"
    if key in frame.columns and len(frame) and isinstance(frame[key].iloc[0], (list, tuple, np.ndarray)):
        try:
            matrix = np.stack([np.asarray(v, dtype=np.float32) for v in frame[key]])
        except ValueError as e:
            raise ValueError(f"{path.name}: embedding vectors in column {key!r} differ in length.") from e
        return matrix, {c: frame[c].to_numpy() for c in frame.columns if c != key}
    return None, {c: frame[c].to_numpy() for c in frame.columns}


def _prefix_columns(columns: Mapping[str, np.ndarray], prefix: str, source: str) -> tuple[np.ndarray, list[str]]:
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)$")
    found = sorted(((int(m.group(1)), c) for c in columns if (m := pattern.match(c))), key=lambda t: t[0])
    if not found:
        raise KeyError(f"{source}: no embedding columns named '{prefix}<i>' (and no list column).")
    idx = [i for i, _ in found]
    if idx != list(range(len(idx))):
        raise ValueError(f"{source}: embedding columns '{prefix}<i>' are not numbered 0..{len(idx) - 1} without gaps.")
    names = [c for _, c in found]
    try:
        matrix = np.stack([np.asarray(columns[c], dtype=np.float32) for c in names], axis=1)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{source}: non-numeric values in embedding columns '{prefix}<i>'.") from e
    return matrix, names


def _encode_sex_values(values: np.ndarray, sex_map: Mapping[Any, str] | None, source: str) -> np.ndarray:
    if sex_map is not None:
        lookup = {_key(k): v for k, v in sex_map.items()}
        return np.asarray([encode_sex(None if _missing(v) else lookup.get(_key(v))) for v in values], dtype=np.int64)
    present = [v for v in values if not _missing(v)]
    numeric = pd.to_numeric(pd.Series(present, dtype=object), errors="coerce")
    if present and not numeric.isna().any():  # numbers (or numeric strings), possibly with gaps
        distinct = set(numeric.astype(float).unique().tolist())
        if not distinct <= {float(c) for c in (*SEX_CODES.values(), UNKNOWN)}:
            raise ValueError(
                f"{source}: numeric sex values {sorted(distinct)} are not the codes F=0, M=1, O=2, -1; "
                "pass sex_map (e.g. NLST_SEX_MAP = {1: 'M', 2: 'F'})."
            )
        if 2.0 in distinct and 0.0 not in distinct:
            raise ValueError(
                f"{source}: numeric sex values {sorted(distinct)} look like a 1/2 coding (NLST gender: "
                "1=male, 2=female), not the codes F=0, M=1, O=2; pass sex_map explicitly."
            )
        return np.asarray([UNKNOWN if _missing(v) else int(float(v)) for v in values], dtype=np.int64)
    return np.asarray([encode_sex(None if _missing(v) else v) for v in values], dtype=np.int64)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def _key(value: Any) -> Any:
    """Map keys compare across int/float/str spellings (``1``, ``1.0``, ``"1"``)."""
    if isinstance(value, (float, np.floating)) and not math.isnan(value) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value).strip()


def load_embedding_table(
    path: str | os.PathLike,
    label_columns: str | Sequence[str] = ("cancer_in_1",),
    embedding_key: str | None = None,
    embedding_prefix: str = "emb_",
    sex_column: str = "sex",
    age_column: str = "age",
    id_column: str | None = None,
    demographics: str | os.PathLike | pd.DataFrame | None = None,
    demographics_id_column: str = "pid",
    sex_map: Mapping[Any, str] | None = None,
    age_bins: Sequence[float] = DEFAULT_AGE_BINS,
    expected_dim: int | None = None,
    nan_policy: str = "raise",
    salt: str | None = None,
) -> EmbeddingTable:
    """Load and validate an embedding table with labels and demographics.

    Formats: ``.npz`` (an ``(N, D)`` array named ``embedding_key``, default the first of ``embeddings``,
    ``embedding``, ``features``, ``x``, plus 1-D arrays of length N), ``.csv`` / ``.parquet`` (columns
    ``<embedding_prefix>0 .. <embedding_prefix>{D-1}``, or in Parquet a list column ``embedding_key``).

    Args:
        path: the table file.
        label_columns: label column(s); values must be numeric (0/1 for binary tasks).
        embedding_key: name of the embedding array/list column (NPZ default: auto-detected).
        embedding_prefix: prefix of per-dimension columns in CSV/Parquet.
        sex_column: sex column (in the table, or in ``demographics`` when given and absent from the table).
        age_column: age column in years (same lookup as ``sex_column``).
        id_column: row id column (e.g. ``pid``); hashed into ``patient_hash``, needed to join ``demographics``.
        demographics: side table (path or DataFrame) with ``demographics_id_column``, sex and age columns.
        demographics_id_column: id column of ``demographics``.
        sex_map: raw value → ``"F"``/``"M"``/``"O"`` (e.g. :data:`NLST_SEX_MAP`); without it strings are decoded
            by name and numbers must already be the codes F=0, M=1, O=2 (a 1/2 coding is refused as ambiguous).
        age_bins: ascending lower edges of the age groups.
        expected_dim: required embedding size (e.g. 1408 for CT Foundation).
        nan_policy: rows with non-finite embeddings or missing labels: ``"raise"`` or ``"drop"`` (counted in
            ``notes``).
        salt: salt of the patient hash.

    Returns:
        an :class:`EmbeddingTable`.

    Raises:
        FileNotFoundError: when ``path`` (or ``demographics``) does not exist.
        KeyError: when a named column/array is missing.
        ValueError: on shape mismatches, wrong dimension, non-numeric labels, ambiguous sex coding, duplicate ids
            in ``demographics``, or NaNs with ``nan_policy="raise"``.
        ImportError: for Parquet without pyarrow.
    """
    if nan_policy not in ("raise", "drop"):
        raise ValueError(f"nan_policy must be 'raise' or 'drop', got {nan_policy!r}.")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"embedding table {path} does not exist.")
    source = path.name
    matrix, columns = _embedding_matrix(path, embedding_key, embedding_prefix, expected_dim)
    n = matrix.shape[0]
    labels = [label_columns] if isinstance(label_columns, str) else list(label_columns)
    label_matrix = _label_matrix(columns, labels, source, n)

    notes: dict[str, int] = {}
    ids = None
    if id_column is not None:
        if id_column not in columns:
            raise KeyError(f"{source}: id column {id_column!r} not found; available: {sorted(columns)}.")
        ids = [_key(v) for v in columns[id_column]]

    sex_raw, age_raw = columns.get(sex_column), columns.get(age_column)
    if demographics is not None and (sex_raw is None or age_raw is None):
        if ids is None:
            raise ValueError("joining a demographics table needs id_column.")
        side = demographics if isinstance(demographics, pd.DataFrame) else _read_side_table(demographics)
        sex_raw, age_raw = _join_demographics(
            side, ids, (demographics_id_column, sex_column, age_column), sex_raw, age_raw, notes
        )
    if sex_raw is None:
        raise KeyError(f"{source}: sex column {sex_column!r} not found (nor a demographics table to join).")
    if age_raw is None:
        raise KeyError(f"{source}: age column {age_column!r} not found (nor a demographics table to join).")

    sex, age, groups = _encode_demographics(sex_raw, age_raw, sex_map, age_bins, notes, source)
    keep = _complete_rows(matrix, label_matrix, nan_policy, notes, source)
    hashes = np.asarray([hash_patient_id(k, salt) for k in ids] if ids is not None else [""] * n, dtype=object)
    return EmbeddingTable(
        embeddings=matrix[keep],
        labels=label_matrix[keep],
        label_names=labels,
        sex=sex[keep],
        age=age[keep].astype(np.float32),
        age_group=groups[keep],
        patient_hash=hashes[keep],
        code_maps={"sex": dict(SEX_NAMES), "age_group": age_group_names(age_bins)},
        notes=notes,
    )


def _embedding_matrix(
    path: Path, embedding_key: str | None, embedding_prefix: str, expected_dim: int | None
) -> tuple[np.ndarray, dict[str, Any]]:
    """The ``(N, D)`` float32 embeddings and the other columns of the table, each checked to be N long.

    Raises:
        ValueError: on shape mismatches, a non-numeric matrix or the wrong dimension.
    """
    source = path.name
    matrix, columns = _read_columns(path, embedding_key)
    if matrix is None:
        matrix, used = _prefix_columns(columns, embedding_prefix, source)
        columns = {c: v for c, v in columns.items() if c not in set(used)}
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError(f"{source}: embeddings must be a non-empty (N, D) matrix, got shape {matrix.shape}.")
    if matrix.dtype.kind not in "iuf":
        raise ValueError(f"{source}: embeddings must be numeric, got dtype {matrix.dtype}.")
    matrix = matrix.astype(np.float32, copy=False)
    n, dim = matrix.shape
    if expected_dim is not None and dim != expected_dim:
        raise ValueError(f"{source}: embedding size {dim} != expected {expected_dim}.")
    for name, values in columns.items():
        if np.asarray(values).ndim != 1 or len(values) != n:
            raise ValueError(
                f"{source}: column {name!r} has shape {np.shape(values)}, expected ({n},) like the " f"{n} embeddings."
            )
    return matrix, columns


def _label_matrix(columns: dict[str, Any], labels: list[str], source: str, n: int = 0) -> np.ndarray:
    """The ``(N, L)`` float32 label matrix (``(N, 0)`` when no label column is asked for, e.g. at inference).

    Raises:
        KeyError: a label column is missing.
        ValueError: a label column is not numeric.
    """
    missing = [c for c in labels if c not in columns]
    if missing:
        raise KeyError(f"{source}: label column(s) {missing} not found; available: {sorted(columns)}.")
    if not labels:
        return np.zeros((n, 0), dtype=np.float32)
    try:
        return np.stack(
            [pd.to_numeric(pd.Series(columns[c]), errors="raise").to_numpy(np.float32) for c in labels], axis=1
        )
    except (TypeError, ValueError) as e:
        raise ValueError(f"{source}: label columns {labels} must be numeric.") from e


def _join_demographics(
    side: pd.DataFrame,
    ids: list[str],
    side_columns: tuple[str, str, str],
    sex_raw: Any,
    age_raw: Any,
    notes: dict[str, int],
) -> tuple[Any, Any]:
    """Sex and age per row from the side table (by id) where the table itself lacks them; rows without a side row
    get None / NaN and are counted in ``notes``. ``side_columns`` is ``(id, sex, age)``.

    Raises:
        KeyError: a side-table column is missing.
        ValueError: the side table repeats an id.
    """
    id_col, sex_col, age_col = side_columns
    for col in side_columns:
        if col not in side.columns:
            raise KeyError(f"demographics table: column {col!r} not found; available: {list(side.columns)}.")
    side_ids = [_key(v) for v in side[id_col]]
    if len(set(side_ids)) != len(side_ids):
        raise ValueError(f"demographics table: duplicate ids in column {id_col!r}.")
    row_of = {k: i for i, k in enumerate(side_ids)}
    pos = np.asarray([row_of.get(k, -1) for k in ids])
    unmatched = int((pos < 0).sum())
    if unmatched:
        notes["no demographics row for id"] = unmatched
    take = np.where(pos < 0, 0, pos)
    if sex_raw is None:
        values = side[sex_col].to_numpy(dtype=object)[take]
        values[pos < 0] = None
        sex_raw = values
    if age_raw is None:
        ages = pd.to_numeric(side[age_col], errors="coerce").to_numpy(np.float64)[take]
        ages[pos < 0] = np.nan
        age_raw = ages
    return sex_raw, age_raw


def _encode_demographics(
    sex_raw: Any,
    age_raw: Any,
    sex_map: Mapping[Any, str] | None,
    age_bins: Sequence[float],
    notes: dict[str, int],
    source: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sex codes, ages (NaN outside 0..120) and age-group codes; unknowns are counted in ``notes``."""
    sex = _encode_sex_values(np.asarray(sex_raw), sex_map, source)
    age = pd.to_numeric(pd.Series(age_raw), errors="coerce").to_numpy(np.float64, copy=True)
    bad_age = np.isnan(age) | (age < 0) | (age > 120)
    age[bad_age] = np.nan
    for reason, count in (("sex unknown", int((sex == UNKNOWN).sum())), ("age unknown", int(bad_age.sum()))):
        if count:
            notes[reason] = count
    return sex, age, _age_groups(age, age_bins)


def _complete_rows(
    matrix: np.ndarray, label_matrix: np.ndarray, nan_policy: str, notes: dict[str, int], source: str
) -> np.ndarray:
    """Rows with finite embeddings and all labels; the others raise (``nan_policy="raise"``) or are counted drops.

    Raises:
        ValueError: incomplete rows with ``nan_policy="raise"``.
    """
    bad_rows = ~np.isfinite(matrix).all(axis=1)
    nan_labels = np.isnan(label_matrix).any(axis=1)
    if bad_rows.any() or nan_labels.any():
        where = np.flatnonzero(bad_rows | nan_labels)[:5].tolist()
        if nan_policy == "raise":
            raise ValueError(
                f"{source}: {int(bad_rows.sum())} rows have non-finite embeddings and "
                f"{int(nan_labels.sum())} rows missing labels (first rows: {where}); "
                "fix the table or pass nan_policy='drop'."
            )
        notes["dropped: non-finite embedding"] = int(bad_rows.sum())
        notes["dropped: missing label"] = int((nan_labels & ~bad_rows).sum())
    return ~(bad_rows | nan_labels)


def _age_groups(age: np.ndarray, bins: Sequence[float]) -> np.ndarray:
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size == 0 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"age bins must be strictly ascending, got {tuple(bins)}.")
    groups = np.searchsorted(edges, np.nan_to_num(age, nan=-1.0), side="right") - 1
    groups[np.isnan(age) | (age < edges[0])] = UNKNOWN
    return groups.astype(np.int64)


def _read_side_table(path: str | os.PathLike) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"demographics table {p} does not exist.")
    if p.suffix.lower() in (".parquet", ".pq"):
        if not has_pyarrow:
            raise ImportError(f"reading {p.name} needs pyarrow.")
        return pd.read_parquet(p)
    return pd.read_csv(p)


def write_embedding_table(
    path: str | os.PathLike,
    embeddings: np.ndarray,
    columns: Mapping[str, Sequence[Any] | np.ndarray],
    embedding_prefix: str = "emb_",
    float_format: str = "%.6g",
) -> Path:
    """Write an embedding table as ``.npz`` (array ``embeddings``), ``.csv`` or ``.parquet`` (``emb_<i>`` columns).

    Args:
        path: output file; the suffix picks the format.
        embeddings: ``(N, D)`` matrix.
        columns: other 1-D columns of length N (labels, sex, age, ids).
        embedding_prefix: prefix of the per-dimension columns (CSV/Parquet).
        float_format: CSV float format.

    Returns:
        the written path.

    Raises:
        ValueError: on shape mismatches or an unsupported suffix.
        ImportError: for Parquet without pyarrow.
    """
    path = Path(path)
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), got shape {embeddings.shape}.")
    for name, values in columns.items():
        if len(values) != embeddings.shape[0]:
            raise ValueError(f"column {name!r} has {len(values)} values for {embeddings.shape[0]} embeddings.")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        np.savez_compressed(path, embeddings=embeddings, **{k: np.asarray(v) for k, v in columns.items()})
        return path
    frame = pd.concat(
        [
            pd.DataFrame(dict(columns)),
            pd.DataFrame(embeddings, columns=[f"{embedding_prefix}{i}" for i in range(embeddings.shape[1])]),
        ],
        axis=1,
    )
    if suffix == ".csv":
        frame.to_csv(path, index=False, float_format=float_format)
    elif suffix in (".parquet", ".pq"):
        if not has_pyarrow:
            raise ImportError("writing Parquet needs pyarrow: pip install pyarrow.")
        frame.to_parquet(path, index=False)
    else:
        raise ValueError(f"unsupported embedding table format {path.name!r}; use .npz, .csv or .parquet.")
    return path
