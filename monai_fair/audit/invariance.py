# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of counterfactual invariance of a classifier in a sensitive attribute, on (Ŷ, A, U).

With the structural model X = φ(A, U), U ⊥ A, a predictor f is counterfactually invariant in A when
f(X_{A←a}) = f(X_{A←a'}); the observable sufficient condition is **Ŷ = f(X) ⊥ A | U** (Ma et al. 2025,
``reference/methods.md`` section 3). Every test here takes the classifier's outputs Ŷ (hard 0/1 predictions or
scores), the attribute A (binary codes 0/1) and the abducted exogenous factors U ``(N, k)`` and returns an
:class:`InvarianceTestResult` (statistic, p-value, effect size):

* :func:`gcm_test` (default, Shah & Peters 2020): residuals of Ŷ and A on U from regressions fitted on the other
  folds (cross-fitting); T = √n·mean(R_Y R_A)/sd(R_Y R_A) ~ N(0, 1) under H0. Effect size: the residual (partial)
  correlation of Ŷ and A given U.
* :func:`crt_test` (Candès et al. 2018, the hold-out variant): the covariance of the held-out residual of Ŷ on U
  with A − ê(U), against A* ~ Bern(ê(U)) redrawn ``n_draws`` times; p = (1 + #{T* ≥ T}) / (B + 1). Effect size:
  (T − mean T*) / sd T*.
* :func:`paired_t_test` (the paper's statistic, for compatibility): s_g = Ŷ·g(A, U) and s_h = Ŷ·h(U) compared by
  a paired t-test, here with cross-fitted g and h. Effect size: Cohen's d_z of s_g − s_h.

Baselines (they test other questions and are not invariance tests): :func:`demographic_parity_test` (independent
two-sample test of the positive rates, with the SPD of the evaluation core as effect size; the released notebook ran
a paired t-test on unpaired bootstrap draws), :func:`equal_opportunity_test` (the same among Y = 1 only, with the
EOD; the notebook's "EO" pooled both Y strata and so equalled its DP test) and :func:`counterfactual_flip_test`
(flip rate of the hard prediction between the two counterfactual versions of each image, with McNemar's exact test
of the direction).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy import stats

__all__ = [
    "INVARIANCE_TESTS",
    "REGRESSORS",
    "InvarianceTestResult",
    "counterfactual_flip_test",
    "crossfit_predictions",
    "crt_test",
    "demographic_parity_test",
    "equal_opportunity_test",
    "gcm_test",
    "paired_t_test",
    "run_invariance_tests",
]

#: nuisance regressions of Ŷ | U, A | U and Ŷ | (U, A)
REGRESSORS = ("logistic", "mlp", "boosting")


@dataclass
class InvarianceTestResult:
    """The outcome of one test.

    Attributes:
        test: the test's name (``gcm``, ``crt``, ``paired_t``, ``dp``, ``eo``, ``flip``).
        statistic: the test statistic (NaN when undefined).
        p_value: its p-value (NaN when undefined).
        effect_size: the effect size named by ``effect_name``.
        effect_name: what the effect size is.
        n: number of samples used.
        note: why a value is NaN (``""`` when defined).
    """

    test: str
    statistic: float
    p_value: float
    effect_size: float
    effect_name: str
    n: int
    note: str = ""

    def rejects(self, alpha: float = 0.05) -> bool:
        """The null is rejected at level ``alpha`` (never when the p-value is undefined)."""
        return bool(self.p_value == self.p_value and self.p_value < alpha)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _undefined(test: str, effect_name: str, n: int, note: str) -> InvarianceTestResult:
    return InvarianceTestResult(test, float("nan"), float("nan"), float("nan"), effect_name, n, note)


def _as_arrays(y_hat: Any, a: Any, u: Any | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validated float arrays: ``y_hat (N,)``, ``a (N,)`` binary, ``u (N, k)``."""

    def arr(x: Any) -> np.ndarray:
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        return np.asarray(x, dtype=np.float64)

    y, av = arr(y_hat).reshape(-1), arr(a).reshape(-1)
    if y.size != av.size:
        raise ValueError(f"y_hat has {y.size} values but a has {av.size}.")
    if not np.isfinite(y).all():
        raise ValueError("y_hat holds NaN or infinite values.")
    if not np.isin(av, (0.0, 1.0)).all():
        raise ValueError(f"a must hold binary codes 0/1, got the values {sorted(set(av.tolist()))[:10]}.")
    uv = None
    if u is not None:
        uv = arr(u)
        uv = uv.reshape(uv.shape[0], -1) if uv.ndim != 2 else uv
        if uv.shape[0] != y.size:
            raise ValueError(f"u has {uv.shape[0]} rows but y_hat has {y.size} values.")
        if not np.isfinite(uv).all():
            raise ValueError("u holds NaN or infinite values.")
    return y, av, uv


def _is_binary(y: np.ndarray) -> bool:
    return bool(np.isin(y, (0.0, 1.0)).all())


class _RidgeLogistic:
    """L2-penalised logistic (or, with ``link="identity"``, ridge) regression fitted by Newton's method in numpy:
    the nuisance model of the tests is fitted thousands of times in a calibration run, and this is ~50x faster than
    scikit-learn's solver on small problems. The intercept is not penalised.

    Args:
        alpha: L2 penalty (on the standardised features).
        link: ``"logit"`` (classifier, ``predict_proba``) or ``"identity"`` (regressor, ``predict``).
        max_iter: Newton steps.
    """

    def __init__(self, alpha: float = 1.0, link: str = "logit", max_iter: int = 25) -> None:
        self.alpha, self.link, self.max_iter = float(alpha), link, int(max_iter)
        self.classes_ = np.array([0, 1])

    def _design(self, x: np.ndarray) -> np.ndarray:
        return np.hstack([np.ones((x.shape[0], 1)), (x - self.mean_) / self.scale_])

    def fit(self, x: np.ndarray, y: np.ndarray) -> _RidgeLogistic:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        self.mean_, self.scale_ = x.mean(0), x.std(0)
        self.scale_[self.scale_ == 0] = 1.0
        d = self._design(x)
        pen = self.alpha * np.eye(d.shape[1])
        pen[0, 0] = 0.0
        if self.link == "identity":
            self.coef_ = np.linalg.solve(d.T @ d + pen, d.T @ y)
            return self
        w = np.zeros(d.shape[1])
        for _ in range(self.max_iter):
            p = 1.0 / (1.0 + np.exp(-(d @ w)))
            hess = (d * (p * (1 - p))[:, None]).T @ d + pen
            step = np.linalg.solve(hess, d.T @ (y - p) - pen @ w)
            w += step
            if np.abs(step).max() < 1e-8:
                break
        self.coef_ = w
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._design(np.asarray(x, dtype=np.float64)) @ self.coef_

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.predict(x)))
        return np.stack([1 - p, p], axis=1)


def _make_model(kind: str | Callable[[bool, int], Any], binary: bool, seed: int) -> Any:
    """A scikit-learn estimator: a classifier (``predict_proba``) for binary targets, else a regressor."""
    if callable(kind):
        return kind(binary, seed)
    if kind not in REGRESSORS:
        raise ValueError(
            f"regressor must be one of {REGRESSORS} or a callable (binary, seed) -> estimator, got {kind!r}."
        )
    if kind == "logistic":
        return _RidgeLogistic() if binary else _RidgeLogistic(link="identity")
    if kind == "mlp":
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        cls = MLPClassifier if binary else MLPRegressor
        return cls(hidden_layer_sizes=(32, 16), max_iter=300, early_stopping=True, random_state=seed)
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingClassifier if binary else HistGradientBoostingRegressor
    return cls(max_iter=100, random_state=seed)


def _fit(kind, x_fit: np.ndarray, y_fit: np.ndarray, binary: bool, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """The fitted E[y | x] as a function; a constant target gives its constant (no estimator can be fitted)."""
    if np.all(y_fit == y_fit[0]):
        const = float(y_fit[0])
        return lambda x: np.full(x.shape[0], const)
    model = _make_model(kind, binary, seed)
    model.fit(x_fit, y_fit.astype(int) if binary else y_fit)
    if binary:
        col = list(model.classes_).index(1)
        return lambda x: model.predict_proba(x)[:, col]
    return lambda x: np.asarray(model.predict(x), dtype=np.float64)


def _fit_predict(kind, x_fit: np.ndarray, y_fit: np.ndarray, x_eval: np.ndarray, binary: bool, seed: int):
    return _fit(kind, x_fit, y_fit, binary, seed)(x_eval)


def _folds(n: int, n_folds: int, seed: int) -> list[np.ndarray]:
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2 (cross-fitting), got {n_folds}.")
    if n < 2 * n_folds:
        raise ValueError(f"{n} samples are too few for {n_folds}-fold cross-fitting.")
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(f) for f in np.array_split(perm, n_folds)]


def crossfit_predictions(
    x: np.ndarray,
    y: np.ndarray,
    n_folds: int = 2,
    regressor: str | Callable[[bool, int], Any] = "logistic",
    seed: int = 0,
) -> np.ndarray:
    """Out-of-fold estimates of E[y | x]: each fold is predicted by a model fitted on the other folds.

    Args:
        x: features ``(N, k)``.
        y: target ``(N,)``; binary 0/1 targets use a classifier's probability, others a regressor.
        n_folds: number of folds (at least 2).
        regressor: one of :data:`REGRESSORS`, or a callable ``(binary, seed) -> estimator``.
        seed: fold assignment and estimator seed.
    """
    if not callable(regressor) and regressor not in REGRESSORS:
        raise ValueError(
            f"regressor must be one of {REGRESSORS} or a callable (binary, seed) -> estimator, got {regressor!r}."
        )
    binary = _is_binary(y)
    out = np.empty(len(y), dtype=np.float64)
    for k, held in enumerate(_folds(len(y), n_folds, seed)):
        fit = np.setdiff1d(np.arange(len(y)), held, assume_unique=True)
        out[held] = _fit_predict(regressor, x[fit], y[fit], x[held], binary, seed + k)
    return out


def gcm_test(
    y_hat: Any,
    a: Any,
    u: Any,
    n_folds: int = 2,
    regressor: str | Callable[[bool, int], Any] = "logistic",
    seed: int = 0,
) -> InvarianceTestResult:
    """Generalised covariance measure test of Ŷ ⊥ A | U with cross-fitted nuisance regressions.

    Args:
        y_hat: classifier outputs ``(N,)`` (hard 0/1 predictions or scores).
        a: attribute codes 0/1 ``(N,)``.
        u: exogenous factors ``(N, k)``.
        n_folds: cross-fitting folds.
        regressor: the regressions of Ŷ and A on U (see :func:`crossfit_predictions`).
        seed: fold and estimator seed.

    Returns:
        two-sided test; effect size: the residual correlation corr(R_Y, R_A).
    """
    y, av, uv = _as_arrays(y_hat, a, u)
    n = y.size
    effect = "residual correlation of Ŷ and A given U"
    r_y = y - crossfit_predictions(uv, y, n_folds, regressor, seed)
    r_a = av - crossfit_predictions(uv, av, n_folds, regressor, seed + 1000)
    prod = r_y * r_a
    sd = prod.std()
    if not sd > 0:
        return _undefined("gcm", effect, n, "the residual products are constant (Ŷ or A fully explained by U)")
    t = math.sqrt(n) * prod.mean() / sd
    corr = prod.mean() / math.sqrt((r_y**2).mean() * (r_a**2).mean())
    return InvarianceTestResult("gcm", float(t), float(2 * stats.norm.sf(abs(t))), float(corr), effect, n)


def _with_attribute(uv: np.ndarray, av: np.ndarray) -> np.ndarray:
    # [U, A, A·U]: one model with a separate slope per attribute value (the paper's one head per value)
    return np.hstack([uv, av[:, None], av[:, None] * uv])


def crt_test(
    y_hat: Any,
    a: Any,
    u: Any,
    n_draws: int = 500,
    n_folds: int = 2,
    regressor: str | Callable[[bool, int], Any] = "logistic",
    seed: int = 0,
) -> InvarianceTestResult:
    """Conditional randomisation test (hold-out variant) of Ŷ ⊥ A | U.

    m̂(u) ≈ E[Ŷ | u] is cross-fitted (each fold predicted by a model of the other folds), ê(u) ≈ P(A = 1 | u) is
    fitted on every sample (the model of A | U, as the model-X setting assumes known); the statistic is
    T = |Σ (Ŷ − m̂(U))(A − ê(U))|, and its null redraws
    A* ~ Bern(ê(U)) ``n_draws`` times (one matrix product). Only the model of A | U matters for validity, so the null
    holds in finite samples when ê is right, whatever m̂ is.

    A likelihood statistic with a fitted g(U, A) evaluated at A* (the literal reading of "fixed g") over-rejects when
    g and ê are fitted on the same fold: both learn that fold's chance association of A and U
    (``benchmarks/invariance_calibration.py`` showed it), so the statistic does not use A in a fitted model.

    Args:
        y_hat, a, u, n_folds, regressor, seed: see :func:`gcm_test`.
        n_draws: null draws B.

    Returns:
        p = (1 + #{T* ≥ T}) / (B + 1); effect size (T − mean T*) / sd T*.
    """
    y, av, uv = _as_arrays(y_hat, a, u)
    if n_draws < 1:
        raise ValueError(f"n_draws must be positive, got {n_draws}.")
    n = y.size
    effect = "standardised statistic (T - mean T*) / sd T*"
    rng = np.random.default_rng(seed + 7)
    r_y = y - crossfit_predictions(uv, y, n_folds, regressor, seed)
    # the model of A | U is fitted on every sample: a cross-fitted one (half the data) is noisier, and its noise
    # narrows the null (mean ê(1 - ê) < e(1 - e)) and over-rejects (benchmarks/invariance_calibration.py)
    e = _fit_predict(regressor, uv, av, uv, True, seed + 1000)
    t_obs = abs(float(r_y @ (av - e)))
    draws = (rng.random((n_draws, n)) < e[None, :]).astype(np.float64)
    t_null = np.abs((draws - e[None, :]) @ r_y)
    p = (1.0 + float((t_null >= t_obs - 1e-12).sum())) / (n_draws + 1.0)
    sd = t_null.std(ddof=1) if n_draws > 1 else 0.0
    z = (t_obs - t_null.mean()) / sd if sd > 0 else float("nan")
    return InvarianceTestResult("crt", t_obs, float(p), float(z), effect, n, "" if sd > 0 else "no null spread")


def paired_t_test(
    y_hat: Any,
    a: Any,
    u: Any,
    n_folds: int = 2,
    regressor: str | Callable[[bool, int], Any] = "logistic",
    seed: int = 0,
) -> InvarianceTestResult:
    """The paper's statistic: a paired t-test of s_g = Ŷ·g(A, U) against s_h = Ŷ·h(U), with g and h cross-fitted.

    Kept for compatibility with Ma et al. 2025; its null distribution is not derived (``benchmarks/`` measures its
    type-I error), so prefer :func:`gcm_test`.

    Returns:
        two-sided test; effect size Cohen's d_z = mean(s_g − s_h) / sd(s_g − s_h).
    """
    y, av, uv = _as_arrays(y_hat, a, u)
    n, binary = y.size, _is_binary(y)
    effect = "Cohen's d_z of Ŷ·g(A,U) - Ŷ·h(U)"
    g, h = np.empty(n), np.empty(n)
    for k, held in enumerate(_folds(n, n_folds, seed)):
        fit = np.setdiff1d(np.arange(n), held, assume_unique=True)
        g[held] = _fit_predict(
            regressor, _with_attribute(uv[fit], av[fit]), y[fit], _with_attribute(uv[held], av[held]), binary, seed + k
        )
        h[held] = _fit_predict(regressor, uv[fit], y[fit], uv[held], binary, seed + 500 + k)
    d = y * g - y * h
    sd = d.std(ddof=1)
    if not sd > 0:
        return _undefined("paired_t", effect, n, "Ŷ·g and Ŷ·h are identical")
    res = stats.ttest_rel(y * g, y * h)
    return InvarianceTestResult("paired_t", float(res.statistic), float(res.pvalue), float(d.mean() / sd), effect, n)


def _rate_test(test: str, effect_name: str, hits: np.ndarray, groups: np.ndarray, gap: float) -> InvarianceTestResult:
    """Chi-square test of homogeneity of a binary outcome across groups (independent samples); for two groups the
    statistic is the signed two-proportion z (z² = χ²)."""
    codes = np.unique(groups)
    n = int(hits.size)
    if codes.size < 2:
        return _undefined(test, effect_name, n, "fewer than two groups")
    table = np.array([[np.sum(hits[groups == c]), np.sum(1 - hits[groups == c])] for c in codes], dtype=np.float64)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    if (expected == 0).any():
        return InvarianceTestResult(test, 0.0, 1.0, gap, effect_name, n, "one outcome only: no difference possible")
    chi2 = float(((table - expected) ** 2 / expected).sum())
    p = float(stats.chi2.sf(chi2, codes.size - 1))
    stat = math.copysign(math.sqrt(chi2), gap) if codes.size == 2 and gap == gap else chi2
    return InvarianceTestResult(test, stat, p, gap, effect_name, n)


def _hard(y_hat: Any, threshold: float) -> np.ndarray:
    y = np.asarray(y_hat.detach().cpu() if isinstance(y_hat, torch.Tensor) else y_hat, dtype=np.float64).reshape(-1)
    return y if _is_binary(y) else (y > threshold).astype(np.float64)


def demographic_parity_test(
    y_hat: Any, a: Any, reference: int = 0, labels: Any | None = None, threshold: float = 0.5
) -> InvarianceTestResult:
    """Independent-samples test that the positive rate of ``y_hat > threshold`` is the same in every group.

    Args:
        y_hat: hard predictions or scores ``(N,)``.
        a: group codes ``(N,)`` (negative: unknown, left out).
        reference: the reference group of the SPD.
        labels: unused by the test; passed on to the evaluation core when given.
        threshold: decision threshold for scores.

    Returns:
        χ² test of homogeneity (signed z for two groups); effect size the SPD (rest minus reference) of
        :func:`~monai_fair.metrics.evaluate_binary_fairness`.
    """
    from monai_fair.metrics import evaluate_binary_fairness

    hard = _hard(y_hat, threshold)
    g = np.asarray(a, dtype=np.int64).reshape(-1)
    y = np.zeros_like(hard) if labels is None else np.asarray(labels, dtype=np.float64).reshape(-1)
    keep = g >= 0
    spd = float(
        evaluate_binary_fairness(torch.as_tensor(hard), torch.as_tensor(y), torch.as_tensor(g), int(reference)).spd[
            0, 0
        ]
    )
    return _rate_test("dp", "SPD (positive rate, rest minus reference)", hard[keep], g[keep], spd)


def equal_opportunity_test(
    y_hat: Any, a: Any, labels: Any, reference: int = 0, threshold: float = 0.5
) -> InvarianceTestResult:
    """Independent-samples test that the true-positive rate is the same in every group (among ``labels == 1`` only).

    Returns:
        χ² test of homogeneity of the TPR (signed z for two groups); effect size the EOD of
        :func:`~monai_fair.metrics.evaluate_binary_fairness`.
    """
    from monai_fair.metrics import evaluate_binary_fairness

    hard = _hard(y_hat, threshold)
    g = np.asarray(a, dtype=np.int64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if y.size != hard.size:
        raise ValueError(f"labels has {y.size} values but y_hat has {hard.size}.")
    eod = float(
        evaluate_binary_fairness(torch.as_tensor(hard), torch.as_tensor(y), torch.as_tensor(g), int(reference)).eod[
            0, 0
        ]
    )
    keep = (y == 1) & (g >= 0)
    return _rate_test("eo", "EOD (TPR, rest minus reference)", hard[keep], g[keep], eod)


def counterfactual_flip_test(pred_a0: Any, pred_a1: Any, threshold: float = 0.5) -> InvarianceTestResult:
    """Flip rate of the hard prediction between each sample's two counterfactual versions (A = 0 and A = 1), with
    McNemar's exact test of the direction.

    Args:
        pred_a0: predictions on every sample's version with A = 0 ``(N,)`` (scores are thresholded).
        pred_a1: predictions on its version with A = 1.
        threshold: decision threshold for scores.

    Returns:
        statistic: the number of 0 → 1 flips (A = 0 → A = 1); p-value: two-sided exact binomial test of 0 → 1 versus
        1 → 0 flips; effect size: the flip rate (1 − empirical counterfactual accuracy).
    """
    p0, p1 = _hard(pred_a0, threshold), _hard(pred_a1, threshold)
    if p0.size != p1.size:
        raise ValueError(f"pred_a0 has {p0.size} values but pred_a1 has {p1.size}.")
    n = int(p0.size)
    effect = "flip rate (1 - counterfactual accuracy)"
    if n == 0:
        return _undefined("flip", effect, 0, "no samples")
    up, down = int(((p0 == 0) & (p1 == 1)).sum()), int(((p0 == 1) & (p1 == 0)).sum())
    p = float(stats.binomtest(up, up + down, 0.5).pvalue) if up + down else 1.0
    return InvarianceTestResult("flip", float(up), p, (up + down) / n, effect, n)


#: name → test of (Ŷ, A, U)
INVARIANCE_TESTS: dict[str, Callable[..., InvarianceTestResult]] = {
    "gcm": gcm_test,
    "crt": crt_test,
    "paired_t": paired_t_test,
}


def run_invariance_tests(
    y_hat: Any,
    a: Any,
    u: Any,
    tests: tuple[str, ...] | list[str] = ("gcm", "crt", "paired_t"),
    seed: int = 0,
    **kwargs: Any,
) -> dict[str, InvarianceTestResult]:
    """Run several of :data:`INVARIANCE_TESTS` on the same data.

    Args:
        y_hat, a, u, seed: see :func:`gcm_test`.
        tests: the names to run.
        kwargs: ``n_folds``, ``regressor`` (all tests) and ``n_draws`` (CRT only).

    Raises:
        ValueError: an unknown test name.
    """
    unknown = [t for t in tests if t not in INVARIANCE_TESTS]
    if unknown:
        raise ValueError(f"unknown invariance tests {unknown}; choose from {sorted(INVARIANCE_TESTS)}.")
    out = {}
    for name in tests:
        kw = {k: v for k, v in kwargs.items() if k != "n_draws" or name == "crt"}
        out[name] = INVARIANCE_TESTS[name](y_hat, a, u, seed=seed, **kw)
    return out
