# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Equalized-odds post-processing (Hardt, Price & Srebro 2016) of hard predictions, any number of groups.

The model's hard predictions ``ŷ = [score > t]`` (``t`` the balanced-accuracy-optimal threshold on the fitting
data) are randomly flipped per group: a predicted positive of group ``g`` stays positive with probability
``x_{g,1}``, a predicted negative becomes positive with probability ``x_{g,0}``. The post-processed rates are
linear in ``x``

    TPR~_g = TPR_g x_{g,1} + FNR_g x_{g,0},   FPR~_g = FPR_g x_{g,1} + TNR_g x_{g,0},

and a linear program (``scipy.optimize.linprog``, HiGHS) chooses ``x in [0, 1]^{2G}`` so that every group has the
reference (privileged) group's TPR~ and FPR~ (``2(G-1)`` equality rows; with two groups these are AIF360's two
rows), while minimising

* ``"aif360"`` (default): ``sum_g (FPR~_g - TPR~_g)``, every group weighted equally (AIF360 / Pleiss et al.);
* ``"hardt"``: the expected error rate over the whole population, ``sum_g (FP~_g + FN~_g) / N``, which weights
  groups by their size (Hardt et al.'s loss).

Flipping is AIF360's exact-count scheme by default (within each (group, ŷ) cell a seeded random subset of
``floor(n (1 - x_{g,1}))`` positives / ``floor(n x_{g,0})`` negatives is flipped), or independent Bernoulli draws.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from scipy.optimize import linprog

from monai_fair.metrics import best_balanced_accuracy_threshold, evaluate_binary_fairness, max_min_gap

from .base import Debiaser, DebiasResult, Trajectory, check_binary_fit_data
from .postprocessor import Postprocessor

__all__ = ["EqualizedOddsPostprocessing", "EqualizedOddsPostprocessor", "equalized_odds_lp", "group_confusion_rates"]

_OBJECTIVES = ("aif360", "hardt")
_FLIP_MODES = ("count", "bernoulli")


def group_confusion_rates(
    y_hat: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, group_codes: Iterable[int]
) -> dict[str, np.ndarray]:
    """Per-group confusion counts and rates of hard predictions, in ``group_codes`` order (float64 numpy).

    The rates come from :func:`~monai_fair.metrics.evaluate_binary_fairness` (threshold 0.5, every group with a
    sample estimable); a negative code listed in ``group_codes`` is the unknown group (the ``"group"`` policy),
    otherwise unknown samples are in no group.

    Returns:
        dict with ``tp, fn, fp, tn, n_pos, n_neg`` counts and ``tpr, fnr, fpr, tnr`` rates (NaN where undefined).
    """
    codes = [int(c) for c in group_codes]
    known = [c for c in codes if c >= 0]
    if not known:
        raise ValueError(f"group_codes must contain a known (non-negative) code, got {codes}.")
    ev = evaluate_binary_fairness(
        y_hat.to(torch.float64),
        labels,
        groups,
        known[0],
        thresholds=0.5,
        unknown="group" if len(known) < len(codes) else "exclude",
        min_group_size=1,
        group_codes=known,
    )
    order = [ev.group_codes.index(c) for c in codes]
    out = {
        "n_pos": ev.positives[0, order],
        "n_neg": ev.negatives[0, order],
        "tpr": ev.tpr[0, 0, order],
        "fpr": ev.fpr[0, 0, order],
    }
    out = {k: v.cpu().numpy() for k, v in out.items()}
    out["fnr"], out["tnr"] = 1.0 - out["tpr"], 1.0 - out["fpr"]
    # unit weights: the counts are integers, recovered exactly from rate x class size
    out["tp"] = np.round(np.nan_to_num(out["tpr"]) * out["n_pos"])
    out["fp"] = np.round(np.nan_to_num(out["fpr"]) * out["n_neg"])
    out["fn"], out["tn"] = out["n_pos"] - out["tp"], out["n_neg"] - out["fp"]
    return out


def equalized_odds_lp(rates: Mapping[str, np.ndarray], objective: str = "aif360") -> tuple[np.ndarray, np.ndarray]:
    """Solve the equalized-odds LP for the flip probabilities.

    Args:
        rates: output of :func:`group_confusion_rates`, reference (privileged) group first.
        objective: ``"aif360"`` or ``"hardt"`` (see module docstring).

    Returns:
        ``(p_pos, p_neg)``, each ``(G,)``: ``P(y~=1 | ŷ=1, g)`` and ``P(y~=1 | ŷ=0, g)``.

    Raises:
        ValueError: unknown objective or a group without positives or negatives.
        RuntimeError: the solver failed (cannot happen for valid rates: ``x = 0`` is always feasible).
    """
    if objective not in _OBJECTIVES:
        raise ValueError(f"objective must be one of {_OBJECTIVES}, got {objective!r}.")
    tpr, fnr, fpr, tnr = (np.asarray(rates[k], dtype=np.float64) for k in ("tpr", "fnr", "fpr", "tnr"))
    if np.isnan(tpr).any() or np.isnan(fpr).any():
        raise ValueError("every group needs positive and negative samples for equalized odds.")
    g = tpr.size
    if objective == "aif360":
        c = np.stack([fpr - tpr, tnr - fnr], 1).reshape(-1)
    else:
        n = float(np.sum(rates["n_pos"]) + np.sum(rates["n_neg"]))
        c = np.stack([rates["fp"] - rates["tp"], rates["tn"] - rates["fn"]], 1).reshape(-1) / n
    a_eq = np.zeros((2 * (g - 1), 2 * g))
    for k in range(1, g):  # group k's TPR~ and FPR~ equal the reference group's
        a_eq[2 * (k - 1), 0:2] = [tpr[0], fnr[0]]
        a_eq[2 * (k - 1), 2 * k : 2 * k + 2] = [-tpr[k], -fnr[k]]
        a_eq[2 * (k - 1) + 1, 0:2] = [fpr[0], tnr[0]]
        a_eq[2 * (k - 1) + 1, 2 * k : 2 * k + 2] = [-fpr[k], -tnr[k]]
    res = linprog(c, A_eq=a_eq, b_eq=np.zeros(2 * (g - 1)), bounds=[(0.0, 1.0)] * (2 * g), method="highs")
    if res.status != 0:
        raise RuntimeError(f"equalized-odds linear program failed: {res.message}")
    x = np.clip(res.x, 0.0, 1.0).reshape(g, 2)
    return x[:, 0], x[:, 1]


class EqualizedOddsPostprocessor(Postprocessor):
    """A fitted equalized-odds rule: ``predict(probs, groups)`` thresholds at ``threshold`` and flips per group.

    Args:
        threshold: decision threshold applied to probabilities first (``ŷ = [p > threshold]``).
        group_codes: group codes seen when fitting (reference first).
        p_pos: ``P(y~=1 | ŷ=1, g)`` per code.
        p_neg: ``P(y~=1 | ŷ=0, g)`` per code.
        flip_mode: ``"count"`` (AIF360 exact-count flipping) or ``"bernoulli"`` (independent draws).
        seed: seed of the flips; ``None`` draws fresh randomness on every call.
        unseen_groups: ``"error"`` (default) or ``"keep"`` (a known code not seen when fitting keeps ``ŷ``; an
            unknown code that is not one of ``group_codes`` always keeps ``ŷ``).
    """

    _fields = {
        "threshold": "float",
        "group_codes": "codes",
        "p_pos": "floats",
        "p_neg": "floats",
        "flip_mode": "str",
        "seed": "seed",
        "unseen_groups": "str",
    }
    _fallbacks = ("keep",)

    def __init__(
        self,
        threshold: float = 0.5,
        group_codes: Iterable[int] = (1, 0),
        p_pos: Iterable[float] = (1.0, 1.0),
        p_neg: Iterable[float] = (0.0, 0.0),
        flip_mode: str = "count",
        seed: int | None = 0,
        unseen_groups: str = "error",
    ) -> None:
        super().__init__(group_codes, unseen_groups)
        if flip_mode not in _FLIP_MODES:
            raise ValueError(f"flip_mode must be one of {_FLIP_MODES}, got {flip_mode!r}.")
        self.threshold = float(threshold)
        self.p_pos = torch.as_tensor(list(p_pos), dtype=torch.float64)
        self.p_neg = torch.as_tensor(list(p_neg), dtype=torch.float64)
        if not (len(self.group_codes) == self.p_pos.numel() == self.p_neg.numel()):
            raise ValueError("group_codes, p_pos and p_neg must have the same length.")
        self.flip_mode = flip_mode
        self.seed = seed

    def predict_proba(self, probs: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """``P(y~=1)`` of every sample (float64): the expectation of :meth:`predict` under Bernoulli flipping."""
        probs, groups = self._inputs(probs, groups)
        return self.label_proba((probs > self.threshold).long(), groups)

    def label_proba(self, y_hat: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """``P(y~=1)`` for hard predictions ``y_hat``."""
        y_hat, groups = self._inputs(y_hat, groups)
        gi, known = self._group_index(groups)
        p_pos, p_neg = self.p_pos.to(y_hat.device)[gi], self.p_neg.to(y_hat.device)[gi]
        p = torch.where(y_hat > 0, p_pos, p_neg)
        return torch.where(known, p, (y_hat > 0).to(torch.float64))

    def predict(self, probs: torch.Tensor, groups: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """Hard 0/1 labels (long) from positive-class probabilities; ``seed`` overrides the fitted seed."""
        probs, groups = self._inputs(probs, groups)
        return self.postprocess_labels((probs > self.threshold).long(), groups, seed)

    def postprocess_labels(self, y_hat: torch.Tensor, groups: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """Randomly flip hard predictions ``y_hat`` per group (the AIF360 ``predict`` step)."""
        y_hat, groups = self._inputs(y_hat, groups)
        y_hat = (y_hat > 0).long()
        gi, known = self._group_index(groups)
        seed = self.seed if seed is None else seed
        gen = torch.Generator()  # CPU generator: the same flips on every device
        if seed is None:
            gen.seed()
        else:
            gen.manual_seed(int(seed))
        u = torch.rand(y_hat.numel(), generator=gen, dtype=torch.float64).to(y_hat.device)
        if self.flip_mode == "bernoulli":
            out = (u < self.label_proba(y_hat, groups)).long()
            return torch.where(known, out, y_hat)
        # exact counts: cell = (group, ŷ); within a cell, the samples with the smallest u are flipped
        n_groups = len(self.group_codes)
        cell = gi * 2 + y_hat
        counts = torch.bincount(cell, minlength=2 * n_groups).to(torch.float64)
        p_pos, p_neg = self.p_pos.to(y_hat.device), self.p_neg.to(y_hat.device)
        flip_frac = torch.stack([p_neg, 1.0 - p_pos], 1).reshape(-1)  # cell 2g: ŷ=0 -> 1, cell 2g+1: ŷ=1 -> 0
        n_flip = torch.floor(counts * flip_frac)  # AIF360: int(n * fraction)
        order = torch.argsort(cell.to(torch.float64) + u)  # by cell, random within a cell
        start = torch.cumsum(counts, 0) - counts
        rank = torch.empty_like(u)
        rank[order] = torch.arange(u.numel(), dtype=torch.float64, device=u.device) - start[cell[order]]
        flip = (rank < n_flip[cell]) & known
        return torch.where(flip, 1 - y_hat, y_hat)


class EqualizedOddsPostprocessing(Debiaser):
    """Fit an :class:`EqualizedOddsPostprocessor` on validation data (see module docstring).

    Args:
        objective: ``"aif360"`` (default) or ``"hardt"``.
        flip_mode: ``"count"`` (default, AIF360) or ``"bernoulli"``.
        seed: seed of the flips (``None``: non-deterministic, as AIF360's default).
        n_thresholds: ``None`` (default) searches the balanced-accuracy-optimal threshold over the observed scores;
            an int restricts it to a ``linspace(0, 1, ·)`` grid.
        unseen_groups: passed to :class:`EqualizedOddsPostprocessor`.
        kwargs: :class:`~monai_fair.debias.Debiaser` arguments; the spec's ``metric`` and ``epsilon`` only affect
            what is reported (the LP always equalises both TPR and FPR). The LP's groups are the reference group
            and every other group of the fitting data (the unknown group too under the ``"group"`` policy; under
            ``"exclude"`` unknown samples keep their prediction).
    """

    name = "equalized_odds"

    def __init__(
        self,
        objective: str = "aif360",
        flip_mode: str = "count",
        seed: int | None = 0,
        n_thresholds: int | None = None,
        unseen_groups: str = "error",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if objective not in _OBJECTIVES:
            raise ValueError(f"objective must be one of {_OBJECTIVES}, got {objective!r}.")
        if flip_mode not in _FLIP_MODES:
            raise ValueError(f"flip_mode must be one of {_FLIP_MODES}, got {flip_mode!r}.")
        self.objective = objective
        self.flip_mode = flip_mode
        self.seed = seed
        self.n_thresholds = n_thresholds
        self.unseen_groups = unseen_groups

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
            a :class:`DebiasResult` with the post-processor, ``model=None``, the evaluation of the (seeded)
            post-processed labels on the fitting data, a two-step trajectory (before, after) and ``state`` with
            the post-processor's state dict and the per-group rates before and expected after.
        """
        if probs is None:
            if model is None or loader is None:
                raise ValueError("give either model and loader, or probs, labels and groups.")
            probs, labels, groups = self.outputs(model, loader)
        elif labels is None or groups is None:
            raise ValueError("labels and groups are required with probs.")
        probs = torch.as_tensor(probs).reshape(-1)
        labels, groups, reference = check_binary_fit_data(labels, groups, self.spec, probs)
        labels, groups = labels.to(probs.device), groups.to(probs.device)
        threshold, _ = best_balanced_accuracy_threshold(probs, labels, self.n_thresholds)
        y_hat = (probs > threshold).long()
        others = [c for c in torch.unique(groups).tolist() if c != reference]
        codes = [reference] + [c for c in others if c >= 0 or self.spec.unknown == "group"]
        rates = group_confusion_rates(y_hat, labels, groups, codes)
        for k, c in enumerate(codes):
            if rates["n_pos"][k] == 0 or rates["n_neg"][k] == 0:
                raise ValueError(
                    f"equalized odds needs positives and negatives in every group; group {c} has "
                    f"{int(rates['n_pos'][k])} positive and {int(rates['n_neg'][k])} negative samples."
                )
        p_pos, p_neg = equalized_odds_lp(rates, self.objective)
        post = EqualizedOddsPostprocessor(
            threshold, codes, p_pos.tolist(), p_neg.tolist(), self.flip_mode, self.seed, self.unseen_groups
        )
        y_tilde = post.postprocess_labels(y_hat, groups)
        before = self.evaluate(probs, labels, groups, threshold, reference)
        after = self.evaluate(y_tilde.float(), labels, groups, 0.5, reference)
        after.threshold = threshold
        after_rates = group_confusion_rates(y_tilde, labels, groups, codes)
        expected_tpr = rates["tpr"] * p_pos + rates["fnr"] * p_neg
        expected_fpr = rates["fpr"] * p_pos + rates["tnr"] * p_neg

        def spread(x: np.ndarray) -> float:
            return float(max_min_gap(torch.as_tensor(x)))

        traj = Trajectory()
        traj.append(0, before, tpr_spread=spread(rates["tpr"]), fpr_spread=spread(rates["fpr"]))
        traj.append(1, after, tpr_spread=spread(after_rates["tpr"]), fpr_spread=spread(after_rates["fpr"]))
        return DebiasResult(
            method=self.name,
            model=None,
            postprocessor=post,
            threshold=threshold,
            validation=after,
            trajectory=traj,
            state={
                "postprocessor": post.state_dict(),
                "group_codes": codes,
                "tpr_before": rates["tpr"].tolist(),
                "fpr_before": rates["fpr"].tolist(),
                "tpr_expected": expected_tpr.tolist(),
                "fpr_expected": expected_fpr.tolist(),
                "tpr_after": after_rates["tpr"].tolist(),
                "fpr_after": after_rates["fpr"].tolist(),
            },
        )
