# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Bias-proxy pruning of individual units (Marcinkevics, Ozkan & Vogt 2022), on any MONAI classifier.

Algorithm (per step, at most ``max_steps`` steps):

1. influence ``S`` of every unit on the full-set bias proxy from one backward pass over the validation data
   (re-estimated every step when ``dynamic``; :func:`~monai_fair.debias.influence.unit_influence`);
2. prune the ``step_size`` unpruned units that reduce the bias most to first order (``ΔProxy ≈ -h·S``): the largest
   positive ``S`` when the validation bias is positive, the most negative when it is negative (``torch.topk``;
   pruned units are excluded, and only units whose influence points the right way are taken);
3. forward pass over validation, balanced-accuracy-optimal threshold, bias, balanced accuracy, objective, and the
   bias proxy itself (trajectory extra ``proxy``: what the selection lowers, next to the thresholded bias).

``proxy="probability"`` is the paper's proxy, the gap in mean probability. It can be lowered without changing the
thresholded bias: pruning that pushes every positive towards probability 1 shrinks the gap while the re-chosen
threshold follows. ``proxy="threshold"`` instead ranks units by the smoothed thresholded bias at the current
balanced-accuracy-optimal threshold, with the overall rate held fixed
(:class:`~monai_fair.debias.influence.ThresholdProxyWeights`). ``task_weight > 0`` also spares the units whose
removal lowers the smoothed ``TPR - FPR`` at that threshold: a unit's score is its standardised bias influence
minus ``task_weight`` times its standardised harm to the task (units with a score <= 0 are never pruned).

The selected model is the one with the smallest ``|bias|`` among those with balanced accuracy ``>= rho``; the
unpruned model (step 0) is a candidate. With ``rho_relative`` the bound is relative to the unpruned model:
``rho = (initial validation balanced accuracy) - rho_relative`` ("keep balanced accuracy within ``rho_relative`` of
the standard model"). If none qualifies the unpruned model is returned and the result says so.
Differences from the reference code: exact full-set proxy gradient (any batch size, no NaN batch), pruned units never
re-selected, no off-by-one in the trajectory, no crash when nothing qualifies, the selected mask is what the returned
model carries (and what its state dict saves).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from monai_fair.debias.base import BinaryEvaluation, Debiaser, DebiasResult, Trajectory, as_plain_tensor
from monai_fair.debias.influence import (
    FullSetProxyWeights,
    ThresholdProxyWeights,
    ThresholdTaskWeights,
    _logit,
    smoothing_temperature,
    unit_influence,
)
from monai_fair.debias.unit_mask import UnitMaskSet, add_unit_masks
from monai_fair.metrics.proxies import PROXY_METRICS, proxy_sides

__all__ = ["PRUNING_PROXIES", "PruningDebiaser", "check_proxy_metric", "check_reiterable"]

#: what pruning ranks units by: the paper's mean-probability gap, or the smoothed thresholded bias
PRUNING_PROXIES = ("probability", "threshold")


def check_proxy_metric(debiaser: Debiaser) -> None:
    """Raise ``ValueError`` unless the debiaser's spec names a metric with a differentiable proxy (SPD, EOD)."""
    metric = debiaser.spec.metric
    if metric not in PROXY_METRICS:
        raise ValueError(f"{type(debiaser).__name__} needs a proxy metric in {PROXY_METRICS}, got {metric!r}.")


def check_reiterable(loader: Any) -> None:
    """Raise ``TypeError`` if ``loader`` cannot be iterated more than once (a generator or an iterator)."""
    try:
        it = iter(loader)
    except TypeError as e:
        raise TypeError(f"loader must be an iterable of dict batches, got {type(loader).__name__}.") from e
    if it is loader:
        raise TypeError("loader must be re-iterable (a DataLoader or a list of batches), not a one-shot iterator.")


def first_input(loader: Iterable[Mapping[str, Any]], image_key: str, device: torch.device) -> torch.Tensor:
    """The first sample of the first batch, as a ``(1, ...)`` float tensor on ``device``."""
    for batch in loader:
        x = as_plain_tensor(batch[image_key])[:1].to(device)
        return x if x.is_floating_point() else x.float()
    raise ValueError("the loader yielded no batch.")


@dataclass
class PruningRun:
    """Per-``fit`` state shared by the selection hooks of a pruning method."""

    model: nn.Module
    masks: UnitMaskSet
    loader: Iterable[Mapping[str, Any]]
    weights: FullSetProxyWeights
    direction: float
    influence: torch.Tensor | None = None
    task: ThresholdTaskWeights | None = None
    cache: dict[str, Any] = field(default_factory=dict)


def _spread(x: torch.Tensor) -> torch.Tensor:
    """Standard deviation of ``x`` (1 when it is 0 or undefined), to put two influences on one scale."""
    if x.numel() < 2:
        return torch.ones((), device=x.device)
    sd = x.std()
    return torch.where(torch.isfinite(sd) & (sd > 0), sd, torch.ones_like(sd))


class PruningDebiaser(Debiaser):
    """Prune the units whose influence on the bias proxy is largest, step by step, under a ``rho`` accuracy bound.

    Args:
        step_size: units pruned per step (1500 in the paper for VGG-16 at 224²).
        max_steps: maximum number of pruning steps (10).
        dynamic: re-estimate the influence after every step (True); otherwise one estimate is reused.
        rho: lower bound on validation balanced accuracy for a step to be selectable (ϱ; 0.65 / 0.55 in the paper).
        rho_relative: if set, ``rho`` is ignored and the bound is the unpruned model's validation balanced accuracy
            minus ``rho_relative`` (>= 0); the bound used is reported in ``state["rho"]``.
        stop_early: stop once balanced accuracy falls to ``stop_balanced_accuracy`` or below.
        stop_balanced_accuracy: early-stopping level (0.55).
        patience: stop once this many consecutive steps fall below the accuracy bound ``rho`` (their models cannot
            be selected, and pruning more rarely brings the accuracy back); ``None`` runs every step (the paper).
        layers: names of the prunable layers; default every convolution of the model.
        proxy: ``"probability"`` (the paper's mean-probability gap) or ``"threshold"`` (the smoothed thresholded
            bias at the current threshold, overall rate held fixed; see the module docstring).
        temperature: smoothing width of ``proxy="threshold"`` and of the task term, as a fraction of the standard
            deviation of the validation logits that enter the proxy (> 0).
        task_weight: weight of the task-harm term in the unit score (>= 0; 0 = bias influence only, as the paper).
        channels_last: run 2D/3D networks in channels-last memory format (faster convolutions on GPU).
        kwargs: :class:`~monai_fair.debias.base.Debiaser` arguments (``spec``, whose ``metric`` must be ``"spd"`` or
            ``"eod"``; keys, ``activation``, ``device``, ``amp``).

    ``fit`` returns a :class:`~monai_fair.debias.base.DebiasResult` whose ``model`` is a copy of the input model
    with :class:`~monai_fair.debias.unit_mask.UnitMaskedLayer` wrappers carrying the selected mask; ``state`` holds
    ``layers``, ``selected_step``, ``n_pruned``, ``n_units``, ``qualified``, ``rho`` (the bound used) and a ``message``.
    """

    name = "pruning"

    def __init__(
        self,
        step_size: int = 1500,
        max_steps: int = 10,
        dynamic: bool = True,
        rho: float = 0.65,
        rho_relative: float | None = None,
        stop_early: bool = True,
        stop_balanced_accuracy: float = 0.55,
        patience: int | None = None,
        layers: Sequence[str] | None = None,
        proxy: str = "probability",
        temperature: float = 0.5,
        task_weight: float = 0.0,
        channels_last: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_proxy_metric(self)
        if proxy not in PRUNING_PROXIES:
            raise ValueError(f"proxy must be one of {PRUNING_PROXIES}, got {proxy!r}.")
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        if not float(task_weight) >= 0:
            raise ValueError(f"task_weight must be >= 0, got {task_weight}.")
        self.proxy = proxy
        self.temperature = float(temperature)
        self.task_weight = float(task_weight)
        if int(step_size) < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size}.")
        if int(max_steps) < 0:
            raise ValueError(f"max_steps must be >= 0, got {max_steps}.")
        self.step_size = int(step_size)
        self.max_steps = int(max_steps)
        self.dynamic = bool(dynamic)
        if rho_relative is not None and not float(rho_relative) >= 0:
            raise ValueError(f"rho_relative must be >= 0, got {rho_relative}.")
        self.rho = float(rho)
        self.rho_relative = None if rho_relative is None else float(rho_relative)
        self.stop_early = bool(stop_early)
        self.stop_balanced_accuracy = float(stop_balanced_accuracy)
        if patience is not None and int(patience) < 1:
            raise ValueError(f"patience must be >= 1 or None, got {patience}.")
        self.patience = None if patience is None else int(patience)
        self.layers = list(layers) if layers is not None else None
        self.channels_last = bool(channels_last)

    # -- hooks for subclasses ------------------------------------------------------------------------------------
    def influence(self, run: PruningRun) -> torch.Tensor:
        """Flat influence of every unit on the full-set proxy (see :func:`unit_influence`)."""
        run.influence = unit_influence(
            run.model,
            run.masks,
            run.loader,
            run.weights,
            self.spec,
            self.image_key,
            self.label_key,
            self.activation,
            self.amp,
            out=run.influence,
        )
        return run.influence

    def task_influence(self, run: PruningRun) -> torch.Tensor:
        """Flat influence of every unit on the smoothed ``TPR - FPR`` at the current threshold."""
        run.cache["task"] = unit_influence(
            run.model,
            run.masks,
            run.loader,
            run.task,
            self.spec,
            self.image_key,
            self.label_key,
            self.activation,
            self.amp,
            out=run.cache.get("task"),
        )
        return run.cache["task"]

    def unit_scores(self, run: PruningRun) -> torch.Tensor:
        """How much pruning each unit lowers ``|bias|`` (> 0: it helps), net of ``task_weight`` times its harm."""
        score = self.influence(run) * run.direction
        if self.task_weight > 0 and run.task is not None:
            task = self.task_influence(run)  # removing a unit changes TPR - FPR by about -S: harm where S > 0
            kept = run.masks.flat_mask()
            score = score / _spread(score[kept]) - self.task_weight * task.clamp_min(0) / _spread(task[kept])
        return score

    def select_units(self, run: PruningRun, step: int) -> torch.Tensor:
        """Flat indices of the units to prune at ``step`` (at most ``step_size``; empty = nothing useful left)."""
        if self.dynamic or "score" not in run.cache:
            run.cache["score"] = self.unit_scores(run)
        score = run.cache["score"].masked_fill(~run.masks.flat_mask(), -math.inf)
        k = min(self.step_size, score.numel())
        values, index = torch.topk(score, k, sorted=False)
        # a unit whose influence points the wrong way (or is zero) would not reduce the bias
        return index[values > 0]

    # -- main loop ------------------------------------------------------------------------------------------------
    def _prepare(self, model: nn.Module, loader: Iterable[Mapping[str, Any]]) -> tuple[nn.Module, UnitMaskSet]:
        device = self._device_of(model)
        pruned = copy.deepcopy(model).to(device)
        example = first_input(loader, self.image_key, device)
        if self.channels_last and example.ndim in (4, 5):
            fmt = torch.channels_last if example.ndim == 4 else torch.channels_last_3d
            pruned = pruned.to(memory_format=fmt)
        masks = add_unit_masks(pruned, self.layers, example_input=example)
        return pruned, masks

    def _evaluate_model(
        self, model: nn.Module, loader, reference: int | None = None
    ) -> tuple[BinaryEvaluation, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Validation figures at the BA-optimal threshold, and the probabilities, labels and groups."""
        probs, labels, groups = self.outputs(model, loader)
        return self.evaluate(probs, labels, groups, reference=reference), probs, labels, groups

    def _objectives(
        self, probs: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, threshold: float
    ) -> tuple[FullSetProxyWeights, ThresholdTaskWeights | None]:
        """The weights the next influence estimate uses (bias proxy, task term) at the model's current outputs and
        threshold (re-built every step: the threshold and the logits move)."""
        reference = self.spec.resolve_reference(groups)
        metric, unknown = self.spec.metric, self.spec.unknown
        logits = _logit(probs)
        if self.proxy == "probability":
            weights = FullSetProxyWeights(labels, groups, reference, metric, unknown)
            temperature = smoothing_temperature(logits, self.temperature)
        else:
            ref, rest = proxy_sides(labels, groups, reference, metric, unknown)
            temperature = smoothing_temperature(logits[ref | rest], self.temperature)
            weights = ThresholdProxyWeights(labels, groups, reference, logits, threshold, temperature, metric, unknown)
        task = ThresholdTaskWeights(labels, threshold, temperature) if self.task_weight > 0 else None
        return weights, task

    def fit(self, model: nn.Module, loader: Iterable[Mapping[str, Any]], **kwargs: Any) -> DebiasResult:
        """Prune a copy of ``model`` on the validation ``loader``.

        Args:
            model: a trained classifier (not modified).
            loader: re-iterable validation loader of dict batches (image, label, attribute).

        Raises:
            TypeError: a one-shot loader.
            ValueError: a group without (positive) samples, for which the proxy is undefined; bad layer names.
        """
        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}.")
        check_reiterable(loader)
        pruned, masks = self._prepare(model, loader)
        initial_state = masks.state()
        evaluation, probs, labels, groups = self._evaluate_model(pruned, loader)
        if math.isnan(evaluation.bias):
            raise ValueError("the validation bias is undefined (a group or class cell is empty).")
        reference = self.spec.resolve_reference(groups)
        weights, task = self._objectives(probs, labels, groups, evaluation.threshold)
        run = PruningRun(pruned, masks, loader, weights, direction=1.0 if evaluation.bias >= 0 else -1.0, task=task)
        rho = self.rho if self.rho_relative is None else evaluation.balanced_accuracy - self.rho_relative
        proxy = weights.value(probs, labels, groups)

        trajectory = Trajectory()
        trajectory.append(0, evaluation, n_pruned=masks.n_pruned(), threshold=evaluation.threshold, proxy=proxy)
        evaluations = [evaluation]
        chosen: list[torch.Tensor] = []
        best_step = 0 if evaluation.balanced_accuracy >= rho else None
        best_abs = abs(evaluation.bias) if best_step is not None else math.inf
        stop = f"reached max_steps={self.max_steps}"
        below = 0  # consecutive steps below rho
        for step in range(1, self.max_steps + 1):
            index = self.select_units(run, step)
            if index.numel() == 0:
                stop = "no unpruned unit left whose influence reduces the bias"
                break
            masks.prune(index)
            chosen.append(index)
            evaluation, probs, _, _ = self._evaluate_model(pruned, loader, reference)
            run.weights, run.task = self._objectives(probs, labels, groups, evaluation.threshold)
            proxy = run.weights.value(probs, labels, groups)
            evaluations.append(evaluation)
            trajectory.append(step, evaluation, n_pruned=masks.n_pruned(), threshold=evaluation.threshold, proxy=proxy)
            if evaluation.balanced_accuracy >= rho and abs(evaluation.bias) < best_abs:
                best_step, best_abs = step, abs(evaluation.bias)
            if self.stop_early and evaluation.balanced_accuracy <= self.stop_balanced_accuracy:
                stop = f"balanced accuracy {evaluation.balanced_accuracy:.4f} <= {self.stop_balanced_accuracy}"
                break
            below = below + 1 if evaluation.balanced_accuracy < rho else 0
            if self.patience is not None and below >= self.patience:
                stop = f"{below} consecutive steps below rho={rho:.4f} (patience)"
                break

        qualified = best_step is not None
        selected = best_step if qualified else 0
        masks.load_state(initial_state)
        for index in chosen[:selected]:
            masks.prune(index)
        if qualified:
            message = f"selected step {selected} of {len(chosen)} (stopped: {stop})."
        else:
            message = (
                f"no step reached balanced accuracy >= rho={rho:.4f}; the unpruned model is returned "
                f"(stopped: {stop})."
            )
        pruned.train(model.training)
        return DebiasResult(
            method=self.name,
            model=pruned,
            postprocessor=None,
            threshold=evaluations[selected].threshold,
            validation=evaluations[selected],
            trajectory=trajectory,
            state={
                "layers": list(masks.names),
                "selected_step": selected,
                "n_pruned": masks.n_pruned(),
                "n_units": masks.n_units,
                "qualified": qualified,
                "direction": run.direction,
                "rho": rho,
                "message": message,
            },
        )
