# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Fresh attribute and task probes of embeddings, fitted on a probe-train split and scored on a probe-test split.

Adversarial removal often fools only its own adversary (Elazar & Goldberg 2018), so removal is judged by probes
trained *after* debiasing on a separate split: a linear one (logistic / ridge regression on standardised features)
and a non-linear one (histogram gradient boosting, or an MLP). Figures on the probe-test set carry percentile
intervals over resamples of that set, drawn by :func:`~monai_fair.metrics.bootstrap.bootstrap_weights` (one
resampling function); the downstream task's EOD comes from
:func:`~monai_fair.metrics.evaluation.summarize_binary_fairness` with the same resamples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .auc import compute_group_roc_auc
from .bootstrap import bootstrap_weights, make_generator, percentile_interval
from .evaluation import summarize_binary_fairness

__all__ = ["PROBE_KINDS", "make_probe", "probe_split", "probe_attributes", "probe_task", "weighted_roc_auc"]

PROBE_KINDS = ("linear", "hgb", "mlp")


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def probe_split(strata: Any, test_fraction: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded probe-train / probe-test split.

    Every stratum (distinct value, or distinct row of a ``(N, S)`` array such as ``[sex, label]``) puts
    ``floor(test_fraction · n + 0.5)`` of its samples in the test part, kept within ``[1, n − 1]`` when ``n >= 2``.

    Args:
        strata: ``(N,)`` or ``(N, S)`` stratum values (unknown codes form a stratum of their own).
        test_fraction: share of each stratum in the test part, in (0, 1).
        seed: seed of the draw.

    Returns:
        sorted int64 ``(train_index, test_index)``.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}.")
    s = _numpy(strata)
    s = s.reshape(len(s), -1)
    _, stratum = np.unique(s, axis=0, return_inverse=True)
    stratum = stratum.reshape(-1)
    rng = np.random.default_rng(seed)
    test = []
    for code in range(int(stratum.max()) + 1 if stratum.size else 0):
        members = rng.permutation(np.flatnonzero(stratum == code))
        n = members.size
        k = int(math.floor(test_fraction * n + 0.5))
        if n >= 2:
            k = min(max(k, 1), n - 1)
        test.append(members[:k])
    test_index = np.sort(np.concatenate(test)).astype(np.int64) if test else np.zeros(0, dtype=np.int64)
    train_mask = np.ones(len(s), dtype=bool)
    train_mask[test_index] = False
    return np.flatnonzero(train_mask).astype(np.int64), test_index


def make_probe(kind: str = "linear", target: str = "binary", seed: int = 0, max_iter: int = 1000) -> Any:
    """A fresh scikit-learn probe.

    Args:
        kind: ``"linear"`` (standardise → ``LogisticRegression`` / ``Ridge``), ``"hgb"``
            (``HistGradientBoostingClassifier`` / ``Regressor``) or ``"mlp"`` (standardise → one hidden layer of 64).
        target: ``"binary"`` (classifier) or ``"continuous"`` (regressor).
        seed: random state.
        max_iter: iterations of the logistic regression / MLP.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind not in PROBE_KINDS:
        raise ValueError(f"kind must be one of {PROBE_KINDS}, got {kind!r}.")
    if target not in ("binary", "continuous"):
        raise ValueError(f"target must be 'binary' or 'continuous', got {target!r}.")
    binary = target == "binary"
    if kind == "linear":
        model = LogisticRegression(max_iter=max_iter, random_state=seed) if binary else Ridge(alpha=1.0)
        return make_pipeline(StandardScaler(), model)
    if kind == "hgb":
        cls = HistGradientBoostingClassifier if binary else HistGradientBoostingRegressor
        return cls(random_state=seed)
    cls = MLPClassifier if binary else MLPRegressor
    return make_pipeline(StandardScaler(), cls(hidden_layer_sizes=(64,), max_iter=max_iter, random_state=seed))


def _positive_score(probe: Any, x: np.ndarray) -> np.ndarray:
    return probe.predict_proba(x)[:, 1]


def weighted_roc_auc(scores: Any, labels: Any, weights: torch.Tensor | None = None) -> torch.Tensor:
    """ROC AUC of ``scores`` vs binary ``labels`` (ties one half); ``(B, N)`` weights give ``(B,)`` replicates."""
    s = torch.as_tensor(_numpy(scores), dtype=torch.float64).reshape(-1)
    y = torch.as_tensor(_numpy(labels), dtype=torch.float64).reshape(-1)
    auc = compute_group_roc_auc(s, y, torch.zeros_like(s, dtype=torch.long), min_group_size=1, weights=weights)
    return auc[..., 0]


def _with_interval(out: dict[str, float], name: str, point: float, reps: torch.Tensor | None, ci_level: float) -> None:
    out[name] = float(point)
    if reps is not None:
        lo, hi = percentile_interval(reps, ci_level)
        nan = math.isnan(float(point))
        out[f"{name}_ci_low"] = float("nan") if nan else float(lo)
        out[f"{name}_ci_high"] = float("nan") if nan else float(hi)


def _resamples(n: int, n_bootstrap: int, seed: int) -> torch.Tensor | None:
    if n_bootstrap <= 0:
        return None
    return bootstrap_weights([n], int(n_bootstrap), stratified=False, generator=make_generator(seed, "cpu"))


def probe_attributes(
    train_x: Any,
    test_x: Any,
    sex_train: Any | None = None,
    sex_test: Any | None = None,
    age_train: Any | None = None,
    age_test: Any | None = None,
    *,
    probes: Sequence[str] = ("linear", "hgb"),
    n_bootstrap: int = 200,
    ci_level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Fit fresh sex and age probes on the probe-train embeddings and score them on the probe-test embeddings.

    Sex probes are binary (code 1 is the positive class); rows whose sex code is not 0/1 (unknown -1, other) are left
    out of both parts, as are rows with a NaN age for the age probes.

    Args:
        train_x, test_x: ``(N_train, D)`` and ``(N_test, D)`` embeddings.
        sex_train, sex_test: sex codes (``None``: no sex probe).
        age_train, age_test: ages in years (``None``: no age probe).
        probes: probe kinds among :data:`PROBE_KINDS`.
        n_bootstrap: resamples of the probe-test set for the intervals (0: none).
        ci_level: interval level.
        seed: probe random state and resampling seed.

    Returns:
        flat dict ``<probe>_sex_accuracy``, ``<probe>_sex_auc``, ``<probe>_age_mae`` (each with ``_ci_low`` /
        ``_ci_high`` when resampled) and ``n_sex_test``, ``n_age_test``.
    """
    xtr, xte = _numpy(train_x), _numpy(test_x)
    out: dict[str, float] = {}
    if sex_train is not None and sex_test is not None:
        str_, ste = _numpy(sex_train).reshape(-1), _numpy(sex_test).reshape(-1)
        ktr, kte = np.isin(str_, (0, 1)), np.isin(ste, (0, 1))
        if len(np.unique(str_[ktr])) < 2:
            raise ValueError("sex_train needs both codes 0 and 1 to fit a sex probe.")
        y = ste[kte].astype(np.float64)
        w = _resamples(int(kte.sum()), n_bootstrap, seed)
        out["n_sex_test"] = float(kte.sum())
        for kind in probes:
            probe = make_probe(kind, "binary", seed).fit(xtr[ktr], str_[ktr].astype(int))
            score = _positive_score(probe, xte[kte])
            correct = torch.as_tensor((score > 0.5) == (y == 1), dtype=torch.float64)
            acc_reps = (w @ correct) / w.sum(1) if w is not None else None
            _with_interval(out, f"{kind}_sex_accuracy", float(correct.mean()), acc_reps, ci_level)
            auc_reps = weighted_roc_auc(score, y, w) if w is not None else None
            _with_interval(out, f"{kind}_sex_auc", float(weighted_roc_auc(score, y)), auc_reps, ci_level)
    if age_train is not None and age_test is not None:
        atr, ate = _numpy(age_train).astype(np.float64).reshape(-1), _numpy(age_test).astype(np.float64).reshape(-1)
        ktr, kte = np.isfinite(atr), np.isfinite(ate)
        w = _resamples(int(kte.sum()), n_bootstrap, seed)
        out["n_age_test"] = float(kte.sum())
        for kind in probes:
            probe = make_probe(kind, "continuous", seed).fit(xtr[ktr], atr[ktr])
            err = torch.as_tensor(np.abs(probe.predict(xte[kte]) - ate[kte]), dtype=torch.float64)
            mae_reps = (w @ err) / w.sum(1) if w is not None else None
            _with_interval(out, f"{kind}_age_mae", float(err.mean()), mae_reps, ci_level)
    return out


def probe_task(
    train_x: Any,
    test_x: Any,
    train_labels: Any,
    test_labels: Any,
    test_groups: Any,
    reference: int,
    *,
    probe: str = "linear",
    metric: str = "eod",
    n_bootstrap: int = 200,
    ci_level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Fit a fresh task probe and report its accuracy, AUC and fairness against ``test_groups``.

    ``train_labels`` may be poisoned (see :func:`~monai_fair.data.poisoning.flip_group_labels`); the figures are
    always computed against the true ``test_labels``. Accuracy and AUC intervals use the same resamples as the
    fairness figures (:func:`~monai_fair.metrics.evaluation.summarize_binary_fairness`, same ``seed``).

    Args:
        train_x, test_x: probe-train and probe-test embeddings.
        train_labels: binary labels the probe is fitted on.
        test_labels: true binary labels of the probe-test rows.
        test_groups: group codes of the probe-test rows (e.g. sex; negative = unknown).
        reference: reference (privileged) group code.
        probe: probe kind among :data:`PROBE_KINDS`.
        metric: the bias metric reported as ``task_bias``.
        n_bootstrap, ci_level, seed: resampling (and probe random state).

    Returns:
        flat dict ``task_accuracy``, ``task_auc`` and ``task_<figure>`` for every figure of
        :func:`~monai_fair.metrics.evaluation.summarize_binary_fairness` (``task_eod``, ``task_eod_ci_low``, ...).
    """
    y_train = _numpy(train_labels).reshape(-1).astype(int)
    y = _numpy(test_labels).reshape(-1).astype(np.float64)
    model = make_probe(probe, "binary", seed).fit(_numpy(train_x), y_train)
    score = _positive_score(model, _numpy(test_x))
    out: dict[str, float] = {}
    w = _resamples(len(y), n_bootstrap, seed)
    correct = torch.as_tensor((score > 0.5) == (y == 1), dtype=torch.float64)
    _with_interval(
        out, "task_accuracy", float(correct.mean()), (w @ correct) / w.sum(1) if w is not None else None, ci_level
    )
    auc_reps = weighted_roc_auc(score, y, w) if w is not None else None
    _with_interval(out, "task_auc", float(weighted_roc_auc(score, y)), auc_reps, ci_level)
    fair = summarize_binary_fairness(
        torch.as_tensor(score, dtype=torch.float64),
        torch.as_tensor(y),
        torch.as_tensor(_numpy(test_groups).reshape(-1).astype(np.int64)),
        reference,
        threshold=0.5,
        n_bootstrap=n_bootstrap,
        ci_level=ci_level,
        seed=seed,
        metric=metric,
    )
    out.update({f"task_{k}": v for k, v in fair.items()})
    return out
