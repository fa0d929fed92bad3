# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Adaptive pruning (Galloway 2025): prune whole clusters of units grouped by saliency and weight magnitude.

Each unit gets two features, min-max normalised over the unpruned units: its saliency ``S`` (the influence on the
bias proxy, as in :mod:`~monai_fair.debias.pruning`) and the L1 norm of the weights that produce it (the output
filter of a convolution, broadcast over positions; the row of a linear layer). k-means groups the units; clusters
are ranked by ``direction · mean(S)`` (largest first, with the same direction as pruning: positive bias prunes the
high-``S`` clusters) and units are pruned in that order, ``step_size`` per step, best-``S`` first inside the cluster
that is cut. With ``dynamic`` the saliency is re-estimated and the units re-clustered after every step.

Fixed relative to the fork (version 0c1d6fe): the direction, the ``rho`` constraint with best-model selection and
early stop (inherited from :class:`~monai_fair.debias.pruning.PruningDebiaser`), the selected mask is the one applied,
NumPy-2-safe normalisation (done in torch), no "temperature" on probabilities. Only clusters whose mean saliency
points the bias-reducing way are pruned.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from monai_fair.debias.pruning import PruningDebiaser, PruningRun
from monai_fair.debias.unit_mask import NORM_LAYER_TYPES, UnitMaskSet

__all__ = ["AdaptivePruningDebiaser", "kmeans", "minmax_normalize", "unit_weight_magnitude"]


def minmax_normalize(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Scale ``x`` to [0, 1] using the min and max over ``mask`` (all elements if ``None``); constant → zeros."""
    ref = x if mask is None else x[mask]
    if ref.numel() == 0:
        return torch.zeros_like(x)
    lo, hi = ref.min(), ref.max()
    span = hi - lo
    if float(span) == 0.0 or not math.isfinite(float(span)):
        return torch.zeros_like(x)
    return (x - lo) / span


def _producing_conv(model: nn.Module, name: str) -> nn.Module | None:
    """The last convolution registered before submodule ``name`` (the producer of a conv → norm pair)."""
    conv = None
    for n, m in model.named_modules():
        if n == name:
            return conv
        if isinstance(m, nn.modules.conv._ConvNd):
            conv = m
    return None


@torch.no_grad()
def unit_weight_magnitude(masks: UnitMaskSet, model: nn.Module | None = None) -> torch.Tensor:
    """L1 norm of the weights producing each unit, flat in ``masks`` order.

    Convolution: ``sum |W[c_out]|`` broadcast over the output positions; linear: the row's L1 norm; normalisation
    layer (the masked layer of a conv → norm pair): its per-channel scale ``|γ_c|``, or without an affine scale the
    L1 norm of the convolution that feeds it (found in ``model``).

    Args:
        masks: the masked layers.
        model: the network holding them; needed only for normalisation layers without an affine scale.

    Raises:
        ValueError: a masked layer without usable weights, or whose weight does not index its output channels.
    """
    parts = []
    for name, layer in zip(masks.names, masks.layers):
        module, shape = layer.module, layer.mask_shape
        weight = getattr(module, "weight", None)
        if weight is None and isinstance(module, NORM_LAYER_TYPES) and model is not None:
            producer = _producing_conv(model, name)
            if producer is not None:
                module, weight = producer, producer.weight
        if not isinstance(weight, torch.Tensor):
            raise ValueError(f"layer {name!r} ({type(module).__name__}) has no weight; adaptive pruning needs one.")
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            if module.groups != 1:
                raise ValueError(f"layer {name!r}: grouped transposed convolutions are not supported.")
            per_channel = weight.abs().transpose(0, 1).flatten(1).sum(1)
        elif weight.ndim == 1:  # affine normalisation: its scale produces the unit
            per_channel = weight.abs()
        else:
            per_channel = weight.abs().flatten(1).sum(1)
        if per_channel.numel() != shape[0]:
            raise ValueError(
                f"layer {name!r}: weight has {per_channel.numel()} output channels but the output has {shape[0]}."
            )
        view = per_channel.float().reshape(-1, *([1] * (len(shape) - 1)))
        parts.append(view.expand(shape).reshape(-1).to(masks.device))
    return torch.cat(parts)


@torch.no_grad()
def kmeans(
    points: torch.Tensor,
    n_clusters: int,
    n_iter: int = 50,
    sample_size: int = 65536,
    seed: int = 0,
    chunk_size: int = 1 << 20,
) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means (k-means++ seeding, Lloyd iterations) in torch on the points' device.

    Centroids are fitted on a random subsample of at most ``sample_size`` points (as mini-batch k-means does); every
    point is then assigned to its nearest centroid in chunks, so millions of points cost a few passes.

    Args:
        points: ``(N, d)`` float tensor.
        n_clusters: number of clusters ``k`` (fewer if there are fewer distinct sample points).
        n_iter: maximum Lloyd iterations.
        sample_size: subsample size used to fit the centroids.
        seed: seed of the subsample and the seeding.
        chunk_size: points per assignment chunk.

    Returns:
        ``(centroids (k', d), assignment (N,) long)``.
    """
    if points.ndim != 2 or points.shape[0] == 0:
        raise ValueError(f"points must be a non-empty (N, d) tensor, got shape {tuple(points.shape)}.")
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be >= 1, got {n_clusters}.")
    pts = points.float()
    n = pts.shape[0]
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    if n > sample_size:
        sample = pts[torch.randint(0, n, (sample_size,), generator=gen).to(pts.device)]
    else:
        sample = pts
    k = min(int(n_clusters), int(torch.unique(sample, dim=0).shape[0]))
    # k-means++ seeding
    first = int(torch.randint(0, sample.shape[0], (1,), generator=gen))
    centroids = sample[first : first + 1]
    closest = ((sample - centroids) ** 2).sum(1)
    for _ in range(1, k):
        total = closest.sum()
        if float(total) <= 0:
            break
        probs = (closest / total).cpu().double()
        nxt = int(torch.multinomial(probs, 1, generator=gen))
        centroids = torch.cat([centroids, sample[nxt : nxt + 1]])
        closest = torch.minimum(closest, ((sample - sample[nxt]) ** 2).sum(1))
    k = centroids.shape[0]
    for _ in range(n_iter):
        assign = torch.cdist(sample, centroids).argmin(1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, sample)
        counts = torch.bincount(assign, minlength=k).to(sample.dtype)
        new = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centroids)
        if torch.allclose(new, centroids, rtol=0, atol=1e-7):
            centroids = new
            break
        centroids = new
    assignment = torch.cat([torch.cdist(c, centroids).argmin(1) for c in torch.split(pts, chunk_size)])
    return centroids, assignment


class AdaptivePruningDebiaser(PruningDebiaser):
    """Cluster-wise pruning by saliency and weight magnitude (Galloway 2025), under a ``rho`` accuracy bound.

    Args:
        n_clusters: number of k-means clusters (50).
        dynamic: re-estimate saliency and re-cluster after every step (default False, as in the fork).
        kmeans_sample_size: units subsampled to fit the centroids (all units are assigned).
        seed: k-means seed.
        kwargs: :class:`~monai_fair.debias.pruning.PruningDebiaser` arguments (``step_size``, ``max_steps``,
            ``rho``, ``stop_early``, ``layers``, ...) and the common debiaser arguments.
    """

    name = "adaptive_pruning"

    def __init__(
        self,
        n_clusters: int = 50,
        dynamic: bool = False,
        kmeans_sample_size: int = 65536,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(dynamic=dynamic, **kwargs)
        if int(n_clusters) < 1:
            raise ValueError(f"n_clusters must be >= 1, got {n_clusters}.")
        self.n_clusters = int(n_clusters)
        self.kmeans_sample_size = int(kmeans_sample_size)
        self.seed = int(seed)

    def _cluster(self, run: PruningRun, step: int) -> None:
        saliency = self.influence(run)
        if "magnitude" not in run.cache:
            run.cache["magnitude"] = unit_weight_magnitude(run.masks, run.model)
        kept = run.masks.flat_mask()
        features = torch.stack(
            [minmax_normalize(saliency, kept)[kept], minmax_normalize(run.cache["magnitude"], kept)[kept]], dim=1
        )
        cluster = torch.full((run.masks.n_units,), -1, dtype=torch.long, device=kept.device)
        if features.shape[0] > 0:
            _, assign = kmeans(features, self.n_clusters, sample_size=self.kmeans_sample_size, seed=self.seed + step)
            cluster[kept] = assign
        n = int(cluster.max()) + 1
        directed = saliency * run.direction
        valid = cluster >= 0
        sums = torch.zeros(max(n, 1), device=kept.device).index_add_(0, cluster[valid], directed[valid])
        counts = torch.bincount(cluster[valid], minlength=max(n, 1)).float()
        score = sums / counts.clamp_min(1)
        score[counts == 0] = -math.inf
        run.cache.update(cluster=cluster, cluster_score=score, directed=directed.clone())

    def select_units(self, run: PruningRun, step: int) -> torch.Tensor:
        if self.dynamic or "cluster" not in run.cache:
            self._cluster(run, step)
        cluster, score, directed = run.cache["cluster"], run.cache["cluster_score"], run.cache["directed"]
        available = run.masks.flat_mask() & (cluster >= 0)
        # rank of each cluster (0 = best); clusters whose mean saliency does not reduce the bias are never pruned
        order = torch.argsort(score, descending=True)
        n_good = int((score > 0).sum())
        rank = torch.full_like(score, math.inf)
        rank[order[:n_good]] = torch.arange(n_good, device=score.device, dtype=score.dtype)
        unit_rank = torch.where(available, rank[cluster.clamp_min(0)], torch.full_like(directed, math.inf))
        sizes = torch.bincount(cluster[available], minlength=score.numel())[order[:n_good]]
        cum = torch.cumsum(sizes, 0)
        n_full = int((cum <= self.step_size).sum())  # clusters taken whole
        whole = torch.nonzero(unit_rank < n_full).reshape(-1)
        remaining = self.step_size - whole.numel()
        if remaining > 0 and n_full < n_good:
            # cut the next cluster: its best-saliency units first
            part = directed.masked_fill(unit_rank != n_full, -math.inf)
            _, top = torch.topk(part, remaining, sorted=False)
            whole = torch.cat([whole, top])
        return whole
