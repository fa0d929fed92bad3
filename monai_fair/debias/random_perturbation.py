# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Random perturbation (Savani, White & Govindarajulu 2020), the intra-processing baseline, selected by bootstrap
estimates of the epsilon-constrained objective.

Each trial multiplies every parameter element-wise by ``1 + sigma * N(0, 1)``, picks the balanced-accuracy-optimal
threshold on the validation set and scores the bootstrapped validation objective ``BA * [|bias| < epsilon]``; the
best trial wins. Unlike the reference code, the **unperturbed model is candidate 0** (ties go to the earliest
candidate): a debiaser should never return something worse than its input by its own criterion.

Bootstrap resamples are per-sample resample counts ``(B, N)`` (:func:`~monai_fair.metrics.bootstrap_weights`), so
every resample is one row of weights of the evaluation core (:func:`~monai_fair.metrics.evaluate_binary_fairness`):
resamples x thresholds in one computation, with no Python loop.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from monai_fair.metrics import (
    FairnessSpec,
    best_balanced_accuracy_threshold,
    bootstrap_weights,
    make_generator,
)

from .base import BinaryEvaluation, Debiaser, DebiasResult, Trajectory, check_binary_fit_data

__all__ = ["RandomPerturbation", "bootstrap_evaluation", "resample_weights"]


def bootstrap_evaluation(
    probs: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor,
    reference: int,
    spec: FairnessSpec,
    thresholds: torch.Tensor | float,
    weights: torch.Tensor,
    epsilon: float,
) -> dict[str, torch.Tensor]:
    """Bootstrap means ``(T,)`` of balanced accuracy, bias and objective of ``probs > t`` (NaN resamples ignored).

    One call of :func:`~monai_fair.metrics.evaluate_binary_fairness` with resample counts ``weights`` ``(B, N)``
    and the spec's metric, unknown policy and minimum group size; ``epsilon`` is the objective's tolerance (the
    selection criterion may be tighter than the spec's).
    """
    boot = spec.evaluate(
        probs, labels, groups, thresholds=thresholds, weights=weights, reference=reference, epsilon=epsilon
    )
    return {k: torch.nanmean(getattr(boot, k), dim=0) for k in ("balanced_accuracy", "bias", "objective")}


def resample_weights(n_samples: int, n_bootstrap: int, seed: int | None, device: torch.device) -> torch.Tensor:
    """Unstratified resample counts ``(n_bootstrap, n_samples)``, drawn on the CPU (device-independent draws)."""
    w = bootstrap_weights([n_samples], n_bootstrap, stratified=False, generator=make_generator(seed, "cpu"))
    return w.to(device)


class RandomPerturbation(Debiaser):
    """Savani et al.'s random-perturbation intra-processing baseline (see module docstring).

    Args:
        trials: number of perturbed copies (101).
        sigma: relative noise scale (0.1): ``w <- w * (1 + sigma * N(0, 1))`` for every parameter element.
        seed: seed of the perturbations and of the bootstrap resamples.
        n_bootstrap: bootstrap resamples of the validation objective (100).
        n_thresholds: ``None`` (default) searches the balanced-accuracy-optimal threshold over the observed scores;
            an int restricts it to a ``linspace(0, 1, ·)`` grid.
        margin: the selection uses ``epsilon - margin`` (Savani's tightening; 0 in the CXR setting).
        include_unperturbed: make the input model candidate 0 (recommended; ``False`` reproduces the reference).
        kwargs: :class:`~monai_fair.debias.Debiaser` arguments (``spec``, keys, ``activation``, ``device``, ``amp``).

    Buffers (e.g. batch-norm running statistics) are not perturbed; parameters are.
    """

    name = "random_perturbation"

    def __init__(
        self,
        trials: int = 101,
        sigma: float = 0.1,
        seed: int = 0,
        n_bootstrap: int = 100,
        n_thresholds: int | None = None,
        margin: float = 0.0,
        include_unperturbed: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if trials < 0 or (trials == 0 and not include_unperturbed):
            raise ValueError("need at least one candidate (trials >= 1 or include_unperturbed).")
        if sigma < 0 or n_bootstrap < 1 or margin < 0:
            raise ValueError("sigma and margin must be non-negative and n_bootstrap positive.")
        self.trials = trials
        self.sigma = sigma
        self.seed = seed
        self.n_bootstrap = n_bootstrap
        self.n_thresholds = n_thresholds
        self.margin = margin
        self.include_unperturbed = include_unperturbed

    def score(
        self, probs: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, weights: torch.Tensor
    ) -> tuple[BinaryEvaluation, BinaryEvaluation]:
        """Point and bootstrap-mean evaluations at the balanced-accuracy-optimal threshold.

        The bootstrap objective uses ``epsilon - margin`` (the selection criterion); the point evaluation uses
        ``epsilon`` (what is reported).
        """
        labels, groups, reference = check_binary_fit_data(labels, groups, self.spec, probs)
        labels, groups = labels.to(probs.device), groups.to(probs.device)
        thr, _ = best_balanced_accuracy_threshold(probs, labels, self.n_thresholds)
        point = self.evaluate(probs, labels, groups, thr, reference)
        epsilon = self.spec.epsilon - self.margin
        mean = bootstrap_evaluation(probs, labels, groups, reference, self.spec, thr, weights, epsilon)
        return point, BinaryEvaluation(thr, *(float(mean[k][0]) for k in ("balanced_accuracy", "bias", "objective")))

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
                weights = resample_weights(probs.numel(), self.n_bootstrap, self.seed, probs.device)
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
