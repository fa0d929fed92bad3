# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Plots of an embedding-debiasing study: attribute removal per representation, poisoning EOD against flip rate,
and the latent-dimension sweep (attribute AUC against task AUC). Each takes the per-seed table of
:meth:`~monai_fair.report.StudyResults.to_dataframe` and draws mean ± std over seeds."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .study_plots import _save, _with_label, method_colors  # noqa: E402

__all__ = ["plot_attribute_removal", "plot_poisoning", "plot_latent_sweep"]


def _mean_std(per_seed: pd.DataFrame, method: str, column: str) -> tuple[float, float]:
    if column not in per_seed.columns:
        return float("nan"), float("nan")
    v = per_seed.loc[per_seed["method"] == method, column].to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    return (float(v.mean()) if v.size else float("nan")), (float(v.std(ddof=1)) if v.size > 1 else float("nan"))


def plot_attribute_removal(
    per_seed: pd.DataFrame,
    path: str | os.PathLike,
    representations: Sequence[str],
    probes: Sequence[str] = ("linear", "hgb"),
    data_label: str | None = None,
) -> str:
    """Fresh-probe sex AUC (one bar per probe kind) and task AUC per representation, mean ± std over seeds."""
    columns = [(f"{p}_sex_auc", f"sex AUC ({p} probe)") for p in probes] + [("task_auc", "task AUC (linear probe)")]
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(representations), 3.6))
    width = 0.8 / len(columns)
    xs = np.arange(len(representations))
    colours = plt.get_cmap("tab10")
    for j, (col, label) in enumerate(columns):
        stats = [_mean_std(per_seed, r, col) for r in representations]
        ax.bar(
            xs + (j - (len(columns) - 1) / 2) * width,
            [m for m, _ in stats],
            width,
            yerr=[0 if np.isnan(s) else s for _, s in stats],
            capsize=3,
            label=label,
            color=colours(j),
        )
    ax.axhline(0.5, color="grey", lw=1, ls="--", label="chance")
    ax.set_xticks(xs, representations)
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("AUC on the probe-test split")
    ax.set_title(_with_label("Sex removal judged by fresh probes", data_label), fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    return _save(fig, path)


def plot_poisoning(
    per_seed: pd.DataFrame,
    path: str | os.PathLike,
    representations: Sequence[str],
    metric: str = "eod",
    data_label: str | None = None,
) -> str:
    """The task probe's bias (``task_<metric>``, true labels) against the flip rate of the poisoned group."""
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    colors = method_colors(list(representations))
    col = f"task_{metric}"
    for rep in representations:
        rows = per_seed[per_seed["method"].str.startswith(f"poisoned_{rep}_")]
        if rows.empty or col not in rows.columns:
            continue
        rates = sorted(set(rows["flip_rate"].astype(float)))
        stats = [
            _mean_std(rows[rows["flip_rate"] == r], rows.loc[rows["flip_rate"] == r, "method"].iloc[0], col)
            for r in rates
        ]
        mean = np.array([m for m, _ in stats])
        std = np.nan_to_num(np.array([s for _, s in stats]))
        ax.plot(np.array(rates) * 100, mean, marker="o", label=rep, color=colors[rep])
        ax.fill_between(np.array(rates) * 100, mean - std, mean + std, color=colors[rep], alpha=0.15)
    ax.axhline(0.0, color="grey", lw=1)
    ax.set_xlabel("labels flipped in the poisoned group (%)")
    ax.set_ylabel(f"task {metric.upper()} (true labels)")
    ax.set_title(_with_label("Poisoning: bias of a probe fitted on flipped labels", data_label), fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_latent_sweep(
    per_seed: pd.DataFrame,
    path: str | os.PathLike,
    method: str,
    probes: Sequence[str] = ("linear", "hgb"),
    reference_points: Sequence[str] = (),
    data_label: str | None = None,
) -> str:
    """Fresh-probe sex AUC (y) against task AUC (x) for each latent size of ``method`` (mean ± std over seeds),
    with ``reference_points`` (e.g. ``original``, ``leace``) as markers."""
    rows = per_seed[per_seed["method"].str.startswith(f"{method}_latent_")]
    sizes = sorted(set(rows["latent_size"].astype(int))) if "latent_size" in rows.columns else []
    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    markers = "os^Dv"
    for j, probe in enumerate(probes):
        col = f"{probe}_sex_auc"
        pts = [
            (_mean_std(rows, f"{method}_latent_{k}", "task_auc"), _mean_std(rows, f"{method}_latent_{k}", col))
            for k in sizes
        ]
        if not pts:
            continue
        x = np.array([p[0][0] for p in pts])
        y = np.array([p[1][0] for p in pts])
        ax.errorbar(
            x,
            y,
            xerr=np.nan_to_num([p[0][1] for p in pts]),
            yerr=np.nan_to_num([p[1][1] for p in pts]),
            marker=markers[j % len(markers)],
            label=f"{method}, {probe} probe",
            capsize=2,
        )
        for k, xi, yi in zip(sizes, x, y):
            ax.annotate(f"k={k}", (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    for rep in reference_points:
        for j, probe in enumerate(probes):
            (tx, _), (sy, _) = _mean_std(per_seed, rep, "task_auc"), _mean_std(per_seed, rep, f"{probe}_sex_auc")
            if np.isfinite(tx) and np.isfinite(sy):
                ax.scatter([tx], [sy], marker=markers[j % len(markers)], facecolors="none", edgecolors="k")
                if j == 0:
                    ax.annotate(rep, (tx, sy), textcoords="offset points", xytext=(6, -4), fontsize=7)
    ax.axhline(0.5, color="grey", lw=1, ls="--")
    ax.set_xlabel("task AUC (fresh linear probe)")
    ax.set_ylabel("sex AUC (fresh probe)")
    ax.set_title(_with_label("Latent-dimension sweep", data_label), fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)
