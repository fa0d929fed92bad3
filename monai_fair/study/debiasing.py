# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""One seed of a debiasing study: evaluate the standard model, fit every debiaser on validation, evaluate on test.

Validation figures are bootstrap means (the studies' protocol); test figures are point estimates at the threshold
chosen on validation, with bootstrap percentile intervals. Every figure comes from
:func:`monai_fair.metrics.summarize_binary_fairness` with the study's :class:`~monai_fair.metrics.FairnessSpec`
(attributes, reference group, metric, epsilon, unknown-code policy, output index, minimum group size).
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from monai.utils import set_determinism

from monai_fair.metrics import FairnessSpec, best_balanced_accuracy_threshold

from .artefacts import load_debiased, save_debiased, save_seed_results
from .runtime import is_main_process

__all__ = ["DebiasingStudy", "accuracy_bounds"]

logger = logging.getLogger(__name__)


def accuracy_bounds(debiasers: Mapping[str, Any]) -> dict[str, float]:
    """The absolute model-selection accuracy bound ϱ of every debiaser that has one (drawn on trajectories);
    a bound relative to the standard model (``rho_relative``) has no fixed value and is left out."""
    out = {}
    for method, debiaser in debiasers.items():
        rho = getattr(debiaser, "rho", None)
        if rho is not None and getattr(debiaser, "rho_relative", None) is None:
            out[method] = float(rho)
    return out


class DebiasingStudy:
    """Evaluate a trained classifier and every configured debiaser for one seed.

    Args:
        model: the trained (standard) classifier.
        val_loader: validation loader (MONAI dict batches); debiasers are fitted on it.
        test_loader: test loader.
        debiasers: ``{name: Debiaser}``; an empty mapping evaluates the standard model only.
        methods: names of ``debiasers`` to run, in report order (default: all; one name: that one), e.g. from
            ``--methods``.
        spec: the study's fairness spec (default ``FairnessSpec()``).
        checkpoint: state-dict file of the trained model to load first (``weights_only=True``); optional.
        output_dir: where debiased models, post-processors and ``results.json`` are written.
        image_key: batch key of the input.
        label_key: batch key of the binary label(s); column ``spec.output_index`` is evaluated.
        activation: how the positive-class probability is read from the output (see ``positive_probability``).
        n_bootstrap: resamples for validation means and test intervals (the studies use 100).
        ci_level: level of the test intervals.
        n_thresholds: ``None`` (default) searches the standard model's balanced-accuracy-optimal threshold over
            the observed validation scores; an int restricts it to a ``linspace(0, 1, n_thresholds)`` grid.
        seed: the study seed (recorded, the bootstrap's resampling seed, and the random state every method's fit
            starts from, ``monai.utils.set_determinism(seed)``).
        summary_writer: optional TensorBoard ``SummaryWriter``; debiasing trajectories are drawn there.
        device: device to run on (default: the model's).
        amp: bf16 autocast when collecting outputs on CUDA.

    Raises:
        ValueError: a method in ``methods`` is not configured.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        val_loader: Iterable[Mapping[str, Any]],
        test_loader: Iterable[Mapping[str, Any]],
        debiasers: Mapping[str, Any] | None = None,
        methods: Iterable[str] | None = None,
        spec: FairnessSpec | None = None,
        checkpoint: str | os.PathLike | None = None,
        output_dir: str | os.PathLike = "eval",
        image_key: str = "image",
        label_key: str = "label",
        activation: str = "sigmoid",
        n_bootstrap: int = 100,
        ci_level: float = 0.95,
        n_thresholds: int | None = None,
        seed: int = 0,
        summary_writer: Any = None,
        device: torch.device | str | None = None,
        amp: bool = True,
    ) -> None:
        debiasers = dict(debiasers or {})
        methods = list(debiasers) if methods is None else [methods] if isinstance(methods, str) else list(methods)
        unknown = [m for m in methods if m not in debiasers]
        if unknown:
            raise ValueError(f"unknown debiasing methods {unknown}; configured: {sorted(debiasers)}.")
        self.model = model
        self.val_loader = val_loader
        self.test_loader = test_loader
        self.debiasers = {m: debiasers[m] for m in methods}
        self.spec = spec if spec is not None else FairnessSpec()
        self.checkpoint = checkpoint
        self.output_dir = Path(output_dir)
        self.image_key = image_key
        self.label_key = label_key
        self.activation = activation
        self.n_bootstrap = int(n_bootstrap)
        self.ci_level = float(ci_level)
        self.n_thresholds = None if n_thresholds is None else int(n_thresholds)
        self.seed = int(seed)
        self.summary_writer = summary_writer
        self.device = device
        self.amp = amp
        self.records: list[dict[str, Any]] = []
        self.trajectories: dict[str, dict[str, list[float]]] = {}

    def _outputs(self, model: torch.nn.Module, loader: Iterable[Mapping[str, Any]]):
        from monai_fair.debias.base import collect_outputs

        device = self.device if self.device is not None else next(model.parameters()).device
        return collect_outputs(
            model,
            loader,
            self.spec,
            device=device,
            image_key=self.image_key,
            label_key=self.label_key,
            activation=self.activation,
            amp=self.amp,
        )

    def evaluate(self, scores, labels, groups, threshold: float, bootstrap_mean: bool) -> dict[str, float]:
        """The study's figures of ``scores > threshold`` (hard predictions: ``threshold=0.5``).

        Args:
            scores: probabilities or hard 0/1 predictions.
            labels: binary labels.
            groups: group codes (``spec.group_codes``).
            threshold: decision threshold.
            bootstrap_mean: report bootstrap means as the figures (validation protocol).
        """
        return self.spec.summarize(
            scores,
            labels,
            groups,
            threshold=threshold,
            n_bootstrap=self.n_bootstrap,
            ci_level=self.ci_level,
            seed=self.seed,
            bootstrap_mean=bootstrap_mean,
        )

    def _record(self, method: str, val: dict[str, Any], test: dict[str, Any], threshold: float, seconds: float):
        for split, figures in (("val", val), ("test", test)):
            rec = {"seed": self.seed, "method": method, "split": split, "threshold": threshold, **figures}
            if split == "val":
                rec["seconds"] = seconds
            self.records.append(rec)
        logger.info(
            "seed %s %-26s test BA %.3f  %s %+.3f  objective %.3f  (%.1f s)",
            self.seed,
            method,
            test["balanced_accuracy"],
            self.spec.metric.upper(),
            test["bias"],
            test["objective"],
            seconds,
        )

    def _log_trajectory(self, method: str, result: Any) -> None:
        traj = result.trajectory.as_dict()
        self.trajectories[method] = traj
        if self.summary_writer is None:
            return
        for i, step in enumerate(traj["step"]):
            for key in ("bias", "balanced_accuracy", "objective"):
                self.summary_writer.add_scalar(f"debias/{method}/{key}", traj[key][i], step)
        self.summary_writer.flush()

    def run(self, fit: bool = True) -> dict[str, Any] | None:
        """Evaluate ``standard`` and every method; write ``results.json``; return the seed's results.

        Under ``torch.distributed`` only rank 0 runs (the others return ``None``).

        Args:
            fit: fit every debiaser on validation and save it; ``False`` reloads the debiased models and
                post-processors a previous run saved in ``output_dir`` and evaluates them (``results_reloaded.json``).

        Returns:
            ``{"seed", "records", "trajectories", "rho", "spec"}``: one record per method and split (see
            :mod:`monai_fair.report.results`), the debiasing trajectories, the absolute accuracy bounds
            (:func:`accuracy_bounds`) and the spec's settings.
        """
        if not is_main_process():
            return None
        self.records, self.trajectories = [], {}
        if self.checkpoint is not None:
            state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
            self.model.load_state_dict(state)
        self.model.eval()
        t0 = time.perf_counter()
        val_probs, val_y, val_g = self._outputs(self.model, self.val_loader)
        test_probs, test_y, test_g = self._outputs(self.model, self.test_loader)
        threshold, _ = best_balanced_accuracy_threshold(val_probs, val_y, self.n_thresholds)
        self._record(
            "standard",
            self.evaluate(val_probs, val_y, val_g, threshold, True),
            self.evaluate(test_probs, test_y, test_g, threshold, False),
            threshold,
            time.perf_counter() - t0,
        )
        for method, debiaser in self.debiasers.items():
            # each method starts from the seed's random state, so its result does not depend on which methods ran
            # before it (a DataLoader pass alone draws from the global generator)
            set_determinism(seed=self.seed)
            t0 = time.perf_counter()
            if fit:
                result = debiaser.fit(copy.deepcopy(self.model), self.val_loader)
                fitted, threshold = result.postprocessor or result.model, result.threshold
            else:
                fitted, threshold = load_debiased(copy.deepcopy(self.model), self.output_dir, method)
            seconds = time.perf_counter() - t0
            if isinstance(fitted, torch.nn.Module):
                val_scores, _, _ = self._outputs(fitted, self.val_loader)
                test_scores, _, _ = self._outputs(fitted, self.test_loader)
                val_t = test_t = threshold
            else:  # a post-processor's hard decisions
                val_scores, test_scores = fitted.predict(val_probs, val_g), fitted.predict(test_probs, test_g)
                val_t = test_t = 0.5
            self._record(
                method,
                self.evaluate(val_scores, val_y, val_g, val_t, True),
                self.evaluate(test_scores, test_y, test_g, test_t, False),
                threshold,
                seconds,
            )
            if fit:
                save_debiased(self.output_dir, method, result)
                self._log_trajectory(method, result)
        out = {
            "seed": self.seed,
            "records": self.records,
            "trajectories": self.trajectories,
            "rho": accuracy_bounds(self.debiasers),
            "spec": self.spec.as_dict(),
        }
        save_seed_results(self.output_dir, out, "results.json" if fit else "results_reloaded.json")
        return out
