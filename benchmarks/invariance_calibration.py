# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Calibration and power of the counterfactual-invariance tests on the seed's synthetic model (bugs fixed).

Each run draws the synthetic structural model (:func:`monai_fair.audit.make_synthetic_scm`: mechanisms reused for
the counterfactual, U = Z_T), trains a logistic classifier of Y on U only on the first half and audits it on the
second half with its exogenous factors U:

* **null**: f(x) = 1[ŵ·U + b̂ > 0] uses U only, so Ŷ ⊥ A | U holds exactly; the rejection rate at α should be α and
  the p-values uniform (histogram and QQ plot written);
* **power**: f_λ = 1[ŵ·U + b̂ + λ·(2A − 1) > 0] leaks A with strength λ (logit units); the rejection rate should
  grow with λ. The counterfactual flip rate of f_λ (from the true counterfactuals of the model) is printed beside it.

Prints the type-I error of every test (goal for the GCM default: within 0.02 of α over ≥ 200 runs) and the power
curve; writes ``null_pvalues.png``, ``power_curve.png`` and ``invariance_calibration.json`` to ``--out``.

Usage: ``python benchmarks/invariance_calibration.py [--runs 200] [--power-runs 100] [--n 600] [--out DIR]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from monai_fair.audit import make_synthetic_scm, run_invariance_tests
from monai_fair.audit.invariance import _RidgeLogistic
from monai_fair.report import plot_null_calibration, plot_power_curve

TESTS = ("gcm", "crt", "paired_t")


def audit_run(
    seed: int, leak: float, n: int, k: int, steps: int, link: str, n_draws: int, regressor: str = "logistic"
) -> dict[str, float]:
    """One synthetic run: p-value of every test and the flip rate of the (leaky) classifier on the audit half."""
    data = make_synthetic_scm(n=2 * n, k=k, steps=steps, link=link, seed=seed)
    fit, audit = slice(0, n), slice(n, 2 * n)
    # the classifier is trained on U only (Y is a function of U); the leak adds A to its logit
    clf = _RidgeLogistic(alpha=1.0).fit(data.u[fit], data.y[fit])
    logit = clf.predict(data.u[audit])
    a = data.a[audit]
    y_hat = (logit + leak * (2 * a - 1) > 0).astype(float)
    y_cf = (logit + leak * (1 - 2 * a) > 0).astype(float)
    res = run_invariance_tests(y_hat, a, data.u[audit], tests=TESTS, seed=seed, n_draws=n_draws, regressor=regressor)
    out = {name: r.p_value for name, r in res.items()}
    out["flip_rate"] = float(np.mean(y_hat != y_cf))
    return out


def run(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns the rates (also printed) and the written paths."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="null runs (type-I error)")
    parser.add_argument("--power-runs", type=int, default=100, help="runs per leak strength")
    parser.add_argument("--leaks", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0, 2.0])
    parser.add_argument("--n", type=int, default=600, help="audited samples per run (as many train the classifier)")
    parser.add_argument("--k", type=int, default=16, help="dimension of U and X")
    parser.add_argument("--steps", type=int, default=3, help="T, latent layers of the model")
    parser.add_argument("--link", default="linear")
    parser.add_argument("--n-draws", type=int, default=500, help="CRT null draws")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--out", default="benchmarks/out/invariance_calibration")
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    w0, c0 = time.perf_counter(), time.process_time()
    common = dict(n=args.n, k=args.k, steps=args.steps, link=args.link, n_draws=args.n_draws)
    null = [audit_run(seed, 0.0, **common) for seed in range(args.runs)]
    p_null = {t: [r[t] for r in null] for t in TESTS}
    type1 = {t: float(np.mean(np.asarray(p) < args.alpha)) for t, p in p_null.items()}
    # binomial standard error of a rejection rate at alpha over `runs` runs
    se = float(np.sqrt(args.alpha * (1 - args.alpha) / args.runs))
    ks = {t: _ks_uniform(p) for t, p in p_null.items()}

    power: dict[str, list[float]] = {t: [] for t in TESTS}
    flips = []
    for i, leak in enumerate(args.leaks):
        runs = [audit_run(100_000 * (i + 1) + s, leak, **common) for s in range(args.power_runs)]
        for t in TESTS:
            power[t].append(float(np.mean([r[t] < args.alpha for r in runs])))
        flips.append(float(np.mean([r["flip_rate"] for r in runs])))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0

    label = f"synthetic SCM (Ma et al. 2025, fixed), n={args.n}, k={args.k}, T={args.steps}, {args.link} link"
    paths = {
        "null_pvalues": plot_null_calibration(
            p_null, out / "null_pvalues.png", alpha=args.alpha, title="p-values, classifier on U only", data_label=label
        ),
        "power_curve": plot_power_curve(
            args.leaks,
            power,
            out / "power_curve.png",
            alpha=args.alpha,
            xlabel="leak λ of A (logit units)",
            data_label=label,
        ),
    }
    result = {
        "settings": vars(args),
        "type1_error": type1,
        "type1_se": se,
        "ks_uniform_p": ks,
        "leaks": list(args.leaks),
        "power": power,
        "flip_rate": flips,
        "wall_s": wall,
        "cpu_s": cpu,
        "paths": paths,
    }
    (out / "invariance_calibration.json").write_text(json.dumps(result, indent=1))

    print(f"{label}; {args.runs} null runs, {args.power_runs} runs per leak; alpha = {args.alpha:g}")
    print(f"type-I error (goal |rate - alpha| <= 0.02; binomial se {se:.3f}):")
    for t in TESTS:
        print(f"  {t:9s} {type1[t]:.3f}   (KS test of uniform p-values: p = {ks[t]:.3f})")
    print("power (rejection rate) by leak λ:  " + "  ".join(f"{x:g}" for x in args.leaks))
    for t in TESTS:
        print(f"  {t:9s} " + "  ".join(f"{v:.2f}" for v in power[t]))
    print("  flip rate " + "  ".join(f"{v:.2f}" for v in flips))
    print(f"time: {wall:.1f} s wall, {cpu:.1f} s CPU; plots in {out}")
    return result


def _ks_uniform(p: list[float]) -> float:
    from scipy import stats

    return float(stats.kstest(np.asarray(p, dtype=float), "uniform").pvalue)


if __name__ == "__main__":
    run()
