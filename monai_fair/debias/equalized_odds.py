# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Equalized-odds post-processing (Hardt, Price & Srebro 2016) of hard predictions, any number of groups.

The model's hard predictions ``ŷ = [score > t]`` (``t`` the balanced-accuracy-optimal threshold on the fitting
data) are randomly flipped per group: a predicted positive of group ``g`` stays positive with probability
``x_{g,1}``, a predicted negative becomes positive with probability ``x_{g,0}``. The post-processed rates are
linear in ``x``

    TPR~_g = TPR_g x_{g,1} + FNR_g x_{g,0},   FPR~_g = FPR_g x_{g,1} + TNR_g x_{g,0},

and a linear program (``scipy.optimize.linprog``, HiGHS) chooses ``x in [0, 1]^{2G}`` so that every group has the
privileged group's TPR~ and FPR~ (``2(G-1)`` equality rows; with two groups these are AIF360's two rows), while
minimising

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

from monai_fair.metrics import best_balanced_accuracy_threshold

from .base import Debiaser, DebiasResult, Trajectory, check_binary_fit_data, evaluate_binary

__all__ = ["EqualizedOddsPostprocessing", "EqualizedOddsPostprocessor", "equalized_odds_lp", "group_confusion_rates"]

_OBJECTIVES = ("aif360", "hardt")
_FLIP_MODES = ("count", "bernoulli")


def group_confusion_rates(
    y_hat: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, group_codes: Iterable[int]
) -> dict[str, np.ndarray]:
    """Per-group confusion counts and rates of hard predictions, in ``group_codes`` order (float64 numpy).

    Returns:
        dict with ``tp, fn, fp, tn, n_pos, n_neg`` counts and ``tpr, fnr, fpr, tnr`` rates (NaN where undefined).
    """
    codes = torch.as_tensor(list(group_codes), device=groups.device)
    onehot = (groups.reshape(-1, 1) == codes.reshape(1, -1)).to(torch.float64)  # (N, G)
    pos = (labels.reshape(-1, 1) > 0.5).to(torch.float64)
    hit = (y_hat.reshape(-1, 1) > 0.5).to(torch.float64)
    tp = (onehot * pos * hit).sum(0)
    fn = (onehot * pos * (1 - hit)).sum(0)
    fp = (onehot * (1 - pos) * hit).sum(0)
    tn = (onehot * (1 - pos) * (1 - hit)).sum(0)
    out = {k: v.cpu().numpy() for k, v in {"tp": tp, "fn": fn, "fp": fp, "tn": tn}.items()}
    out["n_pos"], out["n_neg"] = out["tp"] + out["fn"], out["fp"] + out["tn"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["tpr"], out["fnr"] = out["tp"] / out["n_pos"], out["fn"] / out["n_pos"]
        out["fpr"], out["tnr"] = out["fp"] / out["n_neg"], out["tn"] / out["n_neg"]
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


class EqualizedOddsPostprocessor:
    """A fitted equalized-odds rule: ``predict(probs, groups)`` thresholds at ``threshold`` and flips per group.

    Args:
        threshold: decision threshold applied to probabilities first (``ŷ = [p > threshold]``).
        group_codes: group codes seen when fitting (privileged first).
        p_pos: ``P(y~=1 | ŷ=1, g)`` per code.
        p_neg: ``P(y~=1 | ŷ=0, g)`` per code.
        flip_mode: ``"count"`` (AIF360 exact-count flipping) or ``"bernoulli"`` (independent draws).
        seed: seed of the flips; ``None`` draws fresh randomness on every call.
        unseen_groups: ``"error"`` (default) or ``"keep"`` (a code not seen when fitting keeps ``ŷ``).
    """

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
        if flip_mode not in _FLIP_MODES:
            raise ValueError(f"flip_mode must be one of {_FLIP_MODES}, got {flip_mode!r}.")
        if unseen_groups not in ("error", "keep"):
            raise ValueError(f"unseen_groups must be 'error' or 'keep', got {unseen_groups!r}.")
        self.threshold = float(threshold)
        self.group_codes = [int(c) for c in group_codes]
        self.p_pos = torch.as_tensor(list(p_pos), dtype=torch.float64)
        self.p_neg = torch.as_tensor(list(p_neg), dtype=torch.float64)
        if not (len(self.group_codes) == self.p_pos.numel() == self.p_neg.numel()):
            raise ValueError("group_codes, p_pos and p_neg must have the same length.")
        self.flip_mode = flip_mode
        self.seed = seed
        self.unseen_groups = unseen_groups

    def _group_index(self, groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        codes = torch.as_tensor(self.group_codes, device=groups.device)
        match = groups.reshape(-1, 1) == codes.reshape(1, -1)
        known = match.any(1)
        if self.unseen_groups == "error" and not bool(known.all()):
            unseen = torch.unique(groups[~known]).tolist()
            raise ValueError(f"group codes {unseen} were not seen when fitting (fitted on {self.group_codes}).")
        return match.to(torch.long).argmax(1), known

    def _inputs(self, values: torch.Tensor, groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values = torch.as_tensor(values).reshape(-1)
        groups = torch.as_tensor(groups, device=values.device).reshape(-1).long()
        if values.numel() != groups.numel():
            raise ValueError(f"inputs and groups differ in length: {values.numel()} vs {groups.numel()}.")
        return values, groups

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

    def state_dict(self) -> dict[str, Any]:
        """Plain values and tensors only, so ``torch.load(..., weights_only=True)`` reads it back."""
        return {
            "threshold": torch.tensor(self.threshold, dtype=torch.float64),
            "group_codes": torch.tensor(self.group_codes, dtype=torch.long),
            "p_pos": self.p_pos.clone(),
            "p_neg": self.p_neg.clone(),
            "flip_mode": self.flip_mode,
            "seed": -1 if self.seed is None else int(self.seed),
            "unseen_groups": self.unseen_groups,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        seed = int(state["seed"])
        self.__init__(
            threshold=float(state["threshold"]),
            group_codes=torch.as_tensor(state["group_codes"]).tolist(),
            p_pos=torch.as_tensor(state["p_pos"]).tolist(),
            p_neg=torch.as_tensor(state["p_neg"]).tolist(),
            flip_mode=str(state["flip_mode"]),
            seed=None if seed < 0 else seed,
            unseen_groups=str(state["unseen_groups"]),
        )

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> EqualizedOddsPostprocessor:
        obj = cls()
        obj.load_state_dict(state)
        return obj

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(threshold={self.threshold:.4f}, group_codes={self.group_codes}, "
            f"p_pos={self.p_pos.tolist()}, p_neg={self.p_neg.tolist()}, flip_mode={self.flip_mode!r})"
        )


class EqualizedOddsPostprocessing(Debiaser):
    """Fit an :class:`EqualizedOddsPostprocessor` on validation data (see module docstring).

    Args:
        objective: ``"aif360"`` (default) or ``"hardt"``.
        flip_mode: ``"count"`` (default, AIF360) or ``"bernoulli"``.
        seed: seed of the flips (``None``: non-deterministic, as AIF360's default).
        num_thresholds: size of the ``linspace(0, 1, ·)`` grid of the balanced-accuracy-optimal threshold.
        unseen_groups: passed to :class:`EqualizedOddsPostprocessor`.
        kwargs: :class:`~monai_fair.debias.Debiaser` arguments; ``metric`` and ``epsilon`` only affect what is
            reported (the LP always equalises both TPR and FPR).
    """

    name = "equalized_odds"

    def __init__(
        self,
        objective: str = "aif360",
        flip_mode: str = "count",
        seed: int | None = 0,
        num_thresholds: int = 101,
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
        self.num_thresholds = num_thresholds
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
        labels, groups = check_binary_fit_data(labels, groups, self.privileged, probs)
        labels, groups = labels.to(probs.device), groups.to(probs.device)
        threshold, _ = best_balanced_accuracy_threshold(probs, labels, self.num_thresholds)
        y_hat = (probs > threshold).long()
        codes = [self.privileged] + [c for c in torch.unique(groups).tolist() if c != self.privileged]
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
        before = evaluate_binary(probs, labels, groups, self.privileged, self.metric, self.epsilon, threshold)
        after = evaluate_binary(y_tilde.float(), labels, groups, self.privileged, self.metric, self.epsilon, 0.5)
        after.threshold = threshold
        after_rates = group_confusion_rates(y_tilde, labels, groups, codes)
        expected_tpr = rates["tpr"] * p_pos + rates["fnr"] * p_neg
        expected_fpr = rates["fpr"] * p_pos + rates["tnr"] * p_neg

        def spread(x: np.ndarray) -> float:
            return float(np.max(x) - np.min(x))

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
