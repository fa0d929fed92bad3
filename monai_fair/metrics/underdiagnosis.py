# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Underdiagnosis (Seyyed-Kalantari et al. 2021): the rate of false "No Finding" per subgroup.

Among the samples that *do* have a finding (No Finding label 0), the share the model calls "No Finding"
(``score > threshold``), i.e. the false-positive rate of the No Finding output, per subgroup (a single attribute
or an intersection from :func:`~monai_fair.metrics.spec.combine_group_codes`). The operating point is the one that
maximises F1 of No Finding on validation (:func:`best_f1_threshold`), applied to every subgroup. Subgroups with
fewer than ``min_group_size`` samples with a finding are reported with their count, a NaN rate and a flag, never
dropped. The rate itself is :func:`~monai_fair.metrics.group_stats.compute_group_stats`' ``fpr`` (one place
computes it); intervals are percentile intervals over resamples drawn by
:func:`~monai_fair.metrics.bootstrap.bootstrap_weights`, stratified by subgroup.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .bootstrap import bootstrap_weights, make_generator, percentile_interval
from .group_stats import compute_group_stats
from .thresholds import observed_thresholds

__all__ = ["best_f1_threshold", "compute_underdiagnosis"]


def best_f1_threshold(scores: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """The threshold maximising F1 of ``score > t`` (the lowest one on ties), over every observed score and one
    value just below the smallest (everything positive).

    Args:
        scores: ``(N,)`` scores.
        labels: ``(N,)`` binary labels.

    Returns:
        ``(threshold, f1)``.

    Raises:
        ValueError: no positive label, NaN inputs or a length mismatch.
    """
    s = torch.as_tensor(scores).reshape(-1).to(torch.float64)
    y = torch.as_tensor(labels).reshape(-1).to(torch.float64)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in length: {s.numel()} vs {y.numel()}.")
    if bool(torch.isnan(y).any()):
        raise ValueError("labels must not contain NaN.")
    if not bool((y == 1).any()):
        raise ValueError("F1 is undefined without a positive label.")
    observed = observed_thresholds(s)
    below = torch.nextafter(observed[:1], torch.tensor([-float("inf")], dtype=torch.float64))
    grid = torch.cat([below, observed])
    s_sorted, order = torch.sort(s)
    y_sorted = y[order]
    # samples with score <= t are predicted negative
    idx = torch.searchsorted(s_sorted.contiguous(), grid.contiguous(), right=True)
    cum_pos = torch.nn.functional.pad(torch.cumsum(y_sorted, 0), (1, 0))
    n_pos = y_sorted.sum()
    tp = n_pos - cum_pos[idx]
    pred_pos = s.numel() - idx.to(torch.float64)
    f1 = 2.0 * tp / (pred_pos + n_pos)
    best = int(torch.argmax(f1))
    return float(grid[best]), float(f1[best])


def compute_underdiagnosis(
    no_finding_scores: torch.Tensor,
    no_finding_labels: torch.Tensor,
    groups: torch.Tensor,
    threshold: float,
    *,
    group_codes: Sequence[int] | None = None,
    min_group_size: int = 10,
    n_bootstrap: int = 0,
    ci_level: float = 0.95,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """The false "No Finding" rate of every subgroup.

    Args:
        no_finding_scores: ``(N,)`` scores of the No Finding output (any monotone scale of the threshold).
        no_finding_labels: ``(N,)`` No Finding labels (1: no finding, 0: a finding; NaN rows are left out).
        groups: ``(N,)`` integer subgroup codes (negative: unknown, left out).
        threshold: the operating point; "No Finding" is predicted where ``score > threshold``.
        group_codes: the subgroups to report (default: the known codes present among samples with a finding).
        min_group_size: subgroups with fewer samples with a finding get a NaN rate and ``small = True``.
        n_bootstrap: resamples for percentile intervals (0: none, NaN bounds).
        ci_level: interval level.
        seed: resampling seed.

    Returns:
        ``{"codes", "n", "rate", "ci_low", "ci_high", "small"}``, one entry per subgroup (``n``: samples with a
        finding).
    """
    s = torch.as_tensor(no_finding_scores).reshape(-1).to(torch.float64)
    y = torch.as_tensor(no_finding_labels).reshape(-1).to(torch.float64)
    g = torch.as_tensor(groups).reshape(-1).to(torch.int64)
    if not (s.numel() == y.numel() == g.numel()):
        raise ValueError(f"inputs differ in length: {s.numel()}, {y.numel()}, {g.numel()}.")
    keep = (y == 0) & (g >= 0)
    s, g = s[keep], g[keep]
    codes = sorted(set(g.tolist())) if group_codes is None else sorted(int(c) for c in group_codes)
    g_codes = torch.tensor(codes, dtype=torch.int64)
    # only declared subgroups, laid out group by group so resamples can be stratified by subgroup
    declared = torch.isin(g, g_codes)
    s, g = s[declared], g[declared]
    order = torch.argsort(g, stable=True)
    s, g = s[order], g[order]
    zeros = torch.zeros_like(s)
    nan = torch.full((len(codes),), float("nan"), dtype=torch.float64)
    if not codes:
        empty = torch.zeros(0, dtype=torch.float64)
        return {"codes": g_codes, "n": empty, "rate": empty, "ci_low": empty, "ci_high": empty, "small": empty.bool()}
    if s.numel() == 0:
        n = torch.zeros(len(codes), dtype=torch.float64)
        return {"codes": g_codes, "n": n, "rate": nan, "ci_low": nan, "ci_high": nan, "small": n < min_group_size}
    stats = compute_group_stats(s, zeros, g, threshold, group_codes=codes, min_group_size=min_group_size)
    n, rate = stats["n"], stats["fpr"]
    lo, hi = nan.clone(), nan.clone()
    if n_bootstrap > 0:
        sizes = [int((g == c).sum()) for c in codes]
        w = bootstrap_weights(sizes, int(n_bootstrap), generator=make_generator(seed, "cpu"))
        reps = compute_group_stats(s, zeros, g, threshold, group_codes=codes, min_group_size=min_group_size, weights=w)[
            "fpr"
        ]
        lo, hi = percentile_interval(reps, ci_level)
        lo, hi = torch.where(torch.isnan(rate), nan, lo), torch.where(torch.isnan(rate), nan, hi)
    return {"codes": g_codes, "n": n, "rate": rate, "ci_low": lo, "ci_high": hi, "small": n < max(min_group_size, 1)}
