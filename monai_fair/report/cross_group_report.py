# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""``write_cross_group_report``: the files of the cross-group study, from its (seed, model) runs.

Files written to ``out_dir``: ``results.json`` and ``results_per_seed.csv`` (one record per seed and model, the
:class:`~monai_fair.report.results.StudyResults` format with the cross-group figures as extra columns),
``summary.csv`` (mean / std / n over seeds, :func:`~monai_fair.report.aggregate.aggregate_results`), ``summary.md``,
``auc_same_other.png``, ``auc_by_group.png``, ``underdiagnosis.png`` and a self-contained ``report.html``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .aggregate import aggregate_results
from .cross_group_plots import plot_auc_by_group, plot_same_other_auc, plot_underdiagnosis
from .html import render_study_html, write_html
from .results import StudyResults
from .tables import format_mean_std, markdown_table, write_csv

__all__ = ["cross_group_results", "cross_group_tables", "write_cross_group_report"]


def cross_group_results(runs: Sequence[Mapping[str, Any]], models: Sequence[str] | None = None) -> StudyResults:
    """The runs' records as :class:`StudyResults` (``method`` = the model's name).

    Raises:
        ValueError: no run.
    """
    if not runs:
        raise ValueError("no (seed, model) run produced results.")
    order = list(models) if models else list(dict.fromkeys(r["model"] for r in runs))
    results = StudyResults(metric="eod", epsilon=None, methods=order)
    for run in runs:
        for rec in run["records"]:
            rec = dict(rec)
            seed, method, split = rec.pop("seed"), rec.pop("method"), rec.pop("split")
            results.add(seed, method, split, **{k: v for k, v in rec.items() if isinstance(v, (int, float))})
    return results


def _cell(row: pd.Series, column: str, digits: int = 3) -> str:
    return format_mean_std(
        row.get(f"{column}_mean"), row.get(f"{column}_std"), digits, row.get(f"{column}_n"), row.get("n_seeds")
    )


def cross_group_tables(
    summary: pd.DataFrame,
    runs: Sequence[Mapping[str, Any]],
    models: Sequence[str],
    labels: Sequence[str],
    groups: Sequence[str],
    subgroups: Sequence[str],
    min_group_size: int | None = None,
) -> dict[str, pd.DataFrame]:
    """The display tables (mean ± std over seeds): the seed's results table per model, AUC per label, AUC per test
    group and underdiagnosis per subgroup."""
    info = {r["model"]: r for r in runs}
    rows = {m: summary[summary["method"] == m].iloc[0] for m in models if (summary["method"] == m).any()}
    main = []
    for m, row in rows.items():
        n = int(row["n_seeds"])
        excl = row.get("drop_excludes_zero_mean", math.nan)
        main.append(
            {
                "model": m,
                "training set": info.get(m, {}).get("train_set", ""),
                "mitigation": info.get(m, {}).get("mitigation", ""),
                "AUC same group": _cell(row, "auc_same"),
                "AUC other groups": _cell(row, "auc_other"),
                "AUC drop": _cell(row, "auc_drop"),
                "drop CI excludes 0": "n/a" if excl != excl else f"{round(excl * n)}/{n} seeds",
                "better than chance": f"{round(row.get('better_than_chance_mean', 0.0) * n)}/{n} seeds",
                "probe AUC (group from features)": _cell(row, "probe_auc"),
            }
        )
    per_label = []
    for label in labels:
        entry: dict[str, str] = {"label": label}
        for m, row in rows.items():
            entry[f"{m}: same"] = _cell(row, f"auc_same:{label}")
            entry[f"{m}: other"] = _cell(row, f"auc_other:{label}")
            entry[f"{m}: drop"] = _cell(row, f"auc_drop:{label}")
        per_label.append(entry)
    per_group = []
    for g in groups:
        entry = {"test group": g}
        for m, row in rows.items():
            entry[f"{m}: n test"] = _cell(row, f"n_test:{g}", 0)
            entry[f"{m}: mean AUC"] = _cell(row, f"mean_auc:{g}")
        per_group.append(entry)
    under = []
    for s in subgroups:
        entry = {"subgroup": s}
        for m, row in rows.items():
            n = row.get(f"n_finding:{s}_mean", math.nan)
            small = min_group_size is not None and n == n and n < min_group_size
            entry[f"{m}: n with finding"] = format_mean_std(n, math.nan, 0)
            entry[f"{m}: rate"] = _cell(row, f"underdiagnosis:{s}") + (" (below min size)" if small else "")
        under.append(entry)
    return {
        "Same-group vs other-group AUC per model": pd.DataFrame(main),
        "AUC per label (same group, other groups, drop)": pd.DataFrame(per_label),
        "Mean AUC over labels per test group": pd.DataFrame(per_group),
        'Underdiagnosis (false "No Finding" rate) per subgroup': pd.DataFrame(under),
    }


def write_cross_group_report(
    runs: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike,
    *,
    title: str = "Cross-group study",
    settings: Mapping[str, Any] | None = None,
    demo: bool = False,
    models: Sequence[str] | None = None,
    min_group_size: int | None = 10,
    digits: int = 3,
) -> dict[str, str]:
    """Aggregate the (seed, model) runs of :class:`~monai_fair.study.CrossGroupEvaluation` and write the report.

    Args:
        runs: the runs' results (``{"seed", "model", "records", "labels", "group_names", "train_group", ...}``).
        out_dir: report folder (created if needed).
        title: report title.
        settings: run settings shown in the HTML.
        demo: demo data: the banner, and "DEMO DATA" in every file.
        models: model order (default: first seen).
        min_group_size: the minimum subgroup size, to mark small subgroups in the tables.
        digits: decimals of the tables.

    Returns:
        ``{name: path}`` of every written file.
    """
    results = cross_group_results(runs, models)
    order = results.methods
    first = runs[0]
    labels, train_group = list(first["labels"]), str(first["train_group"])
    columns = results.to_dataframe().columns
    groups = list(dict.fromkeys(c.split(":", 1)[1] for c in columns if c.startswith("mean_auc:")))
    subgroups = list(
        dict.fromkeys(
            c.split(":", 1)[1]
            for c in columns
            if c.startswith("underdiagnosis:") and not c.endswith(("_ci_low", "_ci_high"))
        )
    )
    settings = dict(settings or {})
    data_label = "DEMO DATA (synthetic)" if demo else str(settings.get("dataset", "real data"))
    file_label = data_label if demo else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results_json": str(out / "results.json")}
    results.to_json(out / "results.json", data_label=file_label)
    paths["results_per_seed_csv"] = write_csv(results.to_dataframe(), out / "results_per_seed.csv", file_label)
    # a DataFrame (copied, so not fragmented by its many figure columns) aggregates the same as the results object
    summary = aggregate_results(results.to_dataframe().copy(), methods=order)
    paths["summary_csv"] = write_csv(summary, out / "summary.csv", file_label)
    tables = cross_group_tables(summary, runs, order, labels, groups, subgroups, min_group_size)
    md = [f"# {title}", "", f"_{data_label}_", ""]
    for heading, table in tables.items():
        md += [f"## {heading}", "", markdown_table(table), ""]
    (out / "summary.md").write_text("\n".join(md), encoding="utf-8")
    paths["summary_md"] = str(out / "summary.md")
    images = [
        (
            "Mean AUC over labels on the training group's test set and on the other groups', and the drop",
            plot_same_other_auc(summary, out / "auc_same_other.png", order, train_group, file_label),
        ),
        (
            "AUC per label and test group",
            plot_auc_by_group(summary, out / "auc_by_group.png", labels, groups, order, file_label),
        ),
    ]
    paths["auc_same_other"], paths["auc_by_group"] = images[0][1], images[1][1]
    if subgroups:
        paths["underdiagnosis"] = plot_underdiagnosis(summary, out / "underdiagnosis.png", subgroups, order, file_label)
        images.append(("Underdiagnosis per subgroup", paths["underdiagnosis"]))
    shown = {"seeds": results.seeds, "models": order, "training group": train_group, **settings}
    notes = [
        "Every model is evaluated on the test set of every group (patient-disjoint from training and validation). "
        "'Same group' is the training group's test set, 'other groups' the other groups' test sets pooled; the drop "
        "is same minus other, averaged over the labels defined on both sides. Cells are mean ± std over seeds "
        "(sample std); each seed's own 95% bootstrap intervals are in results_per_seed.csv (_ci_low/_ci_high).",
        "A drop is only read as small (fair) for a model better than chance (its same-group AUC interval above 0.5).",
        'Underdiagnosis: among samples with a finding, the share called "No Finding" at the validation F1-optimal '
        "threshold; subgroups with fewer samples with a finding than the minimum size are n/a.",
    ]
    text = render_study_html(
        title, tables=tables, images=images, settings=shown, demo=demo, data_label=data_label, notes=notes
    )
    paths["report_html"] = write_html(text, out / "report.html")
    return paths
