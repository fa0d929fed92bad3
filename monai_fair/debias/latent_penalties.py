# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Distribution-matching penalties on a latent code, beside (or instead of) adversaries.

An adversary only says what *it* can still read from the latent; an encoder can fool one adversary while a fresh
probe still finds the attribute. A two-sample statistic between the groups' latents has no opponent to fool:

* :func:`group_mmd`: the squared maximum mean discrepancy (biased V-statistic) between the latents of two groups,
  with a sum of RBF kernels of several bandwidths (as in the Variational Fair Autoencoder, Louizos et al. 2016).
  The bandwidths are multiples of the batch's median squared pairwise distance (detached), so the encoder cannot
  lower the penalty by shrinking or inflating the latent.
* :func:`cross_covariance_penalty`: the squared norm of the cross-covariance between the latent and a continuous
  attribute (e.g. standardised age): zero exactly when no linear function of the latent correlates with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["MMD_BANDWIDTHS", "cross_covariance_penalty", "correlation_penalty", "group_mmd", "rbf_mmd2"]

#: default RBF bandwidths, as multiples of the median squared pairwise distance
MMD_BANDWIDTHS = (0.25, 0.5, 1.0, 2.0, 4.0)


def rbf_mmd2(x: torch.Tensor, y: torch.Tensor, bandwidths: Sequence[float] = MMD_BANDWIDTHS) -> torch.Tensor:
    """Biased squared MMD between samples ``x`` ``(n, k)`` and ``y`` ``(m, k)`` under a sum of RBF kernels.

    ``k(a, b) = mean_s exp(-|a - b|² / (s · med))`` over ``s`` in ``bandwidths``, with ``med`` the median squared
    distance between distinct rows of the pooled sample (detached; 1 when all rows coincide). The estimate is
    ``mean K_xx + mean K_yy - 2 mean K_xy`` (diagonals included): non-negative, 0 for identical samples.

    Args:
        x: first sample, ``(n, k)``.
        y: second sample, ``(m, k)``.
        bandwidths: positive multiples of the median squared distance.

    Raises:
        ValueError: empty samples, mismatched widths or non-positive bandwidths.
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] == 0 or y.shape[0] == 0 or x.shape[1] != y.shape[1]:
        raise ValueError(f"need two non-empty (n, k) samples of one width, got {tuple(x.shape)} and {tuple(y.shape)}.")
    scales = [float(s) for s in bandwidths]
    if not scales or any(not s > 0 for s in scales):
        raise ValueError(f"bandwidths must be positive, got {list(bandwidths)}.")
    pooled = torch.cat([x, y], 0)
    d2 = torch.cdist(pooled, pooled).pow(2)
    n = pooled.shape[0]
    off = d2[~torch.eye(n, dtype=torch.bool, device=d2.device)].detach()
    med = off.median() if bool((off > 0).any()) else torch.ones((), device=d2.device, dtype=d2.dtype)
    med = med.clamp_min(1e-12)
    k = sum(torch.exp(-d2 / (s * med)) for s in scales) / len(scales)
    nx = x.shape[0]
    return k[:nx, :nx].mean() + k[nx:, nx:].mean() - 2.0 * k[:nx, nx:].mean()


def group_mmd(z: torch.Tensor, groups: torch.Tensor, bandwidths: Sequence[float] = MMD_BANDWIDTHS) -> torch.Tensor:
    """:func:`rbf_mmd2` between the rows of ``z`` with ``groups == 0`` and those with ``groups == 1``.

    Rows with any other value (NaN, unknown codes) are left out. With fewer than two rows in either group the
    result is a zero that keeps ``z``'s graph (a batch can miss a group).

    Args:
        z: latents ``(B, k)``.
        groups: ``(B,)`` binary codes (float or integer).
        bandwidths: see :func:`rbf_mmd2`.
    """
    g = groups.reshape(-1)
    if g.numel() != z.shape[0]:
        raise ValueError(f"groups has {g.numel()} entries for {z.shape[0]} latents.")
    a, b = g == 0, g == 1
    if int(a.sum()) < 2 or int(b.sum()) < 2:
        return z.sum() * 0.0
    return rbf_mmd2(z[a], z[b], bandwidths)


def cross_covariance_penalty(z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``‖Cov(z, t)‖²``: squared norm of the cross-covariance between latents ``(B, k)`` and a continuous target.

    Rows with a NaN target are left out; fewer than two usable rows give a zero that keeps ``z``'s graph.

    Args:
        z: latents ``(B, k)``.
        target: ``(B,)`` or ``(B, m)`` values (standardise them so the weight means the same across attributes).
    """
    t = target.reshape(z.shape[0], -1).to(z.dtype)
    keep = ~torch.isnan(t).any(1)
    if int(keep.sum()) < 2:
        return z.sum() * 0.0
    zc = z[keep] - z[keep].mean(0, keepdim=True)
    tc = t[keep] - t[keep].mean(0, keepdim=True)
    cov = zc.T @ tc / (zc.shape[0] - 1)
    return cov.pow(2).sum()


def correlation_penalty(z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum of squared Pearson correlations between every latent dimension and every target column.

    Scale-free (the encoder cannot lower it by shrinking the latent); zero exactly when no linear function of the
    latent correlates with the target, i.e. when a linear probe cannot beat a constant one on this sample. Rows with
    a NaN target are left out; constant columns count as uncorrelated; fewer than two usable rows give a zero that
    keeps ``z``'s graph.

    Args:
        z: latents ``(B, k)``.
        target: ``(B,)`` or ``(B, m)`` values (e.g. sex codes 0/1, ages).
    """
    t = target.reshape(z.shape[0], -1).to(z.dtype)
    keep = ~torch.isnan(t).any(1)
    if int(keep.sum()) < 2:
        return z.sum() * 0.0
    zc = z[keep] - z[keep].mean(0, keepdim=True)
    tc = t[keep] - t[keep].mean(0, keepdim=True)
    zn = zc / zc.pow(2).sum(0, keepdim=True).sqrt().clamp_min(1e-8)
    tn = tc / tc.pow(2).sum(0, keepdim=True).sqrt().clamp_min(1e-8)
    return (zn.T @ tn).pow(2).sum()
