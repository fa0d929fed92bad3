# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Reject option classification (Kamiran, Karim & Zhang, ICDM 2012), the AIF360 grid-search variant done right.

Inside a critical band ``t - m < score <= t + m`` around the decision threshold ``t`` the favourable label goes to
every group but the reference (privileged) group and the unfavourable label to the reference group. So, exactly,

* reference group:            ``y = [score > t + m]``
* every other code (unknown codes included): ``y = [score > t - m]``

which turns every (threshold, margin) pair into two shifted thresholds: the whole 100 x 50 grid is one call of the
evaluation core (:func:`~monai_fair.metrics.evaluate_binary_fairness`) with per-group thresholds, with no loop over
the grid. The reference group, the metric, epsilon, the unknown-code policy and the minimum group size come from the
:class:`~monai_fair.metrics.FairnessSpec`.

Differences from the original pipeline (``diff-bias-proxies`` via AIF360):

* the groups are **not swapped**: the reference code is the data's privileged group, so the critical region
  favours the other groups (the original pipeline passed them the other way round and favoured the privileged one);
* when no setting meets the bounds, the fallback is the setting with the smallest ``|metric|`` (AIF360 takes the
  smallest *signed* metric; ``aif360_compat=True`` restores that).

More than two groups: every code other than the reference gets the same favourable band ``y = [score > t - m]``;
the constraint ``lb <= gap_g <= ub`` must hold for **each** reported group's gap ``gap_g = metric(g) -
metric(reference)`` (intersectional groups included), and the fallback minimises ``max_g |gap_g|``. With two groups
this is AIF360's rule exactly.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from monai_fair.metrics import FairnessSpec

from .base import BinaryEvaluation, Debiaser, DebiasResult, Trajectory, as_spec, check_binary_fit_data
from .postprocessor import Postprocessor

__all__ = ["RejectOptionClassification", "RejectOptionPostprocessor", "reject_option_grid"]


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


def _undefined_groups(evaluation, metric: str) -> dict[int, str]:
    """Group code → reason, for the reported groups whose ``metric`` gap is NaN at every grid setting."""
    gaps = evaluation.group_gaps[metric][0]  # (T, G)
    flags = evaluation.flags()
    return {
        c: flags[c] or f"{metric.upper()} undefined"
        for k, c in enumerate(evaluation.group_codes)
        if bool(torch.isnan(gaps[:, k]).all())
    }


def reject_option_grid(
    probs: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor,
    spec: FairnessSpec | None = None,
    low_class_thresh: float = 0.01,
    high_class_thresh: float = 0.99,
    num_class_thresh: int = 100,
    num_roc_margin: int = 50,
) -> dict[str, Any]:
    """Balanced accuracy and fairness gaps of every (threshold, margin) setting of the reject-option grid.

    Thresholds are ``linspace(low, high, num_class_thresh)``; for each threshold ``t`` the margins are
    ``linspace(0, min(t, 1 - t), num_roc_margin)`` (margin 0 is plain thresholding). Setting ``(t, m)`` is the
    group-dependent decision ``score > t + m`` (reference group) / ``score > t - m`` (every other code, unknown
    codes included), so the whole grid is one call of :func:`~monai_fair.metrics.evaluate_binary_fairness` with
    per-group thresholds, flattened over (threshold, margin).

    Args:
        probs: positive-class probabilities ``(N,)``.
        labels: binary labels ``(N,)``.
        groups: integer group codes ``(N,)``.
        spec: reference group, metric, epsilon, unknown-code policy, minimum group size; ``None``: ``FairnessSpec()``.
        low_class_thresh, high_class_thresh, num_class_thresh, num_roc_margin: the grid (AIF360 defaults).

    Returns:
        dict with ``thresholds`` ``(T,)``, ``margins`` ``(T, M)``, ``balanced_accuracy``, ``pooled_gap`` (all
        other groups pooled: the core's ``bias``) and ``objective`` ``(T, M)``, ``group_gaps`` ``(G', T, M)`` (one
        row per defined reported group other than the reference, in ``rest_codes`` order), ``rest_codes``,
        ``reference``, ``group_codes`` (every code of the fitting data, reference first) and ``undefined`` (code →
        reason for the groups left out of ``group_gaps``).

    Raises:
        ValueError: bad grid, bad data, or a pooled gap that is undefined (the reference group or the rest lacks
            a class the metric needs, or is below ``spec.min_group_size``).
    """
    spec = as_spec(spec)
    if not (0.0 <= low_class_thresh < high_class_thresh <= 1.0):
        raise ValueError("need 0 <= low_class_thresh < high_class_thresh <= 1.")
    if num_class_thresh < 1 or num_roc_margin < 1:
        raise ValueError("num_class_thresh and num_roc_margin must be at least 1.")
    probs = torch.as_tensor(probs).reshape(-1)
    labels, groups, reference = check_binary_fit_data(labels, groups, spec, probs)
    labels, groups = labels.to(probs.device), groups.to(probs.device)
    dev = probs.device
    t = _np_linspace(
        torch.tensor(low_class_thresh, dtype=torch.float64, device=dev), high_class_thresh, num_class_thresh
    )
    margins = _np_linspace(torch.zeros_like(t), torch.minimum(t, 1.0 - t), num_roc_margin)  # (T, M)
    shape = margins.shape
    cuts = {reference: (t[:, None] + margins).reshape(-1), None: (t[:, None] - margins).reshape(-1)}
    ev = spec.evaluate(probs, labels, groups, thresholds=cuts, reference=reference)
    undefined = _undefined_groups(ev, spec.metric)
    if reference in undefined or bool(torch.isnan(ev.bias).all()):
        reasons = "; ".join(f"group {c}: {r}" for c, r in undefined.items()) or "the pooled rest is too small"
        raise ValueError(f"{spec.metric.upper()} is undefined on the fitting data ({reasons}).")
    rest = [k for k, c in enumerate(ev.group_codes) if c != reference and c not in undefined]
    seen = [int(c) for c in torch.unique(groups).tolist() if c != reference]
    return {
        "thresholds": t,
        "margins": margins,
        "balanced_accuracy": ev.balanced_accuracy[0].reshape(shape),
        "pooled_gap": ev.bias[0].reshape(shape),
        "objective": ev.objective[0].reshape(shape),
        "group_gaps": ev.group_gaps[spec.metric][0][:, rest].T.reshape(len(rest), *shape),
        "rest_codes": [ev.group_codes[k] for k in rest],
        "reference": reference,
        "group_codes": [reference] + seen,
        "undefined": undefined,
    }


class RejectOptionPostprocessor(Postprocessor):
    """A fitted reject-option rule: ``predict(probs, groups)`` gives hard labels.

    Args:
        threshold: classification threshold ``t``.
        margin: half-width ``m`` of the critical band.
        reference: reference (privileged) group code (the band gives it the unfavourable label).
        group_codes: the group codes seen when fitting (every other seen code gets the favourable band).
        unseen_groups: what to do with a known code not seen when fitting: ``"error"`` (default) or
            ``"threshold"`` (plain ``score > t``, no band; also the rule of an unseen unknown code).
    """

    _fields = {
        "threshold": "float",
        "margin": "float",
        "reference": "int",
        "group_codes": "codes",
        "unseen_groups": "str",
    }
    _fallbacks = ("threshold",)

    def __init__(
        self,
        threshold: float = 0.5,
        margin: float = 0.0,
        reference: int = 1,
        group_codes: Iterable[int] = (0, 1),
        unseen_groups: str = "error",
    ) -> None:
        super().__init__(group_codes, unseen_groups)
        self.threshold = float(threshold)
        self.margin = float(margin)
        self.reference = int(reference)

    def predict(self, probs: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """Hard 0/1 labels (long tensor on ``probs``' device) for positive-class probabilities ``probs``."""
        probs, groups = self._inputs(probs, groups)
        probs = probs.to(torch.float64)
        _, seen = self._group_index(groups)
        t, m = self.threshold, self.margin
        out = torch.where(groups == self.reference, probs > t + m, probs > t - m)
        out = torch.where(seen, out, probs > t)
        return out.long()


class RejectOptionClassification(Debiaser):
    """Fit a reject-option post-processor on validation scores (see module docstring).

    Among the settings whose every gap (each defined group other than the reference, minus the reference) lies in
    ``[metric_lb, metric_ub]`` the one with the highest balanced accuracy wins (first in grid order on ties:
    thresholds ascending, then margins ascending). Groups whose gap is undefined on the fitting data (too small,
    or lacking a class) are left out of the constraint with a warning.

    Args:
        low_class_thresh: smallest threshold (0.01).
        high_class_thresh: largest threshold (0.99).
        num_class_thresh: number of thresholds (100; AIF360's name).
        num_roc_margin: number of margins per threshold (50; AIF360's name).
        metric_lb: lower bound on each gap; ``None`` means ``-spec.epsilon``.
        metric_ub: upper bound on each gap; ``None`` means ``+spec.epsilon``.
        aif360_compat: when no setting is feasible, take AIF360's smallest *signed* gap (largest gap over groups)
            instead of the smallest absolute gap.
        unseen_groups: passed to :class:`RejectOptionPostprocessor`.
        kwargs: :class:`~monai_fair.debias.Debiaser` arguments (``spec``, keys, ``activation``, ``device``, ``amp``).
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
        self.metric_lb = -self.spec.epsilon if metric_lb is None else float(metric_lb)
        self.metric_ub = self.spec.epsilon if metric_ub is None else float(metric_ub)
        if self.metric_lb > self.metric_ub:
            raise ValueError(f"metric_lb ({self.metric_lb}) must not exceed metric_ub ({self.metric_ub}).")
        self.aif360_compat = aif360_compat
        self.unseen_groups = unseen_groups

    def _select(self, grid: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Feasibility-masked BA (-1 where infeasible), the fallback score to minimise, and the feasible mask."""
        gaps = grid["group_gaps"]
        feasible = ((gaps >= self.metric_lb) & (gaps <= self.metric_ub)).all(0)
        ba = torch.where(feasible, grid["balanced_accuracy"], torch.full_like(grid["balanced_accuracy"], -1.0))
        # NaN gaps (a group too small in no setting is left out, so only isolated cells) never win the fallback
        fallback_score = gaps.max(0).values if self.aif360_compat else gaps.abs().max(0).values
        return ba, torch.nan_to_num(fallback_score, nan=float("inf")), feasible

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
            self.spec,
            self.low_class_thresh,
            self.high_class_thresh,
            self.num_class_thresh,
            self.num_roc_margin,
        )
        if grid["undefined"]:
            warnings.warn(
                "reject option: groups left out of the gap constraint (undefined on the fitting data): "
                + "; ".join(f"{c}: {r}" for c, r in grid["undefined"].items()),
                stacklevel=2,
            )
        ba_feasible, fallback, feasible = self._select(grid)
        any_feasible = bool(feasible.any())
        if any_feasible:
            flat = int(torch.argmax(ba_feasible.reshape(-1)))
        else:
            flat = int(torch.argmin(fallback.reshape(-1)))
            warnings.warn(
                f"reject option: no (threshold, margin) setting keeps every {self.spec.metric.upper()} gap within "
                f"[{self.metric_lb}, {self.metric_ub}]; taking the smallest "
                f"{'signed' if self.aif360_compat else 'absolute'} gap instead.",
                stacklevel=2,
            )
        ti, mi = divmod(flat, self.num_roc_margin)
        thr, margin = float(grid["thresholds"][ti]), float(grid["margins"][ti, mi])
        post = RejectOptionPostprocessor(thr, margin, grid["reference"], grid["group_codes"], self.unseen_groups)
        validation = BinaryEvaluation(
            thr,
            float(grid["balanced_accuracy"][ti, mi]),
            float(grid["pooled_gap"][ti, mi]),
            float(grid["objective"][ti, mi]),
        )
        group_gaps = {int(c): float(grid["group_gaps"][k, ti, mi]) for k, c in enumerate(grid["rest_codes"])}
        return DebiasResult(
            method=self.name,
            model=None,
            postprocessor=post,
            threshold=thr,
            validation=validation,
            trajectory=self._trajectory(grid, ba_feasible, fallback, feasible),
            state={
                "postprocessor": post.state_dict(),
                "feasible": any_feasible,
                "margin": margin,
                "group_gaps": group_gaps,
            },
        )

    def _trajectory(self, grid, ba_feasible, fallback, feasible) -> Trajectory:
        """The best setting at every threshold (the same rule restricted to one row of the grid)."""
        traj = Trajectory()
        row_best = torch.where(feasible.any(1), torch.argmax(ba_feasible, 1), torch.argmin(fallback, 1))  # (T,)
        rows = torch.arange(self.num_class_thresh, device=row_best.device)
        cols = [
            grid["balanced_accuracy"][rows, row_best],
            grid["pooled_gap"][rows, row_best],
            grid["objective"][rows, row_best],
            grid["margins"][rows, row_best],
            feasible[rows, row_best].to(torch.float64),
            grid["group_gaps"][:, rows, row_best].abs().max(0).values,
        ]
        for i, (b, g, o, m, f, w) in enumerate(zip(*[c.tolist() for c in cols])):
            ev = BinaryEvaluation(float(grid["thresholds"][i]), b, g, o)
            traj.append(i, ev, threshold=ev.threshold, margin=m, feasible=f, max_abs_group_gap=w)
        return traj
