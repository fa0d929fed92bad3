# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The synthetic structural model of Ma et al. 2025 (``reference/methods.md`` section 3.4), with the notebook's bugs
fixed, for calibrating the invariance tests.

A ~ Bern(0.5), Z_T ~ N(0, I_k); for t = T−2 … 0: Z_t = (A·M_t + (1−A)·N_t) Z_{t+1} + ξ_t; X = M_X Z_0 + r + ε;
Y = 1[ℓ(Z_T) ≥ 0] (``sigmoid(ℓ) ≥ 0.5``). The exogenous factors are U = Z_T. Fixed here:

* N_t is drawn like M_t (U(−10, 10), rows L1-normalised); the notebook drew U(10, 10), a constant matrix;
* the counterfactual X_{A←1−A} reuses the factual M_t, N_t, M_X, r, ξ_t and ε (the notebook re-drew the mixing
  matrices, i.e. sampled from another model);
* U is Z_T for every T (the notebook took ``Z[:, 1]``, which is Z_T only when T = 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LINKS", "SyntheticCounterfactualData", "make_synthetic_scm"]

#: link functions ℓ of the label
LINKS = ("linear", "quadratic", "relu", "sin")


@dataclass
class SyntheticCounterfactualData:
    """One draw of the synthetic model.

    Attributes:
        x: factual observations ``(n, k)``.
        x_cf: counterfactual observations with the attribute flipped (same noise, same mechanisms) ``(n, k)``.
        a: attribute ``(n,)`` in {0, 1}.
        u: exogenous factors Z_T ``(n, k)``.
        y: label ``(n,)`` in {0, 1}.
    """

    x: np.ndarray
    x_cf: np.ndarray
    a: np.ndarray
    u: np.ndarray
    y: np.ndarray


def _mixing(rng: np.random.Generator, k: int) -> np.ndarray:
    m = rng.uniform(-10.0, 10.0, size=(k, k))
    return m / np.abs(m).sum(axis=1, keepdims=True)


def _link(rng: np.random.Generator, z: np.ndarray, link: str) -> np.ndarray:
    k = z.shape[1]
    if link == "linear":
        return z @ rng.uniform(-1, 1, k) + rng.normal(0.0, 1.0)
    if link == "quadratic":
        return (z**2) @ rng.uniform(-1, 1, k) + rng.normal(0.0, 1.0)
    if link == "relu":
        return np.maximum(z @ rng.uniform(-1, 1, k), 0.0) - 0.5 + rng.normal(0.0, 0.2)
    if link == "sin":
        return np.sin(z @ rng.uniform(-1, 1, k))
    raise ValueError(f"link must be one of {LINKS}, got {link!r}.")


def make_synthetic_scm(
    n: int = 1000, k: int = 32, steps: int = 3, sigma: float = 0.01, link: str = "linear", seed: int = 0
) -> SyntheticCounterfactualData:
    """Draw ``n`` samples (and their counterfactuals) from the fixed synthetic model.

    Args:
        n: number of samples.
        k: dimension of Z_t and X.
        steps: T, the number of latent layers (at least 2).
        sigma: standard deviation of ξ_t and ε.
        link: the label's link ℓ (:data:`LINKS`).
        seed: random seed (mechanisms and samples).

    Raises:
        ValueError: ``steps < 2``, ``n < 1`` or an unknown link.
    """
    if steps < 2:
        raise ValueError(f"steps (T) must be at least 2, got {steps}.")
    if n < 1 or k < 1:
        raise ValueError(f"n and k must be positive, got n={n}, k={k}.")
    if link not in LINKS:
        raise ValueError(f"link must be one of {LINKS}, got {link!r}.")
    rng = np.random.default_rng(seed)
    m = [_mixing(rng, k) for _ in range(steps - 1)]
    nm = [_mixing(rng, k) for _ in range(steps - 1)]
    m_x, r = rng.uniform(-1, 1, size=(k, k)), rng.uniform(-1, 1, size=k)
    a = (rng.random(n) < 0.5).astype(np.int64)
    u = rng.standard_normal((n, k))
    xi = [sigma * rng.standard_normal((n, k)) for _ in range(steps - 1)]
    eps = sigma * rng.standard_normal((n, k))

    def observe(attr: np.ndarray) -> np.ndarray:
        z = u
        for t in range(steps - 2, -1, -1):
            # rows with A = 1 use M_t, the others N_t: (n, k) = sum_j W[i, j] z[j]
            z = np.where(attr[:, None] == 1, z @ m[t].T, z @ nm[t].T) + xi[t]
        return z @ m_x.T + r + eps

    y = (_link(rng, u, link) >= 0).astype(np.int64)
    return SyntheticCounterfactualData(observe(a), observe(1 - a), a, u, y)
