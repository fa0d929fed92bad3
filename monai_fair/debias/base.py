# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The shape every debiaser shares: configured in JSON, ``fit`` on validation data, a result with a trajectory.

A debiaser works on any MONAI classifier (2D or 3D) whose output for a batch is ``(B, C)``: the probability of the
positive class is taken from one output channel (sigmoid of a single logit, or a softmax column).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from monai_fair.metrics import BIAS_KINDS, best_balanced_accuracy_threshold, compute_binary_bias, constrained_objective

__all__ = [
    "BinaryEvaluation",
    "DebiasResult",
    "Debiaser",
    "Trajectory",
    "as_plain_tensor",
    "batch_tensors",
    "check_binary_fit_data",
    "collect_outputs",
    "evaluate_binary",
    "evaluate_hard_predictions",
    "positive_probability",
]


def positive_probability(output: torch.Tensor, activation: str = "sigmoid", index: int = 0) -> torch.Tensor:
    """Probability of the positive class from a classifier output ``(B, C)`` or ``(B,)``.

    Args:
        output: network output (logits).
        activation: ``"sigmoid"`` (column ``index`` is a logit), ``"softmax"`` (softmax over channels, column
            ``index``) or ``"none"`` (the output already is a probability).
        index: output channel of the positive class.
    """
    out = output.float()
    if out.ndim == 1:
        out = out[:, None]
    if activation == "sigmoid":
        return torch.sigmoid(out[:, index])
    if activation == "softmax":
        return torch.softmax(out, dim=1)[:, index]
    if activation == "none":
        return out[:, index]
    raise ValueError(f"activation must be 'sigmoid', 'softmax' or 'none', got {activation!r}.")


def check_binary_fit_data(
    labels: torch.Tensor,
    groups: torch.Tensor,
    privileged: int = 1,
    probs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate the data a debiaser is fitted on and return ``(labels, groups)`` as float / long 1-D tensors.

    Args:
        labels: labels ``(N,)``; must be 0/1 with both classes present.
        groups: integer group codes ``(N,)``; must contain ``privileged`` and at least one other code.
        privileged: code of the privileged group.
        probs: optional probabilities ``(N,)``; must be finite and within [0, 1].

    Raises:
        ValueError: no samples, length mismatch, non-binary or single-class labels, non-integer group codes,
            fewer than two groups or no privileged sample, probabilities outside [0, 1].
    """
    labels = torch.as_tensor(labels).reshape(-1)
    groups = torch.as_tensor(groups, device=labels.device).reshape(-1)
    if labels.numel() == 0:
        raise ValueError("no samples to fit on (empty loader or empty tensors).")
    if groups.numel() != labels.numel() or (probs is not None and torch.as_tensor(probs).numel() != labels.numel()):
        raise ValueError("labels, groups (and probs) must have the same length.")
    if not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError(f"labels must be binary 0/1, got values {torch.unique(labels).tolist()[:10]}.")
    if bool(labels.all()) or not bool(labels.any()):
        raise ValueError("labels contain a single class; balanced accuracy and the bias are undefined.")
    if groups.is_floating_point():
        if not bool((groups == groups.round()).all()):
            raise ValueError("group codes must be integers.")
    groups = groups.long()
    codes = torch.unique(groups).tolist()
    if privileged not in codes or len(codes) < 2:
        raise ValueError(
            f"need the privileged group {privileged} and at least one other group, found group codes {codes}."
        )
    if probs is not None:
        p = torch.as_tensor(probs)
        if not bool(torch.isfinite(p).all()) or bool((p < 0).any()) or bool((p > 1).any()):
            raise ValueError("probabilities must be finite and within [0, 1].")
    return labels.float(), groups


def as_plain_tensor(x: Any) -> torch.Tensor:
    """A plain ``torch.Tensor`` view of ``x`` (a MONAI ``MetaTensor`` loses its metadata overhead)."""
    as_tensor = getattr(x, "as_tensor", None)
    if callable(as_tensor) and isinstance(x, torch.Tensor) and type(x) is not torch.Tensor:
        return as_tensor()
    return torch.as_tensor(x)


def batch_tensors(
    batch: Mapping[str, Any], image_key: str, label_key: str, group_key: str, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(image, label, group)`` of a dict batch as plain tensors on ``device``: labels 1-D float (first column of a
    ``(B, 1)`` label), groups 1-D long.

    Plain tensors matter: a ``MetaTensor`` label makes every weight and loss computed from it a ``MetaTensor``, whose
    extra autograd aliasing loses the gradients that tensor hooks on intermediate activations must see.
    """
    x = as_plain_tensor(batch[image_key]).to(device, non_blocking=True)
    y = as_plain_tensor(batch[label_key]).to(device).reshape(len(x), -1)[:, 0].float()
    g = as_plain_tensor(batch[group_key]).to(device).reshape(-1).long()
    return x, y, g


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def collect_outputs(
    model: torch.nn.Module,
    loader: Iterable[Mapping[str, Any]],
    device: torch.device | str = "cpu",
    image_key: str = "image",
    label_key: str = "label",
    group_key: str = "sex",
    activation: str = "sigmoid",
    index: int = 0,
    amp: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run ``model`` (in eval mode) over a loader of MONAI dict batches.

    Returns:
        ``(probs, labels, groups)`` as 1-D tensors on ``device`` (nothing is copied to the host per batch).
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    probs, labels, groups = [], [], []
    try:
        for batch in loader:
            x, y, g = batch_tensors(batch, image_key, label_key, group_key, device)
            with _autocast(device, amp):
                out = model(x)
            probs.append(positive_probability(out, activation, index))
            labels.append(y)
            groups.append(g)
    finally:
        model.train(was_training)
    if not probs:
        raise ValueError("the loader yielded no batch.")
    return torch.cat(probs), torch.cat(labels), torch.cat(groups)


def evaluate_hard_predictions(
    y_hat: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor,
    privileged: int = 1,
    metric: str = "eod",
    epsilon: float = 0.05,
    n_bootstrap: int = 0,
    ci_level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Balanced accuracy, EOD, SPD, AOD and the objective of hard predictions, with bootstrap intervals.

    Resamples are drawn all at once (an index matrix), so the bootstrap is one batched computation.

    Args:
        y_hat: hard predictions ``(N,)``.
        labels: binary labels ``(N,)``.
        groups: group codes ``(N,)``.
        privileged: privileged group code.
        metric: the study's bias metric (``bias`` in the output).
        epsilon: objective tolerance.
        n_bootstrap: number of resamples (0: point estimates only).
        ci_level: interval level.
        seed: resampling seed.

    Returns:
        flat dict with ``balanced_accuracy, eod, spd, aod, bias, objective`` and, when bootstrapping,
        ``<name>_ci_low``/``<name>_ci_high`` and ``<name>_boot_mean``.
    """
    y_hat = torch.as_tensor(y_hat).reshape(-1).float()
    labels = torch.as_tensor(labels, device=y_hat.device).reshape(-1).float()
    groups = torch.as_tensor(groups, device=y_hat.device).reshape(-1)

    def figures(yh: torch.Tensor, y: torch.Tensor, g: torch.Tensor) -> dict[str, torch.Tensor]:
        pos = y > 0.5
        tpr = (yh * pos).sum(-1) / pos.sum(-1)
        tnr = ((1 - yh) * ~pos).sum(-1) / (~pos).sum(-1)
        out = {"balanced_accuracy": 0.5 * (tpr + tnr)}
        for kind in BIAS_KINDS:
            out[kind] = compute_binary_bias(yh, y, g, privileged, kind)
        out["bias"] = out[metric]
        out["objective"] = constrained_objective(out["balanced_accuracy"], out["bias"], epsilon)
        return out

    point = {k: float(v) for k, v in figures(y_hat, labels, groups).items()}
    if n_bootstrap > 0:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        idx = torch.randint(0, y_hat.numel(), (n_bootstrap, y_hat.numel()), generator=gen).to(y_hat.device)
        boot = figures(y_hat[idx], labels[idx], groups[idx])
        alpha = (1.0 - ci_level) / 2
        for k, v in boot.items():
            v = v.double()
            point[f"{k}_boot_mean"] = float(torch.nanmean(v))
            q = torch.nanquantile(v, torch.tensor([alpha, 1 - alpha], dtype=torch.float64, device=v.device))
            point[f"{k}_ci_low"], point[f"{k}_ci_high"] = float(q[0]), float(q[1])
    return point


@dataclass
class BinaryEvaluation:
    """Evaluation of scores at the balanced-accuracy-optimal threshold."""

    threshold: float
    balanced_accuracy: float
    bias: float
    objective: float

    def as_dict(self) -> dict[str, float]:
        return {
            "threshold": self.threshold,
            "balanced_accuracy": self.balanced_accuracy,
            "bias": self.bias,
            "objective": self.objective,
        }


def evaluate_binary(
    probs: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor,
    privileged: int = 1,
    kind: str = "eod",
    epsilon: float = 0.05,
    threshold: float | None = None,
    num_thresholds: int = 101,
) -> BinaryEvaluation:
    """Balanced accuracy, signed bias and objective of ``probs > t``.

    Args:
        probs: positive-class probabilities ``(N,)``.
        labels: binary labels ``(N,)``.
        groups: group codes ``(N,)``.
        privileged: code of the privileged group.
        kind: ``"spd"``, ``"eod"`` or ``"aod"``.
        epsilon: tolerance of the objective ``BA * [|bias| < epsilon]``.
        threshold: a fixed threshold (e.g. chosen on validation, applied to test); ``None`` chooses the
            balanced-accuracy-optimal one on a ``linspace(0, 1, num_thresholds)`` grid.
        num_thresholds: size of the threshold grid.
    """
    if threshold is None:
        threshold, _ = best_balanced_accuracy_threshold(probs, labels, num_thresholds)
    figures = evaluate_hard_predictions((probs > threshold).long(), labels, groups, privileged, kind, epsilon)
    return BinaryEvaluation(
        threshold=float(threshold),
        balanced_accuracy=figures["balanced_accuracy"],
        bias=figures["bias"],
        objective=figures["objective"],
    )


@dataclass
class Trajectory:
    """Per-step record of a debiasing run (what reports and TensorBoard draw).

    ``step`` is method-specific (pruning step, evaluation index, trial); ``extra`` holds method-specific series
    (e.g. number of pruned units).
    """

    step: list[int] = field(default_factory=list)
    bias: list[float] = field(default_factory=list)
    balanced_accuracy: list[float] = field(default_factory=list)
    objective: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)

    def append(self, step: int, evaluation: BinaryEvaluation, **extra: float) -> None:
        self.step.append(int(step))
        self.bias.append(evaluation.bias)
        self.balanced_accuracy.append(evaluation.balanced_accuracy)
        self.objective.append(evaluation.objective)
        for k, v in extra.items():
            self.extra.setdefault(k, []).append(float(v))

    def __len__(self) -> int:
        return len(self.step)

    def as_dict(self) -> dict[str, list[float]]:
        return {
            "step": list(self.step),
            "bias": list(self.bias),
            "balanced_accuracy": list(self.balanced_accuracy),
            "objective": list(self.objective),
            **{k: list(v) for k, v in self.extra.items()},
        }


@dataclass
class DebiasResult:
    """What ``Debiaser.fit`` returns.

    Attributes:
        method: short method name (``"pruning"``, ``"reject_option"``, ...).
        model: the debiased model (intra-processing) or ``None`` for post-processors.
        postprocessor: a fitted post-processor (``predict(probs, groups) -> hard labels``) or ``None``.
        threshold: decision threshold on the debiased model's probabilities (chosen on validation).
        validation: evaluation of the selected model/post-processor on the fitting data.
        trajectory: per-step bias / balanced accuracy / objective.
        state: extra state needed to reproduce the result exactly (e.g. a pruning mask), saved with the model.
    """

    method: str
    model: torch.nn.Module | None
    postprocessor: Any | None
    threshold: float
    validation: BinaryEvaluation
    trajectory: Trajectory
    state: dict[str, Any] = field(default_factory=dict)


class Debiaser:
    """Base class of every debiaser.

    Subclasses take their hyper-parameters in ``__init__`` (so they are configured in bundle JSON) and implement
    :meth:`fit`.

    Args:
        attribute_key: batch key holding the group code (e.g. ``"sex"``).
        privileged: code of the privileged (reference) group.
        metric: bias measured, ``"spd"``, ``"eod"`` or ``"aod"``.
        epsilon: tolerance of the reported objective ``BA * [|bias| < epsilon]``.
        image_key: batch key of the network input.
        label_key: batch key of the binary label.
        activation: how the positive-class probability is read from the output, see :func:`positive_probability`.
        output_index: output channel of the positive class.
        device: device to run on.
        amp: bf16 autocast when on CUDA.
    """

    name = "debiaser"

    def __init__(
        self,
        attribute_key: str = "sex",
        privileged: int = 1,
        metric: str = "eod",
        epsilon: float = 0.05,
        image_key: str = "image",
        label_key: str = "label",
        activation: str = "sigmoid",
        output_index: int = 0,
        device: torch.device | str | None = None,
        amp: bool = True,
    ) -> None:
        self.attribute_key = attribute_key
        self.privileged = privileged
        self.metric = metric
        self.epsilon = epsilon
        self.image_key = image_key
        self.label_key = label_key
        self.activation = activation
        self.output_index = output_index
        self.device = torch.device(device) if device is not None else None
        self.amp = amp

    def _device_of(self, model: torch.nn.Module) -> torch.device:
        if self.device is not None:
            return self.device
        p = next(model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def outputs(self, model: torch.nn.Module, loader: Iterable[Mapping[str, Any]]):
        """``(probs, labels, groups)`` of ``model`` over ``loader`` with this debiaser's keys."""
        return collect_outputs(
            model,
            loader,
            self._device_of(model),
            self.image_key,
            self.label_key,
            self.attribute_key,
            self.activation,
            self.output_index,
            self.amp,
        )

    def evaluate(self, probs, labels, groups, threshold: float | None = None) -> BinaryEvaluation:
        """:func:`evaluate_binary` with this debiaser's group, metric and epsilon."""
        return evaluate_binary(probs, labels, groups, self.privileged, self.metric, self.epsilon, threshold)

    def fit(self, model: torch.nn.Module, loader: Iterable[Mapping[str, Any]], **kwargs: Any) -> DebiasResult:
        """Debias ``model`` on validation data ``loader``; see subclasses."""
        raise NotImplementedError(f"{type(self).__name__} must implement fit().")
