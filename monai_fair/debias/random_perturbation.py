# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Random perturbation (Savani, White & Govindarajulu 2020), the intra-processing baseline, and vectorised bootstrap
estimates of balanced accuracy, bias and the epsilon-constrained objective.

Each trial multiplies every parameter element-wise by ``1 + sigma * N(0, 1)``, picks the balanced-accuracy-optimal
threshold on the validation set and scores the bootstrapped validation objective ``BA * [|bias| < epsilon]``; the
best trial wins. Unlike the reference code, the **unperturbed model is candidate 0** (ties go to the earliest
candidate): a debiaser should never return something worse than its input by its own criterion.

Bootstrap resamples are represented by per-sample multiplicity weights ``(B, N)``, so every resampled count is a
matrix product ``hits (T, N) @ weights.T (N, B)``: thresholds x resamples in one operation, with no
``(T, B, N)`` tensor and no Python loop.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from monai_fair.metrics import BIAS_KINDS, best_balanced_accuracy_threshold, constrained_objective

from .base import BinaryEvaluation, Debiaser, DebiasResult, Trajectory, check_binary_fit_data

__all__ = ["RandomPerturbation", "bootstrap_objective", "bootstrap_weights"]


def bootstrap_weights(
    num_samples: int, num_bootstrap: int, seed: int | None = 0, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Multiplicities ``(num_bootstrap, num_samples)`` of ``num_bootstrap`` resamples with replacement.

    Row ``b`` counts how often each sample is drawn in resample ``b`` (each row sums to ``num_samples``). Drawn
    with a seeded CPU generator, so the resamples do not depend on the device.
    """
    if num_samples < 1 or num_bootstrap < 1:
        raise ValueError("num_samples and num_bootstrap must be positive.")
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    idx = torch.randint(0, num_samples, (num_bootstrap, num_samples), generator=gen)
    w = torch.zeros(num_bootstrap, num_samples, dtype=torch.float64)
    w.scatter_add_(1, idx, torch.ones_like(w))
    return w.to(device)


def bootstrap_objective(
    probs: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor,
    thresholds: torch.Tensor | float,
    weights: torch.Tensor,
    privileged: int = 1,
    kind: str = "eod",
    epsilon: float = 0.05,
) -> dict[str, torch.Tensor]:
    """Balanced accuracy, signed bias and objective of ``probs > t`` on every bootstrap resample and threshold.

    The bias is :func:`~monai_fair.metrics.compute_binary_bias`'s (unprivileged codes pooled), computed on the
    resampled data; a resample lacking a needed cell gives NaN there (callers use ``nanmean``).

    Args:
        probs: probabilities ``(N,)``.
        labels: binary labels ``(N,)``.
        groups: group codes ``(N,)``.
        thresholds: a threshold or a 1-D tensor ``(T,)``.
        weights: resample multiplicities ``(B, N)`` from :func:`bootstrap_weights`.
        privileged: privileged group code.
        kind: ``"spd"``, ``"eod"`` or ``"aod"``.
        epsilon: objective tolerance.

    Returns:
        dict of ``(T, B)`` float64 tensors ``balanced_accuracy``, ``bias``, ``objective``.
    """
    if kind not in BIAS_KINDS:
        raise ValueError(f"kind must be one of {BIAS_KINDS}, got {kind!r}.")
    probs = torch.as_tensor(probs).reshape(-1)
    dev = probs.device
    labels = torch.as_tensor(labels, device=dev).reshape(-1)
    groups = torch.as_tensor(groups, device=dev).reshape(-1)
    weights = torch.as_tensor(weights, device=dev, dtype=torch.float64)
    if weights.ndim != 2 or weights.shape[1] != probs.numel():
        raise ValueError(f"weights must be (B, {probs.numel()}), got {tuple(weights.shape)}.")
    t = torch.as_tensor(thresholds, dtype=torch.float64, device=dev).reshape(-1)
    hit = (probs.to(torch.float64)[None, :] > t[:, None]).to(torch.float64)  # (T, N)
    pos = (labels > 0.5).to(torch.float64)
    priv = (groups == privileged).to(torch.float64)

    def rate(mask: torch.Tensor) -> torch.Tensor:  # (T, B) resampled mean of hit over mask; NaN if empty
        wm = weights * mask[None, :]
        den = wm.sum(1)[None, :]
        num = hit @ wm.T
        return torch.where(den > 0, num / den.clamp_min(1e-12), torch.full_like(num, float("nan")))

    ba = 0.5 * (rate(pos) + 1.0 - rate(1.0 - pos))
    if kind == "spd":
        bias = rate(1.0 - priv) - rate(priv)
    else:
        bias = rate((1.0 - priv) * pos) - rate(priv * pos)
        if kind == "aod":
            bias = 0.5 * (bias + rate((1.0 - priv) * (1.0 - pos)) - rate(priv * (1.0 - pos)))
    return {"balanced_accuracy": ba, "bias": bias, "objective": constrained_objective(ba, bias, epsilon)}


def _nanmean(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return torch.nanmean(x, dim=dim)


class RandomPerturbation(Debiaser):
    """Savani et al.'s random-perturbation intra-processing baseline (see module docstring).

    Args:
        trials: number of perturbed copies (101).
        sigma: relative noise scale (0.1): ``w <- w * (1 + sigma * N(0, 1))`` for every parameter element.
        seed: seed of the perturbations and of the bootstrap resamples.
        num_bootstrap: bootstrap resamples of the validation objective (100).
        num_thresholds: size of the ``linspace(0, 1, ·)`` grid of the balanced-accuracy-optimal threshold.
        margin: the selection uses ``epsilon - margin`` (Savani's tightening; 0 in the CXR setting).
        include_unperturbed: make the input model candidate 0 (recommended; ``False`` reproduces the reference).
        kwargs: :class:`~monai_fair.debias.Debiaser` arguments.

    Buffers (e.g. batch-norm running statistics) are not perturbed; parameters are.
    """

    name = "random_perturbation"

    def __init__(
        self,
        trials: int = 101,
        sigma: float = 0.1,
        seed: int = 0,
        num_bootstrap: int = 100,
        num_thresholds: int = 101,
        margin: float = 0.0,
        include_unperturbed: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if trials < 0 or (trials == 0 and not include_unperturbed):
            raise ValueError("need at least one candidate (trials >= 1 or include_unperturbed).")
        if sigma < 0 or num_bootstrap < 1 or margin < 0:
            raise ValueError("sigma and margin must be non-negative and num_bootstrap positive.")
        self.trials = trials
        self.sigma = sigma
        self.seed = seed
        self.num_bootstrap = num_bootstrap
        self.num_thresholds = num_thresholds
        self.margin = margin
        self.include_unperturbed = include_unperturbed

    def score(
        self, probs: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, weights: torch.Tensor
    ) -> tuple[BinaryEvaluation, BinaryEvaluation]:
        """Point and bootstrap-mean evaluations at the balanced-accuracy-optimal threshold.

        The bootstrap objective uses ``epsilon - margin`` (the selection criterion); the point evaluation uses
        ``epsilon`` (what is reported).
        """
        labels, groups = check_binary_fit_data(labels, groups, self.privileged, probs)
        labels, groups = labels.to(probs.device), groups.to(probs.device)
        thr, _ = best_balanced_accuracy_threshold(probs, labels, self.num_thresholds)
        point = self.evaluate(probs, labels, groups, thr)
        boot = bootstrap_objective(
            probs, labels, groups, thr, weights, self.privileged, self.metric, self.epsilon - self.margin
        )
        mean = {k: float(_nanmean(v[0])) for k, v in boot.items()}
        return point, BinaryEvaluation(thr, mean["balanced_accuracy"], mean["bias"], mean["objective"])

    def fit(self, model: torch.nn.Module, loader: Iterable[Mapping[str, Any]], **kwargs: Any) -> DebiasResult:
        """Perturb a copy of ``model`` ``trials`` times and keep the best candidate; ``model`` is not modified.

        Returns:
            a :class:`DebiasResult` whose ``model`` is the selected copy (eval mode), ``threshold`` its
            balanced-accuracy-optimal threshold, ``validation`` its point evaluation, the per-candidate trajectory
            (bootstrap means, with point values in ``extra``) and ``state`` with the selected trial index.
        """
        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}.")
        device = self._device_of(model)
        work = copy.deepcopy(model).to(device)
        work.eval()
        params = dict(work.named_parameters())
        original = {n: p.detach().clone() for n, p in params.items()}
        gen = torch.Generator(device=device)
        gen.manual_seed(int(self.seed))
        weights: torch.Tensor | None = None
        traj = Trajectory()
        best_obj, best_trial, best_state, best_point = float("-inf"), -1, None, None
        first = 0 if self.include_unperturbed else 1
        for trial in range(first, self.trials + 1):  # each candidate needs its own pass over the data
            with torch.no_grad():
                for name, p in params.items():
                    if trial == 0:
                        p.copy_(original[name])
                    else:
                        noise = torch.randn(p.shape, generator=gen, device=device, dtype=p.dtype)
                        p.copy_(original[name] * (1.0 + self.sigma * noise))
            probs, labels, groups = self.outputs(work, loader)
            if weights is None or weights.shape[1] != probs.numel():
                weights = bootstrap_weights(probs.numel(), self.num_bootstrap, self.seed, probs.device)
            point, boot = self.score(probs, labels, groups, weights)
            traj.append(
                trial,
                boot,
                point_balanced_accuracy=point.balanced_accuracy,
                point_bias=point.bias,
                point_objective=point.objective,
                threshold=point.threshold,
            )
            obj = boot.objective if boot.objective == boot.objective else float("-inf")  # NaN never wins
            if obj > best_obj or best_state is None:
                best_obj, best_trial, best_point = obj, trial, point
                best_state = {n: p.detach().clone() for n, p in params.items()}
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(best_state[name])
        return DebiasResult(
            method=self.name,
            model=work,
            postprocessor=None,
            threshold=best_point.threshold,
            validation=best_point,
            trajectory=traj,
            state={
                "trial": best_trial,
                "seed": self.seed,
                "sigma": self.sigma,
                "bootstrap_objective": best_obj,
            },
        )
