# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Plots of the cross-group study (PNG, matplotlib Agg, no ``pyplot`` state): AUC per label per test group, the
same-group vs other-group AUC and its drop per model, and underdiagnosis per subgroup.

Every plot takes the aggregated summary of :func:`~monai_fair.report.aggregate.aggregate_results` (one row per model,
``<column>_mean`` / ``<column>_std`` over seeds) and draws mean ± std; undefined values are not drawn (no bar), never
drawn as 0.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .study_plots import method_colors

__all__ = ["plot_auc_by_group", "plot_same_other_auc", "plot_underdiagnosis"]

_DPI = 110


def _save(fig: Figure, path: str | os.PathLike) -> str:
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=_DPI)
    return str(path)


def _value(row: pd.Series, column: str) -> tuple[float, float]:
    mean = float(row.get(f"{column}_mean", math.nan))
    std = float(row.get(f"{column}_std", math.nan))
    return mean, (0.0 if math.isnan(std) else std)


def _title(text: str, data_label: str | None) -> str:
    return f"{text}\n{data_label}" if data_label else text


def plot_auc_by_group(
    summary: pd.DataFrame,
    path: str | os.PathLike,
    labels: Sequence[str],
    groups: Sequence[str],
    models: Sequence[str],
    data_label: str | None = None,
) -> str:
    """One panel per model: per-label AUC on every group's test set (mean ± std over seeds)."""
    fig = Figure(figsize=(max(6.0, 0.55 * len(labels) * max(1, len(groups)) / 2), 2.8 * len(models) + 0.6))
    colors = method_colors(list(groups))
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(groups))
    for i, model in enumerate(models):
        ax = fig.add_subplot(len(models), 1, i + 1)
        rows = summary[summary["method"] == model]
        row = rows.iloc[0] if len(rows) else pd.Series(dtype=float)
        for j, group in enumerate(groups):
            vals = [_value(row, f"auc:{label}:{group}") for label in labels]
            means = np.array([v[0] for v in vals])
            stds = np.array([v[1] for v in vals])
            ok = ~np.isnan(means)
            ax.bar(
                x[ok] + (j - (len(groups) - 1) / 2) * width,
                means[ok],
                width,
                yerr=stds[ok],
                capsize=2,
                color=colors[group],
                label=group,
            )
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set_ylim(0.0, 1.05)
        ax.set_ylabel("AUC")
        ax.set_title(f"model trained on: {model}", fontsize=9)
        ax.set_xticks(x)
        ax.set_xticklabels(labels if i == len(models) - 1 else [], rotation=40, ha="right", fontsize=7)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="test group", title_fontsize=7)
    fig.suptitle(_title("AUC per label and test group (mean ± std over seeds)", data_label), fontsize=10)
    return _save(fig, path)


def plot_same_other_auc(
    summary: pd.DataFrame,
    path: str | os.PathLike,
    models: Sequence[str],
    train_group: str,
    data_label: str | None = None,
) -> str:
    """Mean AUC over labels on the training group's test set and on the other groups' (left), and the drop (right),
    per model (mean ± std over seeds)."""
    fig = Figure(figsize=(9.0, 3.6))
    ax, bx = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    x = np.arange(len(models))
    rows = {m: summary[summary["method"] == m] for m in models}
    for k, (col, name) in enumerate((("auc_same", f"same group ({train_group})"), ("auc_other", "other groups"))):
        vals = [_value(rows[m].iloc[0], col) if len(rows[m]) else (math.nan, 0.0) for m in models]
        means, stds = np.array([v[0] for v in vals]), np.array([v[1] for v in vals])
        ok = ~np.isnan(means)
        ax.bar(x[ok] + (k - 0.5) * 0.38, means[ok], 0.38, yerr=stds[ok], capsize=3, label=name)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_ylim(0.0, 1.05)
    ax.set_xticks(x)
    ax.set_xticklabels(models, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("mean AUC over labels")
    ax.legend(fontsize=8, loc="lower right")
    colors = method_colors(list(models))
    vals = [_value(rows[m].iloc[0], "auc_drop") if len(rows[m]) else (math.nan, 0.0) for m in models]
    means, stds = np.array([v[0] for v in vals]), np.array([v[1] for v in vals])
    ok = ~np.isnan(means)
    bx.bar(x[ok], means[ok], 0.6, yerr=stds[ok], capsize=3, color=[colors[m] for m, o in zip(models, ok) if o])
    bx.axhline(0.0, color="black", lw=0.8)
    bx.set_xticks(x)
    bx.set_xticklabels(models, rotation=20, ha="right", fontsize=8)
    bx.set_ylabel("AUC drop (same − other)")
    fig.suptitle(_title("Same-group vs other-group AUC (mean ± std over seeds)", data_label), fontsize=10)
    return _save(fig, path)


def plot_underdiagnosis(
    summary: pd.DataFrame,
    path: str | os.PathLike,
    subgroups: Sequence[str],
    models: Sequence[str],
    data_label: str | None = None,
) -> str:
    """False "No Finding" rate per subgroup (rows) for every model (bars), mean ± std over seeds; subgroups below
    the minimum size have no bar and are marked ``n/a``."""
    fig = Figure(figsize=(8.0, 0.32 * len(subgroups) * max(1, len(models)) / 1.5 + 1.6))
    ax = fig.add_subplot(1, 1, 1)
    colors = method_colors(list(models))
    y = np.arange(len(subgroups))
    height = 0.8 / max(1, len(models))
    for j, model in enumerate(models):
        rows = summary[summary["method"] == model]
        vals = [_value(rows.iloc[0], f"underdiagnosis:{s}") if len(rows) else (math.nan, 0.0) for s in subgroups]
        means, stds = np.array([v[0] for v in vals]), np.array([v[1] for v in vals])
        ok = ~np.isnan(means)
        pos = y + (j - (len(models) - 1) / 2) * height
        ax.barh(pos[ok], means[ok], height, xerr=stds[ok], capsize=2, color=colors[model], label=model)
        for p in pos[~ok]:
            ax.text(0.005, p, "n/a", va="center", fontsize=6, color="grey")
    ax.set_yticks(y)
    ax.set_yticklabels(subgroups, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel('underdiagnosis (false "No Finding" rate among samples with a finding)')
    ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(_title("Underdiagnosis per subgroup (mean ± std over seeds)", data_label), fontsize=10)
    return _save(fig, path)
