# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Vectorised bootstrap of the fairness table: resample *weights*, one sort, percentile intervals.

A bootstrap replicate draws ``N`` samples with replacement; it is represented by how many times each sample was
drawn (multinomial counts). Every per-group figure is a weighted sum along the (group, score) order that was
sorted once, so ``B`` replicates are ``B`` rows of weights pushed through the same cumulative sums — no Python loop
over replicates and no re-sorting for AUC. Replicates are processed in chunks only to bound memory.

By default resampling is stratified by group (each group's size is kept, as when group membership is part of the
study design); ``stratified=False`` resamples the whole set (as fairlearn's ``MetricFrame(n_boot=...)`` does).
Replicates are accumulated in float32 below 2**24 samples (counts stay exact integers; AUC products are exact and
summed in float64; ECE carries ~1e-6 rounding). Intervals are percentile intervals over the finite replicates; a
figure that is NaN in the point estimate has a NaN interval. Percentile intervals of max–min gaps are biased upwards
when the true gap is near 0 (max–min is).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .grouped_scores import GroupedScores
from .weighted_table import compute_weighted_table

__all__ = ["bootstrap_weights", "percentile_interval", "bootstrap_replicates", "bootstrap_intervals", "make_generator"]

# elements (replicates x samples x labels) processed per chunk; bounds peak memory to a few hundred MB
_CHUNK_ELEMENTS = 1 << 21


def make_generator(seed: int | None, device: torch.device | str) -> torch.Generator | None:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (``None`` → the global RNG)."""
    if seed is None:
        return None
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(int(seed))
    return gen


def bootstrap_weights(
    group_sizes: torch.Tensor | Sequence[int],
    n_bootstrap: int,
    *,
    stratified: bool = True,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Multinomial resample counts ``(n_bootstrap, N)`` of ``N`` samples laid out group by group.

    Samples are assumed ordered by group (group ``g`` occupies a contiguous run of ``group_sizes[g]`` positions, as
    in the (group, score) order of :class:`~monai_fair.metrics.grouped_scores.GroupedScores`), so drawing within a
    group is a draw within a range: no index lists, no gather.

    Args:
        group_sizes: ``(G,)`` number of samples per group (their sum is ``N``).
        n_bootstrap: number of replicates ``B``.
        stratified: draw each group's ``n_g`` samples from that group only (group sizes fixed); otherwise draw
            ``N`` samples from the whole set.
        generator: optional ``torch.Generator`` on ``device``, for reproducibility.
        device: where to draw (default the device of ``group_sizes`` if a tensor, else CPU).
        dtype: dtype of the counts.

    Returns:
        counts whose rows sum to ``N`` (and, when stratified, to ``n_g`` within every group's run).
    """
    if device is None:
        device = group_sizes.device if isinstance(group_sizes, torch.Tensor) else torch.device("cpu")
    sizes = [int(v) for v in (group_sizes.tolist() if isinstance(group_sizes, torch.Tensor) else group_sizes)]
    n = sum(sizes)
    w = torch.zeros(n_bootstrap, n, dtype=dtype, device=device)
    runs = [(0, n)] if not stratified else []
    if stratified:
        start = 0
        for size in sizes:  # loop over groups, not replicates
            runs.append((start, size))
            start += size
    for start, size in runs:
        if size == 0:
            continue
        draws = torch.randint(start, start + size, (n_bootstrap, size), generator=generator, device=device)
        w.scatter_add_(1, draws, torch.ones(1, dtype=dtype, device=device).expand(draws.shape))
    return w


def percentile_interval(
    replicates: torch.Tensor, ci_level: float = 0.95, dim: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Equal-tailed percentile interval over the finite replicates along ``dim`` (NaN if none is finite)."""
    if not 0.0 < ci_level < 1.0:
        raise ValueError(f"ci_level must be in (0, 1), got {ci_level}.")
    alpha = (1.0 - ci_level) / 2.0
    q = torch.tensor([alpha, 1.0 - alpha], dtype=replicates.dtype, device=replicates.device)
    lo_hi = torch.nanquantile(replicates, q, dim=dim)
    return lo_hi[0], lo_hi[1]


def bootstrap_replicates(
    gs: GroupedScores,
    threshold: torch.Tensor,
    reference_index: int,
    *,
    n_bootstrap: int = 1000,
    min_group_size: int = 10,
    n_bins: int = 15,
    stratified: bool = True,
    generator: torch.Generator | None = None,
    keys: Sequence[str] | None = None,
    chunk_size: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> dict[str, torch.Tensor]:
    """Every table figure for ``n_bootstrap`` resamples, as ``(B, ...)`` tensors.

    Args:
        gs: grouped, sorted inputs (see :func:`~monai_fair.metrics.grouped_scores.build_grouped_scores`).
        threshold: ``(L,)`` thresholds.
        reference_index: position of the reference group.
        n_bootstrap: number of replicates.
        min_group_size: the same policy as the point estimate, applied to each replicate's counts.
        n_bins: ECE bins.
        stratified: resample within groups (see :func:`bootstrap_weights`).
        generator: ``torch.Generator`` on ``gs.device`` (results are reproducible for a given generator state and
            ``chunk_size``).
        keys: the figures to keep (default all, see
            :func:`~monai_fair.metrics.weighted_table.compute_weighted_table`).
        chunk_size: replicates per chunk (default: about 4M weight elements per chunk).
        on_chunk: called with the number of replicates of each finished chunk (e.g. a progress bar's update).

    Returns:
        dict key → ``(B, G, L)`` or ``(B, L)`` float64 replicates.
    """
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be >= 1, got {n_bootstrap}.")
    # resample counts sum to N, so float32 holds every count and cumulative count exactly below 2**24
    dtype = torch.float32 if gs.num_samples < 2**24 else torch.float64
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_ELEMENTS // max(1, gs.num_samples * gs.num_labels))
    parts: dict[str, list[torch.Tensor]] = {}
    done = 0
    while done < n_bootstrap:
        b = min(chunk_size, n_bootstrap - done)
        w = bootstrap_weights(
            gs.group_sizes, b, stratified=stratified, generator=generator, device=gs.device, dtype=dtype
        )
        # weights are drawn in label 0's sorted order (groups contiguous), so label 0 needs no permutation
        table = compute_weighted_table(
            gs, w, threshold, reference_index, min_group_size, n_bins, layout="sorted0", dtype=dtype
        )
        for k, v in table.items():
            if keys is None or k in keys:
                parts.setdefault(k, []).append(v)
        done += b
        if on_chunk is not None:
            on_chunk(b)
    return {k: torch.cat(v, 0) for k, v in parts.items()}


def bootstrap_intervals(
    gs: GroupedScores,
    threshold: torch.Tensor,
    reference_index: int,
    point: dict[str, torch.Tensor],
    *,
    n_bootstrap: int = 1000,
    ci_level: float = 0.95,
    min_group_size: int = 10,
    n_bins: int = 15,
    stratified: bool = True,
    generator: torch.Generator | None = None,
    chunk_size: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Percentile intervals of the figures in ``point`` (same keys and shapes, e.g. ``"gaps/eod"`` ``(G, L)``).

    Args:
        gs: grouped, sorted inputs.
        threshold: ``(L,)`` thresholds.
        reference_index: position of the reference group.
        point: point estimates keyed like :func:`~monai_fair.metrics.weighted_table.compute_weighted_table`
            without the replicate dim; NaN point estimates get NaN intervals.
        n_bootstrap, ci_level, min_group_size, n_bins, stratified, generator, chunk_size, on_chunk: see
            :func:`bootstrap_replicates` and :func:`percentile_interval`.

    Returns:
        dict key → ``(low, high)``, each shaped like ``point[key]``.
    """
    reps = bootstrap_replicates(
        gs,
        threshold,
        reference_index,
        n_bootstrap=n_bootstrap,
        min_group_size=min_group_size,
        n_bins=n_bins,
        stratified=stratified,
        generator=generator,
        keys=list(point),
        chunk_size=chunk_size,
        on_chunk=on_chunk,
    )
    out = {}
    for k, est in point.items():
        lo, hi = percentile_interval(reps[k], ci_level, dim=0)
        undefined = torch.isnan(est)
        nan = torch.full_like(lo, float("nan"))
        out[k] = (torch.where(undefined, nan, lo), torch.where(undefined, nan, hi))
    return out
