# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Linear concept erasure: LEACE in closed form (Belrose et al., NeurIPS 2023) and iterative null-space projection.

LEACE: for features ``X`` with mean ``μ``, covariance ``Σ_XX`` and cross-covariance ``Σ_XZ`` with the attribute
``Z`` (one-hot codes or continuous columns), let ``W = Σ_XX^{-1/2}`` (pseudo-inverse square root on the non-null
space) and ``P`` the orthogonal projector onto the column space of ``W Σ_XZ``. The eraser

    r(x) = x − W⁺ P W (x − μ)

leaves no linear correlation between ``r(X)`` and ``Z`` on the fitting distribution (so no linear classifier beats
a constant one), with the least mean-squared change of ``X``.

INLP (Ravfogel et al., ACL 2020) repeatedly fits a linear classifier for ``Z`` and projects ``X`` onto the null space
of the classifier weights found so far. It is not closed form and usually removes more than LEACE.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["LeaceEraser", "INLPEraser", "attribute_matrix"]


def _as_float64(x: Any, name: str) -> torch.Tensor:
    t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2 or t.shape[0] < 2:
        raise ValueError(f"{name} must be an (N, D) table with N >= 2, got shape {tuple(t.shape)}.")
    t = t.to(torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return t


def _like(result: torch.Tensor, template: Any) -> Any:
    """``result`` as the type and dtype of ``template`` (tensor in → tensor out, array in → array out)."""
    if isinstance(template, torch.Tensor):
        dtype = template.dtype if template.is_floating_point() else torch.float32
        return result.to(template.device, dtype)
    dtype = np.asarray(template).dtype
    return result.numpy().astype(dtype if np.issubdtype(dtype, np.floating) else np.float32)


def attribute_matrix(z: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The attribute as a float64 matrix ``(N, K)`` and the mask of rows to fit on.

    Integer codes ``(N,)`` become one-hot columns of the non-negative codes (negative = unknown rows are masked
    out); float values ``(N,)`` or ``(N, K)`` are continuous columns (rows with a NaN are masked out).
    """
    t = z.detach().cpu() if isinstance(z, torch.Tensor) else torch.as_tensor(np.asarray(z))
    if t.ndim == 1 and not t.is_floating_point() and t.dtype != torch.bool:
        keep = t >= 0
        codes = torch.unique(t[keep])
        if codes.numel() < 2:
            raise ValueError(f"attribute needs at least two known codes, got {codes.tolist()}.")
        onehot = (t[:, None] == codes[None, :]).to(torch.float64)
        return onehot, keep
    t = t.to(torch.float64)
    t = t[:, None] if t.ndim == 1 else t
    if t.ndim != 2:
        raise ValueError(f"attribute must be (N,) or (N, K), got shape {tuple(t.shape)}.")
    return t, torch.isfinite(t).all(1)


class LeaceEraser:
    """LEACE: closed-form least-squares linear concept erasure.

    Args:
        tol: relative eigenvalue (and singular value) tolerance below which directions count as null.

    Attributes:
        mean: ``(D,)`` feature mean of the fitting rows.
        projection: ``(D, D)`` matrix ``W⁺ P W``; :meth:`transform` returns ``x − (x − mean) @ projection.T``.
        rank: rank of ``P`` (at most the number of attribute columns, minus one for one-hot codes).

    Example::

        eraser = LeaceEraser().fit(train_embeddings, train_sex)
        erased = eraser.transform(tune_embeddings)
    """

    def __init__(self, tol: float = 1e-10) -> None:
        self.tol = float(tol)
        self.mean: torch.Tensor | None = None
        self.projection: torch.Tensor | None = None
        self.rank = 0

    def fit(self, x: Any, z: Any) -> LeaceEraser:
        """Fit on features ``x`` ``(N, D)`` and attribute ``z`` (codes ``(N,)``, or continuous ``(N,)``/``(N, K)``).

        Rows with an unknown code (negative) or a NaN attribute are left out.
        """
        xt = _as_float64(x, "x")
        zt, keep = attribute_matrix(z)
        if zt.shape[0] != xt.shape[0]:
            raise ValueError(f"x has {xt.shape[0]} rows but the attribute has {zt.shape[0]}.")
        xt, zt = xt[keep], zt[keep]
        if xt.shape[0] < 2:
            raise ValueError("fewer than two rows with a known attribute.")
        n = xt.shape[0]
        self.mean = xt.mean(0)
        xc = xt - self.mean
        zc = zt - zt.mean(0)
        sigma_xx = xc.T @ xc / n
        sigma_xz = xc.T @ zc / n
        evals, evecs = torch.linalg.eigh(sigma_xx)
        keep_e = evals > self.tol * max(float(evals.max()), 0.0)
        v, lam = evecs[:, keep_e], evals[keep_e]
        w = v @ torch.diag(lam.rsqrt()) @ v.T  # Σ^{-1/2} on the non-null space
        w_pinv = v @ torch.diag(lam.sqrt()) @ v.T  # its pseudo-inverse Σ^{1/2}
        u, s, _ = torch.linalg.svd(w @ sigma_xz, full_matrices=False)
        basis = u[:, s > self.tol * max(float(s.max()) if s.numel() else 0.0, 1e-300)]
        self.rank = int(basis.shape[1])
        self.projection = w_pinv @ (basis @ basis.T) @ w
        return self

    def transform(self, x: Any) -> Any:
        """``x − W⁺ P W (x − mean)``, returned as the type of ``x`` (tensor or array)."""
        if self.projection is None or self.mean is None:
            raise RuntimeError("LeaceEraser.transform called before fit.")
        xt = _as_float64(x, "x")
        if xt.shape[1] != self.mean.numel():
            raise ValueError(f"x has {xt.shape[1]} features, the eraser was fitted on {self.mean.numel()}.")
        return _like(xt - (xt - self.mean) @ self.projection.T, x)

    def fit_transform(self, x: Any, z: Any) -> Any:
        """:meth:`fit` then :meth:`transform` of the same features."""
        return self.fit(x, z).transform(x)


class INLPEraser:
    """Iterative null-space projection for a categorical attribute.

    Each iteration fits a logistic regression for the attribute on the projected, centred features and adds the
    (orthonormalised) rows of its weight matrix to the removed subspace; iteration stops after ``n_iterations`` or
    once the classifier's held-in balanced accuracy is within ``min_gain`` of chance.

    Args:
        n_iterations: maximum number of classifiers.
        min_gain: stop when balanced accuracy − chance falls below this.
        c: inverse regularisation strength of the logistic regressions.
        seed: random state of the classifiers.

    Attributes:
        mean: ``(D,)`` feature mean.
        projection: ``(D, D)`` projector onto the removed subspace; :meth:`transform` returns
            ``x − (x − mean) @ projection``.
        rank: dimension of the removed subspace.
        accuracies: held-in balanced accuracy of each iteration's classifier.
    """

    def __init__(self, n_iterations: int = 20, min_gain: float = 0.01, c: float = 1.0, seed: int = 0) -> None:
        if n_iterations < 1:
            raise ValueError(f"n_iterations must be >= 1, got {n_iterations}.")
        self.n_iterations = int(n_iterations)
        self.min_gain = float(min_gain)
        self.c = float(c)
        self.seed = int(seed)
        self.mean: torch.Tensor | None = None
        self.projection: torch.Tensor | None = None
        self.rank = 0
        self.accuracies: list[float] = []

    def fit(self, x: Any, z: Any) -> INLPEraser:
        """Fit on features ``x`` ``(N, D)`` and integer codes ``z`` ``(N,)`` (negative = unknown, left out)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import balanced_accuracy_score

        xt = _as_float64(x, "x")
        codes = torch.as_tensor(np.asarray(z.detach().cpu() if isinstance(z, torch.Tensor) else z)).reshape(-1)
        if codes.is_floating_point() or codes.numel() != xt.shape[0]:
            raise ValueError("INLP needs one integer attribute code per row of x.")
        keep = codes >= 0
        xt, y = xt[keep], codes[keep].numpy()
        if len(np.unique(y)) < 2:
            raise ValueError("attribute needs at least two known codes.")
        self.mean = xt.mean(0)
        xc = (xt - self.mean).numpy()
        d = xc.shape[1]
        removed = np.zeros((d, 0))
        chance = 1.0 / len(np.unique(y))
        self.accuracies = []
        for _ in range(self.n_iterations):
            proj = xc - (xc @ removed) @ removed.T
            clf = LogisticRegression(C=self.c, max_iter=1000, random_state=self.seed).fit(proj, y)
            acc = float(balanced_accuracy_score(y, clf.predict(proj)))
            self.accuracies.append(acc)
            if acc - chance < self.min_gain:
                break
            w = clf.coef_ - (clf.coef_ @ removed) @ removed.T
            q, r = np.linalg.qr(w.T)
            q = q[:, np.abs(np.diag(r)) > 1e-10]
            if q.shape[1] == 0:
                break
            removed = np.concatenate([removed, q], axis=1)
        self.rank = int(removed.shape[1])
        self.projection = torch.as_tensor(removed @ removed.T)
        return self

    def transform(self, x: Any) -> Any:
        """``x − P (x − mean)``, returned as the type of ``x``."""
        if self.projection is None or self.mean is None:
            raise RuntimeError("INLPEraser.transform called before fit.")
        xt = _as_float64(x, "x")
        if xt.shape[1] != self.mean.numel():
            raise ValueError(f"x has {xt.shape[1]} features, the eraser was fitted on {self.mean.numel()}.")
        return _like(xt - (xt - self.mean) @ self.projection, x)

    def fit_transform(self, x: Any, z: Any) -> Any:
        """:meth:`fit` then :meth:`transform` of the same features."""
        return self.fit(x, z).transform(x)
