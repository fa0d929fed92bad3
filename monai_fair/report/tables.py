# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Study result tables: ``mean ± std`` formatting, display tables, Markdown and CSV writers.

Undefined values (NaN, ``None``) print as ``n/a``; a metric defined on only ``k`` of ``N`` seeds prints
``mean ± std (n=k/N)``; a single defined value prints without ``± std``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import pandas as pd

__all__ = [
    "METRIC_LABELS",
    "NA",
    "format_mean_std",
    "format_value",
    "markdown_table",
    "summary_display_table",
    "summary_markdown",
    "write_csv",
]

NA = "n/a"
#: column labels of the display tables
METRIC_LABELS = {
    "balanced_accuracy": "BA",
    "eod": "EOD",
    "spd": "SPD",
    "aod": "AOD",
    "bias": "bias",
    "abs_bias": "|bias|",
    "objective": "objective φ",
    "threshold": "threshold",
}
_SPLIT_NAMES = {"val": "validation", "test": "test"}


def _is_missing(x: object) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def format_value(x: float | None, digits: int = 3) -> str:
    """``x`` with ``digits`` decimals, or ``"n/a"`` when undefined."""
    if _is_missing(x):
        return NA
    text = f"{float(x):.{digits}f}"
    # "-0.000" reads as a signed gap; a value that rounds to zero prints unsigned
    return text[1:] if text.startswith("-") and float(text) == 0.0 else text


def format_mean_std(
    mean: float | None, std: float | None, digits: int = 3, n: int | None = None, n_seeds: int | None = None
) -> str:
    """``"mean ± std"``, with ``(n=k/N)`` when only ``k = n`` of ``N = n_seeds`` seeds have a value.

    Args:
        mean: mean over seeds.
        std: standard deviation over seeds (NaN with a single value: printed without ``±``).
        digits: decimals.
        n: number of seeds the mean is over.
        n_seeds: number of seeds with a record.
    """
    if _is_missing(mean):
        return NA
    text = format_value(mean, digits)
    if not _is_missing(std):
        text += f" ± {format_value(std, digits)}"
    if n is not None and n_seeds is not None and n < n_seeds:
        text += f" (n={n}/{n_seeds})"
    return text


def summary_display_table(
    summary: pd.DataFrame,
    split: str = "test",
    *,
    metric: str = "eod",
    epsilon: float | None = None,
    digits: int = 3,
) -> pd.DataFrame:
    """Formatted (string) table of one split: ``method | BA | EOD | SPD | [AOD] | objective φ | seeds [| fair]``.

    The AOD column appears when the study metric is AOD or some seed has an AOD value. ``fair`` (``k/N`` seeds with
    ``|bias| < ε`` and better than chance) appears when ``epsilon`` is given and the summary has ``fair_count``;
    ``no better than chance`` (``k/N`` seeds) appears when some seed is flagged.

    Args:
        summary: output of :func:`~monai_fair.report.aggregate.aggregate_results`.
        split: ``"val"`` or ``"test"``.
        metric: the study's bias metric, marked ``*`` in the header.
        epsilon: the objective's tolerance (only for the ``fair`` column header).
        digits: decimals.

    Raises:
        ValueError: ``split`` not in the summary.
    """
    sub = summary[summary["split"] == split]
    if sub.empty:
        raise ValueError(f"split {split!r} not in the summary (splits: {sorted(set(summary['split']))}).")
    cols = ["balanced_accuracy", "eod", "spd"]
    if metric == "aod" or ("aod_n" in sub.columns and (sub["aod_n"] > 0).any()):
        cols.append("aod")
    cols.append("objective")
    table: dict[str, list[str]] = {"method": [str(m) for m in sub["method"]]}
    for c in cols:
        label = METRIC_LABELS[c] + ("*" if c == metric else "")
        if f"{c}_mean" not in sub.columns:
            table[label] = [NA] * len(sub)
            continue
        table[label] = [
            format_mean_std(r[f"{c}_mean"], r[f"{c}_std"], digits, int(r[f"{c}_n"]), int(r["n_seeds"]))
            for _, r in sub.iterrows()
        ]
    table["seeds"] = [str(int(n)) for n in sub["n_seeds"]]
    if epsilon is not None and "fair_count" in sub.columns:
        table[f"|{METRIC_LABELS[metric]}| < {epsilon:g}"] = [
            NA if _is_missing(r["fair_rate"]) else f"{int(r['fair_count'])}/{int(r['fair_n'])}"
            for _, r in sub.iterrows()
        ]
    if "chance_count" in sub.columns and (sub["chance_count"].fillna(0) > 0).any():
        # a model no better than chance is reported as such, never as fair
        table["no better than chance"] = [f"{int(r['chance_count'])}/{int(r['n_seeds'])}" for _, r in sub.iterrows()]
    return pd.DataFrame(table)


def markdown_table(table: pd.DataFrame) -> str:
    """A pipe table of a (string) DataFrame; ``|`` inside cells is escaped."""

    def cell(x: object) -> str:
        return (NA if _is_missing(x) else str(x)).replace("|", "\\|")

    head = "| " + " | ".join(cell(c) for c in table.columns) + " |"
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(table.columns))) + "|"
    body = ["| " + " | ".join(cell(x) for x in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def summary_markdown(
    summary: pd.DataFrame,
    *,
    data_label: str,
    metric: str = "eod",
    epsilon: float | None = None,
    splits: Sequence[str] | None = None,
    title: str | None = None,
    digits: int = 3,
) -> str:
    """Markdown summary: a header line naming the data, then one table per split.

    Args:
        summary: output of :func:`~monai_fair.report.aggregate.aggregate_results`.
        data_label: what the numbers ran on, printed bold first (e.g. ``"DEMO DATA (synthetic)"``).
        metric: the study's bias metric.
        epsilon: the objective's tolerance.
        splits: splits to print, in order; default test then validation (those present).
        title: optional ``#`` title.
        digits: decimals.
    """
    if splits is None:
        present = list(dict.fromkeys(summary["split"]))
        splits = [s for s in ("test", "val") if s in present] + [s for s in present if s not in ("test", "val")]
    lines = []
    if title:
        lines += [f"# {title}", ""]
    lines.append(f"**{data_label}**")
    lines.append("")
    eps = f", ε = {epsilon:g}" if epsilon is not None else ""
    lines.append(
        f"Signed biases are unprivileged minus privileged; bias metric {METRIC_LABELS[metric]}*{eps}; "
        f"objective φ = BA·[|bias| < ε]. Cells are mean ± std over seeds (sample std, ddof=1); n/a = undefined."
    )
    for split in splits:
        table = summary_display_table(summary, split, metric=metric, epsilon=epsilon, digits=digits)
        lines += ["", f"## {_SPLIT_NAMES.get(split, split).capitalize()} split", "", markdown_table(table)]
    return "\n".join(lines) + "\n"


def write_csv(table: pd.DataFrame, path: str | os.PathLike, data_label: str | None = None) -> str:
    """Write a tidy table as CSV (full precision, undefined values as ``NaN``); returns the path.

    Args:
        table: the table.
        path: the CSV file.
        data_label: what the numbers ran on (e.g. ``"DEMO DATA (synthetic)"``): written as a first column ``data``
            on every row, so the file says so wherever it is read; ``None``: the table as is.
    """
    if data_label:
        table = table.copy()
        table.insert(0, "data", str(data_label))
    table.to_csv(path, index=False, na_rep="NaN")
    return str(path)
