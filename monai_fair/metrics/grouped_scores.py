# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Validated, group-sorted view of scores, labels and group codes shared by every per-group metric.

Every per-group figure (counts, confusion rates at a threshold, ROC AUC, binned calibration) can be read off
weighted sums over contiguous runs of one ordering of the samples: by group, then by score. Sorting once (per label)
and keeping the tie blocks lets the point estimate and any number of bootstrap replicates (per-sample resample
*weights*) be computed without re-sorting and without a Python loop over replicates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

__all__ = ["GroupedScores", "build_grouped_scores", "check_binary_labels"]

# above this many groups, sorting by (group, score) uses two global sorts instead of one sort per group
_COUNTING_MAX_GROUPS = 32
# code ranges up to this size are mapped with a lookup table instead of torch.unique
_LUT_MAX_RANGE = 1 << 20


def _as_tensor(x, name: str, device: torch.device | None = None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(device) if device is not None else x.detach()
    try:
        return torch.as_tensor(x, device=device)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"{name} must be a tensor or array-like of numbers, got {type(x).__name__}.") from e


def check_binary_labels(y: torch.Tensor, name: str = "y") -> torch.Tensor:
    """Return ``y`` as float64 after checking it holds only 0/1 (NaN and other values are errors).

    Raises:
        ValueError: NaN labels or labels outside {0, 1}.
    """
    y = y.to(torch.float64)
    ok = (y == 0) | (y == 1)  # NaN fails both comparisons
    if not bool(ok.all()):
        n_nan = int(torch.isnan(y).sum())
        if n_nan:
            raise ValueError(
                f"{name} contains {n_nan} NaN value(s); fairness metrics never drop samples silently, so remove or "
                "label these samples explicitly before calling."
            )
        vals = torch.unique(y[~ok])[:5].tolist()
        raise ValueError(f"{name} must be binary (0/1); found other values, e.g. {vals}.")
    return y


@dataclass
class GroupedScores:
    """Inputs of the per-group metrics, validated and sorted by (group, score) independently for each label.

    Sorted tensors use a ``(L, N)`` layout so each label's run is contiguous.

    Attributes:
        scores: ``(N, L)`` float64 scores, original sample order.
        labels: ``(N, L)`` float64 0/1 labels, original sample order.
        group_index: ``(N,)`` int64 index into ``group_codes`` for each sample.
        group_codes: the declared group codes, ascending; row ``g`` of every per-group tensor is ``group_codes[g]``.
        multilabel: ``False`` when the input was 1-D ``(N,)`` (results drop the label dimension).
        order: ``(L, N)`` permutation sorting each label by group, then by score.
        sorted_scores: ``(L, N)`` scores in that order.
        sorted_labels: ``(L, N)`` labels in that order.
        offsets: ``(G + 1,)`` start of each group's block in the sorted order (the same for every label).
        has_ties: per label, whether any tie block (run of equal group and score) has more than one sample.
        tied_positions: per label, the sorted positions that lie in a tie block of more than one sample.
        tied_start: per label, the first position of the tie block of each of ``tied_positions``.
        tied_end: per label, one past the last position of that tie block.
    """

    scores: torch.Tensor
    labels: torch.Tensor
    group_index: torch.Tensor
    group_codes: list[int]
    multilabel: bool
    order: torch.Tensor
    sorted_scores: torch.Tensor
    sorted_labels: torch.Tensor
    offsets: torch.Tensor
    has_ties: list[bool]
    tied_positions: list[torch.Tensor]
    tied_start: list[torch.Tensor]
    tied_end: list[torch.Tensor]
    _inverse0: torch.Tensor | None = field(default=None, repr=False)
    _positions: dict = field(default_factory=dict, repr=False)

    @property
    def device(self) -> torch.device:
        return self.scores.device

    @property
    def num_samples(self) -> int:
        return self.scores.shape[0]

    @property
    def num_labels(self) -> int:
        return self.scores.shape[1]

    @property
    def num_groups(self) -> int:
        return len(self.group_codes)

    @property
    def group_sizes(self) -> torch.Tensor:
        """``(G,)`` int64 number of samples per group."""
        return self.offsets[1:] - self.offsets[:-1]

    def sorted_weights(self, weights: torch.Tensor | None, label: int, layout: str = "original") -> torch.Tensor:
        """Per-sample weights permuted into ``label``'s sorted order.

        Args:
            weights: ``None`` (every sample once), ``(N,)`` or ``(B, N)`` non-negative weights.
            label: the label whose order is wanted.
            layout: ``"original"`` (weights follow the input sample order) or ``"sorted0"`` (weights already follow
                label 0's sorted order, as :func:`~monai_fair.metrics.bootstrap.bootstrap_weights` draws them).

        Returns:
            ``(B, N)`` float64 (``B = 1`` for ``None`` or 1-D weights).
        """
        n = self.num_samples
        if weights is None:
            return torch.ones(1, n, dtype=torch.float64, device=self.device)
        w = weights if weights.ndim == 2 else weights.unsqueeze(0)
        if layout == "original":
            return w[:, self.order[label]]
        if layout != "sorted0":
            raise ValueError(f"layout must be 'original' or 'sorted0', got {layout!r}.")
        if label == 0:
            return w
        if self._inverse0 is None:
            inv = torch.empty_like(self.order[0])
            inv[self.order[0]] = torch.arange(n, device=self.device)
            self._inverse0 = inv
        return w[:, self._inverse0[self.order[label]]]

    def check_weights(self, weights: torch.Tensor | None) -> torch.Tensor | None:
        """Validate user weights ``(N,)`` or ``(B, N)``; returns them as float64 on the device."""
        if weights is None:
            return None
        w = _as_tensor(weights, "weights", self.device).to(torch.float64)
        if w.ndim not in (1, 2) or w.shape[-1] != self.num_samples:
            raise ValueError(f"weights must have shape (N,) or (B, N) with N={self.num_samples}, got {tuple(w.shape)}.")
        if not bool((w >= 0).all()):  # also rejects NaN
            raise ValueError("weights must be non-negative and not NaN.")
        return w

    def cut_positions(self, threshold: torch.Tensor) -> torch.Tensor:
        """``(L, G)`` sorted position where each group's predicted positives (``score > threshold``) begin."""
        key = ("cut", tuple(threshold.reshape(-1).tolist()))
        if key not in self._positions:
            self._positions[key] = self._cut_positions(threshold)
        return self._positions[key]

    def _cut_positions(self, threshold: torch.Tensor) -> torch.Tensor:
        below = (self.scores <= threshold).to(torch.int64)  # (N, L)
        counts = torch.zeros(self.num_groups, self.num_labels, dtype=torch.int64, device=self.device)
        counts.index_add_(0, self.group_index, below)
        return (self.offsets[:-1].unsqueeze(1) + counts).T.contiguous()

    def bin_positions(self, n_bins: int) -> torch.Tensor:
        """``(L, G, n_bins + 1)`` sorted positions delimiting each group's equal-width probability bins.

        Bin ``k`` holds ``k/n_bins <= p < (k+1)/n_bins`` (``k = floor(p * n_bins)``); ``p = 1`` falls in the last bin.
        """
        key = ("bins", int(n_bins))
        if key not in self._positions:
            self._positions[key] = self._bin_positions(int(n_bins))
        return self._positions[key]

    def _bin_positions(self, n_bins: int) -> torch.Tensor:
        bins = torch.floor(self.scores * n_bins).to(torch.int64).clamp_(0, n_bins - 1)  # (N, L)
        seg = self.group_index.unsqueeze(1) * n_bins + bins
        counts = torch.zeros(self.num_groups * n_bins, self.num_labels, dtype=torch.int64, device=self.device)
        counts.scatter_add_(0, seg, torch.ones_like(seg))
        counts = counts.reshape(self.num_groups, n_bins, self.num_labels).permute(2, 0, 1)  # (L, G, K)
        within = torch.nn.functional.pad(torch.cumsum(counts, dim=2), (1, 0))
        return self.offsets[:-1].reshape(1, -1, 1) + within

    def tie_blocks(self, label: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(start, end)`` of the tie block of every sorted position of ``label`` (``(N,)`` each)."""
        start = torch.arange(self.num_samples, device=self.device)
        end = start + 1
        start[self.tied_positions[label]] = self.tied_start[label]
        end[self.tied_positions[label]] = self.tied_end[label]
        return start, end

    def squeeze(self, x: torch.Tensor, batched: bool) -> torch.Tensor:
        """Drop the leading replicate dim (when not ``batched``) and the label dim (when not ``multilabel``)."""
        if not self.multilabel:
            x = x.squeeze(-1)
        if not batched:
            x = x.squeeze(0)
        return x


def _group_index(groups: torch.Tensor, group_codes: Sequence[int] | torch.Tensor | None) -> tuple[torch.Tensor, list]:
    """Map codes to 0..G−1 (ascending code order); declared codes may be absent, undeclared ones are an error."""
    device = groups.device
    lo, hi = (int(v) for v in torch.aminmax(groups))
    declared = None
    if group_codes is not None:
        declared = [int(c) for c in (group_codes.tolist() if isinstance(group_codes, torch.Tensor) else group_codes)]
        if not declared:
            raise ValueError("group_codes must not be empty.")
        if len(set(declared)) != len(declared):
            raise ValueError(f"group_codes must be unique, got {declared}.")
        declared = sorted(declared)
    if hi - lo < _LUT_MAX_RANGE:
        present_mask = torch.bincount(groups - lo, minlength=hi - lo + 1) > 0
        present = (torch.nonzero(present_mask).squeeze(1) + lo).tolist()
    else:
        present = torch.unique(groups).tolist()
    codes = present if declared is None else declared
    undeclared = sorted(set(present) - set(codes))
    if undeclared:
        raise ValueError(
            f"groups contains codes {undeclared[:10]} that are not in group_codes={codes}; declare them (e.g. -1 "
            "for unknown) or filter those samples explicitly."
        )
    codes_t = torch.as_tensor(codes, dtype=torch.int64, device=device)
    if hi - lo < _LUT_MAX_RANGE:
        lut = torch.zeros(hi - lo + 1, dtype=torch.int64, device=device)
        inside = (codes_t >= lo) & (codes_t <= hi)
        lut[codes_t[inside] - lo] = torch.nonzero(inside).squeeze(1)
        return lut[groups - lo], codes
    return torch.searchsorted(codes_t, groups), codes


def _sort_within_groups(
    scores: torch.Tensor, group_index: torch.Tensor, num_groups: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L, N)`` permutation ordering each label's samples by group, then by score, and the sorted scores.

    With few groups each group's samples are sorted on their own (total work of one sort, no second sort to
    partition by group); with many groups a score sort is followed by a stable sort on the group index.
    The order inside a run of tied scores is irrelevant: every figure treats a tie block as a whole.
    """
    scores_t = scores.T  # (L, N)
    if num_groups > _COUNTING_MAX_GROUPS:
        by_score = torch.argsort(scores_t, dim=1)
        by_group = torch.argsort(group_index[by_score], dim=1, stable=True)
        order = by_score.gather(1, by_group)
        return order, scores_t.gather(1, order)
    orders, values = [], []
    for g in range(num_groups):  # loop over groups (few); each is one boolean pass plus a sort of its members
        members = torch.nonzero(group_index == g).squeeze(1)
        if members.numel() == 0:
            continue
        vals, within = torch.sort(scores_t[:, members], dim=1)  # (L, n_g)
        orders.append(members[within])
        values.append(vals)
    return torch.cat(orders, dim=1), torch.cat(values, dim=1)


def _tie_blocks(sorted_scores: torch.Tensor, offsets: torch.Tensor):
    """Positions in tie blocks of more than one sample, with their block bounds, for each label."""
    n_labels, n = sorted_scores.shape
    new_block = torch.ones(n_labels, n, dtype=torch.bool, device=sorted_scores.device)
    new_block[:, 1:] = sorted_scores[:, 1:] != sorted_scores[:, :-1]
    group_starts = offsets[1:-1]
    new_block[:, group_starts[group_starts < n]] = True  # a group's first sample starts a block
    tied, starts, ends = [], [], []
    for row in new_block:
        block_starts = torch.nonzero(row).squeeze(1)  # ascending
        size = torch.diff(block_starts, append=torch.tensor([n], device=row.device))
        big = size > 1
        first, length = block_starts[big], size[big]
        start = torch.repeat_interleave(first, length)
        tied.append(start + _ramp(length))
        starts.append(start)
        ends.append(start + torch.repeat_interleave(length, length))
    return tied, starts, ends, [t.numel() > 0 for t in tied]


def _ramp(sizes: torch.Tensor) -> torch.Tensor:
    """``[0, 1, ..., s0 - 1, 0, 1, ..., s1 - 1, ...]`` for run lengths ``sizes``."""
    total = int(sizes.sum())
    firsts = torch.cumsum(sizes, 0) - sizes
    return torch.arange(total, device=sizes.device) - torch.repeat_interleave(firsts, sizes)


def build_grouped_scores(
    y_score: torch.Tensor,
    y: torch.Tensor,
    groups: torch.Tensor,
    group_codes: Sequence[int] | torch.Tensor | None = None,
) -> GroupedScores:
    """Validate the inputs of a per-group metric and sort them once by (group, score).

    Args:
        y_score: scores ``(N,)`` or ``(N, L)`` (probabilities for threshold and calibration metrics).
        y: binary labels of the same shape.
        groups: integer group codes ``(N,)`` (float tensors holding whole numbers are accepted).
        group_codes: the declared codes; default the codes present. A declared code without samples yields an
            empty group (``n = 0``) instead of disappearing.

    Returns:
        a :class:`GroupedScores` on ``y_score``'s device.

    Raises:
        ValueError: empty input, shape/length mismatch, NaN scores, labels or group codes, non-binary labels,
            non-integer group codes, or samples whose group code is not among ``group_codes``.
    """
    y_score = _as_tensor(y_score, "y_score")
    device = y_score.device
    y = _as_tensor(y, "y", device)
    groups = _as_tensor(groups, "groups", device)
    if y_score.ndim not in (1, 2):
        raise ValueError(f"y_score must have shape (N,) or (N, L), got {tuple(y_score.shape)}.")
    if y.shape != y_score.shape:
        raise ValueError(f"y_score and y must have the same shape, got {tuple(y_score.shape)} and {tuple(y.shape)}.")
    if groups.ndim != 1 or groups.shape[0] != y_score.shape[0]:
        raise ValueError(
            f"groups must have shape (N,) with N={y_score.shape[0]} (one code per sample), got {tuple(groups.shape)}."
        )
    if y_score.shape[0] == 0:
        raise ValueError("no samples: y_score is empty.")
    if y_score.dtype.is_complex or y_score.dtype == torch.bool:
        raise ValueError(f"y_score must be real-valued, got {y_score.dtype}.")
    multilabel = y_score.ndim == 2
    scores = y_score.to(torch.float64).reshape(y_score.shape[0], -1)
    if scores.shape[1] == 0:
        raise ValueError("y_score has no label columns.")
    n_nan = int(torch.isnan(scores).sum())
    if n_nan:
        raise ValueError(
            f"y_score contains {n_nan} NaN value(s); fairness metrics never drop samples silently, so remove these "
            "samples (and say so) or fix the model output before calling."
        )
    labels = check_binary_labels(y.reshape(scores.shape), "y")
    if groups.dtype.is_complex:
        raise ValueError("groups must hold integer codes.")
    if groups.dtype.is_floating_point:
        if bool(torch.isnan(groups).any()):
            raise ValueError("groups contains NaN; encode unknown group membership as an explicit code (e.g. -1).")
        if bool((groups != torch.round(groups)).any()):
            raise ValueError("groups must hold integer codes.")
    group_index, codes = _group_index(groups.to(torch.int64), group_codes)

    n, n_labels = scores.shape
    num_groups = len(codes)
    counts = torch.bincount(group_index, minlength=num_groups)
    offsets = torch.nn.functional.pad(torch.cumsum(counts, 0), (1, 0))
    order, sorted_scores = _sort_within_groups(scores, group_index, num_groups)  # (L, N)
    sorted_labels = labels.T.gather(1, order)
    tied, tied_start, tied_end, has_ties = _tie_blocks(sorted_scores, offsets)
    return GroupedScores(
        scores=scores,
        labels=labels,
        group_index=group_index,
        group_codes=codes,
        multilabel=multilabel,
        order=order,
        sorted_scores=sorted_scores,
        sorted_labels=sorted_labels,
        offsets=offsets,
        has_ties=has_ties,
        tied_positions=tied,
        tied_start=tied_start,
        tied_end=tied_end,
    )
