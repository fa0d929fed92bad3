# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Per-group ROC curves, reliability (calibration) diagrams and metric bar charts, drawn with matplotlib's Agg.

The curve points are computed in torch (one sort per group, no threshold loop); the figures are built with the
object-oriented matplotlib API (no ``pyplot`` state), so they are safe inside handlers and headless runs. Each plot
function returns a :class:`matplotlib.figure.Figure`; :func:`figure_to_png` and :func:`figure_to_array` turn it into
PNG bytes or an ``(H, W, 3)`` uint8 array (what ``SummaryWriter.add_image(..., dataformats="HWC")`` takes).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "roc_curve_points",
    "reliability_curve",
    "plot_group_roc",
    "plot_group_calibration",
    "plot_group_metric_bars",
    "figure_to_png",
    "figure_to_array",
]


def roc_curve_points(y_score: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ROC curve of one binary problem: one point per distinct score, from (0, 0) to (1, 1).

    Args:
        y_score: scores ``(N,)``; higher means more likely positive.
        y: binary labels ``(N,)``.

    Returns:
        ``(fpr, tpr, thresholds)``; point ``k`` is the operating point of ``y_score >= thresholds[k]`` and
        ``thresholds[0]`` is ``+inf`` (nothing predicted positive).

    Raises:
        ValueError: if the lengths differ, or if one class is absent (the curve is undefined).
    """
    s = torch.as_tensor(y_score).reshape(-1).to(torch.float64)
    t = torch.as_tensor(y, device=s.device).reshape(-1).to(torch.float64)
    if s.numel() != t.numel():
        raise ValueError(f"y_score and y must have the same length, got {s.numel()} and {t.numel()}.")
    n_pos = t.sum()
    n_neg = t.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC curve is undefined: labels contain a single class.")
    s_desc, order = torch.sort(s, descending=True)
    t_desc = t[order]
    tp = torch.cumsum(t_desc, 0)
    fp = torch.arange(1, s.numel() + 1, device=s.device, dtype=torch.float64) - tp
    # keep the last index of each run of tied scores: ties move the curve diagonally in one step
    last = torch.ones_like(s_desc, dtype=torch.bool)
    last[:-1] = s_desc[1:] != s_desc[:-1]
    zero = torch.zeros(1, dtype=torch.float64, device=s.device)
    fpr = torch.cat([zero, fp[last] / n_neg])
    tpr = torch.cat([zero, tp[last] / n_pos])
    thr = torch.cat([torch.full((1,), float("inf"), dtype=torch.float64, device=s.device), s_desc[last]])
    return fpr, tpr, thr


def reliability_curve(
    y_score: torch.Tensor, y: torch.Tensor, n_bins: int = 15
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reliability diagram data on ``n_bins`` equal-width bins of ``[0, 1]`` (last bin closed on the right).

    Args:
        y_score: predicted probabilities ``(N,)`` in ``[0, 1]``.
        y: binary labels ``(N,)``.
        n_bins: number of bins.

    Returns:
        ``(mean_score, fraction_positive, count)``, each of shape ``(n_bins,)``; the first two are NaN in empty
        bins.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}.")
    s = torch.as_tensor(y_score).reshape(-1).to(torch.float64)
    t = torch.as_tensor(y, device=s.device).reshape(-1).to(torch.float64)
    if s.numel() != t.numel():
        raise ValueError(f"y_score and y must have the same length, got {s.numel()} and {t.numel()}.")
    idx = torch.clamp((s * n_bins).floor().long(), 0, n_bins - 1)
    count = torch.zeros(n_bins, dtype=torch.float64, device=s.device).index_add_(0, idx, torch.ones_like(s))
    sum_s = torch.zeros_like(count).index_add_(0, idx, s)
    sum_t = torch.zeros_like(count).index_add_(0, idx, t)
    nan = torch.full_like(count, float("nan"))
    mean_s = torch.where(count > 0, sum_s / count.clamp_min(1), nan)
    frac = torch.where(count > 0, sum_t / count.clamp_min(1), nan)
    return mean_s, frac, count


def _columns(y_score: Any, y: Any, groups: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scores and labels as ``(N, L)`` float64 tensors and groups as ``(N,)`` int64."""
    s = torch.as_tensor(y_score).to(torch.float64)
    t = torch.as_tensor(y, device=s.device).to(torch.float64)
    g = torch.as_tensor(groups, device=s.device).reshape(-1).long()
    s = s.reshape(-1, 1) if s.ndim == 1 else s
    t = t.reshape(-1, 1) if t.ndim == 1 else t
    if s.ndim != 2 or s.shape != t.shape or s.shape[0] != g.numel():
        raise ValueError(
            f"expected y_score and y of shape (N,) or (N, L) and groups of shape (N,), got {tuple(s.shape)}, "
            f"{tuple(t.shape)}, {tuple(g.shape)}."
        )
    return s, t, g


def _group_order(groups: torch.Tensor, group_codes: Sequence[int] | None) -> list[int]:
    present = sorted(int(c) for c in torch.unique(groups).tolist())
    if group_codes is None:
        return present
    codes = [int(c) for c in group_codes]
    return codes + [c for c in present if c not in codes]  # codes outside the list are still shown


def _name(code: int, group_names: Mapping[Any, str] | Sequence[str] | None, order: list[int]) -> str:
    if group_names is None:
        return str(code)
    if isinstance(group_names, Mapping):
        return str(group_names.get(code, group_names.get(str(code), code)))
    return str(group_names[order.index(code)]) if order.index(code) < len(group_names) else str(code)


def _grid(n_panels: int, panel_size: float, dpi: int, title: bool = False) -> tuple[Figure, list]:
    """A grid of panels with fixed margins (``tight_layout`` would cost a full extra draw)."""
    n_cols = min(n_panels, 4)
    n_rows = math.ceil(n_panels / n_cols)
    width, height = panel_size * n_cols, panel_size * n_rows + (0.3 if title else 0.0)
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(
        left=0.6 / width,
        right=1 - 0.15 / width,
        bottom=0.5 / height,
        top=1 - (0.65 if title else 0.35) / height,
        wspace=0.6 / panel_size,
        hspace=0.85 / panel_size,
    )
    axes = [fig.add_subplot(n_rows, n_cols, i + 1) for i in range(n_panels)]
    return fig, axes


def _unit_axes(ax: Any, xlabel: str, ylabel: str) -> None:
    """``[0, 1]`` axes with a few fixed ticks (tick layout dominates the drawing time)."""
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_ticks([0.0, 0.5, 1.0])
        axis.set_ticks([0.25, 0.75], minor=True)
    ax.tick_params(labelsize=7)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)


def plot_group_roc(
    y_score: Any,
    y: Any,
    groups: Any,
    *,
    group_codes: Sequence[int] | None = None,
    group_names: Mapping[Any, str] | Sequence[str] | None = None,
    label_names: Sequence[str] | None = None,
    title: str | None = None,
    threshold: float | Sequence[float] | None = None,
    panel_size: float = 3.6,
    dpi: int = 80,
) -> Figure:
    """ROC curve of every group (one panel per label), with group size and AUC in the legend.

    A group whose labels hold a single class has no ROC curve; it is still listed in the legend with its count
    and the reason, never dropped silently.

    Args:
        y_score: probabilities ``(N,)`` or ``(N, L)``.
        y: binary labels of the same shape.
        groups: integer group codes ``(N,)``.
        group_codes: order of the groups in the legend (groups found in the data but not listed are appended).
        group_names: code→name map (or names in ``group_codes`` order).
        label_names: one name per label column (panel titles).
        title: figure title.
        threshold: decision threshold (one, or one per label): each group's operating point there
            (``score > threshold``, the metrics' convention) is marked on its curve; ``None``: curves only.
        panel_size: inches per panel side.
        dpi: figure resolution.

    Returns:
        the matplotlib figure.
    """
    s, t, g = _columns(y_score, y, groups)
    order = _group_order(g, group_codes)
    fig, axes = _grid(s.shape[1], panel_size, dpi, bool(title))
    if threshold is not None:
        thresholds = [float(x) for x in torch.as_tensor(threshold, dtype=torch.float64).reshape(-1)]
        if len(thresholds) == 1:
            thresholds = thresholds * s.shape[1]
        if len(thresholds) != s.shape[1]:
            raise ValueError(f"threshold has {len(thresholds)} values for {s.shape[1]} label column(s).")
    for j, ax in enumerate(axes):
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
        for code in order:
            mask = g == code
            n = int(mask.sum())
            name = _name(code, group_names, order)
            try:
                fpr, tpr, _ = roc_curve_points(s[mask, j], t[mask, j])
            except ValueError:
                # keep the group visible in the legend with the reason it has no curve
                ax.plot([], [], label=f"{name} (n={n}): no ROC, {'empty' if n == 0 else 'single class'}")
                continue
            auc = float(torch.trapezoid(tpr, fpr))
            (line,) = ax.plot(fpr.cpu().numpy(), tpr.cpu().numpy(), lw=1.4, label=f"{name} (n={n}) AUC={auc:.3f}")
            if threshold is not None:
                pos, yj = s[mask, j] > thresholds[j], t[mask, j] > 0.5
                op_tpr = float((pos & yj).sum()) / max(int(yj.sum()), 1)
                op_fpr = float((pos & ~yj).sum()) / max(int((~yj).sum()), 1)
                ax.plot([op_fpr], [op_tpr], "o", color=line.get_color(), ms=5, mec="black", mew=0.6)
        _unit_axes(ax, "false positive rate", "true positive rate")
        if label_names is not None and j < len(label_names):
            ax.set_title(str(label_names[j]), fontsize=9)
        if threshold is not None:
            ax.plot([], [], "o", color="0.6", mec="black", mew=0.6, label=f"● operating point, t={thresholds[j]:.3g}")
        ax.legend(loc="lower right", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_group_calibration(
    y_score: Any,
    y: Any,
    groups: Any,
    *,
    n_bins: int = 15,
    group_codes: Sequence[int] | None = None,
    group_names: Mapping[Any, str] | Sequence[str] | None = None,
    label_names: Sequence[str] | None = None,
    title: str | None = None,
    panel_size: float = 3.6,
    dpi: int = 80,
) -> Figure:
    """Reliability diagram of every group (one panel per label), with the group's expected calibration error.

    ECE here is the bin-count-weighted mean of ``|fraction_positive - mean_score|`` over non-empty bins.

    Args:
        y_score: probabilities ``(N,)`` or ``(N, L)``.
        y: binary labels of the same shape.
        groups: integer group codes ``(N,)``.
        n_bins: number of equal-width bins.
        group_codes: order of the groups in the legend.
        group_names: code→name map (or names in ``group_codes`` order).
        label_names: one name per label column.
        title: figure title.
        panel_size: inches per panel side.
        dpi: figure resolution.

    Returns:
        the matplotlib figure.
    """
    s, t, g = _columns(y_score, y, groups)
    order = _group_order(g, group_codes)
    fig, axes = _grid(s.shape[1], panel_size, dpi, bool(title))
    for j, ax in enumerate(axes):
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
        for code in order:
            mask = g == code
            n = int(mask.sum())
            name = _name(code, group_names, order)
            if n == 0:
                ax.plot([], [], label=f"{name} (n=0): empty")
                continue
            mean_s, frac, count = reliability_curve(s[mask, j], t[mask, j], n_bins)
            keep = count > 0
            ece = float(((frac - mean_s).abs()[keep] * count[keep]).sum() / count.sum())
            ax.plot(
                mean_s[keep].cpu().numpy(),
                frac[keep].cpu().numpy(),
                marker="o",
                ms=3,
                lw=1.2,
                label=f"{name} (n={n}) ECE={ece:.3f}",
            )
        _unit_axes(ax, "mean predicted probability", "fraction positive")
        if label_names is not None and j < len(label_names):
            ax.set_title(str(label_names[j]), fontsize=9)
        ax.legend(loc="upper left", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_group_metric_bars(
    values: Mapping[str, Any],
    group_names: Sequence[str],
    *,
    lower: Mapping[str, Any] | None = None,
    upper: Mapping[str, Any] | None = None,
    title: str | None = None,
    panel_size: float = 3.0,
    dpi: int = 80,
) -> Figure:
    """One bar chart per metric with one bar per group and optional confidence-interval whiskers.

    NaN values (undefined for that group) are drawn as an empty bar labelled ``NaN``, not as zero.

    Args:
        values: metric name → per-group values ``(G,)`` (e.g. ``FairnessTable.per_group["tpr"]`` for one label).
        group_names: one name per group, in the order of the values.
        lower: metric name → lower CI bounds ``(G,)`` (optional; metrics without bounds get no whiskers).
        upper: metric name → upper CI bounds ``(G,)``.
        title: figure title.
        panel_size: inches per panel side.
        dpi: figure resolution.

    Returns:
        the matplotlib figure.
    """
    names = list(values)
    if not names:
        raise ValueError("values must hold at least one metric.")
    fig, axes = _grid(len(names), panel_size, dpi, bool(title))
    x = np.arange(len(group_names))
    for ax, metric in zip(axes, names):
        v = np.asarray(torch.as_tensor(values[metric]).detach().cpu().to(torch.float64)).reshape(-1)
        if v.size != len(group_names):
            raise ValueError(f"metric {metric!r} has {v.size} values for {len(group_names)} groups.")
        finite = np.isfinite(v)
        ax.bar(x[finite], v[finite], color="tab:blue", alpha=0.8)
        for i in np.flatnonzero(~finite):
            ax.text(x[i], 0.02, "NaN", ha="center", va="bottom", fontsize=8, color="tab:red")
        if lower is not None and upper is not None and metric in lower and metric in upper:
            lo = np.asarray(torch.as_tensor(lower[metric]).detach().cpu().to(torch.float64)).reshape(-1)
            hi = np.asarray(torch.as_tensor(upper[metric]).detach().cpu().to(torch.float64)).reshape(-1)
            ok = finite & np.isfinite(lo) & np.isfinite(hi)
            err = np.vstack([v[ok] - lo[ok], hi[ok] - v[ok]]).clip(min=0)
            ax.errorbar(x[ok], v[ok], yerr=err, fmt="none", ecolor="black", capsize=3, lw=1)
        ax.set_xticks(x)
        ax.set_xticklabels([str(n) for n in group_names], fontsize=8)
        ax.set_title(metric, fontsize=9)
        top = np.nanmax(np.concatenate([v[finite], [1.0]]))
        ax.set_ylim(min(0.0, np.nanmin(np.concatenate([v[finite], [0.0]]))), max(1.0, top) * 1.05)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def figure_to_png(fig: Figure) -> bytes:
    """PNG bytes of a figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def figure_to_array(fig: Figure) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB array of a figure (for ``SummaryWriter.add_image(..., dataformats="HWC")``)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
