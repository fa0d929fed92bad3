# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Adversarial multi-task training with a bias discriminator, a fairness critic and orthogonality (Li et al. 2021).

The classifier is split into a feature generator ``G`` and a classifier ``C`` (``C(G(x))`` are the logits). A bias
discrimination module ``D`` predicts the sensitive group of each sample from ``h = G(x)``; a fairness critic ``P``
predicts the batch's statistical parity difference (SPD) from the same ``h``. Every iteration runs the three
updates of the paper's Algorithm 1, each with its own optimiser and touching only its own parameters:

1. **classification step** (``G``, ``C``): the task loss (cross-entropy);
2. **bias step** (``D``, ``P``, on ``h`` detached from ``G``):
   ``L_advD + L_P + lambda_orth * L_orth`` with

   * ``L_advD = BCE(D(h), z)``, ``z = 1`` for the unprivileged group (Eq. 2);
   * ``L_P = 1/2 (P(h_1..h_B) - SPD_b)^2``, where ``P(.)`` is the critic's batch read-out (the paper's
     ``mean_i P(h_i)``, or the ``"group_ratio"`` read-out of :class:`~monai_fair.networks.BiasCriticHeads`) and
     ``SPD_b`` is the batch's SPD measured on the **previous epoch's** predictions of its samples (Eq. 4; in the first
     epoch, on the current step's predictions); with the ``"group_ratio"`` read-out, ``critic_aux_weight`` times
     the supervision of its two per-sample parts is added: ``BCE(w_i, z_i)`` for the group membership and
     ``(s_i - score_i)^2`` for the positive-class score (the classifier's own, label-free);
   * ``L_orth = mean_i ||J_i J_i^T - I_2||_F^2`` with ``J_i = [dD/dh_i; dP/dh_i]`` (Eq. 5), the gradients obtained
     with ``create_graph=True`` so the loss trains ``D`` and ``P``; ``orth_form="cosine"`` uses
     ``mean_i cos^2(dD/dh_i, dP/dh_i)`` instead (scale-free: zero exactly when the gradients are orthogonal);
3. **generator step** (``G``): ``lambda_adv * L_advG`` with ``L_advG = -mean_i log(1 - D(G(x_i)))`` (Eq. 3), which
   pushes ``D``'s output to "privileged" for every sample, plus optionally ``lambda_P * P(G(x))^2`` (not in
   Algorithm 1; default 0).

``variant="vanilla"`` runs step 1 only (the paper's baseline); ``orthogonality_weight=0`` is "w/o L_orth".
P's gradient in ``L_orth`` is that of ``B`` times its batch read-out with respect to each ``h_i`` (for the ``"mean"``
read-out: ``dP(h_i)/dh_i``, as in the paper).

:func:`calibrate_critic` refits P alone on the trained, frozen ``G`` (not in Algorithm 1; the study's
``critic_steps``), on batches of varied group and label composition (:func:`composition_batches`), so that P learns
the SPD of the model it will monitor over a range of SPDs rather than the narrow one of stratified training batches.

SPD here is the soft statistical parity difference of the positive-class probabilities, "rest minus reference"
(:func:`~monai_fair.debias.adversarial_finetune.batch_bias_target`, i.e. :mod:`monai_fair.metrics.proxies`). Every
batch should hold both groups (use :class:`~monai_fair.data.stratified_batches.GroupStratifiedBatchSampler`); a
batch without one has no critic label and ``L_P`` is skipped for it.

Under ``torch.distributed`` the gradients of every step are averaged over ranks before the optimiser step (the
steps bypass a ``DistributedDataParallel`` wrapper's forward, so they synchronise themselves).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.engines import SupervisedTrainer
from monai.utils import CommonKeys as Keys
from torch import nn

from monai_fair.metrics import FairnessSpec

from .adversarial_finetune import batch_bias_target
from .base import as_plain_tensor

__all__ = [
    "ADVERSARIAL_VARIANTS",
    "CONFUSION_TARGETS",
    "ORTHOGONALITY_FORMS",
    "AdversarialMultitaskTrainer",
    "EpochScoreMemory",
    "batch_spd_label",
    "calibrate_critic",
    "composition_batches",
    "orthogonality_loss",
    "positive_scores",
]

ADVERSARIAL_VARIANTS = ("vanilla", "adversarial")
#: the generator's target for D's output: "privileged" (Eq. 3: D(G(x)) -> 0) or "uniform" (D(G(x)) -> 1/2)
CONFUSION_TARGETS = ("privileged", "uniform")
ORTHOGONALITY_FORMS = ("paper", "cosine")


def orthogonality_loss(grad_d: torch.Tensor, grad_p: torch.Tensor, form: str = "paper") -> torch.Tensor:
    """Orthogonality of the per-sample gradients of D and P with respect to the hidden features.

    Args:
        grad_d: ``(B, ...)`` gradient of each sample's D output w.r.t. its features.
        grad_p: ``(B, ...)`` the same for P.
        form: ``"paper"``: ``mean_i ||J_i J_i^T - I_2||_F^2`` with ``J_i = [grad_d_i; grad_p_i]`` (Eq. 5: zero iff the
            two gradients are orthogonal **and** of unit norm, which also keeps them from collapsing to zero);
            ``"cosine"``: ``mean_i cos^2(grad_d_i, grad_p_i)`` (zero iff orthogonal, any norm).

    Returns:
        a non-negative scalar that carries gradient.

    Raises:
        ValueError: shapes differ or an unknown ``form``.
    """
    if form not in ORTHOGONALITY_FORMS:
        raise ValueError(f"form must be one of {ORTHOGONALITY_FORMS}, got {form!r}.")
    if grad_d.shape != grad_p.shape or grad_d.ndim < 1:
        raise ValueError(
            f"grad_d and grad_p must have one shape (B, ...), got {tuple(grad_d.shape)}, {tuple(grad_p.shape)}."
        )
    gd = grad_d.reshape(grad_d.shape[0], -1)
    gp = grad_p.reshape(grad_p.shape[0], -1)
    dot = (gd * gp).sum(1)
    if form == "cosine":
        cos = dot / (gd.norm(dim=1) * gp.norm(dim=1)).clamp(min=1e-12)
        return (cos**2).mean()
    nd, np_ = (gd * gd).sum(1), (gp * gp).sum(1)
    # ||J J^T - I||_F^2 for the 2x2 Gram matrix [[nd, dot], [dot, np]]
    return ((nd - 1.0) ** 2 + (np_ - 1.0) ** 2 + 2.0 * dot**2).mean()


def positive_scores(logits: torch.Tensor, positive_classes: Sequence[int] | None = None) -> torch.Tensor:
    """Probability of the favourable/positive outcome: the sigmoid of a single logit column, or with several output
    channels the softmax mass of ``positive_classes`` (default: channel 1 of two, else an error)."""
    out = logits.float()
    if out.ndim == 1:
        out = out[:, None]
    if out.shape[1] == 1:
        return torch.sigmoid(out[:, 0])
    if positive_classes is None:
        if out.shape[1] != 2:
            raise ValueError(f"{out.shape[1]} output channels: name the positive_classes whose probability is scored.")
        positive_classes = (1,)
    return torch.softmax(out, dim=1)[:, list(positive_classes)].sum(1)


def batch_spd_label(scores: torch.Tensor, groups: torch.Tensor, reference: int, unknown: str = "exclude") -> float:
    """The critic's label of a batch: its SPD ``mean(score | rest) - mean(score | reference)``; NaN when the batch
    lacks the reference group or the rest (then ``L_P`` is skipped)."""
    s = torch.as_tensor(scores).reshape(-1).float()
    target = batch_bias_target(s, torch.zeros_like(s), torch.as_tensor(groups).reshape(-1), reference, "spd", unknown)
    return float("nan") if target is None else float(target)


class EpochScoreMemory:
    """Per-sample positive-class scores of the previous and the current epoch, indexed by sample index.

    Args:
        n: number of training samples (indices ``0 .. n-1``).
        device: where the scores live.
    """

    def __init__(self, n: int, device: torch.device | str = "cpu") -> None:
        if n < 1:
            raise ValueError(f"n must be positive, got {n}.")
        self.previous = torch.full((int(n),), float("nan"), device=device)
        self.current = torch.full((int(n),), float("nan"), device=device)

    def _check(self, index: torch.Tensor) -> torch.Tensor:
        index = torch.as_tensor(index, device=self.current.device).reshape(-1).long()
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.current.numel()):
            raise IndexError(f"sample index out of range 0..{self.current.numel() - 1}.")
        return index

    def record(self, index: torch.Tensor, scores: torch.Tensor) -> None:
        self.current[self._check(index)] = scores.detach().reshape(-1).float().to(self.current.device)

    def lookup(self, index: torch.Tensor) -> torch.Tensor | None:
        """The previous epoch's scores of ``index``, or ``None`` if any is missing (first epoch)."""
        prev = self.previous[self._check(index)]
        return None if bool(torch.isnan(prev).any()) else prev

    def end_epoch(self) -> None:
        self.previous = self.current.clone()


def composition_batches(
    groups: torch.Tensor,
    labels: torch.Tensor,
    reference: int,
    batch_size: int,
    n_batches: int,
    seed: int = 0,
    share_range: tuple[float, float] = (0.25, 0.75),
) -> list[torch.Tensor]:
    """Batches (sample indices) of varied group and label composition, so that their SPD genuinely varies.

    For each batch, the unprivileged share ``q`` is drawn uniformly from ``share_range`` and, within each group, the
    positive (``label > 0.5``) rate uniformly from ``[0, 1]``; samples are drawn without replacement, as many as the
    group has (a group short of positives or negatives gives a batch closer to its own rate, or a smaller batch).
    Both groups are in every batch; samples of unknown group (negative code) are never drawn. This is a prevalence
    shift between the groups, the change a fairness monitor should see; stratified batches of one population differ
    only by sampling noise.

    Args:
        groups: ``(N,)`` group codes.
        labels: ``(N,)`` binary labels (or any values, thresholded at 0.5).
        reference: the reference (privileged) group's code; every other known code is "rest".
        batch_size: target batch size (at least 2).
        n_batches: number of batches.
        seed: the draws' seed.
        share_range: range of the unprivileged share of a batch.

    Returns:
        ``n_batches`` index tensors, or an empty list when one of the two groups is absent.
    """
    g = torch.as_tensor(groups).reshape(-1).cpu().numpy()
    y = torch.as_tensor(labels).reshape(-1).float().cpu().numpy() > 0.5
    if g.shape != y.shape:
        raise ValueError(f"groups and labels differ in length: {g.shape[0]} vs {y.shape[0]}.")
    if int(batch_size) < 2:
        raise ValueError(f"batch_size must be at least 2, got {batch_size}.")
    ref = g == int(reference)
    pools = (np.flatnonzero(~ref & (g >= 0)), np.flatnonzero(ref))
    if min(p.size for p in pools) == 0:
        return []
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(int(n_batches)):
        k_rest = int(np.clip(round(rng.uniform(*share_range) * batch_size), 1, batch_size - 1))
        idx = []
        for pool, k in zip(pools, (k_rest, int(batch_size) - k_rest)):
            pos, neg = pool[y[pool]], pool[~y[pool]]
            kp = min(int(round(rng.uniform() * k)), pos.size)
            kn = min(k - kp, neg.size)
            kp = min(k - kn, pos.size)
            idx += [rng.choice(pos, kp, replace=False), rng.choice(neg, kn, replace=False)]
        out.append(torch.as_tensor(np.concatenate(idx), dtype=torch.long))
    return out


def _critic_aux_loss(
    p: torch.Tensor, groups: torch.Tensor, reference: int, scores: torch.Tensor | None
) -> torch.Tensor:
    """Supervision of the ``"group_ratio"`` read-out's per-sample parts: group membership (BCE, known groups) and
    the classifier's positive-class score (squared error)."""
    known = groups >= 0
    loss = p.sum() * 0
    if bool(known.any()):
        z = (groups[known] != int(reference)).float()
        loss = loss + F.binary_cross_entropy_with_logits(p[known, 1], z)
    if scores is not None:
        loss = loss + F.mse_loss(torch.sigmoid(p[:, 0]), scores.detach().reshape(-1).float())
    return loss


def _batch_readout(heads: nn.Module, p: torch.Tensor) -> torch.Tensor:
    pool = getattr(heads, "pool", None)
    return p.mean() if pool is None else pool(p)


def calibrate_critic(
    heads: nn.Module,
    features: torch.Tensor,
    scores: torch.Tensor,
    groups: torch.Tensor,
    labels: torch.Tensor,
    reference: int,
    steps: int,
    batch_size: int,
    lr: float = 1e-3,
    aux_weight: float = 1.0,
    seed: int = 0,
) -> dict[str, float]:
    """Fit the critic P alone (its head; the shared trunk and D are unchanged) on fixed features of a trained model.

    Every step draws a batch of :func:`composition_batches` and regresses P's read-out on the batch's SPD of
    ``scores`` (``L_P``), plus ``aux_weight`` times the per-sample supervision for the ``"group_ratio"`` read-out.

    Args:
        heads: :class:`~monai_fair.networks.BiasCriticHeads` (``trunk``, ``critic_head``, ``pool``).
        features: ``(N, ...)`` features ``h = G(x)`` of the trained, fixed generator.
        scores: ``(N,)`` the classifier's positive-class probabilities of the same samples.
        groups: ``(N,)`` group codes.
        labels: ``(N,)`` binary labels (they only shape the batches' composition).
        reference: the reference group's code.
        steps: number of updates.
        batch_size: batch size.
        lr: Adam learning rate.
        aux_weight: weight of the per-sample supervision (``"group_ratio"`` read-out only).
        seed: seed of the batches.

    Returns:
        ``{"loss_p": mean L_P over the last tenth of the steps, "steps": updates made}``.
    """
    if int(steps) < 1:
        return {"loss_p": math.nan, "steps": 0.0}
    ref = int(reference)
    g = torch.as_tensor(groups).reshape(-1).to(features.device).long()
    s = torch.as_tensor(scores).reshape(-1).to(features.device).float()
    was_training = heads.training
    heads.eval()
    with torch.no_grad():
        z = heads.trunk(features.float())
    aux = aux_weight if getattr(heads, "readout", "mean") == "group_ratio" else 0.0
    params = list(heads.critic_parameters())
    opt = torch.optim.Adam(params, lr=float(lr))
    batches = composition_batches(g, labels, ref, batch_size, int(steps), seed)
    tail = []
    for i, idx in enumerate(batches):
        idx = idx.to(features.device)
        target = batch_spd_label(s[idx], g[idx], ref)
        p = heads.critic_head(z[idx])
        loss_p = 0.5 * (_batch_readout(heads, p) - target) ** 2
        loss = loss_p + (aux * _critic_aux_loss(p, g[idx], ref, s[idx]) if aux > 0 else 0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= len(batches) - max(1, len(batches) // 10):
            tail.append(float(loss_p.detach()))
    heads.zero_grad(set_to_none=True)
    heads.train(was_training)
    return {"loss_p": float(np.mean(tail)) if tail else math.nan, "steps": float(len(batches))}


def _sync_gradients(params: Iterable[nn.Parameter]) -> None:
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    world = torch.distributed.get_world_size()
    for p in params:
        if p.grad is not None:
            torch.distributed.all_reduce(p.grad)
            p.grad /= world


class AdversarialMultitaskTrainer(SupervisedTrainer):
    """A MONAI ``SupervisedTrainer`` whose iteration is Algorithm 1 of Li et al. 2021 (see the module docstring).

    Args:
        device: training device.
        max_epochs: number of epochs.
        train_data_loader: dict batches with the image, the label, the spec's attributes and ``index_key``.
        network: the whole classifier (``C(G(x))``), what is checkpointed and evaluated.
        generator: ``G`` (shares parameters with ``network``; :func:`~monai_fair.networks.split_vgg`).
        classifier: ``C``.
        bias_heads: ``D`` and ``P`` (:class:`~monai_fair.networks.BiasCriticHeads`); unused by ``"vanilla"``.
        optimizer: optimiser of ``G`` and ``C`` (the classification step; paper: Adam 1e-3).
        loss_function: task loss on ``(logits, label)``.
        spec: the fairness spec: its attribute(s) and reference group define ``z`` (rest = unprivileged).
        bias_optimizer: optimiser of ``D`` and ``P`` (paper: Adam 1e-4); required unless ``"vanilla"``.
        generator_optimizer: optimiser of ``G`` for the adversarial step; required unless ``"vanilla"``.
        variant: ``"vanilla"`` (classification step only) or ``"adversarial"``.
        adversarial_weight: ``lambda_adv`` of ``L_advG``.
        orthogonality_weight: ``lambda_orth`` of ``L_orth`` (0: "w/o L_orth").
        critic_weight: ``lambda_P`` of ``P(G(x))^2`` in the generator step (0 in Algorithm 1).
        critic_aux_weight: weight of the per-sample supervision of P's ``"group_ratio"`` read-out in the bias step
            (group membership and the classifier's score; unused by the ``"mean"`` read-out).
        orth_form: ``"paper"`` or ``"cosine"`` (:func:`orthogonality_loss`).
        confusion: ``"privileged"`` (Eq. 3, ``D(G(x)) -> 0``) or ``"uniform"`` (``D(G(x)) -> 1/2``: the generator gains
            nothing by pushing D to a confident wrong answer, only by making it uninformative).
        positive_classes: output channels of the positive class for multi-class logits (see :func:`positive_scores`).
        index_key: batch key of the sample index (for the previous epoch's predictions).
        label_dtype: ``"float"`` for BCE on ``(B, 1)`` labels, ``"long"`` for cross-entropy on class indices.
        kwargs: further ``SupervisedTrainer`` arguments (``train_handlers``, ``epoch_length``, ...).
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable,
        network: nn.Module,
        generator: nn.Module,
        classifier: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_function: Callable,
        spec: FairnessSpec,
        bias_heads: nn.Module | None = None,
        bias_optimizer: torch.optim.Optimizer | None = None,
        generator_optimizer: torch.optim.Optimizer | None = None,
        variant: str = "adversarial",
        adversarial_weight: float = 1.0,
        orthogonality_weight: float = 1.0,
        critic_weight: float = 0.0,
        critic_aux_weight: float = 1.0,
        orth_form: str = "paper",
        confusion: str = "privileged",
        positive_classes: Sequence[int] | None = None,
        index_key: str = "index",
        label_dtype: str = "float",
        **kwargs: Any,
    ) -> None:
        if variant not in ADVERSARIAL_VARIANTS:
            raise ValueError(f"variant must be one of {ADVERSARIAL_VARIANTS}, got {variant!r}.")
        if orth_form not in ORTHOGONALITY_FORMS:
            raise ValueError(f"orth_form must be one of {ORTHOGONALITY_FORMS}, got {orth_form!r}.")
        if confusion not in CONFUSION_TARGETS:
            raise ValueError(f"confusion must be one of {CONFUSION_TARGETS}, got {confusion!r}.")
        if label_dtype not in ("float", "long"):
            raise ValueError(f"label_dtype must be 'float' or 'long', got {label_dtype!r}.")
        for name, w in (
            ("adversarial_weight", adversarial_weight),
            ("orthogonality_weight", orthogonality_weight),
            ("critic_aux_weight", critic_aux_weight),
        ):
            if not (w >= 0 and math.isfinite(w)):
                raise ValueError(f"{name} must be a non-negative number, got {w!r}.")
        if variant == "adversarial" and (bias_heads is None or bias_optimizer is None or generator_optimizer is None):
            raise ValueError("the adversarial variant needs bias_heads, bias_optimizer and generator_optimizer.")
        if spec.reference is None:
            raise ValueError("the spec needs a reference (privileged) group: D's target is 'not the reference'.")
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            train_data_loader=train_data_loader,
            network=network,
            optimizer=optimizer,
            loss_function=loss_function,
            **kwargs,
        )
        self.generator, self.classifier, self.bias_heads = generator, classifier, bias_heads
        self.bias_optimizer, self.generator_optimizer = bias_optimizer, generator_optimizer
        self.spec, self.variant = spec, variant
        self.adversarial_weight = float(adversarial_weight)
        self.orthogonality_weight = float(orthogonality_weight)
        self.critic_weight = float(critic_weight)
        self.critic_aux_weight = float(critic_aux_weight)
        self.orth_form = orth_form
        self.confusion = confusion
        self.positive_classes = positive_classes
        self.index_key = index_key
        self.label_dtype = label_dtype
        self.memory: EpochScoreMemory | None = None
        dataset = getattr(train_data_loader, "dataset", None)
        if dataset is not None and hasattr(dataset, "__len__"):
            self.memory = EpochScoreMemory(len(dataset), device)
        from ignite.engine import Events

        self.add_event_handler(Events.EPOCH_COMPLETED, self._end_epoch)

    def _end_epoch(self, engine: Any) -> None:
        if self.memory is not None:
            self.memory.end_epoch()

    # the three updates ----------------------------------------------------------------------------------------------
    def classification_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Update ``G`` and ``C`` with the task loss; returns ``(h detached, logits, loss)`` (``h`` before the update)."""
        self.generator.train()
        self.classifier.train()
        self.optimizer.zero_grad(set_to_none=True)
        h = self.generator(x)
        logits = self.classifier(h)
        loss = self.loss_function(logits, y).mean()
        loss.backward()
        _sync_gradients(p for g in self.optimizer.param_groups for p in g["params"])
        self.optimizer.step()
        return h.detach(), logits.detach(), loss.detach()

    def bias_step(
        self, h: torch.Tensor, groups: torch.Tensor, spd_label: float, scores: torch.Tensor | None = None
    ) -> dict[str, float]:
        """Update ``D`` and ``P`` on fixed features ``h``: ``L_advD + L_P (+ aux) + lambda_orth L_orth``.

        Args:
            h: the batch's features.
            groups: its group codes.
            spd_label: P's label (NaN: no ``L_P``).
            scores: the classifier's positive-class probabilities of the batch (the ``"group_ratio"`` read-out's
                score supervision; ``None``: none).
        """
        heads = self.bias_heads
        heads.train()
        self.bias_optimizer.zero_grad(set_to_none=True)
        need_grad = self.orthogonality_weight > 0
        h = h.detach().requires_grad_(need_grad)
        d, p = heads(h)
        known = groups >= 0
        z = (groups != int(self.spec.reference)).float()
        loss_d = F.binary_cross_entropy_with_logits(d[known], z[known]) if bool(known.any()) else d.sum() * 0
        total = loss_d
        loss_p = torch.zeros((), device=h.device)
        if math.isfinite(spd_label):
            loss_p = 0.5 * (_batch_readout(heads, p) - spd_label) ** 2
            total = total + loss_p
        loss_aux = torch.zeros((), device=h.device)
        if getattr(heads, "readout", "mean") == "group_ratio" and self.critic_aux_weight > 0:
            loss_aux = _critic_aux_loss(p, groups, int(self.spec.reference), scores)
            total = total + self.critic_aux_weight * loss_aux
        loss_orth = torch.zeros((), device=h.device)
        if need_grad:
            grad_d = torch.autograd.grad(d.sum(), h, create_graph=True)[0]
            # per-sample gradient of B x the batch read-out (the "mean" read-out: of each P(h_i), as in the paper)
            mean_readout = getattr(heads, "readout", "mean") == "mean"
            p_batch = p.sum() if mean_readout else p.shape[0] * _batch_readout(heads, p)
            grad_p = torch.autograd.grad(p_batch, h, create_graph=True)[0]
            loss_orth = orthogonality_loss(grad_d, grad_p, self.orth_form)
            total = total + self.orthogonality_weight * loss_orth
        total.backward()
        _sync_gradients(heads.parameters())
        self.bias_optimizer.step()
        return {
            "loss_adv_d": float(loss_d.detach()),
            "loss_p": float(loss_p.detach()),
            "loss_p_aux": float(loss_aux.detach()),
            "loss_orth": float(loss_orth.detach()),
        }

    def generator_step(self, x: torch.Tensor) -> dict[str, float]:
        """Update ``G`` to confuse ``D``: ``lambda_adv L_advG (+ lambda_P P(G(x))^2)``; ``D``, ``P`` and ``C`` are
        left unchanged (their gradients are cleared)."""
        self.generator.train()
        heads = self.bias_heads
        was_training = heads.training
        heads.eval()  # D and P are fixed here
        self.generator_optimizer.zero_grad(set_to_none=True)
        d, p = heads(self.generator(x))
        # -log(1 - sigmoid(d)) = BCE(d, 0): every sample pushed towards "privileged" (Eq. 3)
        target = torch.zeros_like(d) if self.confusion == "privileged" else torch.full_like(d, 0.5)
        loss_g = F.binary_cross_entropy_with_logits(d, target)
        total = self.adversarial_weight * loss_g
        if self.critic_weight > 0:
            total = total + self.critic_weight * _batch_readout(heads, p) ** 2
        total.backward()
        _sync_gradients(p_ for g in self.generator_optimizer.param_groups for p_ in g["params"])
        self.generator_optimizer.step()
        heads.zero_grad(set_to_none=True)
        heads.train(was_training)
        return {"loss_adv_g": float(loss_g.detach())}

    # one iteration --------------------------------------------------------------------------------------------------
    def _labels(self, batchdata: dict) -> torch.Tensor:
        y = as_plain_tensor(batchdata[Keys.LABEL]).to(self.state.device)
        if self.label_dtype == "long":
            return y.reshape(-1).long()
        return y.reshape(y.shape[0], -1).float()

    def _iteration(self, engine: Any, batchdata: dict) -> dict:
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        x = as_plain_tensor(batchdata[Keys.IMAGE]).to(engine.state.device, non_blocking=engine.non_blocking)
        y = self._labels(batchdata)
        h, logits, loss = self.classification_step(x, y)
        scores = positive_scores(logits, self.positive_classes)
        out: dict[str, Any] = {Keys.IMAGE: x, Keys.LABEL: y, Keys.PRED: logits, Keys.LOSS: loss}
        if self.variant == "vanilla":
            return out
        groups = self.spec.group_codes(batchdata).to(x.device).long()
        index = batchdata.get(self.index_key)
        label_scores = scores
        if self.memory is not None and index is not None:
            index = as_plain_tensor(index)
            previous = self.memory.lookup(index)
            self.memory.record(index, scores)
            if previous is not None:
                label_scores = previous.to(scores.device)
        spd = batch_spd_label(label_scores, groups, int(self.spec.reference), self.spec.unknown)
        out.update(self.bias_step(h, groups, spd, scores))
        out.update(self.generator_step(x))
        out["critic_label"] = spd
        return out
