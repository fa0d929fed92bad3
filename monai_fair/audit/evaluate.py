# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The audit computation: encode the group column(s) through a :class:`~monai_fair.metrics.spec.FairnessSpec`, then
the fairness table (per group, with bootstrap CIs) and the pooled reference-vs-rest figures of the evaluation core."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from monai_fair.data.codes import UNKNOWN
from monai_fair.metrics import (
    FairnessSpec,
    FairnessTable,
    better_than_chance,
    compute_fairness_table,
)
from monai_fair.metrics.thresholds import best_balanced_accuracy_threshold

from .inputs import AuditInputError, check_columns, encode_groups, load_audit_frame

__all__ = ["AuditResult", "POOLED_KEYS", "encode_group_columns", "resolve_threshold", "run_audit"]

#: the pooled reference-vs-rest figures of the audit (``docs/metrics.md``)
POOLED_KEYS = ("balanced_accuracy", "spd", "eod", "aod", "objective")


@dataclass
class AuditResult:
    """Everything an audit computed (aggregates, plus the arrays the plots need).

    Attributes:
        table: the per-group fairness table (CIs when ``n_bootstrap > 0``).
        pooled: per label (``None`` for a single label) the core's reference-vs-rest figures: ``balanced_accuracy,
            spd, eod, aod, bias, objective``, with resamples ``<k>_ci_low``/``<k>_ci_high``, and
            ``better_than_chance`` (1.0/0.0) with ``chance_reason``
            (:func:`~monai_fair.metrics.evaluation.better_than_chance`).
        spec: the spec of the audit (attributes = the group columns).
        y_score, y, groups: the audited scores ``(N,)``/``(N, L)``, labels and (intersectional) group codes.
        names: group code → name of the groups present.
        threshold: the decision threshold of each label.
        threshold_rule: ``"ba-optimal"`` or the number given.
        n: number of audited rows.
        notes: what the loader and the encoder want the reader to know.
    """

    table: FairnessTable
    pooled: dict[str | None, dict[str, float | str]]
    spec: FairnessSpec
    y_score: torch.Tensor
    y: torch.Tensor
    groups: torch.Tensor
    names: dict[int, str]
    threshold: list[float]
    threshold_rule: str
    n: int
    notes: list[str] = field(default_factory=list)

    def pooled_frame(self) -> pd.DataFrame:
        """Long table ``label, metric, value, ci_low, ci_high`` of the pooled figures."""
        rows = []
        for label, figures in self.pooled.items():
            for k in POOLED_KEYS:
                nan = float("nan")
                rows.append(
                    {
                        "label": label,
                        "metric": k,
                        "value": figures[k],
                        "ci_low": figures.get(f"{k}_ci_low", nan),
                        "ci_high": figures.get(f"{k}_ci_high", nan),
                    }
                )
            if "better_than_chance" in figures:
                rows.append({"label": label, "metric": "better_than_chance", "value": figures["better_than_chance"]})
        return pd.DataFrame(rows, columns=["label", "metric", "value", "ci_low", "ci_high"])

    def chance_notes(self) -> list[str]:
        """One line per label whose model is not better than chance (``[]`` when every label is)."""
        return [
            f"{'model' if label is None else f'label {label}'}: NOT better than chance ({f['chance_reason']}); "
            "its small gaps do not make it fair"
            for label, f in self.pooled.items()
            if not f.get("better_than_chance", 1.0)
        ]


def encode_group_columns(
    df: pd.DataFrame,
    columns: Sequence[str],
    *,
    group_names: str | None = None,
    reference: str | None = None,
    **spec_fields: Any,
) -> tuple[FairnessSpec, torch.Tensor, dict[int, str]]:
    """Codes of one group column, or intersectional codes of several, with their spec and names.

    Args:
        df: the audited rows.
        columns: group column(s); several make intersectional groups (``F × 60-79``).
        group_names: ``'0=F,1=M'`` or ``'F,M'`` (one column only).
        reference: reference group by name (``M``, ``M × 60-79``) or code; ``None``: the largest group.
        spec_fields: further :class:`FairnessSpec` fields (``unknown``, ``min_group_size``, ``metric``, ...).

    Returns:
        ``(spec, codes (N,), names of the groups present)``.

    Raises:
        AuditInputError: ``group_names`` with several columns, or a reference that is no group.
    """
    columns = list(columns)
    if group_names and len(columns) > 1:
        raise AuditInputError("--group-names applies to a single --group column; encode the others as names.")
    per_column, code_maps = {}, {}
    for col in columns:
        codes, names = encode_groups(df[col], group_names)
        per_column[col] = torch.as_tensor(codes)
        code_maps[col] = {c: n for c, n in names.items() if c != UNKNOWN}
    try:
        spec = FairnessSpec(attributes=columns, reference=reference, group_names=code_maps, **spec_fields)
    except ValueError as e:
        if reference is not None and "reference" in str(e):
            known = sorted({n for m in code_maps.values() for n in m.values()})
            raise AuditInputError(f"--reference {reference!r} is not a group name or code ({e}); names: {known}.")
        raise
    g = spec.group_codes(per_column)
    present = sorted(int(c) for c in torch.unique(g).tolist())
    all_names = spec.names(present)
    return spec, g, {c: all_names[c] for c in present}


def resolve_threshold(rule: str | float, s: torch.Tensor, y: torch.Tensor) -> list[float]:
    """One threshold per label column: the number given, or the balanced-accuracy-optimal observed score.

    Raises:
        AuditInputError: neither a number in ``[0, 1]`` nor ``"ba-optimal"``.
    """
    if rule == "ba-optimal":
        return [best_balanced_accuracy_threshold(s[:, j], y[:, j])[0] for j in range(s.shape[1])]
    try:
        t = float(rule)
    except ValueError:
        raise AuditInputError(f"--threshold must be a number in [0, 1] or 'ba-optimal', got {rule!r}.") from None
    if math.isnan(t) or not 0.0 <= t <= 1.0:
        raise AuditInputError(f"--threshold must be in [0, 1], got {t}.")
    return [t] * s.shape[1]


def run_audit(
    predictions: str | os.PathLike,
    *,
    score: Sequence[str],
    label: Sequence[str],
    group: str | Sequence[str],
    reference: str | None = None,
    group_names: str | None = None,
    label_names: Sequence[str] | None = None,
    manifest: str | os.PathLike | None = None,
    join_on: str | None = None,
    pred_key: str | None = None,
    no_header: bool = False,
    threshold: str | float = 0.5,
    unknown: str = "exclude",
    metric: str = "eod",
    epsilon: float = 0.05,
    min_group_size: int = 10,
    n_bins: int = 15,
    n_bootstrap: int = 0,
    ci_level: float = 0.95,
    seed: int = 0,
    on_chunk: Callable[[int], None] | None = None,
) -> AuditResult:
    """Load, check, encode and evaluate saved predictions (aggregates only).

    The per-group table comes from :func:`~monai_fair.metrics.compute_fairness_table` (bootstrap stratified by
    group), the pooled reference-vs-rest figures from :func:`~monai_fair.metrics.summarize_binary_fairness` (the
    evaluation core; unstratified resampling). Both resample with :func:`~monai_fair.metrics.bootstrap_weights`.

    Args:
        predictions, manifest, join_on, pred_key, no_header: see :func:`~monai_fair.audit.inputs.load_audit_frame`.
        score: probability column(s); several for multi-label.
        label: binary label column(s), one per score column.
        group: group column(s); several make intersectional groups.
        reference: reference (privileged) group by name or code (default: the largest group).
        group_names: names of one group column's codes (``'0=F,1=M'`` or ``'F,M'``).
        label_names: display names of the labels.
        threshold: a number in ``[0, 1]`` or ``"ba-optimal"``.
        unknown, metric, epsilon, min_group_size: :class:`~monai_fair.metrics.FairnessSpec` fields.
        n_bins: calibration bins.
        n_bootstrap: resamples for the intervals (0: none).
        ci_level: interval level.
        seed: resampling seed.
        on_chunk: progress callback of the per-group bootstrap (number of resamples done per chunk).

    Raises:
        AuditInputError: bad files, columns, values or arguments.
    """
    if n_bootstrap < 0:
        raise AuditInputError("--n-bootstrap must be >= 0.")
    columns = [group] if isinstance(group, str) else list(group)
    df, notes = load_audit_frame(
        predictions, score=score, manifest=manifest, join_on=join_on, pred_key=pred_key, no_header=no_header
    )
    where = "the predictions" + (" + manifest" if manifest else "")
    s_np, y_np = check_columns(df, score, label, columns, where)
    spec, g, names = encode_group_columns(
        df,
        columns,
        group_names=group_names,
        reference=reference,
        unknown=unknown,
        metric=metric,
        epsilon=epsilon,
        min_group_size=max(int(min_group_size), 1),
    )
    n_unknown = int((g < 0).sum())
    if n_unknown:
        where_to = "reported as the group 'unknown'" if unknown == "group" else "left out of every group"
        notes.append(f"{n_unknown} row(s) with a missing group value are {where_to} (--unknown {unknown})")
    s, y = torch.as_tensor(s_np), torch.as_tensor(y_np)
    thr = resolve_threshold(threshold, s, y)
    if label_names is not None and len(label_names) != s.shape[1]:
        raise AuditInputError(f"--label-names has {len(label_names)} names for {s.shape[1]} label(s).")
    label_names = list(label_names) if label_names else (list(label) if s.shape[1] > 1 else None)
    single = s.shape[1] == 1
    s_in, y_in = (s[:, 0], y[:, 0]) if single else (s, y)
    table = compute_fairness_table(
        s_in,
        y_in,
        g,
        threshold=thr[0] if single else thr,
        reference=spec.reference,
        group_codes=[c for c in names if c >= 0],
        group_names=names,
        label_names=label_names,
        min_group_size=min_group_size,
        n_bins=n_bins,
        n_bootstrap=n_bootstrap,
        ci_level=ci_level,
        seed=seed,
        unknown=unknown,
        on_chunk=on_chunk,
    )
    pooled = {}
    for j, name in enumerate(label_names or [None]):
        pooled[name] = spec.summarize(
            s[:, j],
            y[:, j],
            g,
            threshold=thr[j],
            reference=table.reference,
            n_bootstrap=n_bootstrap,
            ci_level=ci_level,
            seed=seed,
        )
        if "better_than_chance" not in pooled[name]:  # no bootstrap: only the output checks apply
            ok, reason = better_than_chance(s[:, j], thr[j])
            pooled[name].update(better_than_chance=float(ok), chance_reason=reason)
    return AuditResult(
        table=table,
        pooled=pooled,
        spec=spec,
        y_score=s_in,
        y=y_in,
        groups=g,
        names=names,
        threshold=thr,
        threshold_rule=str(threshold),
        n=len(df),
        notes=notes,
    )
