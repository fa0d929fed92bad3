# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Bias gradient descent/ascent (Marcinkevics, Ozkan & Vogt 2022): fine-tune on the differentiable bias proxy.

The model is fine-tuned with Adam on the validation data to push the proxy towards zero: descent on the proxy when
the initial validation bias is ``>= 0``, ascent when it is negative (the direction is fixed for the run). Every
``len(loader) // n_evals`` batches the model is evaluated on the whole validation set *in eval mode* (the reference
evaluated with dropout on), with a balanced-accuracy-optimal threshold; the selected model has the smallest
``|bias|`` among the evaluations (the initial model included) with balanced accuracy ``>= rho`` (with
``rho_relative``: the initial model's validation balanced accuracy minus ``rho_relative``). The run stops when
balanced accuracy falls to 0.52 or below.

The per-batch proxy is the batch's share of the full-set proxy (weights counted over the whole validation set,
:class:`~monai_fair.debias.influence.FullSetProxyWeights`) scaled by ``N / B``: an unbiased estimate of the full-set
proxy that is never NaN, also for batches that lack a group.

Training passes run in train mode, as in the reference (``model.train()``): dropout on, and BatchNorm normalising
with batch statistics while its running statistics follow the validation data (which is what the evaluations use).
On a batch-norm network trained on a set with other group proportions than the validation set, that
re-estimation on the validation set is part of what removes the bias. ``freeze_batchnorm=True`` keeps BatchNorm in
eval mode instead (running statistics untouched; needed for batches of one sample).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from monai_fair.debias.base import Debiaser, DebiasResult, Trajectory, _autocast, positive_probability
from monai_fair.debias.influence import FullSetProxyWeights
from monai_fair.debias.pruning import check_proxy_metric, check_reiterable

__all__ = ["BiasGradientDebiaser", "freeze_batchnorm_"]


def freeze_batchnorm_(model: nn.Module) -> nn.Module:
    """Put every BatchNorm layer of ``model`` in eval mode (running statistics used and not updated)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    return model


class BiasGradientDebiaser(Debiaser):
    """Fine-tune a classifier on the bias proxy (descent or ascent), selecting under a ``rho`` accuracy bound.

    Args:
        lr: Adam learning rate (1e-5 in the paper; 7.5e-6 for the ethnicity study).
        epochs: passes over the validation data (10 / 8).
        n_evals: validation evaluations per epoch (5 / 8).
        rho: lower bound on validation balanced accuracy for a model to be selectable (0.75 / 0.55).
        rho_relative: if set, ``rho`` is ignored and the bound is the initial model's validation balanced accuracy
            minus ``rho_relative`` (>= 0), i.e. "stay within ``rho_relative`` of the standard model"; the bound used
            is reported in ``state["rho"]``.
        stop_balanced_accuracy: stop once balanced accuracy falls to this level or below (0.52).
        freeze_batchnorm: keep BatchNorm in eval mode during the training passes (default False: train mode, as in
            the reference).
        weight_decay: Adam weight decay (0).
        kwargs: :class:`~monai_fair.debias.base.Debiaser` arguments; the spec's ``metric`` must be ``"spd"`` or
            ``"eod"``.

    ``fit`` returns the selected model (a copy; the input is not modified), its validation evaluation and the
    trajectory of every evaluation (index 0 = the initial model; ``extra`` has ``epoch``, ``iteration``,
    ``threshold``). ``state`` holds ``selected_evaluation``, ``qualified``, ``direction``, ``stopped_early``, ``rho``
    (the bound used) and a ``message``.
    """

    name = "bias_gradient"

    def __init__(
        self,
        lr: float = 1e-5,
        epochs: int = 10,
        n_evals: int = 5,
        rho: float = 0.75,
        rho_relative: float | None = None,
        stop_balanced_accuracy: float = 0.52,
        freeze_batchnorm: bool = False,
        weight_decay: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_proxy_metric(self)
        if lr <= 0 or epochs < 0 or n_evals < 1:
            raise ValueError(f"need lr > 0, epochs >= 0, n_evals >= 1; got {lr}, {epochs}, {n_evals}.")
        self.lr = float(lr)
        self.epochs = int(epochs)
        self.n_evals = int(n_evals)
        if rho_relative is not None and not float(rho_relative) >= 0:
            raise ValueError(f"rho_relative must be >= 0, got {rho_relative}.")
        self.rho = float(rho)
        self.rho_relative = None if rho_relative is None else float(rho_relative)
        self.stop_balanced_accuracy = float(stop_balanced_accuracy)
        self.freeze_batchnorm = bool(freeze_batchnorm)
        self.weight_decay = float(weight_decay)

    def loss(
        self, output: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, scale: float, sign: float
    ) -> torch.Tensor:
        """Training loss of one batch: ``sign · (N/B) · sum(w · prob)``.

        Args:
            output: network output of the batch.
            labels: binary labels ``(B,)``.
            weights: full-set proxy weights of the batch ``(B,)``.
            scale: ``N / B``.
            sign: +1 (descent, initial bias >= 0) or -1 (ascent).
        """
        prob = positive_probability(output, self.activation, self.spec.output_index)
        return sign * scale * torch.sum(weights * prob)

    def _skip_batch(self, weights: torch.Tensor) -> bool:
        # the pure proxy has no gradient from zero-weight samples (EOD negatives): no step on such a batch
        return not bool((weights != 0).any())

    def _train_mode(self, model: nn.Module) -> None:
        model.train()
        if self.freeze_batchnorm:
            freeze_batchnorm_(model)

    def fit(self, model: nn.Module, loader: Iterable[Mapping[str, Any]], **kwargs: Any) -> DebiasResult:
        """Fine-tune a copy of ``model`` on the validation ``loader`` (used for training and evaluation).

        Raises:
            TypeError: a one-shot loader.
            ValueError: a group without (positive) samples; a model without trainable parameters.
        """
        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}.")
        check_reiterable(loader)
        device = self._device_of(model)
        tuned = copy.deepcopy(model).to(device)
        params = [p for p in tuned.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameter.")
        optimizer = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)

        probs, labels, groups = self.outputs(tuned, loader)
        evaluation = self.evaluate(probs, labels, groups)
        if math.isnan(evaluation.bias):
            raise ValueError("the validation bias is undefined (a group or class cell is empty).")
        reference = self.spec.resolve_reference(groups)
        weights = FullSetProxyWeights(labels, groups, reference, self.spec.metric, self.spec.unknown)
        n_total = weights.n_samples
        sign = 1.0 if evaluation.bias >= 0 else -1.0
        rho = self.rho if self.rho_relative is None else evaluation.balanced_accuracy - self.rho_relative
        try:
            n_batches = len(loader)  # type: ignore[arg-type]
        except TypeError:
            n_batches = sum(1 for _ in loader)
        eval_every = max(1, n_batches // self.n_evals)

        trajectory = Trajectory()
        trajectory.append(0, evaluation, epoch=-1, iteration=0, threshold=evaluation.threshold)
        evaluations = [evaluation]
        qualified = evaluation.balanced_accuracy >= rho
        best_index = 0
        best_abs = abs(evaluation.bias) if qualified else math.inf
        best_state: dict[str, torch.Tensor] | None = None
        stopped_early = False
        iteration = 0
        for epoch in range(self.epochs):
            for i, batch in enumerate(loader):
                x, y, g = self.batch(batch, device)
                w = weights(y, g)
                iteration += 1
                if not self._skip_batch(w):
                    self._train_mode(tuned)
                    with _autocast(device, self.amp):
                        output = tuned(x if x.is_floating_point() else x.float())
                    loss = self.loss(output, y, w, n_total / len(x), sign)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                if (i + 1) % eval_every == 0:
                    probs, labels, groups = self.outputs(tuned, loader)
                    evaluation = self.evaluate(probs, labels, groups, reference=reference)
                    evaluations.append(evaluation)
                    trajectory.append(
                        len(trajectory), evaluation, epoch=epoch, iteration=iteration, threshold=evaluation.threshold
                    )
                    if evaluation.balanced_accuracy >= rho and abs(evaluation.bias) < best_abs:
                        qualified = True
                        best_index, best_abs = len(evaluations) - 1, abs(evaluation.bias)
                        best_state = {k: v.detach().clone() for k, v in tuned.state_dict().items()}
                    if evaluation.balanced_accuracy <= self.stop_balanced_accuracy:
                        stopped_early = True
                        break
            if stopped_early:
                break

        if best_state is not None:
            tuned.load_state_dict(best_state)
        else:
            tuned = copy.deepcopy(model).to(device)  # the initial model is selected (or nothing qualified)
        tuned.train(model.training)
        if qualified:
            message = f"selected evaluation {best_index} of {len(evaluations) - 1}."
        else:
            message = f"no evaluation reached balanced accuracy >= rho={rho:.4f}; the initial model is returned."
        if stopped_early:
            message += f" Stopped early: balanced accuracy <= {self.stop_balanced_accuracy}."
        return DebiasResult(
            method=self.name,
            model=tuned,
            postprocessor=None,
            threshold=evaluations[best_index].threshold,
            validation=evaluations[best_index],
            trajectory=trajectory,
            state={
                "selected_evaluation": best_index,
                "qualified": qualified,
                "direction": "descent" if sign > 0 else "ascent",
                "stopped_early": stopped_early,
                "rho": rho,
                "message": message,
            },
        )
