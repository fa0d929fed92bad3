# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Fairness audit of a model's saved predictions: per-group table with bootstrap CIs, gaps, flags and plots.

Works on any CSV of predictions, and on MONAI ``ClassificationSaver`` output (no header: ``filename, pred0,
pred1, ...``) joined with a manifest that holds the labels and the group column(s)::

    python tools/audit.py predictions.csv --score prob --label y --group sex --reference M --n-bootstrap 1000 \\
        --out audit_out
    python tools/audit.py eval/predictions.csv --score pred1 --label label --group sex age_group \\
        --manifest manifest.csv --join-on image --threshold ba-optimal --out audit_out

Scores must be probabilities in ``[0, 1]``; labels binary (0/1 or True/False); a group column may hold integer
codes (names via ``--group-names 0=F,1=M``) or strings (encoded to codes in sorted order, or in the order of
``--group-names F,M``). Several ``--group`` columns make intersectional groups (``F × 60-79``). Missing group values
follow ``--unknown``: left out of every group and counted (``exclude``, default) or the group ``unknown``.

Outputs (``--out``): ``fairness_table.csv`` (long format), ``per_group.csv``, ``pooled.csv`` (reference vs rest),
``report.md``, ``roc_by_group.png``, ``calibration_by_group.png``, ``metric_bars.png``. Only aggregates are
written: no file names, IDs or rows. The computation is :mod:`monai_fair.audit`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tqdm import tqdm

from monai_fair.audit import render_report, run_audit, write_outputs
from monai_fair.metrics import BIAS_KINDS, UNKNOWN_POLICIES

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(
        prog="audit.py",
        description="Group fairness audit of saved predictions (aggregates only).",
    )
    p.add_argument("predictions", help="CSV of predictions (with a header, or MONAI ClassificationSaver output).")
    p.add_argument("--score", nargs="+", required=True, help="probability column(s); several for multi-label.")
    p.add_argument("--label", nargs="+", required=True, help="binary label column(s), one per score column.")
    p.add_argument(
        "--group",
        nargs="+",
        required=True,
        help="group column(s) (codes or strings); several make intersectional groups, e.g. --group sex age_group.",
    )
    p.add_argument(
        "--reference",
        help="reference (privileged) group, by name or code ('M', or 'M × 60-79' with several columns; default: "
        "the largest group).",
    )
    p.add_argument("--group-names", help="'0=F,1=M' for integer codes, or 'F,M' (code order / string order).")
    p.add_argument("--label-names", nargs="+", help="display names of the labels (multi-label).")
    p.add_argument("--manifest", help="CSV holding labels/groups, joined to the predictions.")
    p.add_argument("--join-on", help="manifest column matched against the predictions' key column.")
    p.add_argument(
        "--pred-key",
        help="key column of the predictions (default: 'filename' without header, else " "the --join-on name).",
    )
    p.add_argument(
        "--no-header",
        action="store_true",
        help="predictions have no header (ClassificationSaver): "
        "columns are named filename, pred0, pred1, ... (detected automatically when obvious).",
    )
    p.add_argument("--threshold", default="0.5", help="decision threshold in [0, 1] or 'ba-optimal'.")
    p.add_argument("--n-bootstrap", type=int, default=0, help="bootstrap resamples for CIs (0: none).")
    p.add_argument("--ci-level", type=float, default=0.95)
    p.add_argument("--min-group-size", type=int, default=10)
    p.add_argument(
        "--unknown",
        choices=UNKNOWN_POLICIES,
        default="exclude",
        help="rows with a missing group value: in no group ('exclude', counted) or their own group 'unknown'.",
    )
    p.add_argument("--metric", choices=BIAS_KINDS, default="eod", help="bias of the pooled objective.")
    p.add_argument("--epsilon", type=float, default=0.05, help="tolerance of the pooled objective.")
    p.add_argument("--n-bins", type=int, default=15, help="calibration bins.")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed.")
    p.add_argument("--out", help="directory for CSV/Markdown/PNG outputs.")
    p.add_argument("--no-progress", action="store_true", help="no progress bar.")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the audit; returns the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    show = not args.no_progress and args.n_bootstrap > 0
    try:
        with tqdm(total=args.n_bootstrap, desc="bootstrap", unit="resample", disable=not show, file=sys.stderr) as bar:
            result = run_audit(
                args.predictions,
                score=args.score,
                label=args.label,
                group=args.group,
                reference=args.reference,
                group_names=args.group_names,
                label_names=args.label_names,
                manifest=args.manifest,
                join_on=args.join_on,
                pred_key=args.pred_key,
                no_header=args.no_header,
                threshold=args.threshold,
                unknown=args.unknown,
                metric=args.metric,
                epsilon=args.epsilon,
                min_group_size=args.min_group_size,
                n_bins=args.n_bins,
                n_bootstrap=args.n_bootstrap,
                ci_level=args.ci_level,
                seed=args.seed,
                on_chunk=bar.update,
            )
        report = render_report(result)
        print(report)
        if args.out:
            for p in write_outputs(result, report, args.out):
                print(f"wrote {p}")
    except ValueError as e:  # AuditInputError, and validation errors of the metric core (e.g. undeclared codes)
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
