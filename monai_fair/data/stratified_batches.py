# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Mini-batches that hold every group: stratified sampling for adversarial training with a batch-level critic.

Li et al. 2021 assume that "each mini-batch contains samples from both privileged and under-privileged samples"
(by stratified sampling and random shuffling): the critic's label, the batch's statistical parity difference, is
undefined otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["GroupStratifiedBatchSampler"]


class GroupStratifiedBatchSampler(Sampler[list[int]]):
    """Batch sampler whose batches keep the groups' proportions (each present group at least once per batch).

    Every epoch each group's indices are shuffled and dealt round-robin into ``ceil(N / batch_size)`` batches in
    proportion to the group's size, so each sample is drawn once per epoch and every group with at least as many
    samples as there are batches is in every batch. Groups of unknown code (negative) are a stratum of their own.
    Under data parallelism (``num_replicas > 1``) the batch count is rounded up to a multiple of ``num_replicas``
    and rank ``rank`` takes every ``num_replicas``-th batch, so all ranks run the same number of iterations.

    Args:
        groups: group code of every sample of the dataset (e.g. ``[d["sex"] for d in data]``).
        batch_size: target batch size.
        seed: shuffling seed; the epoch number is added, so epochs differ but runs repeat.
        drop_last: drop a last batch smaller than half ``batch_size``.
        num_replicas: number of data-parallel processes (default 1; ``None``: the ``torch.distributed`` world size).
        rank: this process's rank (``None``: the ``torch.distributed`` rank, else 0).

    Raises:
        ValueError: empty ``groups`` or a non-positive ``batch_size``.
    """

    def __init__(
        self,
        groups: Sequence[int],
        batch_size: int,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int | None = 1,
        rank: int | None = None,
    ) -> None:
        self.groups = np.asarray(list(groups)).astype(np.int64).reshape(-1)
        if self.groups.size == 0:
            raise ValueError("groups is empty: nothing to sample.")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        dist = torch.distributed.is_available() and torch.distributed.is_initialized()
        if num_replicas is None:
            num_replicas = torch.distributed.get_world_size() if dist else 1
        if rank is None:
            rank = torch.distributed.get_rank() if dist else 0
        if int(num_replicas) < 1 or not 0 <= int(rank) < int(num_replicas):
            raise ValueError(f"need num_replicas >= 1 and 0 <= rank < num_replicas, got {num_replicas}, {rank}.")
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        n = max(1, int(np.ceil(self.groups.size / self.batch_size)))
        self.n_batches = int(np.ceil(n / self.num_replicas)) * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_batches // self.num_replicas

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng(self.seed + self.epoch)
        self.epoch += 1
        batches: list[list[int]] = [[] for _ in range(self.n_batches)]
        offset = 0
        for code in np.unique(self.groups):
            idx = np.flatnonzero(self.groups == code)
            rng.shuffle(idx)
            for j, i in enumerate(idx):  # continue round-robin where the previous group stopped
                batches[(offset + j) % self.n_batches].append(int(i))
            offset += idx.size
        order = rng.permutation(self.n_batches)[self.rank :: self.num_replicas]
        for b in order:
            batch = batches[b]
            if self.drop_last and len(batch) < self.batch_size // 2:
                continue
            perm = torch.randperm(len(batch), generator=torch.Generator().manual_seed(int(rng.integers(2**31))))
            yield [batch[int(k)] for k in perm]
