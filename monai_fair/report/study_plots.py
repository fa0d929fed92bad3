# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Study plots (PNG, matplotlib Agg): per-method bars, the accuracy–fairness trade-off, debiasing trajectories.

Figures are built with :class:`matplotlib.figure.Figure` directly (Agg canvas, no ``pyplot`` global state), so they
are safe in headless runs and never change the caller's backend. Undefined (NaN) values are marked ``n/a`` rather
than drawn as 0.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from .results import StudyResults
from .tables import METRIC_LABELS

__all__ = ["method_colors", "plot_method_bars", "plot_tradeoff", "plot_trajectories"]

_DPI = 110


def method_colors(methods: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    """One stable colour per method (``tab10`` cycled, in study order)."""
    cmap = colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(methods)}


def _save(fig: Figure, path: str | os.PathLike) -> str:
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=_DPI)
    return str(path)


def _split_rows(summary: pd.DataFrame, split: str) -> pd.DataFrame:
    sub = summary[summary["split"] == split]
    if sub.empty:
        raise ValueError(f"split {split!r} not in the summary (splits: {sorted(set(summary['split']))}).")
    return sub


def _bars(ax, methods: list[str], mean: np.ndarray, std: np.ndarray, colors: dict) -> None:
    x = np.arange(len(methods))
    finite = np.isfinite(mean)
    ax.bar(
        x[finite],
        mean[finite],
        yerr=np.where(np.isfinite(std), std, 0.0)[finite],
        color=[colors[m] for m, f in zip(methods, finite) if f],
        capsize=3,
        edgecolor="black",
        linewidth=0.5,
    )
    for xi in x[~finite]:
        ax.text(xi, 0.0, "n/a", ha="center", va="bottom", fontsize=8, color="dimgray")
    ax.set_xticks(x)
    ax.set_xticklabels(methods, rotation=30, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(methods) - 0.4)


def _with_label(title: str, data_label: str | None) -> str:
    """The title with what the numbers ran on, on a line of its own (a PNG taken out of its report still says so)."""
    return f"{title}\n{data_label}" if data_label else title


def plot_method_bars(
    summary: pd.DataFrame,
    path: str | os.PathLike,
    *,
    split: str = "test",
    metric: str = "eod",
    epsilon: float | None = None,
    title: str | None = None,
    data_label: str | None = None,
) -> str:
    """Two panels: balanced accuracy and mean ``|bias|`` per method, bars = mean over seeds, error bars = std.

    Args:
        summary: output of :func:`~monai_fair.report.aggregate.aggregate_results` (needs ``balanced_accuracy`` and
            ``abs_bias`` aggregates).
        path: PNG file to write.
        split: split to draw.
        metric: the study's bias metric (axis label).
        epsilon: draws the tolerance as a dashed line on the bias panel.
        title: figure title.
        data_label: what the numbers ran on (``"DEMO DATA (synthetic)"``), appended to the title.

    Returns:
        the written path.
    """
    sub = _split_rows(summary, split)
    methods = [str(m) for m in sub["method"]]
    colors = method_colors(methods)
    fig = Figure(figsize=(max(6.0, 1.1 * len(methods) + 2.5), 3.8))
    ax_ba, ax_b = fig.subplots(1, 2)
    for ax, col, label in (
        (ax_ba, "balanced_accuracy", "balanced accuracy"),
        (ax_b, "abs_bias", f"|{METRIC_LABELS[metric]}|"),
    ):
        mean = sub.get(f"{col}_mean", pd.Series(np.nan, index=sub.index)).to_numpy(dtype=float)
        std = sub.get(f"{col}_std", pd.Series(np.nan, index=sub.index)).to_numpy(dtype=float)
        _bars(ax, methods, mean, std, colors)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    ax_ba.set_ylim(0.0, 1.0)
    if epsilon is not None:
        ax_b.axhline(epsilon, color="crimson", linestyle="--", linewidth=1.0, label=f"ε = {epsilon:g}")
        ax_b.legend(fontsize=8, loc="upper right")
    ax_b.set_ylim(bottom=0.0)
    fig.suptitle(_with_label(title or f"{split} split: mean ± std over seeds", data_label), fontsize=10)
    return _save(fig, path)


def plot_tradeoff(
    per_seed: pd.DataFrame | StudyResults,
    path: str | os.PathLike,
    *,
    split: str = "test",
    methods: Sequence[str] | None = None,
    metric: str = "eod",
    epsilon: float | None = None,
    title: str | None = None,
    data_label: str | None = None,
) -> str:
    """Accuracy–fairness trade-off: ``|bias|`` (x) against balanced accuracy (y) per method.

    Each seed is a faint point; each method's mean over seeds (of ``|bias|`` and of BA, finite values only) is a
    large marker. The feasible region ``|bias| < ε`` lies left of the dashed line.

    Args:
        per_seed: per-seed records (:class:`StudyResults` or its ``to_dataframe()``).
        path: PNG file to write.
        split: split to draw.
        methods: method order (default: study / first-seen order).
        metric: the study's bias metric (axis label).
        epsilon: draws the tolerance as a vertical dashed line.
        title: figure title.
        data_label: what the numbers ran on (``"DEMO DATA (synthetic)"``), appended to the title.

    Returns:
        the written path.
    """
    if isinstance(per_seed, StudyResults):
        default_methods = per_seed.methods
        df = per_seed.to_dataframe()
    else:
        df = per_seed
        default_methods = list(dict.fromkeys(df["method"]))
    df = df[df["split"] == split]
    methods = list(dict.fromkeys(methods if methods is not None else default_methods))
    methods += [m for m in dict.fromkeys(df["method"]) if m not in methods]  # never drop a method silently
    colors = method_colors(methods)
    fig = Figure(figsize=(6.4, 4.6))
    ax = fig.subplots()
    undefined = []
    for m in methods:
        sub = df[df["method"] == m]
        x = np.abs(sub["bias"].to_numpy(dtype=float))
        y = sub["balanced_accuracy"].to_numpy(dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        if not ok.any():
            undefined.append(m)
            continue
        ax.scatter(x[ok], y[ok], color=colors[m], alpha=0.25, s=14, linewidths=0)
        ax.scatter(
            x[ok].mean(), y[ok].mean(), color=colors[m], s=90, marker="D", edgecolors="black", linewidths=0.7, label=m
        )
    if epsilon is not None:
        ax.axvline(epsilon, color="crimson", linestyle="--", linewidth=1.0, label=f"ε = {epsilon:g}")
    if undefined:
        ax.text(
            0.99,
            0.01,
            "n/a (undefined): " + ", ".join(undefined),
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
            color="dimgray",
        )
    ax.set_xlabel(f"|{METRIC_LABELS[metric]}| (lower is fairer)")
    ax.set_ylabel("balanced accuracy")
    ax.set_xlim(left=0.0)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    ax.set_title(
        _with_label(title or f"accuracy–fairness trade-off ({split}); faint: seeds, ◆: mean", data_label), fontsize=10
    )
    return _save(fig, path)


def plot_trajectories(
    trajectories: Mapping[int, Mapping[str, Sequence[float]]],
    path: str | os.PathLike,
    *,
    method: str,
    metric: str = "eod",
    epsilon: float | None = None,
    rho: float | None = None,
    title: str | None = None,
    data_label: str | None = None,
) -> str:
    """Bias and balanced accuracy against the method's step, one line per seed.

    Args:
        trajectories: ``{seed: Trajectory.as_dict()}`` of one method (see
            :meth:`~monai_fair.report.results.StudyResults.method_trajectories`).
        path: PNG file to write.
        method: method name (title).
        metric: the study's bias metric (axis label).
        epsilon: draws ``±ε`` on the bias panel.
        rho: draws the model-selection lower bound ϱ on the accuracy panel.
        title: figure title.
        data_label: what the numbers ran on (``"DEMO DATA (synthetic)"``), appended to the title.

    Returns:
        the written path.
    """
    fig = Figure(figsize=(10.0, 3.8))
    ax_b, ax_ba = fig.subplots(1, 2)
    cmap = colormaps["viridis"]
    seeds = list(trajectories)
    drawn = 0
    for i, seed in enumerate(seeds):
        t = trajectories[seed]
        step = np.asarray(t.get("step", ()), dtype=float)
        if step.size == 0:
            continue
        color = cmap(0.85 * i / max(1, len(seeds) - 1))  # the top of viridis is too pale on white
        kw = dict(color=color, alpha=0.7, linewidth=1.0, marker="." if step.size < 30 else None, markersize=3)
        ax_b.plot(step, np.asarray(t.get("bias", [math.nan] * step.size), dtype=float), **kw)
        ax_ba.plot(step, np.asarray(t.get("balanced_accuracy", [math.nan] * step.size), dtype=float), **kw)
        drawn += 1
    ax_b.axhline(0.0, color="black", linewidth=0.6)
    if epsilon is not None:
        for sign in (1.0, -1.0):
            ax_b.axhline(
                sign * epsilon,
                color="crimson",
                linestyle="--",
                linewidth=1.0,
                label=f"±ε = {epsilon:g}" if sign > 0 else None,
            )
        ax_b.legend(fontsize=8, loc="best")
    if rho is not None:
        ax_ba.axhline(rho, color="darkorange", linestyle="--", linewidth=1.0, label=f"ϱ = {rho:g}")
        ax_ba.legend(fontsize=8, loc="best")
    if drawn == 0:
        for ax in (ax_b, ax_ba):
            ax.text(0.5, 0.5, "no trajectory points", transform=ax.transAxes, ha="center", color="dimgray")
    ax_b.set_ylabel(f"{METRIC_LABELS[metric]} (signed)")
    ax_ba.set_ylabel("balanced accuracy")
    for ax in (ax_b, ax_ba):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(
        _with_label(title or f"{method}: validation trajectory, one line per seed ({drawn} seeds)", data_label),
        fontsize=10,
    )
    return _save(fig, path)
