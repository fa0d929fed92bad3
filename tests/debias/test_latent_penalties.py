# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Latent matching penalties: the RBF MMD and the correlation penalty against numpy computations, their zero and
positive cases, and that their gradient moves a latent towards matched groups."""

from __future__ import annotations

import unittest

import numpy as np
import torch

from monai_fair.debias.latent_penalties import (
    MMD_BANDWIDTHS,
    correlation_penalty,
    cross_covariance_penalty,
    group_mmd,
    rbf_mmd2,
)


def _mmd2_numpy(x: np.ndarray, y: np.ndarray, scales=MMD_BANDWIDTHS) -> float:
    pooled = np.concatenate([x, y])
    d2 = ((pooled[:, None, :] - pooled[None, :, :]) ** 2).sum(-1)
    off = np.sort(d2[~np.eye(len(pooled), dtype=bool)])
    med = off[(off.size - 1) // 2]  # torch's median: the lower middle value
    k = np.mean([np.exp(-d2 / (s * med)) for s in scales], axis=0)
    n = len(x)
    return float(k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean())


def _correlation_numpy(z: np.ndarray, t: np.ndarray) -> float:
    return float(sum(np.corrcoef(z[:, j], t)[0, 1] ** 2 for j in range(z.shape[1])))


class TestRbfMmd(unittest.TestCase):
    def test_matches_numpy(self):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(12, 3, generator=g, dtype=torch.float64)
        y = torch.randn(9, 3, generator=g, dtype=torch.float64) + 0.7
        self.assertAlmostEqual(float(rbf_mmd2(x, y)), _mmd2_numpy(x.numpy(), y.numpy()), places=10)
        self.assertAlmostEqual(float(rbf_mmd2(x, y, (1.0,))), _mmd2_numpy(x.numpy(), y.numpy(), (1.0,)), places=10)

    def test_identical_samples_zero_shifted_positive(self):
        g = torch.Generator().manual_seed(1)
        x = torch.randn(40, 4, generator=g, dtype=torch.float64)
        self.assertAlmostEqual(float(rbf_mmd2(x, x.clone())), 0.0, places=12)
        same = float(rbf_mmd2(x[:20], x[20:]))
        shifted = float(rbf_mmd2(x[:20], x[20:] + 2.0))
        self.assertGreater(shifted, 5 * same)
        # scale-free: the bandwidths follow the median distance, so scaling both samples changes nothing
        self.assertAlmostEqual(float(rbf_mmd2(3 * x[:20], 3 * (x[20:] + 2.0))), shifted, places=10)

    def test_group_mmd_selects_rows_and_handles_missing_groups(self):
        g = torch.Generator().manual_seed(2)
        z = torch.randn(10, 2, generator=g, dtype=torch.float64)
        groups = torch.tensor([0, 1, 0, 1, float("nan"), 0, 1, 0, 1, -1], dtype=torch.float64)
        expected = _mmd2_numpy(z.numpy()[[0, 2, 5, 7]], z.numpy()[[1, 3, 6, 8]])
        self.assertAlmostEqual(float(group_mmd(z, groups)), expected, places=10)
        z.requires_grad_(True)
        alone = group_mmd(z, torch.zeros(10))  # one group only: zero, and the graph is kept
        self.assertEqual(float(alone.detach()), 0.0)
        alone.backward()
        self.assertIsNotNone(z.grad)

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, "bandwidths"):
            rbf_mmd2(torch.zeros(3, 2), torch.ones(3, 2), (0.0,))
        with self.assertRaisesRegex(ValueError, "one width"):
            rbf_mmd2(torch.zeros(3, 2), torch.ones(3, 3))
        with self.assertRaisesRegex(ValueError, "groups"):
            group_mmd(torch.zeros(3, 2), torch.zeros(4))


class TestCorrelationPenalty(unittest.TestCase):
    def test_matches_numpy_and_cross_covariance(self):
        g = torch.Generator().manual_seed(3)
        z = torch.randn(50, 3, generator=g, dtype=torch.float64)
        t = z[:, 0] + torch.randn(50, generator=g, dtype=torch.float64)
        self.assertAlmostEqual(float(correlation_penalty(z, t)), _correlation_numpy(z.numpy(), t.numpy()), places=10)
        cov = np.cov(z.numpy().T, t.numpy())[:3, 3]
        self.assertAlmostEqual(float(cross_covariance_penalty(z, t)), float((cov**2).sum()), places=10)
        # scale-free in z, unlike the covariance
        self.assertAlmostEqual(float(correlation_penalty(10 * z, t)), float(correlation_penalty(z, t)), places=10)

    def test_uncorrelated_zero_and_nan_rows_left_out(self):
        z = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 1.0], [-1.0, 1.0], [5.0, 5.0]], dtype=torch.float64)
        t = torch.tensor([0.0, 0.0, 1.0, 1.0, float("nan")], dtype=torch.float64)
        # first column is uncorrelated with t, second equals it: penalty 1 (the NaN row is dropped)
        self.assertAlmostEqual(float(correlation_penalty(z, t)), 1.0, places=10)

    def test_gradient_removes_the_linear_signal(self):
        # a few gradient steps on the penalty alone make a sex-shifted latent uncorrelated with sex
        g = torch.Generator().manual_seed(4)
        sex = torch.randint(0, 2, (64,), generator=g).double()
        z = (torch.randn(64, 3, generator=g, dtype=torch.float64) + 2.0 * sex[:, None]).requires_grad_(True)
        before = float(correlation_penalty(z, sex).detach())
        opt = torch.optim.SGD([z], lr=5.0)
        for _ in range(50):
            opt.zero_grad()
            correlation_penalty(z, sex).backward()
            opt.step()
        self.assertGreater(before, 1.0)
        self.assertLess(float(correlation_penalty(z, sex).detach()), 0.01 * before)


if __name__ == "__main__":
    unittest.main()
