# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Reject option classification (Kamiran, Karim & Zhang, ICDM 2012), the AIF360 grid-search variant done right.

Inside a critical band ``t - m < score <= t + m`` around the decision threshold ``t`` the favourable label goes to
the unprivileged groups and the unfavourable label to the privileged group. So, exactly,

* privileged:   ``y = [score > t + m]``
* unprivileged: ``y = [score > t - m]``

which turns every (threshold, margin) pair into two shifted thresholds: the whole 100 x 50 grid is evaluated at
once from per-(group, class) sorted scores with ``searchsorted`` (O(n log n + G * grid)), with no loop over the grid.

Differences from the reference pipeline (``diff-bias-proxies`` via AIF360):

* the groups are **not swapped**: the privileged code is the data's privileged group, so the critical region
  favours the unprivileged group (the reference passed them the other way round and favoured the privileged one);
* when no setting meets the bounds, the fallback is the setting with the smallest ``|metric|`` (AIF360 takes the
  smallest *signed* metric; ``aif360_compat=True`` restores that).

More than two groups: every non-privileged code is an unprivileged group and gets the same favourable band
``y = [score > t - m]``; the constraint ``lb <= gap_g <= ub`` must hold for **each** unprivileged group's gap
``gap_g = metric(g) - metric(privileged)``, and the fallback minimises ``max_g |gap_g|``. With two groups this is
AIF360's rule exactly.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from monai_fair.metrics import BIAS_KINDS, constrained_objective

from .base import BinaryEvaluation, Debiaser, DebiasResult, Trajectory, check_binary_fit_data, evaluate_binary

__all__ = ["RejectOptionClassification", "RejectOptionPostprocessor", "reject_option_grid"]


def _count_above(scores: torch.Tensor, cuts: torch.Tensor) -> torch.Tensor:
    """Number of ``scores`` strictly above each cut (any shape), via one sort and ``searchsorted``."""
    s = torch.sort(scores.to(torch.float64)).values
    idx = torch.searchsorted(s, cuts.reshape(-1).contiguous(), right=True)
    return (s.numel() - idx).reshape(cuts.shape).to(torch.float64)


def _np_linspace(start: torch.Tensor, stop: torch.Tensor | float, num: int) -> torch.Tensor:
    """``numpy.linspace`` bit for bit (``start + i * step``, last point exactly ``stop``), along a new last dim.

    torch's ``linspace`` rounds differently, which could move a score sitting exactly on a grid point across it.
    """
    stop = torch.as_tensor(stop, dtype=torch.float64, device=start.device)
    start, stop = torch.broadcast_tensors(start.to(torch.float64), stop)
    i = torch.arange(num, dtype=torch.float64, device=start.device)
    out = start[..., None] + i * ((stop - start) / max(num - 1, 1))[..., None]
    if num > 1:
        out[..., -1] = stop
    return out


def reject_option_grid(
    probs: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor,
    privileged: int = 1,
    kind: str = "eod",
    low_class_thresh: float = 0.01,
    high_class_thresh: float = 0.99,
    num_class_thresh: int = 100,
    num_roc_margin: int = 50,
) -> dict[str, Any]:
    """Balanced accuracy and fairness gaps of every (threshold, margin) setting of the reject-option grid.

    Thresholds are ``linspace(low, high, num_class_thresh)``; for each threshold ``t`` the margins are
    ``linspace(0, min(t, 1 - t), num_roc_margin)`` (margin 0 is plain thresholding).

    Args:
        probs: positive-class probabilities ``(N,)``.
        labels: binary labels ``(N,)``.
        groups: integer group codes ``(N,)``.
        privileged: privileged group code.
        kind: ``"spd"``, ``"eod"`` or ``"aod"`` (unprivileged minus privileged).
        low_class_thresh, high_class_thresh, num_class_thresh, num_roc_margin: the grid (AIF360 defaults).

    Returns:
        dict with ``thresholds`` ``(T,)``, ``margins`` ``(T, M)``, ``balanced_accuracy`` ``(T, M)``,
        ``group_gaps`` ``(G-1, T, M)`` (one row per unprivileged code, in ``unprivileged_codes`` order) and
        ``pooled_gap`` ``(T, M)`` (all unprivileged codes pooled, the :func:`compute_binary_bias` convention).

    Raises:
        ValueError: bad grid, bad data, or a group for which the metric is undefined (e.g. no positive sample
            for EOD).
    """
    if kind not in BIAS_KINDS:
        raise ValueError(f"kind must be one of {BIAS_KINDS}, got {kind!r}.")
    if not (0.0 <= low_class_thresh < high_class_thresh <= 1.0):
        raise ValueError("need 0 <= low_class_thresh < high_class_thresh <= 1.")
    if num_class_thresh < 1 or num_roc_margin < 1:
        raise ValueError("num_class_thresh and num_roc_margin must be at least 1.")
    probs = torch.as_tensor(probs).reshape(-1)
    labels, groups = check_binary_fit_data(labels, groups, privileged, probs)
    labels, groups = labels.to(probs.device), groups.to(probs.device)
    dev = probs.device
    t = _np_linspace(
        torch.tensor(low_class_thresh, dtype=torch.float64, device=dev), high_class_thresh, num_class_thresh
    )
    margins = _np_linspace(torch.zeros_like(t), torch.minimum(t, 1.0 - t), num_roc_margin)  # (T, M)
    cuts_priv = t[:, None] + margins
    cuts_unpriv = t[:, None] - margins

    pos = labels > 0.5
    codes = torch.unique(groups).tolist()
    unpriv_codes = [c for c in codes if c != privileged]

    def cell_counts(mask: torch.Tensor, cuts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        tp = _count_above(probs[mask & pos], cuts)
        fp = _count_above(probs[mask & ~pos], cuts)
        return tp, fp, int((mask & pos).sum()), int((mask & ~pos).sum())

    def rate(tp, fp, n_pos, n_neg, code) -> torch.Tensor:
        if kind == "spd":
            return (tp + fp) / (n_pos + n_neg)
        if n_pos == 0 or (kind == "aod" and n_neg == 0):
            what = "positive" if n_pos == 0 else "negative"
            raise ValueError(f"{kind.upper()} is undefined: group {code} has no {what} sample in the fitting data.")
        tpr = tp / n_pos
        return tpr if kind == "eod" else 0.5 * (tpr + fp / n_neg)

    p_tp, p_fp, p_np, p_nn = cell_counts(groups == privileged, cuts_priv)
    priv_rate = rate(p_tp, p_fp, p_np, p_nn, privileged)
    tp_sum, fp_sum = p_tp.clone(), p_fp.clone()
    u_tp, u_fp, u_np, u_nn = torch.zeros_like(p_tp), torch.zeros_like(p_fp), 0, 0
    gaps = []
    for code in unpriv_codes:  # a handful of groups; every group's whole grid is one vectorised count
        g_tp, g_fp, g_np, g_nn = cell_counts(groups == code, cuts_unpriv)
        gaps.append(rate(g_tp, g_fp, g_np, g_nn, code) - priv_rate)
        u_tp, u_fp, u_np, u_nn = u_tp + g_tp, u_fp + g_fp, u_np + g_np, u_nn + g_nn
        tp_sum, fp_sum = tp_sum + g_tp, fp_sum + g_fp
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    ba = 0.5 * (tp_sum / n_pos + (n_neg - fp_sum) / n_neg)
    pooled = rate(u_tp, u_fp, u_np, u_nn, "unprivileged") - priv_rate
    return {
        "thresholds": t,
        "margins": margins,
        "balanced_accuracy": ba,
        "group_gaps": torch.stack(gaps),
        "pooled_gap": pooled,
        "unprivileged_codes": unpriv_codes,
    }


class RejectOptionPostprocessor:
    """A fitted reject-option rule: ``predict(probs, groups)`` gives hard labels.

    Args:
        threshold: classification threshold ``t``.
        margin: half-width ``m`` of the critical band.
        privileged: privileged group code (band gives it the unfavourable label).
        group_codes: the group codes seen when fitting.
        unseen_groups: what to do with a code not seen when fitting: ``"error"`` (default) or ``"threshold"``
            (plain ``score > t``, no band).
    """

    def __init__(
        self,
        threshold: float = 0.5,
        margin: float = 0.0,
        privileged: int = 1,
        group_codes: Iterable[int] = (0, 1),
        unseen_groups: str = "error",
    ) -> None:
        if unseen_groups not in ("error", "threshold"):
            raise ValueError(f"unseen_groups must be 'error' or 'threshold', got {unseen_groups!r}.")
        self.threshold = float(threshold)
        self.margin = float(margin)
        self.privileged = int(privileged)
        self.group_codes = [int(c) for c in group_codes]
        self.unseen_groups = unseen_groups

    def predict(self, probs: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """Hard 0/1 labels (long tensor on ``probs``' device) for positive-class probabilities ``probs``."""
        probs = torch.as_tensor(probs).reshape(-1).to(torch.float64)
        groups = torch.as_tensor(groups, device=probs.device).reshape(-1).long()
        if groups.numel() != probs.numel():
            raise ValueError(f"probs and groups differ in length: {probs.numel()} vs {groups.numel()}.")
        known = torch.isin(groups, torch.tensor(self.group_codes, device=probs.device))
        if self.unseen_groups == "error" and not bool(known.all()):
            unseen = torch.unique(groups[~known]).tolist()
            raise ValueError(f"group codes {unseen} were not seen when fitting (fitted on {self.group_codes}).")
        t, m = self.threshold, self.margin
        out = torch.where(groups == self.privileged, probs > t + m, probs > t - m)
        out = torch.where(known, out, probs > t)
        return out.long()

    def state_dict(self) -> dict[str, Any]:
        """Plain values and tensors only, so ``torch.load(..., weights_only=True)`` reads it back."""
        return {
            "threshold": torch.tensor(self.threshold, dtype=torch.float64),
            "margin": torch.tensor(self.margin, dtype=torch.float64),
            "privileged": self.privileged,
            "group_codes": torch.tensor(self.group_codes, dtype=torch.long),
            "unseen_groups": self.unseen_groups,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.__init__(
            threshold=float(state["threshold"]),
            margin=float(state["margin"]),
            privileged=int(state["privileged"]),
            group_codes=torch.as_tensor(state["group_codes"]).tolist(),
            unseen_groups=str(state["unseen_groups"]),
        )

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> RejectOptionPostprocessor:
        obj = cls()
        obj.load_state_dict(state)
        return obj

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(threshold={self.threshold:.4f}, margin={self.margin:.4f}, "
            f"privileged={self.privileged}, group_codes={self.group_codes})"
        )


class RejectOptionClassification(Debiaser):
    """Fit a reject-option post-processor on validation scores (see module docstring).

    Among the settings whose every unprivileged gap lies in ``[metric_lb, metric_ub]`` the one with the highest
    balanced accuracy wins (first in grid order on ties: thresholds ascending, then margins ascending).

    Args:
        low_class_thresh: smallest threshold (0.01).
        high_class_thresh: largest threshold (0.99).
        num_class_thresh: number of thresholds (100).
        num_roc_margin: number of margins per threshold (50).
        metric_lb: lower bound on each gap; ``None`` means ``-epsilon``.
        metric_ub: upper bound on each gap; ``None`` means ``+epsilon``.
        aif360_compat: when no setting is feasible, take AIF360's smallest *signed* gap (largest gap over groups)
            instead of the smallest absolute gap.
        unseen_groups: passed to :class:`RejectOptionPostprocessor`.
        kwargs: :class:`~monai_fair.debias.Debiaser` arguments (``attribute_key``, ``privileged``, ``metric``,
            ``epsilon``, ...).
    """

    name = "reject_option"

    def __init__(
        self,
        low_class_thresh: float = 0.01,
        high_class_thresh: float = 0.99,
        num_class_thresh: int = 100,
        num_roc_margin: int = 50,
        metric_lb: float | None = None,
        metric_ub: float | None = None,
        aif360_compat: bool = False,
        unseen_groups: str = "error",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.low_class_thresh = low_class_thresh
        self.high_class_thresh = high_class_thresh
        self.num_class_thresh = num_class_thresh
        self.num_roc_margin = num_roc_margin
        self.metric_lb = -self.epsilon if metric_lb is None else float(metric_lb)
        self.metric_ub = self.epsilon if metric_ub is None else float(metric_ub)
        if self.metric_lb > self.metric_ub:
            raise ValueError(f"metric_lb ({self.metric_lb}) must not exceed metric_ub ({self.metric_ub}).")
        self.aif360_compat = aif360_compat
        self.unseen_groups = unseen_groups

    def _select(self, grid: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Feasibility-masked BA (-1 where infeasible), the fallback score to minimise, and the feasible mask."""
        gaps = grid["group_gaps"]
        feasible = ((gaps >= self.metric_lb) & (gaps <= self.metric_ub)).all(0)
        ba = torch.where(feasible, grid["balanced_accuracy"], torch.full_like(grid["balanced_accuracy"], -1.0))
        fallback_score = gaps.max(0).values if self.aif360_compat else gaps.abs().max(0).values
        return ba, fallback_score, feasible

    def fit(
        self,
        model: torch.nn.Module | None = None,
        loader: Iterable[Mapping[str, Any]] | None = None,
        probs: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        groups: torch.Tensor | None = None,
    ) -> DebiasResult:
        """Fit on validation data: either ``model`` and ``loader``, or cached ``probs``, ``labels``, ``groups``.

        Returns:
            a :class:`DebiasResult` with ``postprocessor`` (a :class:`RejectOptionPostprocessor`), ``model=None``,
            the evaluation of the post-processed labels on the fitting data, a trajectory with the best setting
            per threshold, and ``state`` holding the post-processor's state dict, feasibility and per-group gaps.
        """
        if probs is None:
            if model is None or loader is None:
                raise ValueError("give either model and loader, or probs, labels and groups.")
            probs, labels, groups = self.outputs(model, loader)
        elif labels is None or groups is None:
            raise ValueError("labels and groups are required with probs.")
        probs = torch.as_tensor(probs).reshape(-1)
        grid = reject_option_grid(
            probs,
            labels,
            groups,
            self.privileged,
            self.metric,
            self.low_class_thresh,
            self.high_class_thresh,
            self.num_class_thresh,
            self.num_roc_margin,
        )
        labels, groups = check_binary_fit_data(labels, groups, self.privileged, probs)
        labels, groups = labels.to(probs.device), groups.to(probs.device)
        ba_feasible, fallback, feasible = self._select(grid)
        any_feasible = bool(feasible.any())
        if any_feasible:
            flat = int(torch.argmax(ba_feasible.reshape(-1)))
        else:
            flat = int(torch.argmin(fallback.reshape(-1)))
            warnings.warn(
                f"reject option: no (threshold, margin) setting keeps every {self.metric.upper()} gap within "
                f"[{self.metric_lb}, {self.metric_ub}]; taking the smallest "
                f"{'signed' if self.aif360_compat else 'absolute'} gap instead.",
                stacklevel=2,
            )
        ti, mi = divmod(flat, self.num_roc_margin)
        thr, margin = float(grid["thresholds"][ti]), float(grid["margins"][ti, mi])
        post = RejectOptionPostprocessor(
            thr, margin, self.privileged, [self.privileged] + grid["unprivileged_codes"], self.unseen_groups
        )
        y_hat = post.predict(probs, groups)
        validation = self._evaluate_labels(y_hat, labels, groups, thr)

        # trajectory: the best setting at every threshold (same rule restricted to one row of the grid)
        traj = Trajectory()
        row_best = torch.where(feasible.any(1), torch.argmax(ba_feasible, 1), torch.argmin(fallback, 1))  # (T,)
        rows = torch.arange(self.num_class_thresh, device=row_best.device)
        cols = [
            grid["balanced_accuracy"][rows, row_best],
            grid["pooled_gap"][rows, row_best],
            grid["margins"][rows, row_best],
            feasible[rows, row_best].to(torch.float64),
            grid["group_gaps"][:, rows, row_best].abs().max(0).values,
        ]
        objective = constrained_objective(cols[0], cols[1], self.epsilon)
        for i, (b, g, m, f, w, o) in enumerate(zip(*[c.tolist() for c in cols], objective.tolist())):
            ev = BinaryEvaluation(float(grid["thresholds"][i]), b, g, o)
            traj.append(i, ev, threshold=ev.threshold, margin=m, feasible=f, max_abs_group_gap=w)

        group_gaps = {int(c): float(grid["group_gaps"][k, ti, mi]) for k, c in enumerate(grid["unprivileged_codes"])}
        return DebiasResult(
            method=self.name,
            model=None,
            postprocessor=post,
            threshold=thr,
            validation=validation,
            trajectory=traj,
            state={
                "postprocessor": post.state_dict(),
                "feasible": any_feasible,
                "margin": margin,
                "group_gaps": group_gaps,
            },
        )

    def _evaluate_labels(self, y_hat, labels, groups, threshold: float) -> BinaryEvaluation:
        ev = evaluate_binary(y_hat.float(), labels, groups, self.privileged, self.metric, self.epsilon, 0.5)
        ev.threshold = threshold
        return ev
