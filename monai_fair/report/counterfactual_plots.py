# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Plots of the counterfactual-invariance audit (PNG, matplotlib Agg, no ``pyplot`` state): example counterfactual
pairs, the null p-value distribution (histogram and uniform QQ plot) and the power curve of the tests."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .study_plots import method_colors

__all__ = ["plot_counterfactual_pairs", "plot_null_calibration", "plot_power_curve"]

_DPI = 110


def _save(fig: Figure, path: str | os.PathLike) -> str:
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=_DPI)
    return str(path)


def _title(text: str, data_label: str | None) -> str:
    return f"{text}\n[{data_label}]" if data_label else text


def plot_counterfactual_pairs(
    originals: np.ndarray,
    counterfactuals: Sequence[np.ndarray] | np.ndarray,
    path: str | os.PathLike,
    row_labels: Sequence[str] | None = None,
    column_titles: Sequence[str] = ("original", "counterfactual"),
    title: str = "Counterfactual pairs",
    data_label: str | None = None,
    show_difference: bool = True,
) -> str:
    """A grid: one row per example, the original image, its counterfactual(s) and (optionally) the difference.

    Args:
        originals: ``(R, C, H, W)`` or ``(R, H, W)`` images in [0, 1] (the first 3 channels are shown as RGB, one as
            grey).
        counterfactuals: one array shaped like ``originals``, or several (one column each).
        path: the PNG file.
        row_labels: one caption per row (e.g. ``"F -> M: p 0.31 -> 0.74"``).
        column_titles: titles of the original and counterfactual columns.
        title: figure title.
        data_label: what the images are (e.g. ``"DEMO DATA (synthetic)"``), added to the title.
        show_difference: add a column with counterfactual − original of the first counterfactual.

    Raises:
        ValueError: shapes disagree, or no example is given.
    """
    orig = np.asarray(originals, dtype=np.float32)
    cfs = (
        [np.asarray(counterfactuals, dtype=np.float32)]
        if np.ndim(counterfactuals) == orig.ndim
        else list(counterfactuals)
    )
    cfs = [np.asarray(c, dtype=np.float32) for c in cfs]
    if orig.shape[0] == 0:
        raise ValueError("no example to plot.")
    if any(c.shape != orig.shape for c in cfs):
        raise ValueError(f"counterfactuals {[c.shape for c in cfs]} must have the originals' shape {orig.shape}.")
    if orig.ndim == 3:
        orig, cfs = orig[:, None], [c[:, None] for c in cfs]
    rows, cols = orig.shape[0], 1 + len(cfs) + int(show_difference)
    fig = Figure(figsize=(2.1 * cols, 2.1 * rows + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False)
    titles = (
        list(column_titles[:1])
        + [column_titles[min(i + 1, len(column_titles) - 1)] for i in range(len(cfs))]
        + (["difference"] if show_difference else [])
    )

    def show(ax, img: np.ndarray) -> None:
        if img.shape[0] >= 3:
            ax.imshow(np.clip(np.moveaxis(img[:3], 0, -1), 0, 1))
        else:
            ax.imshow(img[0], cmap="gray", vmin=0, vmax=1)

    for r in range(rows):
        panels = [orig[r]] + [c[r] for c in cfs]
        for j, img in enumerate(panels):
            show(axes[r, j], img)
        if show_difference:
            diff = (cfs[0][r] - orig[r]).mean(0)
            lim = max(float(np.abs(diff).max()), 1e-6)
            axes[r, -1].imshow(diff, cmap="coolwarm", vmin=-lim, vmax=lim)
        for j in range(cols):
            axes[r, j].set_xticks([])
            axes[r, j].set_yticks([])
            if r == 0:
                axes[r, j].set_title(titles[j], fontsize=9)
        if row_labels is not None and r < len(row_labels):
            axes[r, 0].set_ylabel(str(row_labels[r]), fontsize=7)
    fig.suptitle(_title(title, data_label), fontsize=10)
    return _save(fig, path)


def plot_null_calibration(
    p_values: Mapping[str, Sequence[float]],
    path: str | os.PathLike,
    alpha: float = 0.05,
    title: str = "p-values under the null",
    data_label: str | None = None,
    bins: int = 20,
) -> str:
    """Histogram and uniform QQ plot of each test's p-values over repeated null runs (calibrated: flat / diagonal).

    Args:
        p_values: ``{test: p-values}``.
        path: the PNG file.
        alpha: the level; the legend shows each test's rejection rate at it.
        title: figure title.
        data_label: what the runs are, added to the title.
        bins: histogram bins on [0, 1].
    """
    fig = Figure(figsize=(10, 4))
    ax_h, ax_q = fig.subplots(1, 2)
    colors = method_colors(list(p_values))
    for name, values in p_values.items():
        p = np.sort(np.asarray(values, dtype=float)[np.isfinite(np.asarray(values, dtype=float))])
        if p.size == 0:
            continue
        label = f"{name}: {np.mean(p < alpha):.3f} rejected at α={alpha:g} (n={p.size})"
        ax_h.hist(p, bins=bins, range=(0, 1), histtype="step", linewidth=1.5, color=colors[name], label=label)
        expected = (np.arange(1, p.size + 1) - 0.5) / p.size
        ax_q.plot(expected, p, ".", markersize=3, color=colors[name], label=name)
    n = max((len(v) for v in p_values.values()), default=0)
    if n:
        ax_h.axhline(n / bins, color="black", linestyle="--", linewidth=0.8, label="uniform")
    ax_h.set_xlabel("p-value")
    ax_h.set_ylabel("runs")
    ax_h.legend(fontsize=7)
    ax_q.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=0.8)
    ax_q.set_xlabel("uniform quantile")
    ax_q.set_ylabel("p-value quantile")
    ax_q.legend(fontsize=7)
    fig.suptitle(_title(title, data_label), fontsize=10)
    return _save(fig, path)


def plot_power_curve(
    leaks: Sequence[float],
    rates: Mapping[str, Sequence[float]],
    path: str | os.PathLike,
    alpha: float = 0.05,
    xlabel: str = "leak of A into f",
    title: str = "Rejection rate as A leaks into the classifier",
    data_label: str | None = None,
) -> str:
    """Rejection rate of each test against the strength of the classifier's dependence on A (0: the null).

    Args:
        leaks: the leak strengths (x axis).
        rates: ``{test: rejection rate per leak}``.
        path: the PNG file.
        alpha: the level (drawn as a dashed line).
        xlabel: x-axis label.
        title: figure title.
        data_label: what the runs are, added to the title.
    """
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    colors = method_colors(list(rates))
    for name, values in rates.items():
        ax.plot(list(leaks), list(values), "o-", color=colors[name], label=name)
    ax.axhline(alpha, color="black", linestyle="--", linewidth=0.8, label=f"α = {alpha:g}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rejection rate")
    ax.legend(fontsize=8)
    ax.set_title(_title(title, data_label), fontsize=10)
    return _save(fig, path)
