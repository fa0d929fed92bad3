# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Generalized Histogram Thresholding (Barron, ECCV 2020, arXiv 2007.07350).

GHT scores every split of a histogram by the expected complete-data log-likelihood of a two-Gaussian mixture with a
scaled-inverse-chi-squared prior on each class variance (strength ``nu`` pseudo-counts, scale ``tau`` in units of the
bin centres) and a Beta prior on the mixing weight (strength ``kappa``, mode ``omega``). Its limits are Otsu's method
(``nu -> inf``, ``tau -> 0``), Minimum Error Thresholding (``nu = kappa = 0``) and the ``omega``-quantile
(``kappa -> inf``). The implementation is O(K) in the number of bins: all class statistics come from cumulative sums.

Written from the formulas in the paper; the API mirrors ``skimage.filters.threshold_otsu``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["threshold_ght", "ght_scores", "OTSU_CASE", "MET_CASE", "percentile_case"]

# the Otsu limit as used in the reference tests: an overwhelming, nearly zero-width variance prior
OTSU_CASE: dict[str, float] = {"nu": 1e60, "tau": 1e-15, "kappa": 0.0, "omega": 0.5}
# Minimum Error Thresholding (Kittler & Illingworth): no priors at all
MET_CASE: dict[str, float] = {"nu": 0.0, "tau": 0.0, "kappa": 0.0, "omega": 0.5}

_TINY = 1e-30


def percentile_case(omega: float) -> dict[str, float]:
    """GHT settings whose threshold is the ``omega``-quantile of the histogram (an overwhelming Beta prior)."""
    if not 0.0 <= omega <= 1.0:
        raise ValueError(f"omega must lie in [0, 1], got {omega}.")
    return {"nu": 0.0, "tau": 0.0, "kappa": 1e60, "omega": float(omega)}


def _histogram(image: Any, nbins: int) -> tuple[np.ndarray, np.ndarray]:
    from skimage.exposure import histogram

    arr = np.asarray(image)
    if arr.size == 0:
        raise ValueError("threshold_ght needs a non-empty image.")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError("threshold_ght does not accept NaN or infinite values.")
    # the same histogram skimage's threshold_otsu builds, so the Otsu limit matches it bin for bin
    counts, centers = histogram(arr.ravel(), nbins, source_range="image")
    return counts.astype(np.float64), centers.astype(np.float64)


def ght_scores(
    counts: Any, centers: Any, nu: float = 0.0, tau: float = 0.0, kappa: float = 0.0, omega: float = 0.5
) -> np.ndarray:
    """GHT score of each split: split ``i`` puts bins ``0..i`` in class 0 and bins ``i+1..K-1`` in class 1.

    Args:
        counts: length-K non-negative histogram counts.
        centers: length-K ascending bin centres.
        nu: variance-prior strength (pseudo-counts, >= 0).
        tau: variance-prior standard deviation, in units of ``centers`` (>= 0).
        kappa: mixing-weight prior strength (pseudo-counts, >= 0).
        omega: prior mode of the class-0 fraction, in [0, 1].

    Returns:
        float64 array of K - 1 scores (higher is better).

    Raises:
        ValueError: for mismatched shapes, negative counts or hyperparameters out of range.
    """
    n = np.asarray(counts, dtype=np.float64).ravel()
    x = np.asarray(centers, dtype=np.float64).ravel()
    if n.shape != x.shape:
        raise ValueError(f"counts and centers must have the same length, got {n.shape} and {x.shape}.")
    if n.size < 2:
        raise ValueError("a GHT score needs at least two bins.")
    if np.any(n < 0) or not np.all(np.isfinite(n)) or not np.all(np.isfinite(x)):
        raise ValueError("counts must be finite and non-negative, centers finite.")
    if np.any(np.diff(x) <= 0):
        raise ValueError("centers must be strictly ascending.")
    if nu < 0 or tau < 0 or kappa < 0 or not 0.0 <= omega <= 1.0:
        raise ValueError(f"need nu, tau, kappa >= 0 and omega in [0, 1]; got {nu}, {tau}, {kappa}, {omega}.")
    total = n.sum()
    if total <= 0:
        raise ValueError("the histogram is empty.")
    # centring x leaves every within-class scatter unchanged and avoids cancellation in sum(n x^2) - w mu^2
    x = x - (n * x).sum() / total
    c_n = np.cumsum(n)[:-1]
    c_x = np.cumsum(n * x)[:-1]
    c_x2 = np.cumsum(n * x * x)[:-1]
    w0 = np.maximum(c_n, _TINY)
    w1 = np.maximum(total - c_n, _TINY)
    s1 = (n * x).sum() - c_x
    s2 = (n * x * x).sum() - c_x2
    d0 = c_x2 - c_x * c_x / w0
    d1 = s2 - s1 * s1 / w1
    # a class whose values are all equal has zero scatter; the cumsum difference leaves ~1e-16 relative rounding
    # there, which the MET/Otsu limits (division by a variance near 0) would blow up, so snap it to exactly 0
    d0 = np.where(d0 > 1e-12 * c_x2, d0, 0.0)
    d1 = np.where(d1 > 1e-12 * s2, d1, 0.0)
    p0 = w0 / (w0 + w1)
    p1 = 1.0 - p0
    v0 = np.maximum((p0 * nu * tau * tau + d0) / (p0 * nu + w0), _TINY)
    v1 = np.maximum((p1 * nu * tau * tau + d1) / (p1 * nu + w1), _TINY)
    f0 = -d0 / v0 - w0 * np.log(v0) + 2.0 * (w0 + kappa * omega) * np.log(w0)
    f1 = -d1 / v1 - w1 * np.log(v1) + 2.0 * (w1 + kappa * (1.0 - omega)) * np.log(w1)
    return f0 + f1


def threshold_ght(
    image: Any = None,
    nbins: int = 256,
    *,
    hist: tuple[Any, Any] | Any | None = None,
    nu: float = 0.0,
    tau: float = 0.0,
    kappa: float = 0.0,
    omega: float = 0.5,
    return_scores: bool = False,
) -> float | tuple[float, np.ndarray]:
    """Threshold by Generalized Histogram Thresholding; foreground is ``image > threshold``.

    Mirrors ``skimage.filters.threshold_otsu(image=None, nbins=256, *, hist=None)``: give an image (its histogram is
    built exactly as skimage builds it) or ``hist`` as ``(counts, bin_centers)`` or as counts alone (centres
    ``0..K-1``). ``**OTSU_CASE`` reproduces Otsu's threshold, ``**MET_CASE`` Minimum Error Thresholding and
    ``**percentile_case(q)`` the ``q``-quantile.

    Args:
        image: grey-level image of any shape (ignored when ``hist`` is given).
        nbins: number of histogram bins for ``image`` (integer images use one bin per value, as in skimage).
        hist: precomputed histogram.
        nu, tau, kappa, omega: GHT hyperparameters, see :func:`ght_scores`.
        return_scores: also return the K - 1 split scores.

    Returns:
        The threshold (a bin centre, or the mean of the tied best centres), optionally with the scores.

    Raises:
        ValueError: if neither an image nor a histogram is given, or for invalid input.
    """
    if hist is not None:
        if isinstance(hist, tuple):
            counts, centers = (np.asarray(h, dtype=np.float64).ravel() for h in hist)
        else:
            counts = np.asarray(hist, dtype=np.float64).ravel()
            centers = np.arange(counts.size, dtype=np.float64)
    elif image is not None:
        counts, centers = _histogram(image, nbins)
    else:
        raise ValueError("give either an image or a histogram.")
    if counts.size == 1:  # a constant image: nothing to split, as threshold_otsu returns the value itself
        thr = float(centers[0])
        return (thr, np.zeros(0)) if return_scores else thr
    scores = ght_scores(counts, centers, nu=nu, tau=tau, kappa=kappa, omega=omega)
    best = scores == scores.max()
    thr = float(centers[:-1][best].mean())
    return (thr, scores) if return_scores else thr
