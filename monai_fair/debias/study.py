# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""One seed of a debiasing study: evaluate the standard model, fit every debiaser on validation, evaluate on test.

Validation figures are bootstrapped means (the studies' protocol); test figures are point estimates at the
threshold chosen on validation, with bootstrap percentile intervals.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from monai_fair.metrics import BIAS_KINDS

from .base import Debiaser, DebiasResult, collect_outputs, evaluate_binary, evaluate_hard_predictions
from .unit_mask import load_unit_masked_state_dict

__all__ = ["DebiasingStudy", "load_debiased", "write_debiasing_report"]

logger = logging.getLogger(__name__)


class DebiasingStudy:
    """Evaluate a trained classifier and every configured debiaser for one seed.

    Args:
        model: the trained (standard) classifier.
        val_loader: validation loader (MONAI dict batches); debiasers are fitted on it.
        test_loader: test loader.
        debiasers: ``{name: Debiaser}`` in report order; an empty mapping evaluates the standard model only.
        methods: names of ``debiasers`` to run (default: all), e.g. from the bundle's ``--methods``.
        checkpoint: state-dict file of the trained model to load first (``weights_only=True``); optional.
        output_dir: where debiased models / post-processors and ``results.json`` are written.
        attribute_key: batch key of the group code.
        privileged: privileged group code.
        metric: the study's bias metric (``eod``, ``spd`` or ``aod``).
        epsilon: objective tolerance.
        image_key: batch key of the input.
        label_key: batch key of the binary label.
        activation: how the positive-class probability is read from the output (see ``positive_probability``).
        n_bootstrap: resamples for validation means and test intervals (the studies use 100).
        seed: the study seed (recorded, and used for bootstrap resampling).
        summary_writer: optional TensorBoard ``SummaryWriter``; debiasing trajectories are drawn there.
        device: device to run on (default: the model's).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        val_loader: Iterable[Mapping[str, Any]],
        test_loader: Iterable[Mapping[str, Any]],
        debiasers: Mapping[str, Debiaser] | None = None,
        methods: Iterable[str] | None = None,
        checkpoint: str | None = None,
        output_dir: str | Path = "eval",
        attribute_key: str = "sex",
        privileged: int = 1,
        metric: str = "eod",
        epsilon: float = 0.05,
        image_key: str = "image",
        label_key: str = "label",
        activation: str = "sigmoid",
        n_bootstrap: int = 100,
        seed: int = 0,
        summary_writer: Any = None,
        device: torch.device | str | None = None,
    ) -> None:
        debiasers = dict(debiasers or {})
        methods = list(debiasers) if methods is None else list(methods)
        unknown = [m for m in methods if m not in debiasers]
        if unknown:
            raise ValueError(f"unknown debiasing methods {unknown}; configured: {sorted(debiasers)}.")
        if metric not in BIAS_KINDS:
            raise ValueError(f"metric must be one of {BIAS_KINDS}, got {metric!r}.")
        self.model = model
        self.val_loader = val_loader
        self.test_loader = test_loader
        self.debiasers = {m: debiasers[m] for m in methods}
        self.checkpoint = checkpoint
        self.output_dir = Path(output_dir)
        self.attribute_key = attribute_key
        self.privileged = privileged
        self.metric = metric
        self.epsilon = epsilon
        self.image_key = image_key
        self.label_key = label_key
        self.activation = activation
        self.n_bootstrap = n_bootstrap
        self.seed = seed
        self.summary_writer = summary_writer
        self.device = device
        self.records: list[dict[str, Any]] = []
        self.trajectories: dict[str, dict[str, list[float]]] = {}

    def _outputs(self, model: torch.nn.Module, loader: Iterable[Mapping[str, Any]]):
        device = self.device if self.device is not None else next(model.parameters()).device
        return collect_outputs(
            model, loader, device, self.image_key, self.label_key, self.attribute_key, self.activation
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
            self.metric.upper(),
            test["bias"],
            test["objective"],
            seconds,
        )

    def _evaluate_hard(self, y_hat, labels, groups, bootstrap_mean: bool) -> dict[str, float]:
        out = evaluate_hard_predictions(
            y_hat, labels, groups, self.privileged, self.metric, self.epsilon, self.n_bootstrap, seed=self.seed
        )
        if bootstrap_mean and self.n_bootstrap > 0:
            # the studies report validation figures as bootstrap means
            for k in ("balanced_accuracy", "eod", "spd", "aod", "bias", "objective"):
                out[k] = out[f"{k}_boot_mean"]
        return out

    def _save(self, method: str, result: DebiasResult) -> None:
        """Write what :func:`load_debiased` needs to rebuild the result exactly (weights_only-loadable files)."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        info: dict[str, Any] = {"method": method, "threshold": float(result.threshold), "kind": "model"}
        if result.postprocessor is not None:
            pp = result.postprocessor
            info["kind"] = "postprocessor"
            info["postprocessor_class"] = f"{type(pp).__module__}:{type(pp).__qualname__}"
            torch.save(pp.state_dict(), self.output_dir / f"{method}_postprocessor.pt")
        else:
            torch.save(result.model.state_dict(), self.output_dir / f"{method}.pt")
        (self.output_dir / f"{method}.json").write_text(json.dumps(info, indent=2))
        if result.state:
            torch.save(result.state, self.output_dir / f"{method}_state.pt")

    def _log_trajectory(self, method: str, result: DebiasResult) -> None:
        traj = result.trajectory.as_dict()
        self.trajectories[method] = traj
        if self.summary_writer is None:
            return
        for i, step in enumerate(traj["step"]):
            for key in ("bias", "balanced_accuracy", "objective"):
                self.summary_writer.add_scalar(f"debias/{method}/{key}", traj[key][i], step)
        self.summary_writer.flush()

    def run(self, fit: bool = True) -> dict[str, Any]:
        """Evaluate ``standard`` and every method; write ``results.json``; return records and trajectories.

        Args:
            fit: fit every debiaser on validation (and save it); ``False`` reloads the debiased models and
                post-processors a previous run saved in ``output_dir`` and evaluates them (``evaluate.json``).
        """
        if self.checkpoint is not None:
            state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
            self.model.load_state_dict(state)
        self.model.eval()
        t0 = time.perf_counter()
        val_probs, val_y, val_g = self._outputs(self.model, self.val_loader)
        test_probs, test_y, test_g = self._outputs(self.model, self.test_loader)
        std = evaluate_binary(val_probs, val_y, val_g, self.privileged, self.metric, self.epsilon)
        self._record(
            "standard",
            self._evaluate_hard((val_probs > std.threshold).float(), val_y, val_g, True),
            self._evaluate_hard((test_probs > std.threshold).float(), test_y, test_g, False),
            std.threshold,
            time.perf_counter() - t0,
        )
        for method, debiaser in self.debiasers.items():
            t0 = time.perf_counter()
            if fit:
                result = debiaser.fit(copy.deepcopy(self.model), self.val_loader)
                fitted, threshold = result.postprocessor or result.model, result.threshold
            else:
                fitted, threshold = load_debiased(copy.deepcopy(self.model), self.output_dir, method)
            seconds = time.perf_counter() - t0
            if isinstance(fitted, torch.nn.Module):
                vp, _, _ = self._outputs(fitted, self.val_loader)
                tp, _, _ = self._outputs(fitted, self.test_loader)
                val_hat, test_hat = (vp > threshold).float(), (tp > threshold).float()
            else:
                val_hat, test_hat = fitted.predict(val_probs, val_g), fitted.predict(test_probs, test_g)
            self._record(
                method,
                self._evaluate_hard(val_hat, val_y, val_g, True),
                self._evaluate_hard(test_hat, test_y, test_g, False),
                threshold,
                seconds,
            )
            if fit:
                self._save(method, result)
                self._log_trajectory(method, result)
        out = {"seed": self.seed, "records": self.records, "trajectories": self.trajectories}
        self.output_dir.mkdir(parents=True, exist_ok=True)
        name = "results.json" if fit else "results_reloaded.json"
        (self.output_dir / name).write_text(json.dumps(out, indent=2, default=float))
        return out


def load_debiased(model: torch.nn.Module, folder: str | Path, method: str) -> tuple[Any, float]:
    """Rebuild a debiased model or post-processor saved by :class:`DebiasingStudy`.

    Args:
        model: a freshly built network of the study's architecture with the standard weights loaded (it is
            modified in place for intra-processing methods; unit masks of pruning are re-applied).
        folder: the study's output folder.
        method: method name.

    Returns:
        ``(model_or_postprocessor, threshold)``.
    """
    folder = Path(folder)
    info_path = folder / f"{method}.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"no saved result for method {method!r} in {folder}.")
    info = json.loads(info_path.read_text())
    if info["kind"] == "postprocessor":
        module, qualname = info["postprocessor_class"].split(":")
        cls = getattr(importlib.import_module(module), qualname)
        state = torch.load(folder / f"{method}_postprocessor.pt", map_location="cpu", weights_only=True)
        return cls.from_state_dict(state), float(info["threshold"])
    state = torch.load(folder / f"{method}.pt", map_location="cpu", weights_only=True)
    load_unit_masked_state_dict(model, state)
    return model, float(info["threshold"])


def write_debiasing_report(
    seed_runs: Iterable[Mapping[str, Any] | None],
    out_dir: str | Path,
    metric: str = "eod",
    epsilon: float = 0.05,
    title: str = "Debiasing study",
    settings: Mapping[str, Any] | None = None,
    demo: bool = False,
    rho: float | Mapping[str, float] | None = None,
) -> dict[str, str]:
    """Aggregate the per-seed outputs of :meth:`DebiasingStudy.run` and write the study report.

    Args:
        seed_runs: one ``DebiasingStudy.run()`` output per seed (``None`` entries, e.g. from non-zero DDP ranks,
            are ignored).
        out_dir: report folder.
        metric: the study's bias metric.
        epsilon: objective tolerance.
        title: report title.
        settings: run settings shown in the report.
        demo: results are on generated demo data (banner and labels say so).
        rho: accuracy bounds drawn on trajectories.

    Returns:
        the written paths (see :func:`monai_fair.report.write_study_report`).
    """
    from monai_fair.report import StudyResults, write_study_report

    results = StudyResults(metric=metric, epsilon=epsilon)
    runs = [r for r in seed_runs if r is not None]
    if not runs:
        raise ValueError("no seed produced results.")
    for run in runs:
        for rec in run["records"]:
            rec = dict(rec)
            seed, method, split = rec.pop("seed"), rec.pop("method"), rec.pop("split")
            values = {k: v for k, v in rec.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            results.add(seed, method, split, **values)
        for method, traj in run["trajectories"].items():
            results.add_trajectory(run["seed"], method, traj)
    paths = write_study_report(
        results, out_dir, metric=metric, epsilon=epsilon, title=title, settings=settings, demo=demo, rho=rho
    )
    logger.info("report written to %s", paths["report_html"])
    return paths
