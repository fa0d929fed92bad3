# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Multi-seed aggregation of study results: per method and split, mean ± std over seeds.

Conventions (what every summary table and plot of the studies reports):

* ``<m>_mean`` and ``<m>_std`` are the mean and the **sample** standard deviation (``ddof=1``) over seeds of the
  per-seed values; ``<m>_sem = <m>_std / sqrt(<m>_n)``. With a single seed the std is NaN (undefined), not 0.
* NaN values (a seed where the metric is undefined, e.g. an empty group) are left out of that metric's mean and
  counted: ``<m>_n`` is the number of seeds with a finite value, ``n_seeds`` the number of seeds with a record.
  Tables show ``(n=k/N)`` whenever ``k < N``, so nothing is dropped silently.
* ``abs_bias`` is ``|bias|`` per seed, then aggregated: the mean magnitude (what the bias bar plot shows), which is
  not ``|mean signed bias|``.
* When the records carry bootstrap intervals (``<m>_ci_low`` / ``<m>_ci_high``), ``<m>_ci_low_mean`` and
  ``<m>_ci_high_mean`` are the means over seeds of the per-seed bounds (the average within-seed uncertainty).
* Optionally (``seed_bootstrap > 0``), ``<m>_boot_low`` / ``<m>_boot_high`` are a percentile bootstrap interval of
  the mean over seeds (seeds resampled with replacement; the between-seed uncertainty of the mean).
* With ``epsilon``, ``fair_count`` is the number of seeds with ``|bias| < epsilon``, ``fair_n`` the number of seeds
  with a finite bias and ``fair_rate = fair_count / fair_n``. A model no better than chance is never fair: seeds whose
  record says ``better_than_chance == 0`` are left out of ``fair_count`` and counted in ``chance_count``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from monai_fair.metrics import bootstrap_weights, make_generator, percentile_interval

from .results import RECORD_METRICS, SPLITS, StudyResults

__all__ = ["aggregate_results", "bootstrap_mean_interval"]

_KEYS = ("seed", "method", "split")


def bootstrap_mean_interval(
    values: np.ndarray, n_bootstrap: int = 2000, ci_level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (NaNs removed first), all resamples in one op.

    Resamples are drawn by :func:`~monai_fair.metrics.bootstrap_weights` (the package's one resampling function),
    so each resample mean is a weighted mean with multinomial counts.

    Args:
        values: 1-D per-seed values.
        n_bootstrap: number of bootstrap resamples.
        ci_level: two-sided coverage, in (0, 1).
        seed: seed of the resampling generator (the interval is deterministic).

    Returns:
        ``(low, high)``; ``(nan, nan)`` with fewer than 2 finite values.

    Raises:
        ValueError: ``ci_level`` outside (0, 1) or ``n_bootstrap < 1``.
    """
    if not 0.0 < ci_level < 1.0:
        raise ValueError(f"ci_level must be in (0, 1), got {ci_level}.")
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be >= 1, got {n_bootstrap}.")
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return float("nan"), float("nan")
    w = bootstrap_weights([v.size], int(n_bootstrap), stratified=False, generator=make_generator(seed, "cpu"))
    means = (w @ torch.as_tensor(v, dtype=torch.float64)) / v.size
    low, high = percentile_interval(means, ci_level)
    return float(low), float(high)


def _ordered(present: Sequence[str], preferred: Iterable[str]) -> list[str]:
    """``preferred`` first (kept even when absent, so a method with no results still gets an n/a row), then the
    rest of ``present`` in first-seen order."""
    out = list(dict.fromkeys(preferred))
    out += [p for p in dict.fromkeys(present) if p not in out]
    return out


def _fair_counts(sub: pd.DataFrame, epsilon: float) -> dict[str, float]:
    """Seeds with ``|bias| < epsilon`` among those with a finite bias; a seed whose model is flagged as no better
    than chance (``better_than_chance == 0``) is never counted as fair, and ``chance_count`` counts such seeds."""
    b = sub["bias"].to_numpy(dtype=float)
    finite = np.isfinite(b)
    fair = finite & (np.abs(np.where(finite, b, np.inf)) < epsilon)
    out: dict[str, float] = {}
    if "better_than_chance" in sub.columns:
        at_chance = sub["better_than_chance"].to_numpy(dtype=float) == 0
        fair &= ~at_chance
        out["chance_count"] = int(at_chance.sum())
    n = int(finite.sum())
    out.update(fair_count=int(fair.sum()), fair_n=n, fair_rate=int(fair.sum()) / n if n else float("nan"))
    return out


def aggregate_results(
    results: StudyResults | pd.DataFrame,
    *,
    methods: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    epsilon: float | None = None,
    seed_bootstrap: int = 0,
    ci_level: float = 0.95,
    random_state: int = 0,
) -> pd.DataFrame:
    """Per method and split, aggregate the per-seed records (conventions in the module docstring).

    Args:
        results: a :class:`StudyResults` or its :meth:`~StudyResults.to_dataframe` table.
        methods: method order of the summary (the study's method list). Methods listed here but without records get
            a row with ``n_seeds = 0`` and NaNs; methods with records but not listed follow in first-seen order.
            Default: ``results.methods`` (or first-seen order for a DataFrame).
        splits: splits to aggregate, in order; default: those present, in ``("val", "test")`` order.
        metrics: columns to aggregate; default: the record metrics, ``abs_bias`` and any extra numeric column.
        epsilon: tolerance for ``fair_count`` / ``fair_rate``; ``None`` (default) uses ``results.epsilon`` when
            ``results`` is a :class:`StudyResults`, else leaves those columns out.
        seed_bootstrap: number of resamples of the over-seeds bootstrap interval of the mean; 0 disables it.
        ci_level: coverage of that interval.
        random_state: seed of that bootstrap.

    Returns:
        one row per ``(method, split)``, method-major, with ``method, split, n_seeds`` then per metric ``<m>_mean,
        <m>_std, <m>_sem, <m>_n`` (plus the CI / bootstrap / fair columns described above).

    Raises:
        ValueError: a requested metric column does not exist, or the table lacks ``seed/method/split``.
    """
    if isinstance(results, StudyResults):
        df = results.to_dataframe()
        default_methods: Sequence[str] = results.methods
        if epsilon is None:
            epsilon = results.epsilon
    else:
        df = results.copy()
        missing = [k for k in _KEYS if k not in df.columns]
        if missing:
            raise ValueError(f"the results table lacks the key columns {missing}.")
        default_methods = list(dict.fromkeys(df["method"]))
    if "bias" in df.columns:
        df["abs_bias"] = df["bias"].astype(float).abs()
    ci_cols = [c for c in df.columns if c.endswith(("_ci_low", "_ci_high"))]
    if metrics is None:
        metrics = [m for m in (*RECORD_METRICS, "abs_bias") if m in df.columns]
        metrics += [
            c
            for c in df.columns
            if c not in metrics and c not in _KEYS and c not in ci_cols and pd.api.types.is_numeric_dtype(df[c])
        ]
    else:
        unknown = [m for m in metrics if m not in df.columns]
        if unknown:
            raise ValueError(f"unknown metric columns {unknown}; available: {list(df.columns)}.")
        metrics = list(metrics)
    ci_metrics = [m for m in metrics if f"{m}_ci_low" in df.columns and f"{m}_ci_high" in df.columns]
    method_order = _ordered(list(df["method"]), methods if methods is not None else default_methods)
    if splits is None:
        present = set(df["split"])
        splits = [s for s in SPLITS if s in present] + sorted(present - set(SPLITS))

    rows = []
    for method in method_order:
        for split in splits:
            sub = df[(df["method"] == method) & (df["split"] == split)]
            row: dict[str, object] = {"method": method, "split": split, "n_seeds": int(sub["seed"].nunique())}
            for m in metrics:
                v = sub[m].to_numpy(dtype=float)
                v = v[np.isfinite(v)]
                n = int(v.size)
                row[f"{m}_mean"] = float(v.mean()) if n else float("nan")
                row[f"{m}_std"] = float(v.std(ddof=1)) if n > 1 else float("nan")
                row[f"{m}_sem"] = row[f"{m}_std"] / np.sqrt(n) if n > 1 else float("nan")
                row[f"{m}_n"] = n
                if m in ci_metrics:
                    for side in ("low", "high"):
                        b = sub[f"{m}_ci_{side}"].to_numpy(dtype=float)
                        b = b[np.isfinite(b)]
                        row[f"{m}_ci_{side}_mean"] = float(b.mean()) if b.size else float("nan")
                if seed_bootstrap > 0:
                    lo, hi = bootstrap_mean_interval(v, seed_bootstrap, ci_level, random_state)
                    row[f"{m}_boot_low"], row[f"{m}_boot_high"] = lo, hi
            if epsilon is not None and "bias" in sub.columns:
                row.update(_fair_counts(sub, epsilon))
            rows.append(row)
    return pd.DataFrame(rows)
