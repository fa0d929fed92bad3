# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The study results record format and :class:`StudyResults`, the collector every bundle fills.

Record format (one plain, JSON-serialisable dict per ``(seed, method, split)``):

=====================  ======================================================================================
key                    meaning
=====================  ======================================================================================
``seed``               integer seed of the run (the split is re-drawn per seed in the studies)
``method``             method name as the study lists it (``"default"``, ``"pruning"``, ``"bias_gda"``, ...)
``split``              ``"val"`` or ``"test"``
``balanced_accuracy``  balanced accuracy at ``threshold``
``eod``                signed equal-opportunity difference, unprivileged minus privileged (TPR_u − TPR_p)
``spd``                signed statistical parity difference (P(ŷ=1|u) − P(ŷ=1|p))
``aod``                signed average odds difference (optional)
``bias``               the study's chosen bias metric (equal to the ``eod``/``spd``/``aod`` value it names)
``objective``          φ = BA·[|bias| < ε]
``threshold``          decision threshold (chosen on validation, applied to test)
``<m>_ci_low``         optional lower bound of a bootstrap interval of metric ``<m>`` (e.g. ``eod_ci_low``)
``<m>_ci_high``        optional upper bound of that interval
other numeric keys     kept as extra columns (e.g. ``auc``, ``n_pruned``)
=====================  ======================================================================================

Every numeric value is a float; a missing or undefined value is NaN in Python and ``null`` in the JSON file (strict
JSON, no ``NaN`` literal). Validation values in the pruning study are bootstrap means, test values point estimates;
the format does not care which.

Per-method trajectories (``Trajectory.as_dict()``: ``{"step", "bias", "balanced_accuracy", "objective", ...}``)
are stored per seed, ``{seed: {method: trajectory}}``.

The JSON document written by :meth:`StudyResults.to_json` is::

    {"format": "monai_fair.study_results", "version": 1, "metric": "eod", "epsilon": 0.03,
     "methods": [...], "records": [...], "trajectories": {"42": {"pruning": {...}}}}
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from monai_fair.metrics import BIAS_KINDS, constrained_objective

__all__ = ["RECORD_METRICS", "SPLITS", "STUDY_RESULTS_FORMAT", "StudyResults"]

STUDY_RESULTS_FORMAT = "monai_fair.study_results"
#: numeric fields of a record, in the order tables print them
RECORD_METRICS = ("balanced_accuracy", "eod", "spd", "aod", "bias", "objective", "threshold")
#: recognised splits, in report order
SPLITS = ("val", "test")
_KEYS = ("seed", "method", "split")


def _to_float(key: str, value: Any) -> float:
    """A record value as a float (``None`` → NaN); anything non-numeric is an error, not a silent NaN."""
    if value is None:
        return float("nan")
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"record value {key!r} must be a number or None, got {type(value).__name__}: {value!r}.")
    return float(value)


def _json_number(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _check_trajectory(traj: Mapping[str, Any]) -> dict[str, list[float]]:
    if hasattr(traj, "as_dict") and callable(traj.as_dict):
        traj = traj.as_dict()
    if not isinstance(traj, Mapping) or "step" not in traj:
        raise ValueError("a trajectory must be a Trajectory or a mapping with a 'step' list (Trajectory.as_dict()).")
    n = len(traj["step"])
    out: dict[str, list[float]] = {}
    for key, values in traj.items():
        values = list(values)
        if len(values) != n:
            raise ValueError(f"trajectory series {key!r} has {len(values)} values but 'step' has {n}.")
        out[str(key)] = [_to_float(f"trajectory.{key}", v) for v in values]
    return out


class StudyResults:
    """Collector of per-seed, per-method, per-split results of a study (see the module docstring for the format).

    Args:
        metric: the study's bias metric (``"eod"``, ``"spd"`` or ``"aod"``); ``bias`` and that metric's column are
            filled from each other when a record gives only one of them.
        epsilon: tolerance of the objective; when given, a record with ``balanced_accuracy`` and ``bias`` but no
            ``objective`` gets φ = BA·[|bias| < ε]. ``None`` leaves a missing objective NaN.
        methods: the study's method list; fixes the report order (methods first seen later are appended).

    Example::

        results = StudyResults(metric="eod", epsilon=0.03, methods=["default", "pruning"])
        results.add(42, "pruning", "test", **evaluation.as_dict(), spd=0.01)
        results.add_trajectory(42, "pruning", debias_result.trajectory)
        results.to_json("results.json")
    """

    def __init__(self, metric: str = "eod", epsilon: float | None = None, methods: Iterable[str] = ()) -> None:
        if metric not in BIAS_KINDS:
            raise ValueError(f"metric must be one of {BIAS_KINDS}, got {metric!r}.")
        self.metric = metric
        self.epsilon = None if epsilon is None else float(epsilon)
        self.methods: list[str] = []
        for m in methods:
            self._register(str(m))
        self.records: list[dict[str, Any]] = []
        self.trajectories: dict[int, dict[str, dict[str, list[float]]]] = {}
        self._index: set[tuple[int, str, str]] = set()

    def _register(self, method: str) -> None:
        if method not in self.methods:
            self.methods.append(method)

    def add(self, seed: int, method: str, split: str, **values: Any) -> dict[str, Any]:
        """Add the record of ``method`` on ``split`` for ``seed``.

        Args:
            seed: integer seed.
            method: method name.
            split: ``"val"`` or ``"test"``.
            values: numeric fields (see the module docstring); ``None`` means undefined (NaN).

        Returns:
            the stored record.

        Raises:
            ValueError: unknown split, or a record for ``(seed, method, split)`` already exists.
            TypeError: a value is not a number.
        """
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
        seed, method = int(seed), str(method)
        key = (seed, method, split)
        if key in self._index:
            raise ValueError(f"a record for seed={seed}, method={method!r}, split={split!r} already exists.")
        bad = set(values) & set(_KEYS)
        if bad:
            raise ValueError(f"{sorted(bad)} are given positionally, not as values.")
        rec: dict[str, Any] = {"seed": seed, "method": method, "split": split}
        rec.update({k: _to_float(k, v) for k, v in values.items()})
        # `bias` is the chosen metric: fill whichever of the pair is missing so tables never lose it
        if "bias" not in rec and self.metric in rec:
            rec["bias"] = rec[self.metric]
        elif "bias" in rec and self.metric not in rec:
            rec[self.metric] = rec["bias"]
        if "objective" not in rec and self.epsilon is not None and "balanced_accuracy" in rec and "bias" in rec:
            rec["objective"] = float(constrained_objective(rec["balanced_accuracy"], rec["bias"], self.epsilon))
        for name in RECORD_METRICS:
            rec.setdefault(name, float("nan"))
        self._register(method)
        self._index.add(key)
        self.records.append(rec)
        return rec

    def add_trajectory(self, seed: int, method: str, trajectory: Mapping[str, Any]) -> None:
        """Store the trajectory of ``method`` for ``seed`` (a ``Trajectory`` or its ``as_dict()``).

        Raises:
            ValueError: no ``step`` series, series of unequal length, or a trajectory already stored.
        """
        seed, method = int(seed), str(method)
        per_seed = self.trajectories.setdefault(seed, {})
        if method in per_seed:
            raise ValueError(f"a trajectory for seed={seed}, method={method!r} already exists.")
        per_seed[method] = _check_trajectory(trajectory)
        self._register(method)

    @property
    def seeds(self) -> list[int]:
        """Seeds with at least one record or trajectory, in first-seen order."""
        seen = dict.fromkeys(r["seed"] for r in self.records)
        seen.update(dict.fromkeys(self.trajectories))
        return list(seen)

    def method_trajectories(self, method: str) -> dict[int, dict[str, list[float]]]:
        """``{seed: trajectory}`` of one method."""
        return {s: t[method] for s, t in self.trajectories.items() if method in t}

    def __len__(self) -> int:
        return len(self.records)

    def to_dict(self, data_label: str | None = None) -> dict[str, Any]:
        """The JSON document (NaN written as ``None``).

        Args:
            data_label: what the numbers ran on, stored as ``"data"`` (e.g. ``"DEMO DATA (synthetic)"``, so a
                results file taken out of its report still says so); ``None``: no such key.
        """
        head = {"data": str(data_label)} if data_label else {}
        return {
            "format": STUDY_RESULTS_FORMAT,
            "version": 1,
            **head,
            "metric": self.metric,
            "epsilon": self.epsilon,
            "methods": list(self.methods),
            "records": [{k: _json_number(v) for k, v in r.items()} for r in self.records],
            "trajectories": {
                str(s): {m: {k: [_json_number(v) for v in vs] for k, vs in t.items()} for m, t in per.items()}
                for s, per in self.trajectories.items()
            },
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> StudyResults:
        """Rebuild from :meth:`to_dict` output (``None`` values become NaN).

        Raises:
            ValueError: not a ``monai_fair.study_results`` document.
        """
        if doc.get("format") != STUDY_RESULTS_FORMAT:
            raise ValueError(f"not a {STUDY_RESULTS_FORMAT} document (format={doc.get('format')!r}).")
        out = cls(metric=doc.get("metric", "eod"), epsilon=doc.get("epsilon"), methods=doc.get("methods", ()))
        for rec in doc.get("records", ()):
            rec = dict(rec)
            seed, method, split = (rec.pop(k) for k in _KEYS)
            # stored records are complete: keep their values as written (no re-derivation)
            out._add_stored(seed, method, split, rec)
        for seed, per in doc.get("trajectories", {}).items():
            for method, traj in per.items():
                out.add_trajectory(int(seed), method, traj)
        return out

    def _add_stored(self, seed: int, method: str, split: str, values: Mapping[str, Any]) -> None:
        metric, epsilon = self.metric, self.epsilon
        self.epsilon = None
        try:
            self.add(seed, method, split, **values)
        finally:
            self.metric, self.epsilon = metric, epsilon

    def to_json(
        self, path: str | os.PathLike | None = None, indent: int | None = 1, data_label: str | None = None
    ) -> str:
        """Serialise to strict JSON (``data_label``: see :meth:`to_dict`); also write it to ``path`` when given."""
        text = json.dumps(self.to_dict(data_label), indent=indent, allow_nan=False)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike) -> StudyResults:
        """Load from a JSON string or a path to a JSON file written by :meth:`to_json`."""
        text = str(source)
        if not text.lstrip().startswith("{"):
            with open(source, encoding="utf-8") as f:
                text = f.read()
        return cls.from_dict(json.loads(text))

    def to_dataframe(self) -> pd.DataFrame:
        """Tidy per-seed table: one row per record, columns ``seed, method, split``, the record metrics, CI bounds,
        then extra fields; rows in study method order, then split order, then seed order."""
        base = list(_KEYS) + list(RECORD_METRICS)
        if not self.records:
            return pd.DataFrame(columns=base)
        df = pd.DataFrame.from_records(self.records)
        ci = sorted(c for c in df.columns if c.endswith(("_ci_low", "_ci_high")))
        extra = [c for c in df.columns if c not in base and c not in ci]
        df = df[base + ci + extra]
        seed_order = {s: i for i, s in enumerate(self.seeds)}
        order = np.lexsort(
            (
                df["seed"].map(seed_order).to_numpy(),
                df["split"].map(SPLITS.index).to_numpy(),
                df["method"].map(self.methods.index).to_numpy(),
            )
        )
        df = df.iloc[order].reset_index(drop=True)
        df[base[3:] + ci + extra] = df[base[3:] + ci + extra].astype(float)
        return df
