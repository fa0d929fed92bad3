# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Loading and checking the audited data: predictions CSV or ``ClassificationSaver`` output joined with a manifest,
score/label checks, and the encoding of group columns to integer codes (missing values → ``UNKNOWN``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from monai_fair.data.codes import UNKNOWN
from monai_fair.data.manifest import read_csv_table

__all__ = [
    "AuditInputError",
    "check_columns",
    "encode_groups",
    "load_audit_frame",
    "parse_group_names",
    "read_predictions",
]


class AuditInputError(ValueError):
    """Bad input data or arguments (the CLI prints it as ``error: ...`` with exit status 2)."""


def read_predictions(path: str | os.PathLike, no_header: bool = False) -> pd.DataFrame:
    """A predictions CSV; MONAI ``ClassificationSaver`` output (no header) gets columns ``filename, pred0, ...``.

    Raises:
        AuditInputError: the file is missing, empty, not a CSV, or holds a header and no row.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AuditInputError(f"file not found: {path}")
    try:
        if not no_header:
            head = read_csv_table(path, "predictions CSV", header=None, nrows=1)
            # ClassificationSaver rows: a key, then numbers only -> a first row that is all numbers after col 0
            rest = pd.to_numeric(head.iloc[0, 1:], errors="coerce")
            no_header = head.shape[1] > 1 and bool(rest.notna().all())
        if no_header:
            df = read_csv_table(path, "predictions CSV", header=None)
            df.columns = ["filename"] + [f"pred{i}" for i in range(df.shape[1] - 1)]
        else:
            df = read_csv_table(path, "predictions CSV")
    except ValueError as e:
        raise AuditInputError(str(e)) from None
    if len(df) == 0:
        raise AuditInputError(f"{path} has a header ({', '.join(map(str, df.columns))}) but no prediction rows.")
    return df


def _need(df: pd.DataFrame, cols: Sequence[str], where: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise AuditInputError(f"column(s) {missing} not found in {where}; available: {list(df.columns)}")


def load_audit_frame(
    predictions: str | os.PathLike,
    *,
    score: Sequence[str] = (),
    manifest: str | os.PathLike | None = None,
    join_on: str | None = None,
    pred_key: str | None = None,
    no_header: bool = False,
) -> tuple[pd.DataFrame, list[str]]:
    """Predictions (joined with the manifest when given) and notes about the join.

    Args:
        predictions: predictions CSV (with a header, or ``ClassificationSaver`` output).
        score: score columns (a column present in both files keeps the predictions' value if it is a score, the
            manifest's otherwise).
        manifest: CSV holding labels and group columns, joined to the predictions.
        join_on: manifest column matched against the predictions' key column.
        pred_key: key column of the predictions (default ``filename`` without header, else ``join_on``).
        no_header: the predictions have no header.

    Raises:
        AuditInputError: missing files/columns, duplicate manifest keys, predictions without a manifest row.
    """
    preds = read_predictions(predictions, no_header)
    notes: list[str] = []
    if manifest is None:
        return preds, notes
    manifest = os.fspath(manifest)
    if not join_on:
        raise AuditInputError("--manifest needs --join-on (the manifest column matching the predictions' key).")
    if not os.path.isfile(manifest):
        raise AuditInputError(f"file not found: {manifest}")
    manifest = pd.read_csv(manifest)
    _need(manifest, [join_on], "the manifest")
    pred_key = pred_key or ("filename" if "filename" in preds.columns and join_on not in preds.columns else join_on)
    _need(preds, [pred_key], "the predictions")
    if manifest[join_on].duplicated().any():
        raise AuditInputError(
            f"manifest column {join_on!r} has {int(manifest[join_on].duplicated().sum())} "
            "duplicate key(s); the join would be ambiguous."
        )
    left = preds.rename(columns={pred_key: "__key__"})
    right = manifest.rename(columns={join_on: "__key__"})
    # columns present in both keep the manifest's values for labels/groups, the predictions' for scores
    overlap = [c for c in right.columns if c in left.columns and c != "__key__"]
    right = right.drop(columns=[c for c in overlap if c in score])
    left = left.drop(columns=[c for c in overlap if c not in score])
    left["__key__"], right["__key__"] = left["__key__"].astype(str), right["__key__"].astype(str)
    merged = left.merge(right, on="__key__", how="left", indicator=True)
    unmatched = merged["_merge"] != "both"
    if unmatched.any():
        # ClassificationSaver stores full paths, manifests often relative ones: fall back to the file name
        base_r = right["__key__"].map(os.path.basename)
        if not base_r.duplicated().any():
            left2 = left.assign(__key__=left["__key__"].map(os.path.basename))
            merged = left2.merge(right.assign(__key__=base_r), on="__key__", how="left", indicator=True)
            unmatched = merged["_merge"] != "both"
            notes.append("joined on file names (base names) of the keys")
    if unmatched.any():
        raise AuditInputError(
            f"{int(unmatched.sum())} of {len(merged)} prediction rows have no manifest row "
            f"(matched on {pred_key!r} ↔ {join_on!r}); nothing is dropped silently."
        )
    extra = len(manifest) - len(merged)
    if extra > 0:
        notes.append(f"{extra} manifest rows have no prediction (not audited)")
    return merged.drop(columns=["__key__", "_merge"]), notes


def parse_group_names(spec: str | None) -> dict[str, str] | list[str] | None:
    if not spec:
        return None
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if all("=" in p for p in parts):
        return {k.strip(): v.strip() for k, v in (p.split("=", 1) for p in parts)}
    if any("=" in p for p in parts):
        raise AuditInputError(f"--group-names mixes 'code=name' and plain names: {spec!r}")
    return parts


def encode_groups(values: pd.Series, group_names: str | None) -> tuple[np.ndarray, dict[int, str]]:
    """Integer codes and the code→name map of a group column.

    Integer-like columns keep their codes (names from ``'0=F,1=M'`` or a name list in code order); string columns
    are coded in sorted order, or in the order of a ``'F,M'`` name list. Missing values become code -1
    ("unknown").

    Raises:
        AuditInputError: non-integer numeric codes, or strings not in the given name list.
    """
    spec = parse_group_names(group_names)
    missing = values.isna().to_numpy()
    present = values[~missing]
    codes = np.full(len(values), UNKNOWN, dtype=np.int64)
    numeric = pd.to_numeric(present, errors="coerce")
    if len(present) and numeric.notna().all():
        if not np.all(np.equal(np.mod(numeric.to_numpy(dtype=float), 1), 0)):
            raise AuditInputError("numeric group codes must be integers.")
        codes[~missing] = numeric.to_numpy(dtype=float).astype(np.int64)
        uniq = sorted(set(codes[~missing].tolist()))
        if isinstance(spec, dict):
            names = {int(k): v for k, v in spec.items()}
        elif isinstance(spec, list):
            names = dict(enumerate(spec))
        else:
            names = {}
        names = {c: names.get(c, str(c)) for c in uniq}
    else:
        strings = present.astype(str).str.strip()
        if isinstance(spec, dict):
            raise AuditInputError(
                "--group-names 'code=name' is for integer codes; for a string column give the "
                "names in code order, e.g. 'F,M'."
            )
        order = spec if isinstance(spec, list) else sorted(strings.unique().tolist())
        unknown = sorted(set(strings) - set(order))
        if unknown:
            raise AuditInputError(f"group values {unknown} are not in --group-names {order}.")
        lookup = {name: i for i, name in enumerate(order)}
        codes[~missing] = strings.map(lookup).to_numpy(dtype=np.int64)
        names = {lookup[n]: n for n in order if n in set(strings)}
    if missing.any():
        names[UNKNOWN] = "unknown"
    return codes, dict(sorted(names.items()))


def check_columns(
    df: pd.DataFrame, score: Sequence[str], label: Sequence[str], group: Sequence[str], where: str = "the predictions"
) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``(N, L)`` (probabilities) and binary labels ``(N, L)`` of the audited columns.

    Raises:
        AuditInputError: missing columns, non-numeric, NaN or out-of-range scores, missing or non-binary labels.
    """
    score, label, group = list(score), list(label), list(group)
    if len(score) != len(label):
        raise AuditInputError(f"--score has {len(score)} column(s) but --label has {len(label)}.")
    _need(df, [*score, *label, *group], where)
    scores = df[score].apply(pd.to_numeric, errors="coerce")
    bad = scores.isna() & df[score].notna()
    if bad.any().any():
        raise AuditInputError(f"non-numeric scores in {list(scores.columns[bad.any()])}.")
    if scores.isna().any().any():
        raise AuditInputError(f"{int(scores.isna().any(axis=1).sum())} row(s) have a missing (NaN) score.")
    s = scores.to_numpy(dtype=float)
    if s.min() < 0.0 or s.max() > 1.0:
        raise AuditInputError(
            f"scores must be probabilities in [0, 1], got range [{s.min():.4g}, {s.max():.4g}] "
            "(apply a sigmoid/softmax first)."
        )
    labels = df[label].replace({True: 1, False: 0, "True": 1, "False": 0, "true": 1, "false": 0})
    labels = labels.apply(pd.to_numeric, errors="coerce")
    if labels.isna().any().any():
        raise AuditInputError(
            f"{int(labels.isna().any(axis=1).sum())} row(s) have a missing (NaN) or non-numeric " "label."
        )
    y = labels.to_numpy(dtype=float)
    values = sorted(set(np.unique(y).tolist()))
    if not set(values) <= {0.0, 1.0}:
        raise AuditInputError(f"labels must be binary 0/1, got values {values[:6]}{' ...' if len(values) > 6 else ''}.")
    return s, y
