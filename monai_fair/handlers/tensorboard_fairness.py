# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""TensorBoard logging of group fairness: per-group scalars and gaps, ROC and reliability plots, a Markdown table.

:class:`FairnessTensorBoardHandler` reads what :class:`~monai_fair.handlers.fairness_metric.GroupFairnessMetric`
left in ``engine.state.fairness_details`` at the end of each epoch, so it must be attached to the same engine
(in a MONAI workflow: metrics go in ``additional_metrics``, this handler in ``val_handlers``; MONAI attaches the
metrics first, so they complete before this handler runs).
"""

from __future__ import annotations

import atexit
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import ignite.distributed as idist
import pandas as pd
import torch
from ignite.engine import Engine, Events
from ignite.metrics import Metric
from torch.utils.tensorboard import SummaryWriter

from ..metrics.fairness_table import estimable_plot_inputs
from ..metrics.spec import FairnessSpec
from ..report.group_plots import figure_to_array, plot_group_calibration, plot_group_roc
from ..report.tables import markdown_table
from .fairness_metric import FAIRNESS_DETAILS, FairnessDetails, resolve_spec

__all__ = ["FairnessTensorBoardHandler", "fairness_markdown"]

logger = logging.getLogger(__name__)


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return "NaN" if math.isnan(x) else f"{x:.4g}"
    return str(x)


def fairness_markdown(details: FairnessDetails, digits: int = 4, spec: FairnessSpec | None = None) -> str:
    """Markdown rendering of a fairness table: per-group rows (with CIs when present), summary, flags.

    Args:
        details: what the fairness metric stored for one epoch.
        digits: significant digits.
        spec: with a spec, its settings head the text and the groups whose signed gap ``spec.metric`` to the
            reference reaches ``spec.epsilon`` are listed.

    Returns:
        Markdown text (pipe tables), aggregates only.
    """
    table = details.table
    df = table.to_dataframe()
    df = df.reset_index() if not isinstance(df.index, pd.RangeIndex) else df
    cells = df.map(lambda v: _fmt(float(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v))
    parts = [markdown_table(cells)]
    if spec is not None:
        settings = ", ".join(f"{k}={v}" for k, v in spec.as_dict().items())
        gap = table.gaps[spec.metric].detach().cpu().reshape(len(table.group_codes), -1)
        beyond = [
            f"{name} ({_fmt(float(gap[i].abs().max()))})"
            for i, name in enumerate(table.group_names)
            if bool((gap[i].abs() >= spec.epsilon).any())
        ]
        verdict = ", ".join(beyond) if beyond else "none"
        parts.insert(0, f"spec: {settings}\n\n|{spec.metric}| ≥ {spec.epsilon:g} vs {table.reference_name}: {verdict}")
    summary = details.values
    picked = {k: v for k, v in summary.items() if not any(k.endswith(f"_{g}") for g in table.group_names)}
    if picked:
        rows = pd.DataFrame({"summary": list(picked), "value": [_fmt(float(v)) for v in picked.values()]})
        parts.append(markdown_table(rows))
    if table.flags:
        names = dict(zip(table.group_codes, table.group_names))
        parts.append("\n".join(f"* **{names.get(c, c)}**: {msg}" for c, msg in table.flags.items()))
    return "\n\n".join(parts)


def _has_stats_writer(engine: Engine) -> bool:
    """Whether a MONAI ``TensorBoardStatsHandler`` is attached to ``engine`` (it logs ``engine.state.metrics``)."""
    from monai.handlers import TensorBoardStatsHandler

    for handlers in engine._event_handlers.values():
        for entry in handlers:
            owner = getattr(entry[0], "__self__", None)
            if isinstance(owner, TensorBoardStatsHandler):
                return True
    return False


class FairnessTensorBoardHandler:
    """Write group fairness results to TensorBoard after every (``epoch_interval``-th) epoch.

    For every fairness metric found in ``engine.state.fairness_details`` (or the ``metric_names`` given):

    * scalars ``{tag_prefix}{key}`` for every flat value (``fairness/sex/tpr_F``, ``fairness/sex/eod_F`` ...), plus a
      custom-scalars layout with one multi-line chart per metric (all groups in one chart);
    * images ``{tag_prefix}{prefix}roc`` and ``{tag_prefix}{prefix}calibration`` (per-group ROC curves and
      reliability diagrams, one panel per label);
    * text ``{tag_prefix}{prefix}table``: the per-group table as Markdown with summary and flags.

    Only rank 0 writes. Drawing the two figures takes CPU time (benchmarks/handler_bench.py); with ``background=True``
    (default) they are drawn and written by one worker thread while the workflow goes on (the next training epoch),
    at most one epoch behind; :meth:`flush` / :meth:`close` wait for it (also run at interpreter exit). Matplotlib
    is used through its object-oriented Agg API only (per-figure canvases, per-thread font cache). Raise
    ``image_interval`` to draw less often.

    Args:
        summary_writer: an existing ``SummaryWriter``; if None one is created on ``log_dir`` (and closed by
            :meth:`close`).
        log_dir: directory of the created writer.
        metric_names: fairness metric names to log (``None``: all).
        tag_prefix: prefix of every tag.
        log_scalars: write the flat values as scalars; ``None`` (default) writes them only when no MONAI
            ``TensorBoardStatsHandler`` is attached to the engine (it already logs ``engine.state.metrics``), so
            each scalar is written once.
        log_images: write ROC and reliability figures.
        log_table: write the Markdown table.
        table_dir: also write each logged epoch's full table as CSV (``<table_dir>/<prefix>epoch_<step>.csv``);
            ``None`` writes no file.
        epoch_interval: log every n-th epoch.
        image_interval: draw figures every n-th logged epoch.
        global_epoch_transform: maps ``engine.state.epoch`` to the TensorBoard step (as in MONAI's
            ``TensorBoardStatsHandler``).
        background: draw and write the figures in a worker thread (``False``: synchronously, in the handler).
        spec: the study's :class:`~monai_fair.metrics.spec.FairnessSpec`; its settings and the groups beyond its
            ``epsilon`` on its ``metric`` are written with the Markdown table.
        metric, epsilon: spec fields (override the spec's, or make one with the default attribute).
        metrics: name → fairness metric to attach to the engine if the workflow did not (MONAI attaches
            ``additional_metrics`` only with a ``key_val_metric``); their names are logged like the others.
    """

    def __init__(
        self,
        summary_writer: SummaryWriter | None = None,
        log_dir: str = "./runs",
        metric_names: Sequence[str] | None = None,
        tag_prefix: str = "fairness/",
        log_scalars: bool | None = None,
        log_images: bool = True,
        log_table: bool = True,
        table_dir: str | None = None,
        epoch_interval: int = 1,
        image_interval: int = 1,
        global_epoch_transform: Callable[[int], int] = lambda x: x,
        background: bool = True,
        spec: FairnessSpec | None = None,
        metric: str | None = None,
        epsilon: float | None = None,
        metrics: Mapping[str, Metric] | None = None,
    ) -> None:
        self.metrics = dict(metrics or {})
        self.spec = (
            None
            if spec is None and metric is None and epsilon is None
            else resolve_spec(spec, metric=metric, epsilon=epsilon)
        )
        self._writer = summary_writer
        self._own_writer = summary_writer is None
        self.log_dir = log_dir
        self.metric_names = None if metric_names is None else list(metric_names)
        self.tag_prefix = tag_prefix
        self.log_scalars = log_scalars
        self.log_images = log_images
        self.log_table = log_table
        self.table_dir = table_dir
        self.epoch_interval = max(1, int(epoch_interval))
        self.image_interval = max(1, int(image_interval))
        self.global_epoch_transform = global_epoch_transform
        self.background = background
        self._layout: dict[str, dict[str, list]] = {}
        self._n_logged = 0
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    @property
    def writer(self) -> SummaryWriter:
        """The summary writer (created lazily, on rank 0 only)."""
        if self._writer is None:
            self._writer = SummaryWriter(log_dir=self.log_dir)
        return self._writer

    def attach(self, engine: Engine) -> None:
        """Register on ``EPOCH_COMPLETED`` (every ``epoch_interval`` epochs); attach ``metrics`` not yet attached.

        MONAI's workflows register ``additional_metrics`` only next to a ``key_val_metric``: without one, the
        fairness metrics are silently never computed. This is detected here and warned about (or repaired, for the
        metrics handed to ``metrics``).
        """
        for name, metric in self.metrics.items():
            if not metric.is_attached(engine):
                metric.attach(engine, name)
                logger.info("FairnessTensorBoardHandler: attached fairness metric %r to the engine.", name)
        if not self.metrics and getattr(engine.state, "key_metric_name", "") is None:
            logger.warning(
                "FairnessTensorBoardHandler: the engine has no key_val_metric, so MONAI does not attach its "
                "additional_metrics and no fairness metric will be computed. Give the evaluator a key_val_metric, "
                "or pass the fairness metrics to this handler's 'metrics' to attach them."
            )
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.epoch_interval), self)

    def __call__(self, engine: Engine) -> None:
        """Log every selected fairness metric of the epoch that just completed."""
        if idist.get_rank() != 0:
            return
        store = getattr(engine.state, FAIRNESS_DETAILS, None) or {}
        names = self.metric_names if self.metric_names is not None else list(store)
        missing = [n for n in names if n not in store]
        if missing:
            logger.warning("FairnessTensorBoardHandler: no fairness details for %s (metric not attached?).", missing)
        if not names:
            logger.warning(
                "FairnessTensorBoardHandler: no fairness metric ran this epoch (without a key_val_metric MONAI "
                "attaches no additional_metrics); nothing to write."
            )
        if self.log_scalars is None:
            self.log_scalars = not _has_stats_writer(engine)
        step = self.global_epoch_transform(engine.state.epoch)
        draw = self._n_logged % self.image_interval == 0
        for name in names:
            if name in store:
                self.write(store[name], step, draw_images=draw)
        self._n_logged += 1
        self.writer.flush()

    def write(self, details: FairnessDetails, step: int, draw_images: bool = True) -> None:
        """Write one metric's details at ``step`` (usable without an engine)."""
        base = f"{self.tag_prefix}{details.prefix}"
        table = details.table
        if self.log_scalars:
            for key, value in details.values.items():
                self.writer.add_scalar(f"{self.tag_prefix}{key}", float(value), step)
            self._update_layout(details)
        if self.log_table:
            self.writer.add_text(f"{base}table", fairness_markdown(details, spec=self.spec), step)
        if self.table_dir is not None:
            path = os.path.join(self.table_dir, f"{details.prefix.replace('/', '_')}epoch_{step}.csv")
            os.makedirs(self.table_dir, exist_ok=True)
            table.to_dataframe().to_csv(path, index=False)
        if self.log_images and draw_images:
            self._submit(self._write_images, details, step)

    def _write_images(self, details: FairnessDetails, step: int) -> None:
        base = f"{self.tag_prefix}{details.prefix}"
        y_pred, y, groups, kwargs = estimable_plot_inputs(
            details.table, details.y_pred, details.y, details.groups, details.min_group_size
        )
        thr = details.table.threshold
        thr = None if thr is None else [float(v) for v in torch.as_tensor(thr).reshape(-1).tolist()]
        # each group's operating point at the decision threshold (NaN under a degenerate epoch: no marker)
        thr = None if thr is None or any(math.isnan(v) for v in thr) else (thr[0] if len(thr) == 1 else thr)
        roc = plot_group_roc(y_pred, y, groups, threshold=thr, **kwargs)
        self.writer.add_image(f"{base}roc", figure_to_array(roc), step, dataformats="HWC")
        cal = plot_group_calibration(y_pred, y, groups, n_bins=details.n_bins, **kwargs)
        self.writer.add_image(f"{base}calibration", figure_to_array(cal), step, dataformats="HWC")
        self.writer.flush()

    def _submit(self, fn: Callable, *args: Any) -> None:
        """Run ``fn`` now, or in the worker thread after the previous job (one pending job: bounded, in order)."""
        if not self.background:
            fn(*args)
            return
        self._wait(raise_errors=False)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fairness-tensorboard")
            atexit.register(self._drain)
        self._pending = self._executor.submit(fn, *args)

    def _wait(self, raise_errors: bool) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        error = pending.exception()
        if error is not None:
            if raise_errors:
                raise error
            logger.error("FairnessTensorBoardHandler: drawing figures failed: %r", error)

    def _drain(self) -> None:
        """atexit: finish the pending figures and flush, never raising."""
        try:
            self.flush()
        except Exception as e:  # noqa: BLE001 - interpreter shutdown: report, do not raise
            logger.error("FairnessTensorBoardHandler: %r", e)

    def flush(self) -> None:
        """Wait for figures still being drawn, then flush the writer.

        Raises:
            Exception: the error of a failed background drawing job.
        """
        self._wait(raise_errors=True)
        if self._writer is not None:
            self._writer.flush()

    def _update_layout(self, details: FairnessDetails) -> None:
        """Custom-scalars layout: one multi-line chart per metric stem holding every group (and label), and, with
        bootstrap intervals, one margin chart (value with its CI band) per key in a ``<category>/ci`` category.

        TensorBoard keeps one layout per run, so the layout of every metric seen so far is rewritten together
        whenever a new metric (category) appears.
        """
        category = f"{self.tag_prefix}{details.prefix}".rstrip("/")
        if category in self._layout:
            return
        table = details.table
        stems = sorted(set(table.per_group) | set(table.gaps) | set(table.summary), key=len, reverse=True)
        charts: dict[str, list[str]] = {}
        margins: dict[str, list] = {}
        for key in details.values:
            if key.endswith(("_ci_low", "_ci_high")):
                continue
            bare = key[len(details.prefix) :] if key.startswith(details.prefix) else key
            stem = next((s for s in stems if bare == s or bare.startswith(s + "_")), bare)
            charts.setdefault(stem, []).append(f"{self.tag_prefix}{key}")
            if f"{key}_ci_low" in details.values and f"{key}_ci_high" in details.values:
                tags = [f"{self.tag_prefix}{key}{suffix}" for suffix in ("", "_ci_low", "_ci_high")]
                margins[bare] = ["Margin", tags]
        self._layout[category] = {stem: ["Multiline", tags] for stem, tags in charts.items()}
        if margins:
            self._layout[f"{category}/ci"] = margins
        self.writer.add_custom_scalars(self._layout)

    def close(self) -> None:
        """Wait for pending figures, stop the worker and close the writer if this handler created it."""
        try:
            self.flush()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
                atexit.unregister(self._drain)
            if self._own_writer and self._writer is not None:
                self._writer.close()
                self._writer = None
