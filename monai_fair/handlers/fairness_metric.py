# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Ignite metric that reports the per-group fairness table of an evaluator run as flat scalars.

:class:`GroupFairnessMetric` is the shell around :class:`~monai_fair.metrics.cumulative.FairnessCumulative`. It
reads ``(pred, label)`` from ``engine.state.output`` and the group codes from ``engine.state.batch`` (the batch keeps
attribute keys such as ``sex`` next to ``image`` and ``label``), so one entry in ``additional_metrics`` of an
existing ``SupervisedEvaluator`` is enough::

    "additional_metrics": {
        "sex_fairness": {
            "_target_": "GroupFairnessMetric", "group_key": "sex", "group_names": {"0": "F", "1": "M"},
            "reference": 1, "class_index": 1
        }
    }

``compute()`` returns a dict, which ignite writes flat into ``engine.state.metrics`` (``sex/tpr_F``,
``sex/eod_F``, ``sex/auc_gap`` ...): ``StatsHandler``, ``MetricsSaver`` and ``TensorBoardStatsHandler`` pick the keys
up. The full :class:`~monai_fair.metrics.fairness_table.FairnessTable` and the gathered raw buffers go to
``engine.state.fairness_details[name]`` (a :class:`FairnessDetails`), which
:class:`~monai_fair.handlers.tensorboard_fairness.FairnessTensorBoardHandler` draws. They are deliberately not put in
``engine.state.metric_details``: ``MetricsSaver(metric_details="*")`` would write them per image next to file names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from ignite.engine import Engine
from ignite.exceptions import NotComputableError
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced
from monai.handlers import from_engine

from ..metrics.cumulative import FairnessCumulative
from ..metrics.fairness_table import FairnessTable

__all__ = [
    "FAIRNESS_DETAILS",
    "PRED_LABEL",
    "group_batch_transform",
    "FairnessDetails",
    "GroupBufferMetric",
    "GroupFairnessMetric",
    "ci_flat_dict",
    "select_flat_metrics",
]

#: name of the ``engine.state`` attribute (a dict: metric name → :class:`FairnessDetails`)
FAIRNESS_DETAILS = "fairness_details"
#: ``engine.state`` attribute caching the normalised batch of the current iteration, shared by the fairness metrics
_BATCH_CACHE = "_fairness_batch_cache"

#: default ``output_transform`` of every fairness metric; one shared object, so that metrics attached to the same
#: engine recognise identical inputs and normalise each batch once
PRED_LABEL = from_engine(["pred", "label"])
_GROUP_TRANSFORMS: dict[str, Callable] = {}


def group_batch_transform(group_key: str) -> Callable:
    """``from_engine([group_key])``, one shared object per key (see :data:`PRED_LABEL`)."""
    if group_key not in _GROUP_TRANSFORMS:
        _GROUP_TRANSFORMS[group_key] = from_engine([group_key])
    return _GROUP_TRANSFORMS[group_key]


logger = logging.getLogger(__name__)


@dataclass
class FairnessDetails:
    """What a fairness metric leaves on ``engine.state.fairness_details[name]`` after each epoch.

    Attributes:
        table: the full fairness table (per-group values, gaps, summary, flags, CIs).
        values: the flat scalars the metric returned (what went into ``engine.state.metrics``).
        y_pred: gathered probabilities ``(N,)`` or ``(N, L)`` (all ranks), for curves and reliability plots.
        y: gathered labels, same shape.
        groups: gathered group codes ``(N,)``.
        prefix: the key prefix of ``values`` (e.g. ``"sex/"``).
        n_bins: calibration bins used for the table.
    """

    table: FairnessTable
    values: dict[str, float]
    y_pred: torch.Tensor
    y: torch.Tensor
    groups: torch.Tensor
    prefix: str = ""
    n_bins: int = 15


def select_flat_metrics(
    flat: Mapping[str, float], table: FairnessTable, metrics: Sequence[str] | None, prefix: str
) -> dict[str, float]:
    """Keep the flat entries whose metric stem is in ``metrics`` (all entries if ``metrics`` is None).

    A stem is the name of an entry of ``table.per_group``, ``table.gaps`` or ``table.summary`` (``"tpr"``,
    ``"eod"``, ``"auc_gap"`` ...); it selects every group/label variant of that entry (``tpr_F``, ``tpr_M``,
    ``tpr_<label>_<group>``) and their interval bounds, but not other metrics sharing its spelling as a prefix
    (stem ``"auc"`` does not select ``auc_gap``).

    Raises:
        ValueError: for a stem the table does not have.
    """
    if metrics is None:
        return dict(flat)
    known = set(table.per_group) | set(table.gaps) | set(table.summary)
    unknown = [m for m in metrics if m not in known]
    if unknown:
        raise ValueError(f"unknown fairness metric(s) {unknown}; available: {sorted(known)}.")
    # the longest matching stem owns a key: "auc_gap_..." belongs to "auc_gap", not to "auc"
    stems = sorted(known, key=len, reverse=True)
    wanted = set(metrics)
    out = {}
    for key, value in flat.items():
        bare = key[len(prefix) :] if prefix and key.startswith(prefix) else key
        owner = next((s for s in stems if bare == s or bare.startswith(s + "_")), None)
        if owner in wanted:
            out[key] = value
    return out


def ci_flat_dict(table: FairnessTable, prefix: str = "") -> dict[str, float]:
    """Bootstrap interval bounds as flat keys ``<key>_ci_low`` / ``<key>_ci_high`` (empty without bootstrap).

    ``<key>`` is the :meth:`FairnessTable.as_flat_dict` key of the same figure; counts have no interval.
    """
    if not table.ci:
        return {}
    out: dict[str, float] = {}
    for side, idx in (("ci_low", 0), ("ci_high", 1)):
        per_group = {k: v[idx] for k, v in _ci_part(table, "per_group").items()}
        bounds = replace(
            table,
            per_group={"n": table.per_group["n"], **per_group},  # "n" only tells the layout; it has no interval
            gaps={k: v[idx] for k, v in _ci_part(table, "gaps").items()},
            summary={k: v[idx] for k, v in _ci_part(table, "summary").items()},
        )
        flat = bounds.as_flat_dict(prefix=prefix)
        with_ci = [*per_group, *bounds.gaps, *bounds.summary]
        out.update({f"{k}_{side}": v for k, v in select_flat_metrics(flat, bounds, with_ci, prefix).items()})
    return out


def _ci_part(table: FairnessTable, kind: str) -> dict[str, tuple]:
    return {k.split("/", 1)[1]: v for k, v in table.ci.items() if k.startswith(kind + "/")}


class GroupBufferMetric(Metric):
    """Base of the fairness metrics: buffers ``(pred, label, group)`` of every iteration in a
    :class:`~monai_fair.metrics.cumulative.FairnessCumulative`.

    ``output_transform`` maps ``engine.state.output`` to ``(y_pred, y)``, or to ``(y_pred, y, groups)`` when the
    group was copied into the output by post-processing (then set ``group_key=None``). Otherwise
    ``batch_transform`` (default ``from_engine([group_key])``) reads the groups from ``engine.state.batch``.
    ``y_pred`` must be probabilities.

    Args:
        group_key: batch key holding the integer group code, or ``None`` when ``output_transform`` returns it.
        output_transform: ``engine.state.output`` → ``(y_pred, y)`` or ``(y_pred, y, groups)``.
        batch_transform: ``engine.state.batch`` → groups; default reads ``group_key``.
        cumulative_kwargs: options of :class:`FairnessCumulative`.
        device: ignite metric device (unused for buffering: tensors stay where they are produced).
    """

    def __init__(
        self,
        group_key: str | None = "sex",
        output_transform: Callable = PRED_LABEL,
        batch_transform: Callable | None = None,
        cumulative_kwargs: Mapping[str, Any] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.group_key = group_key
        if batch_transform is None and group_key is not None:
            batch_transform = group_batch_transform(group_key)
        self.batch_transform = batch_transform
        self.cumulative = FairnessCumulative(**dict(cumulative_kwargs or {}))
        super().__init__(output_transform=output_transform, device=device)

    @reinit__is_reduced
    def reset(self) -> None:
        self.cumulative.reset()

    @reinit__is_reduced
    def update(self, output: Sequence[Any]) -> None:
        """Buffer one batch ``(y_pred, y, groups)``."""
        if len(output) != 3:
            raise ValueError(
                f"{type(self).__name__}.update expects (y_pred, y, groups), got {len(output)} items; set group_key "
                "or batch_transform so the groups are read from the batch."
            )
        self.cumulative.extend(*output)

    def iteration_completed(self, engine: Engine) -> None:
        """Read predictions/labels from the output and groups from the batch, then buffer them.

        Metrics on the same engine with the same transforms (the defaults are shared objects) normalise the batch
        once per iteration and share the result.
        """
        key = (id(self._output_transform), id(self.batch_transform), self.cumulative.class_index)
        stamp = (engine.state.epoch, engine.state.iteration, id(engine.state.output), id(engine.state.batch))
        cache = getattr(engine.state, _BATCH_CACHE, None)
        if cache is None or cache[0] != stamp:
            cache = (stamp, {})
            setattr(engine.state, _BATCH_CACHE, cache)
        if key not in cache[1]:
            cache[1][key] = self.cumulative.prepare(*self._read(engine))
        self.cumulative.extend_prepared(*cache[1][key])

    def _read(self, engine: Engine) -> tuple[Any, Any, Any]:
        output = self._output_transform(engine.state.output)
        if isinstance(output, Mapping):
            output = (output["y_pred"], output["y"], *([output["groups"]] if "groups" in output else []))
        output = tuple(output)
        if len(output) == 2:
            if self.batch_transform is None:
                raise ValueError("no group source: output_transform returned 2 items and group_key is None.")
            output = (*output, self.batch_transform(engine.state.batch))
        if len(output) != 3:
            raise ValueError(
                f"{type(self).__name__}: output_transform must return (y_pred, y) or (y_pred, y, groups), got "
                f"{len(output)} items."
            )
        return output

    def gathered(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The buffers of all ranks ``(y_pred, y, groups)``.

        Raises:
            NotComputableError: if no sample was buffered on any rank.
        """
        buffers = self.cumulative.get_buffer()
        if buffers is None or buffers[0].shape[0] == 0:
            raise NotComputableError(f"{type(self).__name__} must see at least one batch before compute().")
        return buffers[0], buffers[1], buffers[2]

    def _store_details(self, engine: Engine, name: str, details: Any) -> None:
        store = getattr(engine.state, FAIRNESS_DETAILS, None)
        if not isinstance(store, dict):
            store = {}
            setattr(engine.state, FAIRNESS_DETAILS, store)
        store[name] = details


class GroupFairnessMetric(GroupBufferMetric):
    """Per-group performance, signed gaps to the reference group and max–min gaps, as flat scalars.

    The result keys are ``{prefix}{stem}_{group}`` for per-group values and signed gaps (``sex/tpr_F``,
    ``sex/eod_F``), ``{prefix}{stem}`` for summaries (``sex/auc_gap``), with ``_{label}`` before the group for
    multi-label predictions — exactly :meth:`FairnessTable.as_flat_dict`. Undefined values (small or single-class
    groups) are NaN; the reason is in ``table.flags``.

    Args:
        group_key: batch key holding the integer group code (``sex``, ``age_group``, ``race``, ``ita_group`` ...),
            or ``None`` when ``output_transform`` returns ``(y_pred, y, groups)``.
        group_names: code→name map (JSON string keys accepted), e.g. ``{"0": "F", "1": "M"}``.
        reference: reference (privileged) group code for signed gaps.
        threshold: decision threshold, or ``"ba-optimal"``.
        metrics: stems to report (``["tpr", "eod", "auc_gap"]``); ``None`` reports everything.
        prefix: key prefix; default ``f"{group_key}/"`` (``"fairness/"`` without a group key).
        output_transform: ``engine.state.output`` → ``(y_pred, y)`` (probabilities and binary labels).
        batch_transform: ``engine.state.batch`` → group codes; default ``from_engine([group_key])``.
        group_codes: groups to report, in order.
        label_names: names of the label columns of multi-label predictions.
        class_index: positive-class column of multi-column predictions (e.g. ``1`` for a 2-class softmax).
        n_bootstrap: bootstrap resamples for confidence intervals (0 = none).
        ci_level: confidence level.
        min_group_size: smaller groups are flagged and get NaN.
        n_bins: calibration bins (ECE, reliability plots).
        seed: bootstrap seed.
        save_details: store a :class:`FairnessDetails` in ``engine.state.fairness_details[name]``.
        device: ignite metric device.
    """

    def __init__(
        self,
        group_key: str | None = "sex",
        group_names: Mapping[Any, str] | Sequence[str] | None = None,
        reference: int | None = None,
        threshold: float | str = 0.5,
        metrics: Sequence[str] | None = None,
        prefix: str | None = None,
        output_transform: Callable = PRED_LABEL,
        batch_transform: Callable | None = None,
        group_codes: Sequence[int] | None = None,
        label_names: Sequence[str] | None = None,
        class_index: int | None = None,
        n_bootstrap: int = 0,
        ci_level: float = 0.95,
        min_group_size: int = 10,
        n_bins: int = 15,
        seed: int | None = None,
        save_details: bool = True,
        device: str | torch.device = "cpu",
    ) -> None:
        self.metrics = None if metrics is None else [str(m) for m in metrics]
        self.prefix = prefix if prefix is not None else (f"{group_key}/" if group_key else "fairness/")
        self.save_details = save_details
        self._details: FairnessDetails | None = None
        super().__init__(
            group_key=group_key,
            output_transform=output_transform,
            batch_transform=batch_transform,
            cumulative_kwargs=dict(
                threshold=threshold,
                reference=reference,
                group_codes=group_codes,
                group_names=group_names,
                label_names=label_names,
                class_index=class_index,
                min_group_size=min_group_size,
                n_bins=n_bins,
                n_bootstrap=n_bootstrap,
                ci_level=ci_level,
                seed=seed,
            ),
            device=device,
        )

    def compute_table(self) -> FairnessTable:
        """The fairness table of the gathered buffers (no engine needed)."""
        self.gathered()
        return self.cumulative.aggregate()

    def compute(self) -> dict[str, float]:
        """Flat ``{key: float}`` of the selected metrics of the gathered data (plus CI bounds with bootstrap)."""
        y_pred, y, groups = self.gathered()
        table = self.cumulative.aggregate()
        flat = table.as_flat_dict(prefix=self.prefix)
        flat.update(ci_flat_dict(table, prefix=self.prefix))
        values = select_flat_metrics(flat, table, self.metrics, self.prefix)
        notes = [
            f"{name}: {table.flags[code]}"
            for code, name in zip(table.group_codes, table.group_names)
            if table.flags.get(code)
        ]
        if notes:
            logger.info("%s NaN reasons: %s", self.prefix or "fairness", " | ".join(notes))
        self._details = FairnessDetails(
            table=table,
            values=values,
            y_pred=y_pred,
            y=y,
            groups=groups,
            prefix=self.prefix,
            n_bins=self.cumulative.n_bins,
        )
        return values

    def completed(self, engine: Engine, name: str) -> None:
        """Write the flat values into ``engine.state.metrics`` and the details into ``engine.state``."""
        super().completed(engine, name)
        if self.save_details and self._details is not None:
            self._store_details(engine, name, self._details)
