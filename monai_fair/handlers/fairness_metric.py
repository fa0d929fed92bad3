# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Ignite metric that reports the per-group fairness table of an evaluator run as flat scalars.

:class:`GroupFairnessMetric` is the shell around :class:`~monai_fair.metrics.cumulative.FairnessCumulative`. It
reads ``(pred, label)`` from ``engine.state.output`` and the group codes from ``engine.state.batch`` through the
:class:`~monai_fair.metrics.spec.FairnessSpec` (one attribute such as ``sex``, or several for intersectional groups),
so one entry in ``additional_metrics`` of an existing ``SupervisedEvaluator`` is enough::

    "additional_metrics": {
        "sex_fairness": {
            "_target_": "GroupFairnessMetric", "attributes": "sex", "group_names": {"0": "F", "1": "M"},
            "reference": "M", "output_index": 1
        }
    }

(or ``"spec": "@fairness"`` for the bundle's one spec). ``compute()`` returns a dict, which ignite writes flat into
``engine.state.metrics`` (keys of :meth:`FairnessTable.as_flat_dict`: ``sex/tpr_F``, ``sex/eod_F``,
``sex/auc_gap`` ...). The full :class:`~monai_fair.metrics.fairness_table.FairnessTable` and the gathered raw
buffers go to ``engine.state.fairness_details[name]`` (a :class:`FairnessDetails`), which
:class:`~monai_fair.handlers.tensorboard_fairness.FairnessTensorBoardHandler` draws. They are deliberately not put in
``engine.state.metric_details``: ``MetricsSaver(metric_details="*")`` would write them per image next to file names.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from ignite.engine import Engine
from ignite.exceptions import NotComputableError
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced
from monai.handlers import from_engine

from ..metrics.cumulative import FairnessCumulative, as_group_batch
from ..metrics.fairness_table import FairnessTable
from ..metrics.spec import FairnessSpec

__all__ = [
    "CONSOLE_METRICS",
    "FAIRNESS_DETAILS",
    "PRED_LABEL",
    "FairnessDetails",
    "GroupBufferMetric",
    "GroupFairnessMetric",
    "batch_group_codes",
    "resolve_spec",
]

#: the figures a fairness metric puts into ``engine.state.metrics`` by default: per-group TPR, the signed EOD and
#: SPD of each group vs the reference, and the AUC gap (the full table goes to TensorBoard text and files)
CONSOLE_METRICS = ("tpr", "eod", "spd", "auc_gap")
#: name of the ``engine.state`` attribute (a dict: metric name → :class:`FairnessDetails`)
FAIRNESS_DETAILS = "fairness_details"
#: default ``output_transform`` of every fairness metric
PRED_LABEL = from_engine(["pred", "label"])

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
        min_group_size: groups smaller than this have NaN figures in the table (and are left out of the figures).
    """

    table: FairnessTable
    values: dict[str, float]
    y_pred: torch.Tensor
    y: torch.Tensor
    groups: torch.Tensor
    prefix: str = ""
    n_bins: int = 15
    min_group_size: int = 1


def resolve_spec(spec: FairnessSpec | None = None, **fields: Any) -> FairnessSpec:
    """The spec a handler works with: ``spec`` with the fields given (not ``None``) overridden, or a new spec.

    Args:
        spec: the bundle's :class:`FairnessSpec`, or ``None``.
        fields: spec fields by their names (``attributes``, ``reference``, ``group_names``, ``metric``,
            ``epsilon``, ``unknown``, ``output_index``, ``min_group_size``); ``None`` means "not given".
    """
    given = {k: v for k, v in fields.items() if v is not None}
    if spec is None:
        return FairnessSpec(**given)
    if not isinstance(spec, FairnessSpec):
        raise TypeError(f"spec must be a FairnessSpec, got {type(spec).__name__}.")
    return dataclasses.replace(spec, **given) if given else spec


def batch_group_codes(spec: FairnessSpec, batch: Any, owner: str = "fairness metric") -> torch.Tensor:
    """The (intersectional) group codes of a batch dict or a decollated list of sample dicts.

    Raises:
        KeyError: a sample lacks one of ``spec.attributes``; the message names ``owner`` and the key.
    """
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], Mapping):
        first = batch[0]
        _check_keys(spec, first, owner)
        batch = {a: as_group_batch([d[a] for d in batch]) for a in spec.attributes}
    elif isinstance(batch, Mapping):
        _check_keys(spec, batch, owner)
    else:
        raise TypeError(f"{owner}: engine.state.batch must be a dict or a list of dicts, got {type(batch).__name__}.")
    return spec.group_codes({a: as_group_batch(batch[a]) for a in spec.attributes})


def _check_keys(spec: FairnessSpec, sample: Mapping, owner: str) -> None:
    missing = [a for a in spec.attributes if a not in sample]
    if missing:
        raise KeyError(
            f"{owner}: the batch has no key {missing[0]!r} (attributes={list(spec.attributes)}); keys present: "
            f"{sorted(map(str, sample))[:20]}. Keep the attribute code in every data dict or set 'attributes'."
        )


class GroupBufferMetric(Metric):
    """Base of the fairness metrics: buffers ``(pred, label, group)`` of every iteration in a
    :class:`~monai_fair.metrics.cumulative.FairnessCumulative`.

    ``output_transform`` maps ``engine.state.output`` to ``(y_pred, y)``; the group codes come from
    ``engine.state.batch`` through ``spec.group_codes`` (or ``batch_transform``), or from ``output_transform`` when it
    returns ``(y_pred, y, groups)`` (groups copied into the output by post-processing). ``y_pred`` must be
    probabilities.

    Args:
        spec: the study's :class:`FairnessSpec`; the spec fields below override it (``None``: not given).
        attributes, reference, group_names, unknown, min_group_size: spec fields (a spec is built from them when
            ``spec`` is ``None``; ``attributes`` defaults to ``"sex"``).
        output_index: positive-class column of multi-column predictions (e.g. ``1`` for a 2-class softmax);
            ``None``: ``spec.output_index`` when a spec is given, else every column (multi-label).
        output_transform: ``engine.state.output`` → ``(y_pred, y)`` or ``(y_pred, y, groups)``.
        batch_transform: ``engine.state.batch`` → group codes; default ``spec.group_codes``.
        cumulative_kwargs: further options of :class:`FairnessCumulative`.
        device: ignite metric device (unused for buffering: tensors stay where they are produced).
    """

    def __init__(
        self,
        spec: FairnessSpec | None = None,
        attributes: str | Sequence[str] | None = None,
        reference: int | str | Sequence[int | str] | None = None,
        group_names: Mapping[Any, Any] | None = None,
        unknown: str | None = None,
        min_group_size: int | None = None,
        output_index: int | None = None,
        output_transform: Callable = PRED_LABEL,
        batch_transform: Callable | None = None,
        cumulative_kwargs: Mapping[str, Any] | None = None,
        device: str | torch.device = "cpu",
        **spec_fields: Any,
    ) -> None:
        self.spec = resolve_spec(
            spec,
            attributes=attributes,
            reference=reference,
            group_names=group_names,
            unknown=unknown,
            min_group_size=min_group_size,
            **spec_fields,
        )
        self.output_index = output_index if output_index is not None or spec is None else self.spec.output_index
        self.batch_transform = batch_transform
        self._name = type(self).__name__
        kwargs = dict(
            reference=self.spec.reference,
            unknown=self.spec.unknown,
            min_group_size=self.spec.min_group_size,
            output_index=self.output_index,
        )
        kwargs.update(cumulative_kwargs or {})
        self.cumulative = FairnessCumulative(**kwargs)
        super().__init__(output_transform=output_transform, device=device)

    def attach(self, engine: Engine, name: str, usage: Any = None) -> None:
        """Attach as ignite does, remembering ``name`` for error messages."""
        self._name = f"{type(self).__name__} {name!r}"
        if usage is None:
            super().attach(engine, name)
        else:
            super().attach(engine, name, usage)

    def group_names(self, codes: Sequence[int]) -> dict[int, str]:
        """Readable names of ``codes`` (``F × 60-79``, ``unknown``) from the spec."""
        return self.spec.names([int(c) for c in codes])

    @reinit__is_reduced
    def reset(self) -> None:
        self.cumulative.reset()

    @reinit__is_reduced
    def update(self, output: Sequence[Any]) -> None:
        """Buffer one batch ``(y_pred, y, groups)``."""
        if len(output) != 3:
            raise ValueError(f"{self._name}.update expects (y_pred, y, groups), got {len(output)} items.")
        self.cumulative.extend(*output)

    def iteration_completed(self, engine: Engine) -> None:
        """Read predictions/labels from the output and groups from the batch, then buffer them."""
        output = self._output_transform(engine.state.output)
        if isinstance(output, Mapping):
            output = (output["y_pred"], output["y"], *([output["groups"]] if "groups" in output else []))
        output = tuple(output)
        if len(output) == 2:
            batch = engine.state.batch
            groups = (
                self.batch_transform(batch)
                if self.batch_transform is not None
                else batch_group_codes(self.spec, batch, self._name)
            )
            output = (*output, groups)
        if len(output) != 3:
            raise ValueError(
                f"{self._name}: output_transform must return (y_pred, y) or (y_pred, y, groups), got "
                f"{len(output)} items."
            )
        self.cumulative.extend(*output)

    def gathered(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The buffers of all ranks ``(y_pred, y, groups)``.

        Raises:
            NotComputableError: if no sample was buffered on any rank.
        """
        buffers = self.cumulative.get_buffer()
        if buffers is None or buffers[0].shape[0] == 0:
            raise NotComputableError(f"{self._name} must see at least one batch before compute().")
        return buffers[0], buffers[1], buffers[2]

    def table(self) -> FairnessTable:
        """The fairness table of the gathered buffers, with the spec's group names."""
        _, _, groups = self.gathered()
        self.cumulative.group_names = self.group_names(
            torch.unique(groups).tolist() + (self.cumulative.group_codes or [])
        )
        return self.cumulative.aggregate()

    def _store_details(self, engine: Engine, name: str, details: Any) -> None:
        store = getattr(engine.state, FAIRNESS_DETAILS, None)
        if not isinstance(store, dict):
            store = {}
            setattr(engine.state, FAIRNESS_DETAILS, store)
        store[name] = details


class GroupFairnessMetric(GroupBufferMetric):
    """Per-group performance, signed gaps to the reference group and max–min gaps, as flat scalars.

    The result is :meth:`FairnessTable.as_flat_dict` (``sex/tpr_F``, ``sex/eod_F``, ``sex/auc_gap``, with CI bounds
    under bootstrap). Undefined values (small or single-class groups) are NaN; the reason is in ``table.flags`` and
    logged.

    Args:
        spec: the study's :class:`FairnessSpec` (fields given below override it).
        attributes: batch key(s) of the group code: ``"sex"``, or ``["sex", "age_group"]`` for intersectional
            groups (``F × 60-79``).
        reference: reference (privileged) group: code, name or one per attribute; ``None`` = largest group.
        group_names: code → name (one attribute) or ``{attribute: {code: name}}``.
        unknown: unknown-code policy ``"exclude"`` / ``"group"``.
        min_group_size: smaller groups are flagged and get NaN.
        threshold: decision threshold, or ``"ba-optimal"``.
        metrics: stems to put into ``engine.state.metrics`` (what console and scalar loggers print); default
            :data:`CONSOLE_METRICS` (a concise line), ``"all"`` for every figure. The whole table is always kept in
            ``engine.state.fairness_details`` for :class:`FairnessTensorBoardHandler` (text, images, files).
        prefix: key prefix; default ``"<attribute>/"`` (attributes joined by ``+``).
        output_transform: ``engine.state.output`` → ``(y_pred, y)`` (probabilities and binary labels).
        batch_transform: ``engine.state.batch`` → group codes; default ``spec.group_codes``.
        group_codes: groups to report, in order (declared groups without samples are reported empty).
        label_names: names of the label columns of multi-label predictions.
        output_index: positive-class column of multi-column predictions.
        n_bootstrap: bootstrap resamples for confidence intervals (0 = none).
        ci_level: confidence level.
        n_bins: calibration bins (ECE, reliability plots).
        seed: bootstrap seed.
        save_details: store a :class:`FairnessDetails` in ``engine.state.fairness_details[name]``.
        device: ignite metric device.
    """

    def __init__(
        self,
        spec: FairnessSpec | None = None,
        attributes: str | Sequence[str] | None = None,
        reference: int | str | Sequence[int | str] | None = None,
        group_names: Mapping[Any, Any] | None = None,
        unknown: str | None = None,
        min_group_size: int | None = None,
        threshold: float | str = 0.5,
        metrics: Sequence[str] | str | None = None,
        prefix: str | None = None,
        output_transform: Callable = PRED_LABEL,
        batch_transform: Callable | None = None,
        group_codes: Sequence[int] | None = None,
        label_names: Sequence[str] | None = None,
        output_index: int | None = None,
        n_bootstrap: int = 0,
        ci_level: float = 0.95,
        n_bins: int = 15,
        seed: int | None = None,
        save_details: bool = True,
        device: str | torch.device = "cpu",
    ) -> None:
        if metrics is None:
            metrics = CONSOLE_METRICS
        self.metrics = (
            None if metrics == "all" else [str(m) for m in ([metrics] if isinstance(metrics, str) else metrics)]
        )
        self.save_details = save_details
        self._details: FairnessDetails | None = None
        super().__init__(
            spec,
            attributes=attributes,
            reference=reference,
            group_names=group_names,
            unknown=unknown,
            min_group_size=min_group_size,
            output_index=output_index,
            output_transform=output_transform,
            batch_transform=batch_transform,
            cumulative_kwargs=dict(
                threshold=threshold,
                group_codes=group_codes,
                label_names=label_names,
                n_bins=n_bins,
                n_bootstrap=n_bootstrap,
                ci_level=ci_level,
                seed=seed,
            ),
            device=device,
        )
        self.prefix = prefix if prefix is not None else "+".join(self.spec.attributes) + "/"

    def compute(self) -> dict[str, float]:
        """Flat ``{key: float}`` of the selected metrics of the gathered data (plus CI bounds with bootstrap)."""
        y_pred, y, groups = self.gathered()
        table = self.table()
        values = table.as_flat_dict(prefix=self.prefix, metrics=self.metrics)
        notes = [f"{n}: {table.flags[c]}" for c, n in zip(table.group_codes, table.group_names) if table.flags.get(c)]
        if notes:
            logger.info("%s NaN reasons: %s", self.prefix or "fairness", " | ".join(notes))
        if table.flags.get(table.reference):
            logger.warning(
                "%s: reference group %s is not estimable (%s); every gap is NaN this epoch.",
                self._name,
                table.reference_name,
                table.flags[table.reference],
            )
        self._details = FairnessDetails(
            table, values, y_pred, y, groups, self.prefix, self.cumulative.n_bins, self.cumulative.min_group_size
        )
        return values

    def completed(self, engine: Engine, name: str) -> None:
        """Write the flat values into ``engine.state.metrics`` and the details into ``engine.state``."""
        super().completed(engine, name)
        if self.save_details and self._details is not None:
            self._store_details(engine, name, self._details)
