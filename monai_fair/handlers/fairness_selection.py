# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Scalar fairness metrics for model selection (``key_val_metric`` / ``CheckpointSaver``).

A key metric must be one number per epoch. Two selection rules, each a small ignite metric on the same cumulative
core as :class:`~monai_fair.handlers.fairness_metric.GroupFairnessMetric`:

* :class:`FairnessObjectiveMetric` — the studies' ε-constrained objective from the evaluation core: balanced
  accuracy at the BA-optimal threshold if ``|bias| < ε`` there, else 0 (higher is better).
* :class:`FairnessSummaryMetric` — one summary of the fairness table: ``worst_group_auc`` / ``worst_group_ba``
  (higher is better) or a max–min gap such as ``eod_max_min`` (**lower is better**: use
  ``"metric_cmp_fn": "$monai_fair.handlers.lower_is_better"`` on the evaluator and ``"key_metric_negative_sign":
  true`` on ``CheckpointSaver``; ``metric.higher_is_better`` says which).

An undefined value (e.g. a group without positives) would be NaN, and NaN never compares better than anything, so
once saved a NaN checkpoint would never be replaced. These metrics therefore report the *worst* possible value
instead (``-inf`` when higher is better, ``+inf`` when lower is better; see ``undefined_value``) and log the reason.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from ignite.engine import Engine

from ..metrics.gaps import HIGHER_IS_BETTER_SUMMARIES, SUMMARY_KEYS
from ..metrics.spec import FairnessSpec
from ..metrics.thresholds import observed_thresholds
from .fairness_metric import PRED_LABEL, GroupBufferMetric

__all__ = ["FairnessObjectiveMetric", "FairnessSummaryMetric", "lower_is_better"]

logger = logging.getLogger(__name__)


def lower_is_better(current: float, previous: float) -> bool:
    """``metric_cmp_fn`` for key metrics to minimise (gaps): ``current < previous``."""
    return current < previous


def _columns(y_pred: torch.Tensor, label_index: int | None) -> list[int]:
    n = 1 if y_pred.ndim == 1 else y_pred.shape[1]
    if label_index is None:
        return list(range(n))
    if not -n <= label_index < n:
        raise ValueError(f"label_index={label_index} out of range for {n} label column(s).")
    return [label_index % n]


def _column(x: torch.Tensor, j: int) -> torch.Tensor:
    return x if x.ndim == 1 else x[:, j]


class _ScalarFairnessMetric(GroupBufferMetric):
    """Shared plumbing: label selection, undefined-value policy, component logging."""

    def __init__(
        self,
        spec: FairnessSpec | None,
        spec_fields: Mapping[str, Any],
        higher_is_better: bool,
        output_transform: Callable,
        batch_transform: Callable | None,
        label_index: int | None,
        undefined_value: float | None,
        cumulative_kwargs: Mapping[str, Any],
        device: str | torch.device,
    ) -> None:
        self.label_index = label_index
        self.higher_is_better = higher_is_better
        worst = -math.inf if higher_is_better else math.inf
        self.undefined_value = worst if undefined_value is None else float(undefined_value)
        self._components: dict[str, float] = {}
        super().__init__(
            spec,
            output_transform=output_transform,
            batch_transform=batch_transform,
            cumulative_kwargs=cumulative_kwargs,
            device=device,
            **spec_fields,
        )

    def _finish(self, value: float, reason: str) -> float:
        if math.isnan(value):
            logger.warning("%s is undefined (%s); reporting %s.", self._name, reason, self.undefined_value)
            return self.undefined_value
        return value

    def completed(self, engine: Engine, name: str) -> None:
        """Write the scalar under ``name`` and its components under ``name/<component>``."""
        super().completed(engine, name)
        for key, value in self._components.items():
            engine.state.metrics[f"{name}/{key}"] = value


class FairnessObjectiveMetric(_ScalarFairnessMetric):
    """ε-constrained objective ``φ = BA(t*) · [|bias(t*)| < ε]`` at the balanced-accuracy-optimal threshold ``t*``.

    Every figure comes from :meth:`FairnessSpec.evaluate` (the evaluation core) over the whole (gathered) data, at
    every distinct observed score as threshold (or a ``linspace`` grid of ``n_thresholds``): ``t*`` is the lowest
    candidate of maximal balanced accuracy, ``bias`` the spec's pooled reference-vs-rest gap at ``t*``. Unknown codes
    follow ``spec.unknown`` (``"exclude"``: in no group, counted in the balanced accuracy); the reference and the pooled rest need
    ``spec.min_group_size`` samples. With several labels (and no ``label_index``) the mean objective is reported.

    Besides ``engine.state.metrics[name]`` it writes ``name/balanced_accuracy``, ``name/bias`` and
    ``name/threshold`` (means over labels).

    Args:
        spec: the study's :class:`FairnessSpec` (fields given below override it).
        attributes, reference, group_names, metric, epsilon, unknown, min_group_size: spec fields.
        n_thresholds: ``None`` (default) to search every observed score (the optimum lies at one of them), or the
            size of a ``linspace(0, 1, n_thresholds)`` grid.
        label_index: label column to score for multi-label predictions (``None``: mean over labels).
        output_index: positive-class column of multi-column predictions (default: the spec's).
        output_transform: ``engine.state.output`` → ``(y_pred, y)``.
        batch_transform: ``engine.state.batch`` → groups.
        undefined_value: value reported when the objective is undefined (default ``-inf``).
        device: ignite metric device.
    """

    def __init__(
        self,
        spec: FairnessSpec | None = None,
        attributes: str | Sequence[str] | None = None,
        reference: int | str | Sequence[int | str] | None = None,
        group_names: Mapping[Any, Any] | None = None,
        metric: str | None = None,
        epsilon: float | None = None,
        unknown: str | None = None,
        min_group_size: int | None = None,
        n_thresholds: int | None = None,
        label_index: int | None = None,
        output_index: int | None = None,
        output_transform: Callable = PRED_LABEL,
        batch_transform: Callable | None = None,
        undefined_value: float | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.n_thresholds = None if n_thresholds is None else int(n_thresholds)
        fields = dict(
            attributes=attributes,
            reference=reference,
            group_names=group_names,
            metric=metric,
            epsilon=epsilon,
            unknown=unknown,
            min_group_size=min_group_size,
            output_index=output_index,
        )
        super().__init__(
            spec, fields, True, output_transform, batch_transform, label_index, undefined_value, {}, device
        )

    def compute(self) -> float:
        y_pred, y, groups = self.gathered()
        objs, bas, biases, thrs = [], [], [], []
        for j in _columns(y_pred, self.label_index):
            scores = _column(y_pred, j)
            grid = (
                observed_thresholds(scores)
                if self.n_thresholds is None
                else torch.linspace(0.0, 1.0, self.n_thresholds, dtype=torch.float64)
            )
            ev = self.spec.evaluate(scores, _column(y, j), groups, thresholds=grid)
            ba = ev.balanced_accuracy[0]
            if bool(torch.isnan(ba).all()):  # a single class: no threshold is better than another
                objs.append(math.nan), bas.append(math.nan), biases.append(math.nan), thrs.append(math.nan)
                continue
            best = int(torch.argmax(torch.nan_to_num(ba, nan=-1.0)))
            objs.append(float(ev.objective[0, best]))
            bas.append(float(ba[best]))
            biases.append(float(ev.bias[0, best]))
            thrs.append(float(grid[best]))
        mean = lambda v: float(torch.tensor(v, dtype=torch.float64).mean())  # noqa: E731
        self._components = {"balanced_accuracy": mean(bas), "bias": mean(biases), "threshold": mean(thrs)}
        return self._finish(mean(objs), "single-class labels, or a reference group or pooled rest below min_group_size")


class FairnessSummaryMetric(_ScalarFairnessMetric):
    """One summary of the fairness table (``table.summary[summary]``) as the selection scalar.

    ``worst_group_auc`` and ``worst_group_ba`` are higher-is-better; every max–min gap (``eod_max_min``,
    ``spd_max_min``, ``fpr_max_min``, ``aod_max_min``, ``equalized_odds``, ``auc_gap``, ``ece_gap``) is
    lower-is-better (``higher_is_better`` says which; pair a gap with ``"metric_cmp_fn":
    "$monai_fair.handlers.lower_is_better"`` and ``"key_metric_negative_sign": true`` on ``CheckpointSaver``).
    Groups flagged by the table (too small, single class) are left out of the summary; with fewer defined groups than
    the summary needs the value is undefined. With several labels (and no ``label_index``) the mean is reported.

    Args:
        summary: a key of :data:`~monai_fair.metrics.gaps.SUMMARY_KEYS`.
        spec: the study's :class:`FairnessSpec` (fields given below override it).
        attributes, reference, group_names, unknown, min_group_size: spec fields.
        threshold: decision threshold (number or ``"ba-optimal"``).
        group_codes: groups to consider.
        label_index: label column for multi-label predictions (``None``: mean over labels).
        output_index: positive-class column of multi-column predictions.
        output_transform: ``engine.state.output`` → ``(y_pred, y)``.
        batch_transform: ``engine.state.batch`` → groups.
        undefined_value: value reported when undefined (default the worst: ``-inf`` or ``+inf``).
        device: ignite metric device.
    """

    def __init__(
        self,
        summary: str = "worst_group_auc",
        spec: FairnessSpec | None = None,
        attributes: str | Sequence[str] | None = None,
        reference: int | str | Sequence[int | str] | None = None,
        group_names: Mapping[Any, Any] | None = None,
        unknown: str | None = None,
        min_group_size: int | None = None,
        threshold: float | str = 0.5,
        group_codes: Sequence[int] | None = None,
        label_index: int | None = None,
        output_index: int | None = None,
        output_transform: Callable = PRED_LABEL,
        batch_transform: Callable | None = None,
        undefined_value: float | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if summary not in SUMMARY_KEYS:
            raise ValueError(f"summary must be one of {SUMMARY_KEYS}, got {summary!r}.")
        self.summary = summary
        fields = dict(
            attributes=attributes,
            reference=reference,
            group_names=group_names,
            unknown=unknown,
            min_group_size=min_group_size,
            output_index=output_index,
        )
        super().__init__(
            spec,
            fields,
            summary in HIGHER_IS_BETTER_SUMMARIES,
            output_transform,
            batch_transform,
            label_index,
            undefined_value,
            {"threshold": threshold, "group_codes": group_codes},
            device,
        )

    def compute(self) -> float:
        value = _reduce(self.table().summary[self.summary], self.label_index)
        return self._finish(value, "too few groups are defined (small or single-class groups are left out)")


def _reduce(value: torch.Tensor, label_index: int | None) -> float:
    """Scalar of a summary entry: itself (one label), one label's value, or the mean over labels (NaN if any is)."""
    v = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
    if label_index is not None:
        if not -v.numel() <= label_index < v.numel():
            raise ValueError(f"label_index={label_index} out of range for {v.numel()} label column(s).")
        return float(v[label_index])
    return float(v.mean())
