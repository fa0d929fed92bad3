# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The study report, declared once per bundle: per-seed results → aggregated tables, plots and HTML.

A bundle declares one ``report`` component and every config (train, evaluate, multi-GPU) uses it::

    "report": {"_target_": "monai_fair.study.StudyReport", "spec": "@fairness", "output_dir": "@output_dir",
               "title": "...", "settings": "@settings", "demo": "$@source.demo"},
    "initialize": ["$@report.log_settings()"],
    "run": ["$@report.write(@results)"]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from monai_fair.metrics import FairnessSpec

from .runtime import is_main_process

__all__ = ["StudyReport", "collect_study_results", "write_debiasing_report"]

logger = logging.getLogger("monai_fair")


def _log_settings(name: str, settings: Mapping[str, Any], demo: bool) -> str:
    """Log (as a warning, so it is always seen) one line with a study's settings, flagged when on demo data.

    Args:
        name: the study's name, prefixing the line.
        settings: the settings shown (``scale="demo"`` on real data adds a pointer to the paper's scale).
        demo: the data are generated demo data.
    """
    line = f"{name}: " + ", ".join(f"{k}={v}" for k, v in settings.items())
    if demo:
        line += " -- DEMO DATA: a generated dataset at the demo scale, not the paper's results"
    elif settings.get("scale") == "demo":
        line += " -- real data at the demo scale: merge configs/scale_paper.json for the paper's settings"
    logger.warning(line)
    return line


def collect_study_results(seed_runs: Iterable[Mapping[str, Any] | None], metric: str = "eod", epsilon: float = 0.05):
    """A :class:`~monai_fair.report.StudyResults` of the per-seed outputs of
    :meth:`~monai_fair.study.DebiasingStudy.run` (``None`` entries, e.g. of non-zero DDP ranks, are skipped).

    Raises:
        ValueError: no seed produced results.
    """
    from monai_fair.report import StudyResults

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
    return results


def write_debiasing_report(
    seed_runs: Iterable[Mapping[str, Any] | None],
    out_dir: str | os.PathLike,
    metric: str = "eod",
    epsilon: float = 0.05,
    title: str = "Debiasing study",
    settings: Mapping[str, Any] | None = None,
    demo: bool = False,
    rho: float | Mapping[str, float] | None = None,
) -> dict[str, str]:
    """Aggregate the per-seed outputs of :meth:`~monai_fair.study.DebiasingStudy.run` and write the report.

    Args:
        seed_runs: one ``DebiasingStudy.run()`` output per seed (``None`` entries are ignored).
        out_dir: report folder.
        metric: the study's bias metric.
        epsilon: objective tolerance.
        title: report title.
        settings: run settings shown in the report.
        demo: results are on generated demo data (banner and labels say so).
        rho: accuracy bounds drawn on trajectories (default: those the seeds recorded).

    Returns:
        the written paths (see :func:`monai_fair.report.write_study_report`).
    """
    from monai_fair.report import write_study_report

    runs = [r for r in seed_runs if r is not None]
    results = collect_study_results(runs, metric, epsilon)
    if rho is None:
        rho = dict(runs[0].get("rho") or {}) or None
    paths = write_study_report(
        results, out_dir, metric=metric, epsilon=epsilon, title=title, settings=settings, demo=demo, rho=rho
    )
    logger.info("report written to %s", paths["report_html"])
    return paths


class StudyReport:
    """The report of a study: its title, settings and fairness spec, written from the per-seed results.

    Args:
        output_dir: report folder.
        spec: the study's fairness spec (metric, epsilon and reference are taken from it).
        title: report title.
        settings: run settings shown in the report and logged at start-up (dataset, label, seeds, scale, ...).
        demo: the data are generated demo data.
        name: the study's name, prefixing the start-up log line.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        spec: FairnessSpec | None = None,
        title: str = "Debiasing study",
        settings: Mapping[str, Any] | None = None,
        demo: bool = False,
        name: str = "study",
    ) -> None:
        self.output_dir = output_dir
        self.spec = spec if spec is not None else FairnessSpec()
        self.title = title
        self.settings = dict(settings or {})
        self.demo = bool(demo)
        self.name = name

    def shown_settings(self) -> dict[str, Any]:
        """The settings as the report shows them: the spec's fairness question first, then the run's."""
        spec = self.spec.as_dict()
        shown = {"attributes": " × ".join(spec["attributes"]), "reference group": spec["reference"]}
        shown.update(self.settings)
        return shown

    def log_settings(self) -> str:
        """Log (as a warning, so it is always seen) one line with the settings, flagged when on demo data."""
        # the shown settings end with the run's own, so their "scale" is the run's
        return _log_settings(self.name, self.shown_settings(), self.demo)

    def write(self, seed_runs: Iterable[Mapping[str, Any] | None], output_dir: str | os.PathLike | None = None):
        """Write the report of ``seed_runs`` (rank 0 only under ``torch.distributed``; others return ``None``).

        Returns:
            the written paths (see :func:`write_debiasing_report`).
        """
        if not is_main_process():
            return None
        return write_debiasing_report(
            seed_runs,
            self.output_dir if output_dir is None else output_dir,
            metric=self.spec.metric,
            epsilon=self.spec.epsilon,
            title=self.title,
            settings=self.shown_settings(),
            demo=self.demo,
        )
