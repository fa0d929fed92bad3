# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""``write_embedding_report``: the report of an embedding-debiasing study (fresh probes, poisoning, latent sweep).

Files written to ``out_dir``: ``results.json`` and ``results_per_seed.csv`` (every record), ``summary.csv``
(:func:`~monai_fair.report.aggregate.aggregate_results`: mean / std / n over seeds per method), ``summary.md`` (the
removal table and the poisoning table, mean ± std over seeds), ``removal.png``, ``poisoning.png``,
``latent_sweep_<method>.png``, ``trajectory_<method>.png`` and ``report.html``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .aggregate import aggregate_results  # noqa: E402
from .embedding_plots import plot_attribute_removal, plot_latent_sweep, plot_poisoning  # noqa: E402
from .html import render_study_html, write_html  # noqa: E402
from .results import StudyResults  # noqa: E402
from .study_plots import _save, _with_label  # noqa: E402
from .tables import format_mean_std, markdown_table, write_csv  # noqa: E402

__all__ = ["removal_table", "poisoning_table", "write_embedding_report"]


def _cell(summary: pd.DataFrame, method: str, column: str, digits: int) -> str:
    row = summary[summary["method"] == method]
    if row.empty or f"{column}_mean" not in row.columns:
        return "n/a"
    r = row.iloc[0]
    return format_mean_std(
        r[f"{column}_mean"], r[f"{column}_std"], digits=digits, n=r[f"{column}_n"], n_seeds=r["n_seeds"]
    )


def removal_table(
    summary: pd.DataFrame, representations: Sequence[str], probes: Sequence[str], metric: str = "eod", digits: int = 3
) -> pd.DataFrame:
    """One row per representation: fresh-probe sex AUC / accuracy and age MAE per probe kind, then the task
    probe's AUC, accuracy and bias (mean ± std over seeds)."""
    columns: list[tuple[str, str]] = []
    for p in probes:
        columns += [(f"{p}_sex_auc", f"sex AUC ({p})"), (f"{p}_sex_accuracy", f"sex acc. ({p})")]
    columns += [(f"{p}_age_mae", f"age MAE ({p})") for p in probes]
    columns += [("task_auc", "task AUC"), ("task_accuracy", "task acc."), (f"task_{metric}", f"task {metric.upper()}")]
    rows = [
        {"representation": r, **{label: _cell(summary, r, col, digits) for col, label in columns}}
        for r in representations
    ]
    return pd.DataFrame(rows)


def poisoning_table(
    summary: pd.DataFrame, per_seed: pd.DataFrame, representations: Sequence[str], metric: str = "eod", digits: int = 3
) -> pd.DataFrame:
    """Rows: flip rate (%); columns: the task bias of each representation's probe fitted on the flipped labels."""
    rates = sorted(set(per_seed["flip_rate"].dropna().astype(float))) if "flip_rate" in per_seed.columns else []
    rows = []
    for rate in rates:
        row: dict[str, Any] = {"flipped (%)": int(round(100 * rate))}
        for rep in representations:
            row[f"{rep} {metric.upper()}"] = _cell(
                summary, f"poisoned_{rep}_{int(round(100 * rate))}", f"task_{metric}", digits
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _plot_vae_trajectory(
    trajs: Mapping[int, Mapping[str, list[float]]], path: Path, method: str, data_label: str | None
) -> str:
    names = ["reconstruction MSE", "sex adversary BCE", "age adversary MSE (standardised)"]
    keys = ["recon", "sex_loss", "age_loss"]
    if any(any(v > 0 for v in t.get("decorrelation", ())) for t in trajs.values()):  # the penalty is on
        names.append("latent decorrelation (Σ corr²)")
        keys.append("decorrelation")
    fig, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 3.0))
    for seed, t in trajs.items():
        for ax, key in zip(axes, keys):
            ax.plot(t["step"], t[key], label=f"seed {seed}")
    for ax, name in zip(axes, names):
        ax.set_xlabel("epoch")
        ax.set_title(name, fontsize=9)
    axes[1].axhline(0.693, color="grey", ls="--", lw=1)
    axes[0].legend(fontsize=7)
    fig.suptitle(_with_label(f"{method}: training losses", data_label), fontsize=9)
    return _save(fig, path)


def write_embedding_report(
    results: StudyResults,
    out_dir: str | os.PathLike,
    *,
    representations: Sequence[str],
    probes: Sequence[str] = ("linear", "hgb"),
    metric: str = "eod",
    title: str = "Embedding debiasing study",
    settings: Mapping[str, Any] | None = None,
    demo: bool = False,
    digits: int = 3,
) -> dict[str, str]:
    """Write the JSON, CSV, Markdown, PNG and HTML report of an embedding-debiasing study.

    Args:
        results: the per-seed records (see :mod:`monai_fair.study.embedding_debias`).
        out_dir: report folder.
        representations: ``original`` then the debiasing methods, in report order.
        probes: the attribute probe kinds recorded.
        metric: the task bias metric.
        title: report title.
        settings: run settings shown in the HTML.
        demo: the data are generated demo data (every file says so).
        digits: decimals of the tables.

    Returns:
        ``{name: path}`` of every written file.
    """
    if len(results) == 0:
        raise ValueError("the study results hold no record; nothing to report.")
    settings = dict(settings or {})
    data_label = "DEMO DATA (synthetic)" if demo else str(settings.get("dataset", "real data"))
    file_label = data_label if demo else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    results.to_json(out / "results.json", data_label=file_label)
    paths["results_json"] = str(out / "results.json")
    per_seed = results.to_dataframe()
    paths["results_per_seed_csv"] = write_csv(per_seed, out / "results_per_seed.csv", file_label)
    summary = aggregate_results(results)
    paths["summary_csv"] = write_csv(summary, out / "summary.csv", file_label)

    n = len(results.seeds)
    removal = removal_table(summary, representations, probes, metric, digits)
    poisoning = poisoning_table(summary, per_seed, representations, metric, digits)
    tables = {f"Fresh probes on the probe-test split (mean ± std over {n} seeds)": removal}
    if not poisoning.empty:
        tables[f"Poisoning: task {metric.upper()} against the flip rate (mean ± std over {n} seeds)"] = poisoning
    md = [f"# {title}", "", f"**{data_label}**", ""]
    for heading, table in tables.items():
        md += [f"## {heading}", "", markdown_table(table), ""]
    (out / "summary.md").write_text("\n".join(md), encoding="utf-8")
    paths["summary_md"] = str(out / "summary.md")

    images = []
    paths["removal"] = plot_attribute_removal(per_seed, out / "removal.png", representations, probes, file_label)
    images.append(("Sex AUC of fresh probes and task AUC per representation (std over seeds)", paths["removal"]))
    if "flip_rate" in per_seed.columns:
        paths["poisoning"] = plot_poisoning(per_seed, out / "poisoning.png", representations, metric, file_label)
        images.append((f"Poisoning: task {metric.upper()} against the flip rate", paths["poisoning"]))
    for method in representations:
        if "latent_size" in per_seed.columns and per_seed["method"].str.startswith(f"{method}_latent_").any():
            p = plot_latent_sweep(
                per_seed,
                out / f"latent_sweep_{method}.png",
                method,
                probes,
                list(representations),
                file_label,
            )
            paths[f"latent_sweep_{method}"] = p
            images.append((f"{method}: latent-dimension sweep (sex AUC against task AUC)", p))
        trajs = results.method_trajectories(method)
        if trajs:
            p = _plot_vae_trajectory(trajs, out / f"trajectory_{method}.png", method, file_label)
            paths[f"trajectory_{method}"] = p
            images.append((f"{method}: training losses per epoch", p))
    shown = {"bias metric": metric, "seeds": results.seeds, **settings}
    notes = [
        "Probes are fresh: fitted after debiasing on the probe-train half of the evaluation table and scored on its "
        "probe-test half; a VAE that fools only its own adversary still shows a high sex AUC here. 'linear' is a "
        "logistic / ridge regression on standardised features, 'hgb' histogram gradient boosting, 'mlp' a one-layer "
        "MLP. Intervals of each seed are in results_per_seed.csv (percentile, resampled probe-test rows).",
        f"Task {metric.upper()} is unprivileged minus privileged sex at threshold 0.5 of a fresh linear task probe. "
        "Cells are mean ± std over seeds (sample std); (n=k/N) marks a figure defined on k of N seeds.",
    ]
    text = render_study_html(
        title, tables=tables, images=images, settings=shown, demo=demo, data_label=data_label, notes=notes
    )
    paths["report_html"] = write_html(text, out / "report.html")
    return paths
