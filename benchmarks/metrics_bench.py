# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Fairness-table speed: monai_fair vs fairlearn MetricFrame, and the vectorised bootstrap vs a naive loop.

1. The full per-group table and gaps (counts, selection rate, TPR, FPR, FNR, PPV, balanced accuracy, ROC AUC, signed
   and max–min gaps) on 1,000,000 predictions x 4 groups: ``compute_fairness_table`` vs fairlearn ``MetricFrame``
   with scikit-learn metrics for the same quantities (ECE is computed by ours only, so fairlearn is not charged
   for it).
2. 1,000 bootstrap resamples of the full table (AUC included) on 100,000 predictions: ours (one sort, resample
   weights) vs a naive loop of scikit-learn calls on explicit resamples, timed on 20 resamples and extrapolated.

Both sides run in the same process after a warm-up; wall-clock and process CPU time are printed (the machine may be
shared, so CPU time is the steadier figure). The headline ratios are on the last line.

Usage: ``python benchmarks/metrics_bench.py [--quick] [--device cpu|cuda] [--threads 1]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from fairlearn.metrics import (
    MetricFrame,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import balanced_accuracy_score, precision_score, roc_auc_score

from monai_fair.metrics import compute_fairness_table


def make_data(n: int, n_groups: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    g = torch.randint(0, n_groups, (n,), generator=gen)
    y = (torch.rand(n, generator=gen) < 0.2 + 0.05 * g).float()
    s = torch.sigmoid((1.5 - 0.2 * g) * (2 * y - 1) + torch.randn(n, generator=gen)).float()
    return s, y, g


def timed(fn, device: str):
    """(result, wall seconds, process CPU seconds) of ``fn()``."""
    if device == "cuda":
        torch.cuda.synchronize()
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - w0, time.process_time() - c0


def fairlearn_table(s: np.ndarray, y: np.ndarray, g: np.ndarray, threshold: float = 0.5) -> dict:
    """The same per-group quantities and gaps with fairlearn MetricFrame + scikit-learn."""
    pred = (s > threshold).astype(int)
    hard = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "fnr": false_negative_rate,
            "ppv": lambda a, b: precision_score(a, b, zero_division=np.nan),
            "balanced_accuracy": balanced_accuracy_score,
        },
        y_true=y,
        y_pred=pred,
        sensitive_features=g,
    )
    soft = MetricFrame(metrics={"auc": roc_auc_score}, y_true=y, y_pred=s, sensitive_features=g)
    by_group = hard.by_group.join(soft.by_group)
    diff = by_group.max() - by_group.min()
    return {
        "by_group": by_group,
        "signed": by_group - by_group.iloc[0],
        "equalized_odds": max(diff["tpr"], diff["fpr"]),
        "auc_gap": diff["auc"],
        "worst_group_auc": by_group["auc"].min(),
    }


def naive_bootstrap(s: np.ndarray, y: np.ndarray, g: np.ndarray, n_resamples: int, seed: int = 0) -> list:
    """Stratified resamples drawn explicitly, every figure recomputed with scikit-learn calls per group."""
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(g == k) for k in np.unique(g)]
    out = []
    for _ in range(n_resamples):
        idx = np.concatenate([rng.choice(m, size=m.size, replace=True) for m in members])
        rs, ry, rg = s[idx], y[idx], g[idx]
        rows = []
        for k in np.unique(rg):
            m = rg == k
            yt, sp = ry[m], rs[m]
            yp = (sp > 0.5).astype(int)
            rows.append(
                [
                    yp.mean(),
                    true_positive_rate(yt, yp),
                    false_positive_rate(yt, yp),
                    precision_score(yt, yp, zero_division=np.nan),
                    balanced_accuracy_score(yt, yp),
                    roc_auc_score(yt, sp),
                ]
            )
        rows = np.asarray(rows)
        out.append((rows - rows[0], rows.max(0) - rows.min(0)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--device", default="cpu", help="device for monai_fair (fairlearn always runs on CPU)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: fairlearn/numpy are single-threaded,"
        " and extra threads on an oversubscribed machine stall at every barrier)",
    )
    args = parser.parse_args()
    device = args.device
    torch.set_num_threads(args.threads)
    n_table = 100_000 if args.quick else 1_000_000
    n_boot_data = 20_000 if args.quick else 100_000
    n_boot = 100 if args.quick else 1000
    n_naive = 5 if args.quick else 20
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, device={device}")

    # 1. full table on n_table predictions x 4 groups
    s, y, g = make_data(n_table, 4)
    s_d, y_d, g_d = s.to(device), y.to(device), g.to(device)
    compute_fairness_table(s_d[:10_000], y_d[:10_000], g_d[:10_000], reference=0)  # warm-up
    fairlearn_table(s.numpy()[:10_000], y.numpy()[:10_000], g.numpy()[:10_000])
    ours, ours_wall, ours_cpu = timed(lambda: compute_fairness_table(s_d, y_d, g_d, reference=0), device)
    ref, fl_wall, fl_cpu = timed(lambda: fairlearn_table(s.numpy(), y.numpy(), g.numpy()), "cpu")
    err = max(
        float(np.nanmax(np.abs(ours.per_group[k].cpu().numpy() - ref["by_group"][k].to_numpy(float))))
        for k in ("selection_rate", "tpr", "fpr", "fnr", "ppv", "balanced_accuracy", "auc")
    )
    err = max(err, abs(float(ours.summary["equalized_odds"]) - ref["equalized_odds"]))
    err = max(err, abs(float(ours.gaps["eod"][3]) - float(ref["signed"]["tpr"].iloc[3])))
    table_ratio = fl_wall / ours_wall
    print(f"[table] {n_table:,} predictions x 4 groups (per-group rates, AUC, ECE, gaps)")
    print(f"  monai_fair: {ours_wall:.3f} s wall, {ours_cpu:.3f} s CPU")
    print(f"  fairlearn : {fl_wall:.3f} s wall, {fl_cpu:.3f} s CPU   (max |difference| = {err:.1e})")
    print(f"  speedup vs fairlearn: {table_ratio:.0f}x wall, {fl_cpu / ours_cpu:.0f}x CPU")

    # 2. bootstrap of the full table
    s, y, g = make_data(n_boot_data, 4, seed=1)
    s_d, y_d, g_d = s.to(device), y.to(device), g.to(device)
    compute_fairness_table(s_d, y_d, g_d, reference=0, n_bootstrap=20, seed=0)  # warm-up
    naive_bootstrap(s.numpy(), y.numpy(), g.numpy(), 1)
    boot, boot_wall, boot_cpu = timed(
        lambda: compute_fairness_table(s_d, y_d, g_d, reference=0, n_bootstrap=n_boot, seed=0), device
    )
    _, naive_wall, naive_cpu = timed(lambda: naive_bootstrap(s.numpy(), y.numpy(), g.numpy(), n_naive), "cpu")
    scale = n_boot / n_naive
    boot_ratio = naive_wall * scale / boot_wall
    lo, hi = boot.ci["summary/auc_gap"]
    print(f"[bootstrap] {n_boot} resamples of the full table on {n_boot_data:,} predictions x 4 groups")
    print(
        f"  monai_fair: {boot_wall:.3f} s wall, {boot_cpu:.3f} s CPU   (auc_gap {float(boot.summary['auc_gap']):.4f}"
        f" [{float(lo):.4f}, {float(hi):.4f}])"
    )
    print(
        f"  naive sklearn loop: {naive_wall:.3f} s for {n_naive} resamples -> {naive_wall * scale:.1f} s "
        f"extrapolated to {n_boot} ({naive_cpu * scale:.1f} s CPU)"
    )
    print(f"  speedup vs naive loop: {boot_ratio:.0f}x wall, {naive_cpu * scale / boot_cpu:.0f}x CPU")
    print(
        f"headline: table {n_table:,}x4 groups speedup vs fairlearn: {table_ratio:.0f}x wall "
        f"({fl_cpu / ours_cpu:.0f}x CPU; ours {ours_wall:.3f} s wall, {ours_cpu:.3f} s CPU); "
        f"bootstrap {n_boot}x{n_boot_data:,} speedup vs naive sklearn loop: {boot_ratio:.0f}x wall "
        f"({naive_cpu * scale / boot_cpu:.0f}x CPU; ours {boot_wall:.2f} s wall, {boot_cpu:.2f} s CPU)"
    )


if __name__ == "__main__":
    main()
