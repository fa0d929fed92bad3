# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""``write_study_report``: everything a study bundle writes at the end, in one call.

Files written to ``out_dir``:

* ``results.json``: the per-seed records and trajectories (:class:`~monai_fair.report.results.StudyResults`).
* ``results_per_seed.csv``: the same records as a tidy table.
* ``summary.csv``: per method and split, mean / std / sem / n over seeds (:mod:`~monai_fair.report.aggregate`).
* ``summary.md``: readable tables (``method | BA | EOD | SPD | objective``), headed by the data label.
* ``bars_<split>.png``, ``tradeoff_<split>.png`` and ``trajectory_<method>.png`` plots.
* ``report.html``: one self-contained page with the settings, the tables and every plot embedded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .aggregate import aggregate_results
from .html import render_study_html, write_html
from .results import StudyResults
from .study_plots import plot_method_bars, plot_tradeoff, plot_trajectories
from .tables import METRIC_LABELS, summary_display_table, summary_markdown, write_csv

__all__ = ["write_study_report"]

_SPLIT_NAMES = {"val": "Validation", "test": "Test"}


def _file_stem(name: str, used: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "method"
    out, i = stem, 1
    while out in used:
        i += 1
        out = f"{stem}_{i}"
    used.add(out)
    return out


def _load(results: StudyResults | Mapping[str, Any] | str | os.PathLike) -> StudyResults:
    if isinstance(results, StudyResults):
        return results
    if isinstance(results, Mapping):
        return StudyResults.from_dict(results)
    return StudyResults.from_json(results)


def write_study_report(
    results: StudyResults | Mapping[str, Any] | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    metric: str | None = None,
    epsilon: float | None = None,
    title: str = "Fairness study report",
    settings: Mapping[str, Any] | None = None,
    demo: bool = False,
    data_label: str | None = None,
    methods: list[str] | None = None,
    rho: float | Mapping[str, float] | None = None,
    digits: int = 3,
    seed_bootstrap: int = 0,
) -> dict[str, str]:
    """Write the study's JSON, CSV, Markdown, PNG plots and self-contained HTML report.

    Args:
        results: a :class:`StudyResults`, its ``to_dict()`` document, or the path of a ``results.json``.
        out_dir: output folder (created if needed).
        metric: the study's bias metric; default ``results.metric``. Must agree with it.
        epsilon: the objective's tolerance; default ``results.epsilon``, else 0.03. Must agree with a non-``None``
            ``results.epsilon`` (the records' objectives were computed with it).
        title: report title.
        settings: run settings shown in the HTML (dataset, attribute, seeds, ...).
        demo: the results are on generated demo data: adds the banner and the default data label.
        data_label: the line saying what the numbers ran on; default ``"DEMO DATA (synthetic)"`` when ``demo``,
            else ``settings["dataset"]`` (or ``"real data"``).
        methods: method order (default: the study order kept by ``results``).
        rho: model-selection accuracy bound ϱ drawn on trajectories, one value or ``{method: ϱ}``.
        digits: decimals of the tables.
        seed_bootstrap: resamples of the over-seeds bootstrap interval in ``summary.csv`` (0: none).

    Returns:
        ``{name: path}`` of every written file: ``results_json``, ``results_per_seed_csv``, ``summary_csv``,
        ``summary_md``, ``report_html``, ``bars_<split>``, ``tradeoff_<split>``, ``trajectory_<method>``.

    Raises:
        ValueError: no records, or ``metric`` / ``epsilon`` disagree with the results.
    """
    results = _load(results)
    if len(results) == 0:
        raise ValueError("the study results hold no record; nothing to report.")
    if metric is None:
        metric = results.metric
    elif metric != results.metric:
        raise ValueError(f"metric={metric!r} but the results' bias column holds {results.metric!r}.")
    if epsilon is None:
        epsilon = results.epsilon if results.epsilon is not None else 0.03
    elif results.epsilon is not None and abs(float(epsilon) - results.epsilon) > 1e-12:
        raise ValueError(f"epsilon={epsilon} but the results' objectives use epsilon={results.epsilon}.")
    settings = dict(settings or {})
    if data_label is None:
        data_label = "DEMO DATA (synthetic)" if demo else str(settings.get("dataset", "real data"))

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    # demo outputs say so in every file, not only in the HTML and Markdown
    file_label = data_label if demo else None
    results.to_json(out / "results.json", data_label=file_label)
    paths["results_json"] = str(out / "results.json")
    per_seed = results.to_dataframe()
    paths["results_per_seed_csv"] = write_csv(per_seed, out / "results_per_seed.csv", file_label)

    order = methods if methods is not None else results.methods
    summary = aggregate_results(results, methods=order, epsilon=epsilon, seed_bootstrap=seed_bootstrap, random_state=0)
    paths["summary_csv"] = write_csv(summary, out / "summary.csv", file_label)
    md = summary_markdown(summary, data_label=data_label, metric=metric, epsilon=epsilon, title=title, digits=digits)
    (out / "summary.md").write_text(md, encoding="utf-8")
    paths["summary_md"] = str(out / "summary.md")

    splits = [s for s in ("test", "val") if s in set(summary["split"])]
    tables, images = {}, []
    bias_label = METRIC_LABELS[metric]
    for split in splits:
        n = len(set(per_seed.loc[per_seed["split"] == split, "seed"]))
        tables[f"{_SPLIT_NAMES[split]} split (mean ± std over {n} seeds)"] = summary_display_table(
            summary, split, metric=metric, epsilon=epsilon, digits=digits
        )
        p = plot_method_bars(
            summary, out / f"bars_{split}.png", split=split, metric=metric, epsilon=epsilon, data_label=file_label
        )
        paths[f"bars_{split}"] = p
        images.append((f"{_SPLIT_NAMES[split]}: balanced accuracy and |{bias_label}| per method (std over seeds)", p))
        p = plot_tradeoff(
            per_seed,
            out / f"tradeoff_{split}.png",
            split=split,
            methods=order,
            metric=metric,
            epsilon=epsilon,
            data_label=file_label,
        )
        paths[f"tradeoff_{split}"] = p
        images.append((f"{_SPLIT_NAMES[split]}: accuracy–fairness trade-off", p))
    used: set[str] = set()
    for method in results.methods:
        trajs = results.method_trajectories(method)
        if not trajs:
            continue
        r = rho.get(method) if isinstance(rho, Mapping) else rho
        stem = _file_stem(method, used)
        p = plot_trajectories(
            trajs,
            out / f"trajectory_{stem}.png",
            method=method,
            metric=metric,
            epsilon=epsilon,
            rho=r,
            data_label=file_label,
        )
        paths[f"trajectory_{stem}"] = p
        images.append((f"{method}: {bias_label} and balanced accuracy along the debiasing run", p))

    shown = {"bias metric": bias_label, "epsilon": epsilon, "seeds": results.seeds}
    shown.update(settings)
    notes = [
        "Signed biases are unprivileged minus privileged. The starred column is the study's bias metric; the "
        f"objective is φ = BA·[|{bias_label}| < ε]. Cells are mean ± std over seeds (sample std, ddof=1); "
        "(n=k/N) marks a metric defined on only k of N seeds; n/a = undefined."
    ]
    text = render_study_html(
        title, tables=tables, images=images, settings=shown, demo=demo, data_label=data_label, notes=notes
    )
    paths["report_html"] = write_html(text, out / "report.html")
    return paths
