# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Weighted per-group sums from which every per-group metric is a ratio.

For one weighting ``w`` (``B`` weightings at once) and each label, in the (group, score) order:

* ``n_g = Σ w``, ``P_g = Σ w·y`` (positives), predicted positives and true positives at a threshold
  (``score > t`` is the tail of the group's block);
* the ROC-AUC numerator ``Σ_{i pos} w_i (Σ_{j neg, s_j < s_i} w_j + ½ Σ_{j neg, s_j = s_i} w_j)``: with ``C`` the
  cumulative negative weight from the start of the group, a positive ``i`` in the tie block ``[a, b)`` contributes
  ``w_i (C_a + C_b) / 2``; without ties this is just ``w_i C_i`` (no gather, no pairwise loop);
* the calibration residual ``Σ_bins |Σ_bin w (y − p)|``.

Each is a handful of passes over ``B × N``: a cumulative sum, a product, or a sum over a contiguous run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .grouped_scores import GroupedScores

__all__ = ["GroupSums", "compute_group_sums"]


def _cumsum0(x: torch.Tensor) -> torch.Tensor:
    """``(B, N)`` → ``(B, N + 1)`` cumulative sum with a leading zero (``c[:, j] - c[:, i] = x[:, i:j].sum(1)``)."""
    out = torch.empty(x.shape[0], x.shape[1] + 1, dtype=x.dtype, device=x.device)
    out[:, 0] = 0
    torch.cumsum(x, dim=1, out=out[:, 1:])
    return out


def _segment_mv(x: torch.Tensor, v: torch.Tensor, bounds: list[int]) -> torch.Tensor:
    """Row-wise ``Σ x·v`` of a ``(B, N)`` tensor and an ``(N,)`` vector over each run → ``(B, R)``."""
    out = torch.zeros(x.shape[0], len(bounds) - 1, dtype=x.dtype, device=x.device)
    for r in range(len(bounds) - 1):
        s, e = bounds[r], bounds[r + 1]
        if e > s:
            out[:, r] = torch.mv(x[:, s:e], v[s:e])
    return out


@dataclass
class GroupSums:
    """Weighted per-group sums, each ``(B, G, L)`` float64 (``None`` where not requested)."""

    n: torch.Tensor
    positives: torch.Tensor
    predicted_positives: torch.Tensor | None = None
    true_positives: torch.Tensor | None = None
    auc_numerator: torch.Tensor | None = None
    calibration_residual: torch.Tensor | None = None

    @property
    def negatives(self) -> torch.Tensor:
        return self.n - self.positives


def compute_group_sums(
    gs: GroupedScores,
    weights: torch.Tensor | None = None,
    *,
    threshold: torch.Tensor | None = None,
    n_bins: int | None = None,
    auc: bool = False,
    layout: str = "original",
    dtype: torch.dtype = torch.float64,
) -> GroupSums:
    """Weighted per-group sums of every label (see the module docstring).

    Args:
        gs: grouped, sorted inputs.
        weights: ``None`` or validated non-negative weights ``(N,)``/``(B, N)``.
        threshold: ``(L,)`` thresholds → predicted/true positives (``score > threshold``).
        n_bins: number of equal-width bins → calibration residual.
        auc: compute the ROC-AUC numerator.
        layout: ``"original"`` or ``"sorted0"``, see :meth:`GroupedScores.sorted_weights`.
        dtype: accumulation dtype of the ``B x N`` passes. float32 is exact for the counts when the weights are
            integer resample counts summing to less than 2**24 (the bootstrap's case) and halves the memory
            traffic; the AUC and calibration sums then carry float32 rounding (~1e-6 relative).

    Returns:
        a :class:`GroupSums` (float64).
    """
    bounds = [int(v) for v in gs.offsets.tolist()]
    start, end = gs.offsets[:-1], gs.offsets[1:]
    cuts = gs.cut_positions(threshold) if threshold is not None else None
    bins = gs.bin_positions(n_bins) if n_bins is not None else None
    parts: dict[str, list[torch.Tensor]] = {}

    def keep(name: str, value: torch.Tensor) -> None:
        parts.setdefault(name, []).append(value.to(torch.float64))

    for lab in range(gs.num_labels):  # labels are few; each has its own order
        w = gs.sorted_weights(weights, lab, layout).to(dtype)
        y, p = gs.sorted_labels[lab].to(dtype), gs.sorted_scores[lab].to(dtype)
        wy = w * y
        cw, cp = _cumsum0(w), _cumsum0(wy)
        n = cw[:, end] - cw[:, start]
        pos = cp[:, end] - cp[:, start]
        keep("n", n)
        keep("positives", pos)
        if cuts is not None:
            keep("predicted_positives", cw[:, end] - cw[:, cuts[lab]])
            keep("true_positives", cp[:, end] - cp[:, cuts[lab]])
        if bins is not None:
            b = bins[lab]  # (G, K + 1)
            sum_y = cp[:, b[:, 1:]] - cp[:, b[:, :-1]]  # (B, G, K)
            # bins tile each group's block, so the runs below cover the samples once
            runs = [int(v) for v in torch.cat([b[:, :-1].reshape(-1), b[-1:, -1]]).tolist()]
            sum_p = _segment_mv(w, p, runs).reshape(-1, gs.num_groups, n_bins)
            keep("calibration_residual", (sum_y - sum_p).abs().sum(-1))
        if auc:
            keep("auc_numerator", _auc_numerator(gs, lab, wy, cw, cp, bounds))
    return GroupSums(**{k: torch.stack(v, dim=-1) for k, v in parts.items()})


def _auc_numerator(
    gs: GroupedScores, lab: int, wy: torch.Tensor, cw: torch.Tensor, cp: torch.Tensor, bounds: list[int]
) -> torch.Tensor:
    """``Σ_{i pos} w_i (negative weight of the group below the tie block of i + ½ inside it)`` → ``(B, G)``.

    Negative weights are counted from the start of the group (the group's offset is removed before the products),
    so every term is non-negative and nothing cancels; the sums accumulate in float64.
    """
    # without a tie, the negatives below a positive are those before it (its own block holds no negative)
    below = cw[:, :-1] - cp[:, :-1]
    tied = gs.tied_positions[lab]
    if tied.numel():  # samples sharing (group, score) with another: half of the block's negatives count
        start, end = gs.tied_start[lab], gs.tied_end[lab]
        below[:, tied] = 0.5 * ((cw[:, start] - cp[:, start]) + (cw[:, end] - cp[:, end]))
    out = torch.zeros(wy.shape[0], len(bounds) - 1, dtype=torch.float64, device=wy.device)
    for g in range(len(bounds) - 1):
        s, e = bounds[g], bounds[g + 1]
        if e > s:
            below[:, s:e] -= cw[:, s : s + 1] - cp[:, s : s + 1]
            # the products are exact (resample counts x half-integers below 2**24); accumulate them in float64
            out[:, g] = below[:, s:e].mul_(wy[:, s:e]).sum(1, dtype=torch.float64)
    return out
