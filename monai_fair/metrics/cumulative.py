# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""DDP-safe buffering of ``(prediction, label, group)`` triples for the group fairness table.

:class:`FairnessCumulative` is the middle layer of the "functional core → cumulative metric → handler" pattern:
it buffers every batch (a batch-first tensor or MONAI's decollated list of per-sample tensors), all-gathers the
buffers across ranks in :meth:`get_buffer`, and :meth:`aggregate` calls
:func:`~monai_fair.metrics.fairness_table.compute_fairness_table` on the gathered data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from monai.metrics import Cumulative
from monai.utils import evenly_divisible_all_gather

from .fairness_table import FairnessTable, compute_fairness_table, mask_threshold_dependent
from .thresholds import best_balanced_accuracy_threshold

__all__ = ["FairnessCumulative", "as_prediction_batch", "as_group_batch", "normalise_group_names"]

logger = logging.getLogger(__name__)


def _stack(data: Any, name: str) -> torch.Tensor:
    """One batch-first tensor from a tensor, an array, or a list of per-sample tensors/numbers."""
    if isinstance(data, torch.Tensor):
        t = data
    elif isinstance(data, np.ndarray):
        t = torch.from_numpy(data)
    elif isinstance(data, (list, tuple)):
        if len(data) == 0:
            raise ValueError(f"{name}: got an empty list.")
        if all(isinstance(x, (int, float, bool, np.number)) for x in data):
            return torch.tensor(data)  # per-sample scalars, e.g. group codes from decollated batch dicts
        # unwrap MetaTensors first: stacking them runs MONAI's meta propagation per item (~20x slower)
        items = [_plain(x) if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x)) for x in data]
        dev = items[0].device
        t = torch.stack([x.reshape(-1) if x.ndim > 1 else x for x in items]).to(dev)
    else:
        try:
            t = torch.as_tensor(data)
        except (TypeError, ValueError, RuntimeError) as e:
            raise TypeError(
                f"{name}: expected a tensor, an array or a list of per-sample values, got {type(data)}."
            ) from e
    # MONAI's MetaTensor carries per-sample meta that must not travel through the buffers and the all-gather
    return _plain(t)


def _plain(t: torch.Tensor) -> torch.Tensor:
    """The plain ``torch.Tensor`` view of a (Meta)Tensor."""
    return t.as_tensor() if hasattr(t, "as_tensor") else t


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _gather_device() -> torch.device:
    """The device collectives of the default process group run on (CUDA for NCCL, else CPU)."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def as_prediction_batch(y_pred: Any, y: Any, output_index: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise predictions and labels to ``(B,)`` (one label) or ``(B, L)`` (multi-label) float tensors.

    Accepts batch-first tensors ``(B,)``, ``(B, 1)``, ``(B, L)`` and decollated lists of per-sample tensors of
    shape ``()``, ``(1,)`` or ``(L,)``. With ``output_index`` a multi-column prediction (e.g. a 2-class softmax)
    is reduced to that column; the label is then either the same column of a one-hot label or ``label ==
    output_index`` for class-index labels. A single-column prediction has only column 0, whose label is the label.

    Args:
        y_pred: predicted probabilities.
        y: labels.
        output_index: column of ``y_pred`` holding the positive-class probability, or ``None`` to keep all columns.

    Returns:
        ``(y_pred, y)`` with identical shapes.

    Raises:
        ValueError: if shapes disagree.
    """
    p = _stack(y_pred, "y_pred")
    t = _stack(y, "y").to(p.device)
    single = p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1)
    if output_index is not None and not (single and output_index == 0):
        if p.ndim != 2 or not 0 <= output_index < p.shape[1]:
            raise ValueError(
                f"output_index={output_index} needs y_pred of shape (B, C>{output_index}), got {tuple(p.shape)}."
            )
        n_classes = p.shape[1]
        p = p[:, output_index]
        if t.ndim == 2 and t.shape[1] == n_classes and n_classes > 1:
            t = t[:, output_index]  # one-hot label
        else:
            t = (t.reshape(-1) == output_index).to(p.dtype)  # class-index label
    p = p.reshape(p.shape[0], -1)
    t = t.reshape(t.shape[0], -1)
    if p.shape[1] == 1 and t.shape[1] == 1:
        p, t = p[:, 0], t[:, 0]
    if p.shape != t.shape:
        raise ValueError(f"y_pred and y shapes differ after batching: {tuple(p.shape)} vs {tuple(t.shape)}.")
    return p, t


def as_group_batch(groups: Any, batch_size: int | None = None) -> torch.Tensor:
    """Normalise group codes to a ``(B,)`` int64 tensor.

    Args:
        groups: integer codes as a tensor ``(B,)``/``(B, 1)``, an array, or a list of per-sample codes.
        batch_size: expected ``B`` (checked when given).

    Raises:
        TypeError: for non-numeric codes (encode strings such as ``"F"``/``"M"`` to integer codes first).
        ValueError: for non-integer codes or a wrong batch size.
    """
    if isinstance(groups, (list, tuple)) and groups and isinstance(groups[0], str):
        raise TypeError(
            "group codes must be integers (e.g. sex F=0, M=1); encode strings before they reach the metric, "
            "see monai_fair.data.codes."
        )
    g = _stack(groups, "groups").reshape(-1)
    if g.is_floating_point():
        if not torch.all(torch.isfinite(g)) or not torch.equal(g, g.round()):
            raise ValueError("group codes must be integers; got non-integer or non-finite values.")
    elif g.dtype == torch.bool:
        g = g.long()
    g = g.long()
    if batch_size is not None and g.numel() != batch_size:
        raise ValueError(f"got {g.numel()} group codes for a batch of {batch_size} predictions.")
    return g


class FairnessCumulative(Cumulative):
    """Buffers ``(y_pred, y, group)`` over an epoch and computes the group fairness table of all of it.

    Unlike :class:`monai.metrics.Cumulative`, whole batches are buffered (no per-sample split) and concatenated
    once; :meth:`get_buffer` all-gathers them across ranks (uneven shards and ranks without any sample are
    handled), so every rank aggregates the same complete data set.

    ``y_pred`` must hold **probabilities** (apply ``sigmoid``/``softmax`` in post-processing first); thresholds,
    calibration and the score range checks assume ``[0, 1]``.

    Example::

        metric = FairnessCumulative(group_names={0: "F", 1: "M"}, reference=1)
        for batch in loader:
            metric(torch.sigmoid(model(batch["image"]))[:, 0], batch["label"], batch["sex"])
        table = metric.aggregate()      # FairnessTable
        metric.reset()

    Args:
        threshold: decision threshold for rate metrics, or ``"ba-optimal"`` to use the balanced-accuracy-optimal
            threshold of the whole (gathered) data, searched over the observed scores, per label. A label of one
            class has no such threshold: its threshold-dependent figures are NaN, flagged, and a warning is logged.
        reference: reference (privileged) group code for signed gaps; ``None`` = the table's default.
        group_codes: groups to report, in order (groups absent from the data are reported with n=0).
        group_names: code→name map (JSON string keys are accepted) or names in ``group_codes`` order.
        label_names: one name per label column for multi-label predictions.
        output_index: positive-class column of multi-column predictions (e.g. ``1`` for a 2-class softmax);
            ``None`` keeps every column (multi-label).
        min_group_size: groups smaller than this are flagged and their metrics are NaN.
        unknown: unknown-code policy, ``"exclude"`` or ``"group"`` (see
            :func:`~monai_fair.metrics.fairness_table.compute_fairness_table`).
        n_bins: calibration bins.
        n_bootstrap: bootstrap resamples for confidence intervals (0 = none).
        ci_level: confidence level of the intervals.
        seed: bootstrap seed.
    """

    def __init__(
        self,
        threshold: float | str = 0.5,
        reference: int | None = None,
        group_codes: Sequence[int] | None = None,
        group_names: Mapping[Any, str] | Sequence[str] | None = None,
        label_names: Sequence[str] | None = None,
        output_index: int | None = None,
        min_group_size: int = 10,
        n_bins: int = 15,
        n_bootstrap: int = 0,
        ci_level: float = 0.95,
        seed: int | None = None,
        unknown: str = "exclude",
    ) -> None:
        super().__init__()
        if isinstance(threshold, str) and threshold != "ba-optimal":
            raise ValueError(f"threshold must be a number or 'ba-optimal', got {threshold!r}.")
        self.threshold = threshold
        self.reference = None if reference is None else int(reference)
        self.group_codes = None if group_codes is None else [int(c) for c in group_codes]
        self.group_names = normalise_group_names(group_names)
        self.label_names = None if label_names is None else [str(n) for n in label_names]
        self.output_index = output_index
        self.unknown = unknown
        self.min_group_size = int(min_group_size)
        self.n_bins = int(n_bins)
        self.n_bootstrap = int(n_bootstrap)
        self.ci_level = float(ci_level)
        self.seed = seed

    def __call__(self, y_pred: Any, y: Any, groups: Any) -> None:
        """Buffer one batch (alias of :meth:`extend`)."""
        self.extend(y_pred, y, groups)

    def extend(self, *data: Any) -> None:
        """Buffer one batch: ``extend(y_pred, y, groups)``.

        Args:
            data: ``y_pred`` (probabilities), ``y`` (binary labels) and ``groups`` (integer codes), each a
                batch-first tensor/array or a decollated list of per-sample values.

        Raises:
            ValueError: wrong number of items, mismatched shapes, or a label width different from earlier batches.
        """
        if len(data) != 3:
            raise ValueError(f"FairnessCumulative.extend expects (y_pred, y, groups), got {len(data)} items.")
        self.extend_prepared(*self.prepare(*data))

    def prepare(self, y_pred: Any, y: Any, groups: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalise one batch to buffer layout: float64 ``(B,)``/``(B, L)`` predictions and labels, int64 groups.

        Fixed dtypes make every rank all-gather identical layouts. Metrics sharing one engine reuse the result.
        """
        p, t = as_prediction_batch(y_pred, y, self.output_index)
        g = as_group_batch(groups, p.shape[0]).to(p.device)
        return p.detach().to(torch.float64), t.detach().to(torch.float64), g.detach()

    def extend_prepared(self, p: torch.Tensor, t: torch.Tensor, g: torch.Tensor) -> None:
        """Buffer a batch already normalised by :meth:`prepare`."""
        if self._buffers is None:
            self._buffers = [[], [], []]
        elif self._buffers[0] and self._buffers[0][0].shape[1:] != p.shape[1:]:
            raise ValueError(
                f"prediction shape changed between batches: {tuple(self._buffers[0][0].shape[1:])} vs "
                f"{tuple(p.shape[1:])}."
            )
        for buf, x in zip(self._buffers, (p, t, g)):
            buf.append(x)
        self._synced = False

    def append(self, *data: Any) -> None:
        """Buffer a single sample ``append(y_pred, y, group)`` (channel-first, no batch dimension)."""
        if len(data) != 3:
            raise ValueError(f"FairnessCumulative.append expects (y_pred, y, group), got {len(data)} items.")
        self.extend([data[0]], [data[1]], [data[2]])

    def _sync(self) -> None:
        """Concatenate the local batches and all-gather them (every rank must call this, even with no data)."""
        if self._synced:
            return
        local = None if self._buffers is None else [torch.cat(b, dim=0) for b in self._buffers]
        if _world_size() > 1:
            # every rank must join each all_gather with tensors of the same rank: agree on the label width first
            # (-1: this rank saw no sample; 0: single label; L: multi-label)
            width = -1 if local is None else (local[0].shape[1] if local[0].ndim == 2 else 0)
            widths: list[Any] = [None] * _world_size()
            dist.all_gather_object(widths, width)
            widths = [int(w) for w in widths]
            known = {w for w in widths if w >= 0}
            if not known:
                self._synced_tensors, self._synced = None, True
                return
            if len(known) > 1:
                raise ValueError(f"ranks buffered predictions of different widths: {widths}.")
            if local is None:
                w = known.pop()
                shape = (0,) if w == 0 else (0, w)
                dev = _gather_device()
                local = [
                    torch.zeros(shape, dtype=torch.float64, device=dev),
                    torch.zeros(shape, dtype=torch.float64, device=dev),
                    torch.zeros((0,), dtype=torch.long, device=dev),
                ]
            self._synced_tensors = [evenly_divisible_all_gather(x, concat=True) for x in local]
        else:
            self._synced_tensors = local
        self._synced = True

    def __len__(self) -> int:
        """Number of gathered samples (triggers synchronisation)."""
        self._sync()
        return 0 if self._synced_tensors is None else int(self._synced_tensors[0].shape[0])

    def resolve_threshold(self, y_pred: torch.Tensor, y: torch.Tensor) -> float | torch.Tensor:
        """The numeric threshold: the configured number, or the BA-optimal observed score of the gathered data per
        label (NaN for a label of one class, where no threshold is better than another)."""
        if not isinstance(self.threshold, str):
            return float(self.threshold)
        columns = [(y_pred, y)] if y_pred.ndim == 1 else [(y_pred[:, j], y[:, j]) for j in range(y_pred.shape[1])]
        out = []
        for s, t in columns:
            try:
                out.append(best_balanced_accuracy_threshold(s, t)[0])
            except ValueError:  # one class: the balanced accuracy is undefined at every threshold
                out.append(float("nan"))
        return out[0] if y_pred.ndim == 1 else torch.tensor(out, dtype=torch.float64)

    def names_by_code(self, groups: torch.Tensor) -> dict[int, str] | None:
        """The code→name map; a list of names follows ``group_codes`` (or the sorted codes present)."""
        if not isinstance(self.group_names, list):
            return self.group_names
        codes = self.group_codes if self.group_codes is not None else sorted(torch.unique(groups).tolist())
        if len(codes) != len(self.group_names):
            raise ValueError(f"{len(self.group_names)} group names for {len(codes)} groups {codes}.")
        return dict(zip(codes, self.group_names))

    def aggregate(self) -> FairnessTable:
        """The fairness table of everything buffered (gathered across ranks).

        Raises:
            ValueError: if nothing was buffered on any rank.
        """
        buffers = self.get_buffer()
        if buffers is None or buffers[0].shape[0] == 0:
            raise ValueError("FairnessCumulative has no samples to aggregate.")
        y_pred, y, groups = buffers
        threshold = torch.as_tensor(self.resolve_threshold(y_pred, y), dtype=torch.float64).reshape(-1)
        undefined = torch.isnan(threshold)
        table = compute_fairness_table(
            y_pred,
            y,
            groups,
            threshold=torch.where(undefined, torch.full_like(threshold, 0.5), threshold),
            reference=self.reference,
            group_codes=self.group_codes,
            group_names=self.names_by_code(groups),
            label_names=self.label_names,
            min_group_size=self.min_group_size,
            n_bins=self.n_bins,
            n_bootstrap=self.n_bootstrap,
            ci_level=self.ci_level,
            seed=self.seed,
            unknown=self.unknown,
        )
        if not bool(undefined.any()):
            return table
        reason = "ba-optimal threshold undefined (labels of one class): threshold-dependent figures are NaN"
        logger.warning("FairnessCumulative: %s.", reason)
        return mask_threshold_dependent(table, undefined.tolist(), reason)


def normalise_group_names(group_names: Mapping[Any, str] | Sequence[str] | None) -> dict[int, str] | list[str] | None:
    """Integer keys for a code→name map (JSON configs deliver string keys such as ``{"0": "F"}``)."""
    if group_names is None:
        return None
    if isinstance(group_names, Mapping):
        return {int(k): str(v) for k, v in group_names.items()}
    return [str(n) for n in group_names]
