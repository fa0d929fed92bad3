# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Adversarial fine-tuning (Savani, White & Govindarajulu 2020; the chest X-ray adaptation of
``diff-bias-proxies``), with the reference implementation's defects fixed.

A critic learns to predict the bias of a mini-batch from the batch's penultimate representations; the classifier
(the actor) is then fine-tuned with the multiplicative hinge loss

    loss = max(1, lambda * (|critic(H)| - epsilon + margin) + 1) * BCE(actor(x), y),

which inflates the classification loss only while the predicted bias exceeds ``epsilon - margin``, and whose
gradient through the critic pushes the representation towards a fairer batch bias.

Differences from the reference code, all deliberate:

* the actor **is the trained classifier with its own head**: nothing is re-initialised (the reference replaced the
  last layer by a random ``Linear(4096, 4096)`` plus a new ``Linear(4096, 2)``, discarding the trained head);
* the critic's target is the soft bias proxy of the batch computed on **probabilities** with the exact formulas of
  :mod:`monai_fair.metrics.proxies` (the reference used raw logits); a batch lacking a needed group has no target
  and is skipped for the critic (counted in the trajectory), never turned into a NaN loss;
* the default critic is permutation invariant and accepts any batch size (:class:`BatchBiasCritic`); the
  original flattened fixed-size critic is ``critic="flat"`` (batches of another size are skipped, as there);
* the threshold is chosen by the bootstrapped objective with the **configured** epsilon (minus
  ``selection_margin``), not a hard-coded 0.05 - 0.01;
* the epoch kept is the one with the best validation objective, and the input model (epoch 0) is a candidate:
  the result is never worse than the input by this criterion;
* actor and critic see the same representation in both phases: by default the actor runs in eval mode (no dropout,
  frozen batch-norm statistics) while its weights are fine-tuned.

The penultimate representation is read by a :class:`~monai_fair.networks.FeatureHook` on a named module (the
input of ``feature_module``), so any MONAI classifier, 2D or 3D, works.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from monai_fair.metrics.proxies import proxy_weights
from monai_fair.metrics.thresholds import observed_thresholds
from monai_fair.networks.critic import BatchBiasCritic, FeatureHook, FlatBatchBiasCritic

from .base import (
    BinaryEvaluation,
    Debiaser,
    DebiasResult,
    Trajectory,
    _autocast,
    check_binary_fit_data,
    positive_probability,
)
from .random_perturbation import bootstrap_evaluation, resample_weights

__all__ = ["AdversarialFineTuning", "batch_bias_target"]

_CRITICS = ("deepsets", "flat")


def batch_bias_target(
    probs: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor,
    reference: int,
    metric: str = "eod",
    unknown: str = "exclude",
) -> torch.Tensor | None:
    """Soft bias of a batch (rest minus reference mean probability) or ``None`` if it is undefined.

    ``spd`` and ``eod`` are :func:`~monai_fair.metrics.compute_bias_proxy`'s formulas; ``aod`` is
    ``(eod + soft FPR gap) / 2``, the FPR gap being the same formula over the negatives.

    Returns:
        a scalar tensor, or ``None`` when the batch lacks a group (or a class within a group) the proxy needs.
    """
    probs = probs.reshape(-1)
    try:
        if metric == "aod":
            w_pos = proxy_weights(labels, groups, reference, "eod", unknown)
            w_neg = proxy_weights(1.0 - labels.float(), groups, reference, "eod", unknown)
            w = 0.5 * (w_pos + w_neg)
        else:
            w = proxy_weights(labels, groups, reference, metric, unknown)
    except ValueError:
        return None
    return torch.sum(w.to(device=probs.device, dtype=probs.dtype) * probs)


def _cycle(loader: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Endless pass over ``loader`` (re-iterated, so shuffling loaders reshuffle; nothing is cached)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("the loader yielded no batch.")


def _set_batchnorm_eval(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


class AdversarialFineTuning(Debiaser):
    """Savani et al.'s adversarial intra-processing with a batch-bias critic (see module docstring).

    Args:
        feature_module: name of the module whose **input** is the penultimate representation
            (``"classifier.6"`` for FairVGG, ``"fc"`` for MONAI ResNet, ``"class_layers.out"`` for DenseNet121);
            ``None`` picks :func:`~monai_fair.networks.default_feature_module`.
        critic: ``"deepsets"`` (:class:`~monai_fair.networks.BatchBiasCritic`, any batch size) or ``"flat"``
            (:class:`~monai_fair.networks.FlatBatchBiasCritic`, Savani's original).
        critic_hidden: critic width (32).
        critic_num_deep: critic hidden blocks (3).
        critic_dropout: critic dropout (0.2).
        critic_batch_size: batch size of the flat critic; ``None`` takes the first batch's size.
        critic_lr: critic Adam learning rate (1e-4).
        actor_lr: actor Adam learning rate (1e-4).
        lam: hinge strength lambda (0.75 in the CXR setting).
        margin: hinge margin (0.02).
        epochs: number of (critic phase, actor phase) rounds (5).
        critic_steps: batches per critic phase (201).
        actor_steps: batches per actor phase (101).
        n_bootstrap: bootstrap resamples of the threshold / epoch selection (5).
        n_thresholds: ``None`` (default): the candidate thresholds are the observed scores; an int: a
            ``linspace(0, 1, ·)`` grid.
        selection_margin: the threshold and the epoch are selected with ``epsilon - selection_margin`` (0.01).
        actor_train_mode: run the actor in train mode (dropout on) during its phase; ``False`` keeps eval mode
            so the critic judges the representation it was trained on.
        freeze_batchnorm: with ``actor_train_mode``, keep batch-norm layers in eval mode (small batches).
        seed: seed of the critic initialisation, dropout and bootstrap (the global RNG state is restored).
        kwargs: :class:`~monai_fair.debias.Debiaser` arguments.
    """

    name = "adversarial_finetune"

    def __init__(
        self,
        feature_module: str | None = None,
        critic: str = "deepsets",
        critic_hidden: int = 32,
        critic_num_deep: int = 3,
        critic_dropout: float = 0.2,
        critic_batch_size: int | None = None,
        critic_lr: float = 1e-4,
        actor_lr: float = 1e-4,
        lam: float = 0.75,
        margin: float = 0.02,
        epochs: int = 5,
        critic_steps: int = 201,
        actor_steps: int = 101,
        n_bootstrap: int = 5,
        n_thresholds: int | None = None,
        selection_margin: float = 0.01,
        actor_train_mode: bool = False,
        freeze_batchnorm: bool = True,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if critic not in _CRITICS:
            raise ValueError(f"critic must be one of {_CRITICS}, got {critic!r}.")
        if epochs < 0 or critic_steps < 0 or actor_steps < 0 or n_bootstrap < 1:
            raise ValueError("epochs and steps must be non-negative, n_bootstrap positive.")
        if lam < 0:
            raise ValueError(f"lam must be non-negative, got {lam}.")
        self.feature_module = feature_module
        self.critic = critic
        self.critic_hidden = critic_hidden
        self.critic_num_deep = critic_num_deep
        self.critic_dropout = critic_dropout
        self.critic_batch_size = critic_batch_size
        self.critic_lr = critic_lr
        self.actor_lr = actor_lr
        self.lam = lam
        self.margin = margin
        self.epochs = epochs
        self.critic_steps = critic_steps
        self.actor_steps = actor_steps
        self.n_bootstrap = n_bootstrap
        self.n_thresholds = n_thresholds
        self.selection_margin = selection_margin
        self.actor_train_mode = actor_train_mode
        self.freeze_batchnorm = freeze_batchnorm
        self.seed = seed

    # --- pieces -------------------------------------------------------------------------------------------------
    def _forward(self, model: nn.Module, hook: FeatureHook, x: torch.Tensor, device: torch.device):
        with _autocast(device, self.amp):
            out = model(x)
        return out.float(), hook.features.float()

    def _bce(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = out[:, None] if out.ndim == 1 else out
        index = self.spec.output_index
        if self.activation == "sigmoid":
            return F.binary_cross_entropy_with_logits(out[:, index], y)
        p = positive_probability(out, self.activation, index).clamp(1e-7, 1 - 1e-7)
        return F.binary_cross_entropy(p, y)

    def _make_critic(self, in_features: int, batch_size: int) -> nn.Module:
        if self.critic == "flat":
            return FlatBatchBiasCritic(
                in_features, batch_size, self.critic_hidden, self.critic_num_deep, self.critic_dropout
            )
        return BatchBiasCritic(
            in_features, self.critic_hidden, num_deep=self.critic_num_deep, dropout=self.critic_dropout
        )

    def select_threshold(
        self,
        probs: torch.Tensor,
        labels: torch.Tensor,
        groups: torch.Tensor,
        weights: torch.Tensor,
        reference: int | None = None,
    ) -> tuple[BinaryEvaluation, BinaryEvaluation]:
        """Threshold with the best bootstrapped objective (``epsilon - selection_margin``), first on ties.

        Returns:
            ``(point, bootstrap)`` evaluations at that threshold: the point one with ``epsilon`` (reported), the
            bootstrap means with the tightened tolerance (the selection criterion).
        """
        reference = self.spec.resolve_reference(groups) if reference is None else reference
        if self.n_thresholds is None:
            grid = observed_thresholds(probs).to(probs.device)
        else:
            grid = torch.linspace(0.0, 1.0, self.n_thresholds, dtype=torch.float64, device=probs.device)
        epsilon = self.spec.epsilon - self.selection_margin
        mean = bootstrap_evaluation(probs, labels, groups, reference, self.spec, grid, weights, epsilon)
        best = int(torch.argmax(torch.nan_to_num(mean["objective"], nan=-1.0)))
        thr = float(grid[best])
        point = self.evaluate(probs, labels, groups, thr, reference)
        summary = BinaryEvaluation(
            thr, float(mean["balanced_accuracy"][best]), float(mean["bias"][best]), float(mean["objective"][best])
        )
        return point, summary

    # --- fit ----------------------------------------------------------------------------------------------------
    def fit(
        self,
        model: nn.Module,
        loader: Iterable[Mapping[str, Any]],
        eval_loader: Iterable[Mapping[str, Any]] | None = None,
    ) -> DebiasResult:
        """Fine-tune a copy of ``model`` on validation batches from ``loader``; ``model`` is not modified.

        Args:
            model: trained classifier (any MONAI classifier, 2D or 3D).
            loader: validation loader of dict batches (critic and actor phases draw from it, cycling).
            eval_loader: loader for threshold/epoch selection; defaults to ``loader``.

        Returns:
            a :class:`DebiasResult` with the selected copy (eval mode), its threshold, its point evaluation, the
            per-epoch trajectory (epoch 0 = input; bootstrap means, point values and losses in ``extra``) and
            ``state`` with the selected epoch and the critic's state dict.
        """
        eval_loader = loader if eval_loader is None else eval_loader
        device = self._device_of(model)
        work = copy.deepcopy(model).to(device)
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            return self._fit(work, loader, eval_loader, device)

    def _evaluate_epoch(self, work, eval_loader, weights, reference: int | None = None):
        """Point and bootstrap evaluations of ``work`` on ``eval_loader``, the resample counts and the reference."""
        probs, labels, groups = self.outputs(work, eval_loader)
        labels, groups, fitted_reference = check_binary_fit_data(labels, groups, self.spec, probs)
        reference = fitted_reference if reference is None else reference
        labels, groups = labels.to(probs.device), groups.to(probs.device)
        if weights is None or weights.shape[1] != probs.numel():
            weights = resample_weights(probs.numel(), self.n_bootstrap, self.seed, probs.device)
        point, boot = self.select_threshold(probs, labels, groups, weights, reference)
        return point, boot, weights, reference

    @staticmethod
    def _record(traj: Trajectory, epoch: int, point, boot, c_losses=(), a_losses=(), skipped: int = 0) -> None:
        traj.append(
            epoch,
            boot,
            point_balanced_accuracy=point.balanced_accuracy,
            point_bias=point.bias,
            point_objective=point.objective,
            threshold=point.threshold,
            critic_loss=float(torch.stack(list(c_losses)).mean()) if c_losses else float("nan"),
            actor_loss=float(torch.stack(list(a_losses)).mean()) if a_losses else float("nan"),
            critic_skipped=float(skipped),
        )

    def _start(self, work: nn.Module, loader, device: torch.device) -> _AdversarialRun:
        """Hook the representation, size the critic from the first batch, build both optimisers."""
        hook = FeatureHook(work, self.feature_module, capture="input")
        batches = _cycle(loader)
        try:
            first = next(batches)
            x0, _, _ = self.batch(first, device)
            work.eval()
            with torch.no_grad():
                self._forward(work, hook, x0, device)
        except BaseException:
            hook.remove()
            raise
        batch_size = self.critic_batch_size or int(x0.shape[0])
        critic = self._make_critic(hook.features.shape[1], batch_size).to(device)
        return _AdversarialRun(
            model=work,
            hook=hook,
            batches=batches,
            pending=[first],
            device=device,
            batch_size=batch_size,
            critic=critic,
            critic_opt=torch.optim.Adam(critic.parameters(), lr=self.critic_lr),
            actor_opt=torch.optim.Adam([p for p in work.parameters() if p.requires_grad], lr=self.actor_lr),
        )

    def _critic_phase(self, run: _AdversarialRun, reference: int) -> tuple[list[torch.Tensor], int]:
        """Actor frozen: regress the soft bias of each batch (on probabilities). Returns losses and skipped batches."""
        run.model.eval()
        run.critic.train()
        run.critic.requires_grad_(True)
        losses, skipped = [], 0
        for _ in range(self.critic_steps):
            x, y, g = self.batch(run.next_batch(), run.device)
            if self.critic == "flat" and x.shape[0] != run.batch_size:
                skipped += 1
                continue
            with torch.no_grad():
                out, h = self._forward(run.model, run.hook, x, run.device)
                prob = positive_probability(out, self.activation, self.spec.output_index)
                target = batch_bias_target(prob, y, g, reference, self.spec.metric, self.spec.unknown)
            if target is None:
                skipped += 1
                continue
            loss = F.mse_loss(run.critic(h), target)
            run.critic_opt.zero_grad(set_to_none=True)
            loss.backward()
            run.critic_opt.step()
            losses.append(loss.detach())
        return losses, skipped

    def _actor_phase(self, run: _AdversarialRun) -> list[torch.Tensor]:
        """Critic frozen but differentiable: fine-tune the classifier on the hinge-weighted BCE."""
        run.critic.eval()
        run.critic.requires_grad_(False)
        run.model.train(self.actor_train_mode)
        if self.actor_train_mode and self.freeze_batchnorm:
            _set_batchnorm_eval(run.model)
        losses = []
        for _ in range(self.actor_steps):
            x, y, _ = self.batch(run.next_batch(), run.device)
            if self.critic == "flat" and x.shape[0] != run.batch_size:
                continue
            out, h = self._forward(run.model, run.hook, x, run.device)
            bias_hat = run.critic(h)
            factor = torch.clamp(self.lam * (bias_hat.abs() - self.spec.epsilon + self.margin) + 1.0, min=1.0)
            loss = factor * self._bce(out, y)
            run.actor_opt.zero_grad(set_to_none=True)
            loss.backward()
            run.actor_opt.step()
            losses.append(loss.detach())
        run.model.eval()
        return losses

    def _fit(self, work: nn.Module, loader, eval_loader, device: torch.device) -> DebiasResult:
        traj = Trajectory()
        point, boot, weights, reference = self._evaluate_epoch(work, eval_loader, None)
        self._record(traj, 0, point, boot)
        best = (_finite_or_minus_inf(boot.objective), 0, point)
        best_state = copy.deepcopy(work.state_dict())
        run = self._start(work, loader, device)
        try:
            for epoch in range(1, self.epochs + 1):
                c_losses, skipped = self._critic_phase(run, reference)
                a_losses = self._actor_phase(run)
                if self.critic_steps and skipped == self.critic_steps:
                    warnings.warn(
                        f"adversarial fine-tuning epoch {epoch}: every critic batch was skipped (a group missing "
                        "from every batch, or no batch of the flat critic's size).",
                        stacklevel=3,
                    )
                point, boot, weights, _ = self._evaluate_epoch(work, eval_loader, weights, reference)
                self._record(traj, epoch, point, boot, c_losses, a_losses, skipped)
                if _finite_or_minus_inf(boot.objective) > best[0]:
                    best = (_finite_or_minus_inf(boot.objective), epoch, point)
                    best_state = copy.deepcopy(work.state_dict())
        finally:
            run.hook.remove()
        work.load_state_dict(best_state)
        work.eval()
        best_objective, best_epoch, best_point = best
        return DebiasResult(
            method=self.name,
            model=work,
            postprocessor=None,
            threshold=best_point.threshold,
            validation=best_point,
            trajectory=traj,
            state={"epoch": best_epoch, "bootstrap_objective": best_objective, "critic": run.critic.state_dict()},
        )


def _finite_or_minus_inf(x: float) -> float:
    return x if x == x else float("-inf")  # NaN never wins


@dataclass
class _AdversarialRun:
    """What the critic and actor phases of one ``fit`` share."""

    model: nn.Module
    hook: FeatureHook
    batches: Iterator[Mapping[str, Any]]
    pending: list[Mapping[str, Any]]
    device: torch.device
    batch_size: int
    critic: nn.Module
    critic_opt: torch.optim.Optimizer
    actor_opt: torch.optim.Optimizer

    def next_batch(self) -> Mapping[str, Any]:
        return self.pending.pop() if self.pending else next(self.batches)
