# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""A tiny ``SupervisedEvaluator`` over in-memory samples with a ``sex`` key, shared by the handler tests."""

from __future__ import annotations

import torch
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator
from monai.handlers import ROCAUC, from_engine
from monai.transforms import Activationsd


def make_samples(n: int = 96, seed: int = 0, labels: int = 1) -> list[dict]:
    """Samples whose image mean is the logit of the score; group F (0) gets a weaker signal (planted gap)."""
    gen = torch.Generator().manual_seed(seed)
    sex = torch.randint(0, 2, (n,), generator=gen)
    label = (torch.rand(n, labels, generator=gen) < 0.5).float()
    strength = torch.where(sex == 0, 0.6, 2.0).view(n, 1)
    logit = strength * (2 * label - 1) + torch.randn(n, labels, generator=gen)
    images = logit.view(n, labels, 1, 1).expand(n, labels, 2, 2).clone()
    return [{"image": images[i], "label": label[i], "sex": int(sex[i])} for i in range(n)]


class MeanLogit(torch.nn.Module):
    """Per-channel spatial mean: the score of sample ``i`` is exactly ``sigmoid(logit_i)``."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x.mean(dim=(2, 3))


def expected_scores(samples: list[dict]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(scores, labels, groups)`` the evaluator should see (single label: 1-D)."""
    s = torch.sigmoid(torch.stack([d["image"].mean(dim=(1, 2)) for d in samples]))
    y = torch.stack([d["label"] for d in samples])
    g = torch.tensor([d["sex"] for d in samples])
    return (s[:, 0], y[:, 0], g) if s.shape[1] == 1 else (s, y, g)


def make_evaluator(
    samples,
    key_val_metric=None,
    additional_metrics=None,
    val_handlers=None,
    batch_size=16,
    metric_cmp_fn=None,
    decollate=True,
    postprocessing=None,
    network=None,
):
    """An evaluator; MONAI registers ``additional_metrics`` only next to a key metric, so ROCAUC is the default."""
    kwargs = {} if metric_cmp_fn is None else {"metric_cmp_fn": metric_cmp_fn}
    if key_val_metric is None:
        key_val_metric = {"val_auc": ROCAUC(output_transform=from_engine(["pred", "label"]))}
    return SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(samples), batch_size=batch_size, num_workers=0),
        network=network if network is not None else MeanLogit(),
        postprocessing=postprocessing if postprocessing is not None else Activationsd(keys="pred", sigmoid=True),
        key_val_metric=key_val_metric,
        additional_metrics=additional_metrics,
        val_handlers=val_handlers,
        decollate=decollate,
        **kwargs,
    )
