# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Cost of the fairness handlers in an evaluator epoch: ``SupervisedEvaluator`` with vs without them.

A small CNN evaluates an in-memory dataset of ``--n`` 64×64 single-channel images (default 3000, batch 64). The
"fair" evaluator adds every fairness piece a user would attach — ``GroupFairnessMetric`` (all metrics),
``FairnessObjectiveMetric``, two ``FairnessSummaryMetric`` (worst-group AUC, EOD max–min) and
``FairnessTensorBoardHandler`` (scalars, ROC + calibration images, Markdown table every epoch) — to the same baseline (``ROCAUC`` key metric). Epochs
of the two evaluators are interleaved (order alternating) and the medians compared; the last line is the ratio.
The time spent inside the fairness code is also measured directly (wrapped callables), which is far less sensitive
to other load on a shared machine than the difference of two epoch times.

Usage: ``python benchmarks/handler_bench.py [--n 3000] [--reps 7] [--device cpu]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator
from monai.handlers import ROCAUC, from_engine
from monai.transforms import Activationsd

from monai_fair.handlers import (
    FairnessObjectiveMetric,
    FairnessSummaryMetric,
    FairnessTensorBoardHandler,
    GroupFairnessMetric,
)


def make_data(n: int, size: int = 64, seed: int = 0) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    sex = torch.randint(0, 2, (n,), generator=gen)
    label = (torch.rand(n, generator=gen) < 0.4).float()
    images = torch.randn(n, 1, size, size, generator=gen)
    images[:, :, 16:48, 16:48] += (label * torch.where(sex == 0, 0.3, 1.0)).view(n, 1, 1, 1)
    return [{"image": images[i], "label": label[i : i + 1], "sex": int(sex[i])} for i in range(n)]


def make_network() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(32, 32, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(32, 1),
    )


class Stopwatch:
    """Accumulates the wall time spent inside wrapped callables (the fairness code's own share of an epoch)."""

    def __init__(self) -> None:
        self.total = {"in_epoch": 0.0, "background": 0.0}

    def wrap(self, fn, kind: str = "in_epoch"):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.total[kind] += time.perf_counter() - start

        return timed

    def take(self) -> dict[str, float]:
        out, self.total = self.total, {"in_epoch": 0.0, "background": 0.0}
        return out


def make_evaluator(
    data, network, device, log_dir: str | None, watch: Stopwatch | None = None
) -> tuple[SupervisedEvaluator, list]:
    additional, handlers = None, None
    if log_dir is not None:
        names = {0: "F", 1: "M"}
        additional = {
            "sex_fairness": GroupFairnessMetric(attributes="sex", group_names=names, reference=1),
            "objective": FairnessObjectiveMetric(attributes="sex", reference=1),
            "worst_auc": FairnessSummaryMetric("worst_group_auc", attributes="sex"),
            "eod_gap": FairnessSummaryMetric("eod_max_min", attributes="sex"),
        }
        handlers = [FairnessTensorBoardHandler(log_dir=log_dir)]
        if watch is not None:  # instance attributes win over the methods ignite would register
            for metric in additional.values():
                metric.iteration_completed = watch.wrap(metric.iteration_completed)
                metric.completed = watch.wrap(metric.completed)
            handlers[0].write = watch.wrap(handlers[0].write)
            handlers[0]._write_images = watch.wrap(handlers[0]._write_images, "background")
    evaluator = SupervisedEvaluator(
        device=device,
        val_data_loader=DataLoader(Dataset(data), batch_size=64, num_workers=0),
        network=network,
        postprocessing=Activationsd(keys="pred", sigmoid=True),
        key_val_metric={"val_auc": ROCAUC(output_transform=from_engine(["pred", "label"]))},
        additional_metrics=additional,
        val_handlers=handlers,
    )
    return evaluator, handlers or []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    data = make_data(args.n)
    network = make_network().to(device).eval()
    with tempfile.TemporaryDirectory() as log_dir:
        plain, _ = make_evaluator(data, network, device, None)
        watch = Stopwatch()
        fair, handlers = make_evaluator(data, network, device, log_dir, watch)
        plain.run(global_epoch=1)  # warm-up both (allocator, matplotlib font cache, TB writer)
        fair.run(global_epoch=1)
        watch.take()
        inside: list[dict[str, float]] = []
        times = {"plain": [], "fair": []}
        cpu = {"plain": [], "fair": []}
        for rep in range(args.reps):
            order = [("plain", plain), ("fair", fair)] if rep % 2 == 0 else [("fair", fair), ("plain", plain)]
            for name, ev in order:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start, start_cpu = time.perf_counter(), time.process_time()
                ev.run(global_epoch=rep + 2)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
                if name == "fair":
                    handlers[0].flush()  # the background figures of this epoch are done (not timed above)
                    inside.append(watch.take())
        for h in handlers:
            h.close()
        assert plain.state.metrics["val_auc"] == fair.state.metrics["val_auc"]
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"samples={args.n} batch=64 image=64x64 reps={args.reps} device={device}")
    print(f"epoch without fairness handlers: median {med['plain']:.3f} s  {[round(t, 3) for t in times['plain']]}")
    print(f"epoch with fairness handlers:    median {med['fair']:.3f} s  {[round(t, 3) for t in times['fair']]}")
    own = statistics.median(d["in_epoch"] for d in inside)
    drawn = statistics.median(d["background"] for d in inside)
    print(
        f"time inside the fairness metrics/handlers per epoch: median {own:.3f} s = {own / med['plain']:.1%} of the "
        f"plain epoch; figures drawn by the background thread: {drawn:.3f} s per epoch (off the critical path, "
        "not in the timed epochs)"
    )
    print(
        f"process CPU time per epoch: without {med_cpu['plain']:.3f} s, with {med_cpu['fair']:.3f} s, ratio "
        f"{med_cpu['fair'] / med_cpu['plain']:.3f} (less sensitive to other load on a shared machine)"
    )
    print(f"fairness keys per epoch: {sum(1 for v in fair.state.metrics.values() if not isinstance(v, dict))}")
    print(f"epoch time ratio with/without fairness handlers (goal <= 1.03): {med['fair'] / med['plain']:.3f}")


if __name__ == "__main__":
    main()
