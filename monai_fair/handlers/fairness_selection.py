# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Scalar fairness metrics for model selection (``key_val_metric`` / ``CheckpointSaver``).

A key metric must be one number per epoch. Three selection rules, each a small ignite metric on the same
cumulative core as :class:`~monai_fair.handlers.fairness_metric.GroupFairnessMetric`:

* :class:`FairnessObjectiveMetric` — the studies' ε-constrained objective: balanced accuracy at the
  BA-optimal threshold if ``|bias| < ε`` there, else 0 (higher is better).
* :class:`WorstGroupMetric` — the worst group's AUC or balanced accuracy (higher is better).
* :class:`FairnessGapMetric` — a max–min gap such as ``eod_max_min`` (**lower is better**): use
  ``"metric_cmp_fn": "$monai_fair.handlers.lower_is_better"`` on the evaluator and
  ``"key_metric_negative_sign": true`` on ``CheckpointSaver``.

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

from ..metrics.bias import BIAS_KINDS, compute_binary_bias
from ..metrics.objective import constrained_objective
from ..metrics.thresholds import best_balanced_accuracy_threshold
from .fairness_metric import PRED_LABEL, GroupBufferMetric

__all__ = ["FairnessObjectiveMetric", "WorstGroupMetric", "FairnessGapMetric", "lower_is_better"]

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

    higher_is_better = True

    def __init__(
        self,
        group_key: str | None,
        output_transform: Callable,
        batch_transform: Callable | None,
        label_index: int | None,
        undefined_value: float | None,
        cumulative_kwargs: Mapping[str, Any],
        device: str | torch.device,
    ) -> None:
        self.label_index = label_index
        worst = -math.inf if self.higher_is_better else math.inf
        self.undefined_value = worst if undefined_value is None else float(undefined_value)
        self._components: dict[str, float] = {}
        super().__init__(group_key, output_transform, batch_transform, cumulative_kwargs, device)

    def _finish(self, value: float, reason: str) -> float:
        if math.isnan(value):
            logger.warning("%s is undefined (%s); reporting %s.", type(self).__name__, reason, self.undefined_value)
            return self.undefined_value
        return value

    def completed(self, engine: Engine, name: str) -> None:
        """Write the scalar under ``name`` and its components under ``name/<component>``."""
        super().completed(engine, name)
        for key, value in self._components.items():
            engine.state.metrics[f"{name}/{key}"] = value


class FairnessObjectiveMetric(_ScalarFairnessMetric):
    """ε-constrained objective ``φ = BA(t*) · [|bias(t*)| < ε]`` at the balanced-accuracy-optimal threshold ``t*``.

    ``t*`` maximises the balanced accuracy of ``y_pred > t`` on a grid of ``n_thresholds`` points in ``[0, 1]``
    over the whole (gathered) data; ``bias`` is the signed privileged-vs-rest gap of the hard predictions at
    ``t*`` (:func:`~monai_fair.metrics.compute_binary_bias`: every non-privileged code is pooled; samples with a
    negative code, i.e. unknown attribute, are left out of the bias and kept in the balanced accuracy). With
    several labels (and no ``label_index``) the mean objective over labels is reported.

    Besides ``engine.state.metrics[name]`` it writes ``name/balanced_accuracy``, ``name/bias`` and
    ``name/threshold`` (means over labels).

    Args:
        group_key: batch key of the group code (``None`` if ``output_transform`` returns the groups).
        privileged: privileged group code.
        epsilon: tolerance on ``|bias|``.
        bias: ``"eod"``, ``"spd"`` or ``"aod"``.
        n_thresholds: threshold grid size (101 as in the studies).
        label_index: label column to score for multi-label predictions (``None``: mean over labels).
        class_index: positive-class column of multi-column predictions (e.g. ``1`` for a 2-class softmax).
        output_transform: ``engine.state.output`` → ``(y_pred, y)``.
        batch_transform: ``engine.state.batch`` → groups.
        undefined_value: value reported when the objective is undefined (default ``-inf``).
        device: ignite metric device.
    """

    def __init__(
        self,
        group_key: str | None = "sex",
        privileged: int = 1,
        epsilon: float = 0.05,
        bias: str = "eod",
        n_thresholds: int = 101,
        label_index: int | None = None,
        class_index: int | None = None,
        output_transform: Callable = PRED_LABEL,
        batch_transform: Callable | None = None,
        undefined_value: float | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if bias not in BIAS_KINDS:
            raise ValueError(f"bias must be one of {BIAS_KINDS}, got {bias!r}.")
        self.privileged = int(privileged)
        self.epsilon = float(epsilon)
        self.bias = bias
        self.n_thresholds = int(n_thresholds)
        super().__init__(
            group_key,
            output_transform,
            batch_transform,
            label_index,
            undefined_value,
            {"class_index": class_index},
            device,
        )

    def compute(self) -> float:
        y_pred, y, groups = self.gathered()
        known = groups >= 0
        objs, bas, biases, thrs = [], [], [], []
        for j in _columns(y_pred, self.label_index):
            s, t = _column(y_pred, j), _column(y, j)
            try:
                thr, ba = best_balanced_accuracy_threshold(s, t, self.n_thresholds)
            except ValueError:
                thr, ba = math.nan, math.nan
            hard = (s > thr).to(torch.float64)
            b = float(compute_binary_bias(hard[known], t[known], groups[known], self.privileged, self.bias))
            objs.append(float(constrained_objective(ba, b, self.epsilon)))
            bas.append(ba)
            biases.append(b)
            thrs.append(thr)
        mean = lambda v: float(torch.tensor(v, dtype=torch.float64).mean())  # noqa: E731
        self._components = {"balanced_accuracy": mean(bas), "bias": mean(biases), "threshold": mean(thrs)}
        return self._finish(mean(objs), "single-class labels or an empty privileged/unprivileged cell")


class WorstGroupMetric(_ScalarFairnessMetric):
    """Worst-group AUC or balanced accuracy (``summary["worst_group_auc"]`` / ``["worst_group_ba"]``).

    Groups flagged by the fairness table (too small, single class) do not count as the worst group; if no group is
    defined the value is undefined. With several labels (and no ``label_index``) the mean over labels is reported.

    Args:
        group_key: batch key of the group code.
        metric: ``"auc"`` or ``"balanced_accuracy"``.
        threshold: decision threshold for balanced accuracy (number or ``"ba-optimal"``).
        group_codes: groups to consider.
        min_group_size: smaller groups are excluded (flagged NaN in the table).
        label_index: label column for multi-label predictions (``None``: mean over labels).
        class_index: positive-class column of multi-column predictions.
        output_transform: ``engine.state.output`` → ``(y_pred, y)``.
        batch_transform: ``engine.state.batch`` → groups.
        undefined_value: value reported when undefined (default ``-inf``).
        device: ignite metric device.
    """

    _KEYS = {"auc": "worst_group_auc", "balanced_accuracy": "worst_group_ba", "ba": "worst_group_ba"}

    def __init__(
        self,
        group_key: str | None = "sex",
        metric: str = "auc",
        threshold: float | str = 0.5,
        group_codes: Sequence[int] | None = None,
        min_group_size: int = 10,
        label_index: int | None = None,
        class_index: int | None = None,
        output_transform: Callable = PRED_LABEL,
        batch_transform: Callable | None = None,
        undefined_value: float | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if metric not in self._KEYS:
            raise ValueError(f"metric must be one of {sorted(self._KEYS)}, got {metric!r}.")
        self.summary_key = self._KEYS[metric]
        super().__init__(
            group_key,
            output_transform,
            batch_transform,
            label_index,
            undefined_value,
            {
                "threshold": threshold,
                "group_codes": group_codes,
                "min_group_size": min_group_size,
                "class_index": class_index,
            },
            device,
        )

    def compute(self) -> float:
        self.gathered()
        table = self.cumulative.aggregate()
        return self._finish(_reduce(table.summary[self.summary_key], self.label_index), "no group is defined")


class FairnessGapMetric(_ScalarFairnessMetric):
    """A max–min gap of the fairness table (``summary[gap]``), for selection where **lower is better**.

    Pair it with ``"metric_cmp_fn": "$monai_fair.handlers.lower_is_better"`` on the evaluator and
    ``"key_metric_negative_sign": true`` on ``CheckpointSaver``.

    Args:
        group_key: batch key of the group code.
        gap: a summary key: ``"eod_max_min"``, ``"spd_max_min"``, ``"fpr_max_min"``, ``"aod_max_min"``,
            ``"equalized_odds"``, ``"auc_gap"`` or ``"ece_gap"``.
        threshold: decision threshold (number or ``"ba-optimal"``).
        group_codes: groups to consider.
        min_group_size: smaller groups are excluded (flagged NaN in the table).
        label_index: label column for multi-label predictions (``None``: mean over labels).
        class_index: positive-class column of multi-column predictions.
        output_transform: ``engine.state.output`` → ``(y_pred, y)``.
        batch_transform: ``engine.state.batch`` → groups.
        undefined_value: value reported when undefined (default ``+inf``).
        device: ignite metric device.
    """

    higher_is_better = False
    GAPS = ("spd_max_min", "eod_max_min", "fpr_max_min", "aod_max_min", "equalized_odds", "auc_gap", "ece_gap")

    def __init__(
        self,
        group_key: str | None = "sex",
        gap: str = "eod_max_min",
        threshold: float | str = 0.5,
        group_codes: Sequence[int] | None = None,
        min_group_size: int = 10,
        label_index: int | None = None,
        class_index: int | None = None,
        output_transform: Callable = PRED_LABEL,
        batch_transform: Callable | None = None,
        undefined_value: float | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if gap not in self.GAPS:
            raise ValueError(f"gap must be one of {self.GAPS}, got {gap!r}.")
        self.gap = gap
        super().__init__(
            group_key,
            output_transform,
            batch_transform,
            label_index,
            undefined_value,
            {
                "threshold": threshold,
                "group_codes": group_codes,
                "min_group_size": min_group_size,
                "class_index": class_index,
            },
            device,
        )

    def compute(self) -> float:
        self.gathered()
        table = self.cumulative.aggregate()
        return self._finish(_reduce(table.summary[self.gap], self.label_index), "fewer than two defined groups")


def _reduce(value: torch.Tensor, label_index: int | None) -> float:
    """Scalar of a summary entry: itself (one label), one label's value, or the mean over labels (NaN if any is)."""
    v = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
    if label_index is not None:
        if not -v.numel() <= label_index < v.numel():
            raise ValueError(f"label_index={label_index} out of range for {v.numel()} label column(s).")
        return float(v[label_index])
    return float(v.mean())
