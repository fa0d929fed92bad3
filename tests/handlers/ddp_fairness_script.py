# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Fairness metrics inside a ``SupervisedEvaluator`` run, single-process or under ``torchrun`` (gloo, CPU).

Usage: ``python -m torch.distributed.run --nproc_per_node=2 tests/handlers/ddp_fairness_script.py OUT_DIR`` writes
``OUT_DIR/rank<k>.json`` with the metrics every rank computed; ``run_evaluation(None)`` gives the single-process
numbers. Shards are uneven (101 samples over 2 ranks), and a second check leaves rank 1 without any sample.
"""

from __future__ import annotations

import json
import math
import os
import sys

import torch
import torch.distributed as dist
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator
from monai.transforms import Activationsd

from monai_fair.handlers import FairnessObjectiveMetric, FairnessSummaryMetric, GroupFairnessMetric
from monai_fair.metrics import FairnessCumulative

N_SAMPLES = 101


def make_data(n: int = N_SAMPLES) -> list[dict]:
    """Tiny images whose mean drives the score, three groups, a planted group effect."""
    gen = torch.Generator().manual_seed(7)
    sex = torch.randint(0, 3, (n,), generator=gen)
    label = (torch.rand(n, generator=gen) < 0.45).float()
    signal = label * (1.0 - 0.5 * (sex == 0).float()) + 0.8 * torch.randn(n, generator=gen)
    images = signal.view(n, 1, 1, 1) + 0.1 * torch.randn(n, 1, 4, 4, generator=gen)
    return [{"image": images[i], "label": label[i : i + 1], "sex": int(sex[i])} for i in range(n)]


def run_evaluation(rank_world: tuple[int, int] | None) -> dict[str, float]:
    """Run the evaluator on this rank's shard and return the flat metrics (same on every rank)."""
    data = make_data()
    if rank_world is not None:
        rank, world = rank_world
        data = data[rank::world]  # uneven shards: 51 and 50
    loader = DataLoader(Dataset(data), batch_size=8, num_workers=0)
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1))
    with torch.no_grad():
        network[1].weight.fill_(1.0 / 16)
        network[1].bias.fill_(-0.3)
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=loader,
        network=network,
        postprocessing=Activationsd(keys="pred", sigmoid=True),
        key_val_metric={"objective": FairnessObjectiveMetric(attributes="sex", reference=1, epsilon=0.5)},
        additional_metrics={
            "sex_fairness": GroupFairnessMetric(
                attributes="sex",
                group_names={"0": "F", "1": "M", "2": "O"},
                reference=1,
                min_group_size=5,
                n_bootstrap=50,
                seed=3,
                metrics="all",
            ),
            "worst_auc": FairnessSummaryMetric("worst_group_auc", attributes="sex", min_group_size=5),
            "eod_gap": FairnessSummaryMetric("eod_max_min", attributes="sex", min_group_size=5),
        },
        decollate=True,
    )
    evaluator.run()
    out = {k: float(v) for k, v in evaluator.state.metrics.items() if not isinstance(v, dict)}
    table = evaluator.state.fairness_details["sex_fairness"].table
    out["n_total"] = float(table.per_group["n"].sum())
    return out


def run_empty_rank(rank_world: tuple[int, int] | None) -> dict[str, float]:
    """Cumulative use where rank 1 buffers nothing: it must still join the gather and get the full table."""
    data = make_data(40)
    metric = FairnessCumulative(reference=1, min_group_size=2)
    if rank_world is None or rank_world[0] == 0:
        scores = torch.sigmoid(torch.stack([d["image"].mean() for d in data]))
        metric.extend(scores, torch.cat([d["label"] for d in data]), [d["sex"] for d in data])
    table = metric.aggregate()
    return {f"empty_rank/{k}": v for k, v in table.as_flat_dict().items()}


def main(out_dir: str) -> None:
    dist.init_process_group(backend="gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    result = run_evaluation((rank, world))
    result.update(run_empty_rank((rank, world)))
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump({k: (None if math.isnan(v) else v) for k, v in result.items()}, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
