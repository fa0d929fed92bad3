# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""LEACE and INLP remove linear predictability of a planted attribute."""

from __future__ import annotations

import unittest

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from monai_fair.debias.linear_erasure import INLPEraser, LeaceEraser, attribute_matrix


def planted(seed=0, n=600, d=16):
    rng = np.random.default_rng(seed)
    sex = rng.integers(0, 2, size=n)
    direction = rng.normal(size=d)
    mixing = rng.normal(size=(d, d)) / np.sqrt(d) + np.eye(d)  # correlated, anisotropic features
    x = rng.normal(size=(n, d)) @ mixing + np.outer(2.0 * sex - 1.0, direction)
    return x, sex


def probe_auc(x, z):
    half = len(x) // 2
    clf = LogisticRegression(max_iter=1000).fit(x[:half], z[:half])
    return roc_auc_score(z[half:], clf.decision_function(x[half:]))


class TestLeace(unittest.TestCase):
    def test_removes_linear_predictability(self):
        x, sex = planted(n=2000)
        half = len(x) // 2  # eraser and probe fitted on the first half, the probe scored on the second
        erased = LeaceEraser().fit(x[:half], sex[:half]).transform(x)
        self.assertGreater(probe_auc(x, sex), 0.95)
        self.assertLess(abs(probe_auc(erased, sex) - 0.5), 0.08)
        erased = LeaceEraser().fit_transform(x, sex)
        # covariance of erased X with the one-hot attribute is zero to rounding
        onehot, _ = attribute_matrix(sex)
        xc = erased - erased.mean(0)
        cov = xc.T @ (onehot.numpy() - onehot.numpy().mean(0)) / len(x)
        self.assertLess(np.abs(cov).max(), 1e-10)

    def test_closed_form_matches_hand_computation_and_minimal_change(self):
        x, sex = planted(1, n=300, d=6)
        eraser = LeaceEraser().fit(x, sex)
        self.assertEqual(eraser.rank, 1)  # two codes: one informative direction
        # hand oracle: numpy whitening with the same formula
        mu = x.mean(0)
        xc = x - mu
        z = np.eye(2)[sex]
        sxx, sxz = xc.T @ xc / len(x), xc.T @ (z - z.mean(0)) / len(x)
        evals, evecs = np.linalg.eigh(sxx)
        w = evecs @ np.diag(evals**-0.5) @ evecs.T
        w_inv = evecs @ np.diag(evals**0.5) @ evecs.T
        u = np.linalg.svd(w @ sxz)[0][:, :1]
        expected = x - xc @ (w_inv @ u @ u.T @ w).T
        np.testing.assert_allclose(eraser.transform(x), expected, atol=1e-9)
        # the erasure changes X less than the naive mean-difference projection, which also zeroes the covariance
        d = x[sex == 1].mean(0) - x[sex == 0].mean(0)
        naive = x - np.outer(xc @ d, d) / (d @ d)
        self.assertLess(((expected - x) ** 2).sum(), ((naive - x) ** 2).sum())

    def test_unknown_rows_continuous_and_types(self):
        x, sex = planted(2)
        codes = sex.copy()
        codes[:50] = -1
        eraser = LeaceEraser().fit(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(codes))
        out = eraser.transform(torch.as_tensor(x, dtype=torch.float32))
        self.assertEqual(out.dtype, torch.float32)
        age = np.random.default_rng(0).normal(size=len(x))
        xa = x + np.outer(age, np.ones(x.shape[1]))
        erased = LeaceEraser().fit_transform(xa, age)
        erased = erased - erased.mean(0)
        fitted = erased @ np.linalg.lstsq(erased, age - age.mean(), rcond=None)[0]
        self.assertLess(np.abs(fitted).max(), 1e-6)  # no linear regression explains age any more
        with self.assertRaises(RuntimeError):
            LeaceEraser().transform(x)
        with self.assertRaises(ValueError):
            LeaceEraser().fit(x, np.zeros(len(x), dtype=int))


class TestINLP(unittest.TestCase):
    def test_removes_linear_predictability(self):
        x, sex = planted(3, n=2000)
        half = len(x) // 2
        eraser = INLPEraser(n_iterations=10).fit(x[:half], sex[:half])
        self.assertGreaterEqual(eraser.rank, 1)
        self.assertLess(abs(probe_auc(eraser.transform(x), sex) - 0.5), 0.08)
        p = eraser.projection.numpy()
        np.testing.assert_allclose(p @ p, p, atol=1e-8)  # an orthogonal projector


if __name__ == "__main__":
    unittest.main()
