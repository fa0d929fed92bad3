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

from monai_fair.metrics import (
    BinaryFairnessEvaluation,
    FairnessSpec,
    best_balanced_accuracy_threshold,
)

__all__ = [
    "BinaryEvaluation",
    "DebiasResult",
    "Debiaser",
    "Trajectory",
    "as_plain_tensor",
    "as_spec",
    "batch_tensors",
    "check_binary_fit_data",
    "collect_outputs",
    "evaluate_binary",
    "positive_logit",
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


def positive_logit(output: torch.Tensor, activation: str = "sigmoid", index: int = 0) -> torch.Tensor:
    """Logit ``log(p / (1 - p))`` of the positive-class probability ``p`` of :func:`positive_probability`, computed
    without forming ``p`` where the output allows it (no saturation at large logits).

    Args:
        output: network output ``(B, C)`` or ``(B,)``.
        activation: ``"sigmoid"``, ``"softmax"`` or ``"none"`` (as :func:`positive_probability`).
        index: output channel of the positive class.
    """
    out = output.float()
    if out.ndim == 1:
        out = out[:, None]
    if activation == "sigmoid":
        return out[:, index]
    if activation == "softmax":
        others = torch.cat([out[:, :index], out[:, index + 1 :]], dim=1)
        return out[:, index] - torch.logsumexp(others, dim=1)
    if activation == "none":
        p = out[:, index].clamp(1e-7, 1.0 - 1e-7)
        return torch.log(p) - torch.log1p(-p)
    raise ValueError(f"activation must be 'sigmoid', 'softmax' or 'none', got {activation!r}.")


def as_spec(spec: FairnessSpec | Mapping[str, Any] | None) -> FairnessSpec:
    """``spec`` as a :class:`~monai_fair.metrics.FairnessSpec` (``None``: the default; a mapping: its arguments)."""
    if spec is None:
        return FairnessSpec()
    if isinstance(spec, FairnessSpec):
        return spec
    if isinstance(spec, Mapping):
        return FairnessSpec(**spec)
    raise TypeError(f"spec must be a FairnessSpec, a mapping of its arguments or None, got {type(spec).__name__}.")


def check_binary_fit_data(
    labels: torch.Tensor,
    groups: torch.Tensor,
    spec: FairnessSpec | None = None,
    probs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Validate the data a debiaser is fitted on; return ``(labels, groups, reference)``.

    The reference code is ``spec.resolve_reference(groups)`` (the spec's reference, or the largest group of the
    fitting data). The rest must hold at least one sample: a known code other than the reference, or, under the
    ``"group"`` policy, an unknown (negative) code.

    Args:
        labels: labels ``(N,)``; must be 0/1 with both classes present.
        groups: integer group codes ``(N,)`` (negative: unknown).
        spec: the fairness spec (reference group and unknown-code policy); ``None``: ``FairnessSpec()``.
        probs: optional probabilities ``(N,)``; must be finite and within [0, 1].

    Returns:
        labels as float, groups as long (1-D, on ``labels``' device) and the reference code.

    Raises:
        ValueError: no samples, length mismatch, non-binary or single-class labels, non-integer group codes,
            no reference sample or an empty rest, probabilities outside [0, 1].
    """
    spec = as_spec(spec)
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
    if groups.is_floating_point() and not bool((groups == groups.round()).all()):
        raise ValueError("group codes must be integers (unknown membership is the code -1).")
    groups = groups.long()
    reference = spec.resolve_reference(groups)
    codes = torch.unique(groups).tolist()
    rest = [c for c in codes if c != reference and (c >= 0 or spec.unknown == "group")]
    if reference not in codes or not rest:
        raise ValueError(
            f"need the reference group {reference} and at least one other group (unknown={spec.unknown!r}), "
            f"found group codes {codes}."
        )
    if probs is not None:
        p = torch.as_tensor(probs)
        if not bool(torch.isfinite(p).all()) or bool((p < 0).any()) or bool((p > 1).any()):
            raise ValueError("probabilities must be finite and within [0, 1].")
    return labels.float(), groups, reference


def as_plain_tensor(x: Any) -> torch.Tensor:
    """A plain ``torch.Tensor`` view of ``x`` (a MONAI ``MetaTensor`` loses its metadata overhead)."""
    as_tensor = getattr(x, "as_tensor", None)
    if callable(as_tensor) and isinstance(x, torch.Tensor) and type(x) is not torch.Tensor:
        return as_tensor()
    return torch.as_tensor(x)


def batch_tensors(
    batch: Mapping[str, Any],
    spec: FairnessSpec,
    device: torch.device,
    image_key: str = "image",
    label_key: str = "label",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(image, label, group)`` of a dict batch as plain tensors on ``device``.

    Labels are 1-D float: a ``(B, 1)`` label's only column, or column ``spec.output_index`` of a multi-label
    ``(B, L)`` label. Groups are ``spec.group_codes(batch)`` (intersectional codes for several attributes), 1-D long.

    Plain tensors matter: a ``MetaTensor`` label makes every weight and loss computed from it a ``MetaTensor``, whose
    extra autograd aliasing loses the gradients that tensor hooks on intermediate activations must see.
    """
    x = as_plain_tensor(batch[image_key]).to(device, non_blocking=True)
    y = as_plain_tensor(batch[label_key]).to(device).reshape(len(x), -1)
    y = y[:, 0 if y.shape[1] == 1 else spec.output_index].float()
    g = spec.group_codes(batch).to(device).long()
    return x, y, g


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _model_device(model: torch.nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def collect_outputs(
    model: torch.nn.Module,
    loader: Iterable[Mapping[str, Any]],
    spec: FairnessSpec | None = None,
    *,
    device: torch.device | str | None = None,
    image_key: str = "image",
    label_key: str = "label",
    activation: str = "sigmoid",
    amp: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run ``model`` (in eval mode) over a loader of MONAI dict batches.

    Args:
        model: the classifier.
        loader: iterable of dict batches.
        spec: the fairness spec: its ``attributes`` give the group codes and its ``output_index`` the output
            channel (and label column); ``None``: ``FairnessSpec()``.
        device: where to run (default: the model's device).
        image_key: batch key of the input.
        label_key: batch key of the label.
        activation: how the positive-class probability is read from the output, see :func:`positive_probability`.
        amp: bf16 autocast on CUDA.

    Returns:
        ``(probs, labels, groups)`` as 1-D tensors on ``device`` (nothing is copied to the host per batch).
    """
    spec = as_spec(spec)
    device = _model_device(model) if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    probs, labels, groups = [], [], []
    try:
        for batch in loader:
            x, y, g = batch_tensors(batch, spec, device, image_key, label_key)
            with _autocast(device, amp):
                out = model(x)
            probs.append(positive_probability(out, activation, spec.output_index))
            labels.append(y)
            groups.append(g)
    finally:
        model.train(was_training)
    if not probs:
        raise ValueError("the loader yielded no batch.")
    return torch.cat(probs), torch.cat(labels), torch.cat(groups)


@dataclass
class BinaryEvaluation:
    """Evaluation of scores at one decision threshold (pooled figures of the evaluation core)."""

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

    @classmethod
    def from_core(
        cls, evaluation: BinaryFairnessEvaluation, threshold: float, b: int = 0, t: int = 0
    ) -> BinaryEvaluation:
        """The figures of weighting ``b`` at threshold index ``t`` of a core evaluation."""
        point = evaluation.point(b, t)
        return cls(float(threshold), point["balanced_accuracy"], point["bias"], point["objective"])


def evaluate_binary(
    probs: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor,
    spec: FairnessSpec | None = None,
    threshold: float | None = None,
    n_thresholds: int | None = None,
    reference: int | None = None,
) -> BinaryEvaluation:
    """Balanced accuracy, signed bias and objective of ``probs > t``, from
    :func:`~monai_fair.metrics.evaluate_binary_fairness` with the spec's settings.

    Args:
        probs: positive-class probabilities (or hard 0/1 predictions with ``threshold=0.5``) ``(N,)``.
        labels: binary labels ``(N,)``.
        groups: group codes ``(N,)``.
        spec: metric, epsilon, unknown-code policy and minimum group size; ``None``: ``FairnessSpec()``.
        threshold: a fixed threshold (e.g. chosen on validation, applied to test); ``None`` chooses the
            balanced-accuracy-optimal one over the observed scores.
        n_thresholds: ``None`` (default) to search the observed scores, or the size of a ``linspace(0, 1, ·)``
            grid.
        reference: the reference code (default ``spec.resolve_reference(groups)``).
    """
    spec = as_spec(spec)
    if threshold is None:
        threshold, _ = best_balanced_accuracy_threshold(probs, labels, n_thresholds)
    reference = spec.resolve_reference(groups) if reference is None else int(reference)
    evaluation = spec.evaluate(probs, labels, groups, thresholds=float(threshold), reference=reference)
    return BinaryEvaluation.from_core(evaluation, threshold)


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
    :meth:`fit`. What "fair" means (attribute(s), reference group, metric, epsilon, unknown-code policy, output
    index, minimum group size) comes from one :class:`~monai_fair.metrics.FairnessSpec`; the reference code is
    resolved on the fitting data (``spec.resolve_reference``).

    Args:
        spec: the study's fairness spec (or a mapping of its arguments); ``None``: ``FairnessSpec()``.
        image_key: batch key of the network input.
        label_key: batch key of the binary label.
        activation: how the positive-class probability is read from the output, see :func:`positive_probability`.
        device: device to run on.
        amp: bf16 autocast when on CUDA.
    """

    name = "debiaser"

    def __init__(
        self,
        spec: FairnessSpec | None = None,
        image_key: str = "image",
        label_key: str = "label",
        activation: str = "sigmoid",
        device: torch.device | str | None = None,
        amp: bool = True,
    ) -> None:
        self.spec = as_spec(spec)
        self.image_key = image_key
        self.label_key = label_key
        self.activation = activation
        self.device = torch.device(device) if device is not None else None
        self.amp = amp

    def _device_of(self, model: torch.nn.Module) -> torch.device:
        return self.device if self.device is not None else _model_device(model)

    def batch(self, batch: Mapping[str, Any], device: torch.device):
        """``(image, label, group)`` of a dict batch with this debiaser's keys and spec (see :func:`batch_tensors`)."""
        return batch_tensors(batch, self.spec, device, self.image_key, self.label_key)

    def outputs(self, model: torch.nn.Module, loader: Iterable[Mapping[str, Any]]):
        """``(probs, labels, groups)`` of ``model`` over ``loader`` with this debiaser's keys and spec."""
        return collect_outputs(
            model,
            loader,
            self.spec,
            device=self._device_of(model),
            image_key=self.image_key,
            label_key=self.label_key,
            activation=self.activation,
            amp=self.amp,
        )

    def evaluate(
        self, probs, labels, groups, threshold: float | None = None, reference: int | None = None
    ) -> BinaryEvaluation:
        """:func:`evaluate_binary` with this debiaser's spec."""
        return evaluate_binary(probs, labels, groups, self.spec, threshold, reference=reference)

    def fit(self, model: torch.nn.Module, loader: Iterable[Mapping[str, Any]], **kwargs: Any) -> DebiasResult:
        """Debias ``model`` on validation data ``loader``; see subclasses."""
        raise NotImplementedError(f"{type(self).__name__} must implement fit().")
