# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Label-free fairness monitoring: a trained fairness critic predicts the SPD of unlabelled inference batches.

The critic ``P`` of Li et al. 2021 (:class:`~monai_fair.networks.BiasCriticHeads`) reads the feature generator's
output and predicts the statistical parity difference of a batch. At inference time no label and no sensitive
attribute is needed: :class:`CriticFairnessMonitor` hooks the network's feature module, and after every iteration
logs ``P``'s prediction for the batch to TensorBoard (and keeps it in ``engine.state.metrics``). How far to trust
it is the critic's correlation with the true batch SPD on held-out data (the study reports it as ``critic_corr``);
a critic whose correlation is near zero predicts nothing.

Monitoring never ends a run: if a prediction cannot be made (no features captured, a shape mismatch), the handler
logs NaN, counts the failure and warns once.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from typing import Any

import torch
from torch import nn

from monai_fair.networks.critic import FeatureHook

__all__ = ["CriticFairnessMonitor"]

logger = logging.getLogger(__name__)


class CriticFairnessMonitor:
    """Log the critic's predicted batch SPD of every (unlabelled) batch an engine runs.

    Args:
        bias_heads: the trained critic (``predict_spd(features)``, e.g. :class:`~monai_fair.networks.BiasCriticHeads`).
        feature_module: name of the network's submodule whose output (``capture="output"``) or input is the
            critic's input (``"avgpool"`` for :class:`~monai_fair.networks.FairVGG`: the output of ``G``).
        capture: ``"output"`` or ``"input"`` of ``feature_module``.
        network: the network to hook (default: ``engine.network`` when the run starts).
        summary_writer: a TensorBoard ``SummaryWriter``; or give ``log_dir`` (a writer is created there).
        log_dir: folder of a new ``SummaryWriter`` when ``summary_writer`` is ``None``; neither: no TensorBoard.
        tag: scalar tag of the per-batch prediction; the epoch mean is logged as ``<tag>_epoch_mean``.
        min_batch_size: batches smaller than this give NaN (a batch statistic of one sample is meaningless).
        output_file: optional CSV written when the run completes (``batch, predicted_spd``; NaN rows kept).

    Attributes:
        values: every per-batch prediction, in order (NaN where none could be made).
        failures: number of batches without a prediction.
    """

    def __init__(
        self,
        bias_heads: nn.Module,
        feature_module: str = "avgpool",
        capture: str = "output",
        network: nn.Module | None = None,
        summary_writer: Any = None,
        log_dir: str | None = None,
        tag: str = "critic/predicted_spd",
        min_batch_size: int = 2,
        output_file: str | None = None,
    ) -> None:
        if not hasattr(bias_heads, "predict_spd"):
            raise TypeError(f"{type(bias_heads).__name__} has no predict_spd(features); pass a BiasCriticHeads.")
        if capture not in ("input", "output"):
            raise ValueError(f"capture must be 'input' or 'output', got {capture!r}.")
        self.bias_heads, self.feature_module, self.capture = bias_heads, feature_module, capture
        self.network = network
        self.summary_writer = summary_writer
        self.log_dir = log_dir
        self.tag = tag
        self.min_batch_size = int(min_batch_size)
        self.output_file = output_file
        self.values: list[float] = []
        self.failures = 0
        self._epoch: list[float] = []
        self._hook: FeatureHook | None = None
        self._warned = False

    def attach(self, engine: Any) -> None:
        """Hook the network and register the handlers on ``engine``."""
        from ignite.engine import Events

        if self.network is not None:
            self._hook = FeatureHook(self.network, self.feature_module, self.capture)
        else:  # a MONAI workflow sets ``engine.network`` after attaching its handlers: hook it when the run starts
            engine.add_event_handler(Events.STARTED, self._hook_engine_network)
        if self.summary_writer is None and self.log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.summary_writer = SummaryWriter(self.log_dir)
        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)
        if self.output_file is not None:
            engine.add_event_handler(Events.COMPLETED, self._write)

    def _write(self, engine: Any) -> None:
        try:
            import pandas as pd

            os.makedirs(os.path.dirname(os.path.abspath(self.output_file)), exist_ok=True)
            pd.DataFrame({"batch": range(len(self.values)), "predicted_spd": self.values}).to_csv(
                self.output_file, index=False
            )
        except OSError as e:  # monitoring never ends a run
            warnings.warn(f"CriticFairnessMonitor: could not write {self.output_file}: {e}", stacklevel=2)

    def _hook_engine_network(self, engine: Any) -> None:
        if self._hook is not None:
            return
        network = getattr(engine, "network", None)
        if network is None:
            raise ValueError("CriticFairnessMonitor needs a network: pass network= or attach to a MONAI workflow.")
        self._hook = FeatureHook(network, self.feature_module, self.capture)

    def _warn(self, reason: str) -> None:
        self.failures += 1
        if not self._warned:
            self._warned = True
            warnings.warn(f"CriticFairnessMonitor: no prediction for a batch ({reason}); logging NaN.", stacklevel=2)

    def predict(self) -> float:
        """The critic's prediction for the features captured by the latest forward pass (NaN with a warning)."""
        try:
            feats = self._hook.features if self._hook is not None else None
            if feats is None:
                raise RuntimeError("not attached")
            if feats.shape[0] < self.min_batch_size:
                self._warn(f"batch of {feats.shape[0]} < min_batch_size={self.min_batch_size}")
                return math.nan
            was_training = self.bias_heads.training
            self.bias_heads.eval()
            with torch.no_grad():
                p = self.bias_heads.predict_spd(feats.detach().to(next(self.bias_heads.parameters()).device).float())
            self.bias_heads.train(was_training)
            return float(p)
        except Exception as e:  # monitoring never ends a run
            self._warn(f"{type(e).__name__}: {e}")
            return math.nan

    def _epoch_started(self, engine: Any) -> None:
        self._epoch = []

    def __call__(self, engine: Any) -> None:
        value = self.predict()
        self.values.append(value)
        self._epoch.append(value)
        engine.state.metrics[self.tag] = value
        if self.summary_writer is not None:
            self.summary_writer.add_scalar(self.tag, value, engine.state.iteration)

    def _epoch_completed(self, engine: Any) -> None:
        finite = [v for v in self._epoch if math.isfinite(v)]
        mean = sum(finite) / len(finite) if finite else math.nan
        engine.state.metrics[f"{self.tag}_epoch_mean"] = mean
        if self.summary_writer is not None:
            self.summary_writer.add_scalar(f"{self.tag}_epoch_mean", mean, engine.state.epoch)
            self.summary_writer.flush()
        logger.info("critic-predicted SPD: epoch mean %.4f over %d batch(es)", mean, len(finite))
