# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Where one seed of the ``mimic_vgg_pruning`` demo spends its time, and what the speed-up settings buy.

1. **Profile**: one seed of the bundle's own ``train.json`` (demo scale, CPU), phase by phase: the split and the
   decoded-tensor cache (``CacheDataset``), training (Ignite's ``BasicTimeProfiler``: data flow, iterations, the
   per-epoch validation handler), then the study (the standard model and every debiaser: its fit and its
   re-evaluation on validation and test).
2. **Side by side**: the dominant passes under the previous settings (per-sample augmentation in the data loader,
   contiguous weights, validation batches of 64) and the current ones (batch augmentation on the device,
   ``monai_fair.transforms.BatchRandAffine``; channels-last weights from ``monai_fair.study.prepare_network``;
   validation batches of 256), on the same split, validation tensors and network weights: one training epoch, one
   forward pass over the validation set, and one pruning fit. Ratios are old / new; the last line is the headline.
   Running the seeds side by side (``SeedLoop(workers="auto")``) comes on top and is not in these ratios.

Wall times depend on the machine and on what else runs; CPU times (``process_time``) are printed beside them.

Usage: ``python benchmarks/headline_profile.py [--epochs 8] [--skip-profile] [--skip-compare] [--threads N]``
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TRAIN = ROOT / "bundles" / "mimic_vgg_pruning" / "configs" / "train.json"


class Clock:
    """Wall and CPU seconds of a block."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def bundle_parser(tmp: Path, overrides: dict):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(TRAIN))
    parser.update({"output_dir": str(tmp / "eval"), "ckpt_dir": str(tmp / "models"), "device": "cpu", **overrides})
    parser.parse()
    return parser


def row(name: str, clock: Clock, total: float | None = None) -> None:
    share = f"{100 * clock.wall / total:5.1f} %" if total else ""
    print(f"  {name:<44} {clock.wall:8.1f} s wall {clock.cpu:8.1f} s cpu  {share}")


def profile_seed(tmp: Path, epochs: int) -> None:
    from ignite.handlers import BasicTimeProfiler
    from monai.utils import set_determinism

    set_determinism(seed=42)
    parser = bundle_parser(tmp / "profile", {"epochs": epochs})
    clocks: dict[str, Clock] = {}
    with Clock() as clocks["split (manifest, patient split)"]:
        data = parser.get_parsed_content("seed_data")
    with Clock() as clocks["decode + cache (train, val, test)"]:
        for split in ("train", "validate", "test"):
            parser.get_parsed_content(f"{split}#dataset")
    trainer = parser.get_parsed_content("train#trainer")
    profiler = BasicTimeProfiler()
    profiler.attach(trainer)
    with Clock() as clocks[f"training ({epochs} epochs, validation each epoch)"]:
        trainer.run()
    study = parser.get_parsed_content("study")
    with Clock() as clocks["study (standard + debiasers + re-evaluation)"]:
        results = study.run()
    total = sum(c.wall for c in clocks.values())
    sizes = ", ".join(f"{k} {len(data[k])}" for k in ("train", "val", "test"))
    print(f"\n== profile of one seed (demo scale; {sizes}) ==")
    for name, clock in clocks.items():
        row(name, clock, total)
    stats = profiler.get_results()
    flow, proc = stats["dataflow_stats"]["total"], stats["processing_stats"]["total"]
    handlers = stats["event_handlers_stats"]
    print(
        f"    training: data flow (augmentation, batching) {float(flow):.1f} s, forward/backward {float(proc):.1f} s,"
    )
    epoch_end = float(handlers["EPOCH_COMPLETED"]["total"])
    print(f"              epoch-end handlers (validation, fairness, TensorBoard, checkpoint) {epoch_end:.1f} s")
    for record in results["records"]:
        if record["split"] == "val":  # the fit time is recorded once, with the validation figures
            print(f"    study: {record['method']:<26} fit {record['seconds']:7.1f} s")


def compare(tmp: Path) -> None:
    from monai.utils import set_determinism

    from monai_fair.debias import collect_outputs

    set_determinism(seed=42)
    # training epochs without the per-epoch validation handlers (the validation pass is timed on its own)
    common = {"epochs": 1, "train#handlers": []}
    new = bundle_parser(tmp / "new", {**common, "val_batch_size": 256})
    # the previous settings: per-sample augmentation in the data set (MONAI RandAffined + RandFlipd, then the input
    # resize), contiguous weights, validation batches of 64; they share the split, the validation and test tensors
    # and the weights of the current ones
    previous = {
        "val_batch_size": 64,
        "network#channels_last": False,
        "train#image_transforms#augment": True,
        "train#image_transforms#input_size": "@input_size",
        "train#trainer#prepare_batch": "$monai.engines.default_prepare_batch",
    }
    old = bundle_parser(tmp / "old", {**common, **previous})
    for key in ("seed_data", "validate#dataset", "test#dataset"):
        old[key] = new.get_parsed_content(key)
    net_new, net_old = new.get_parsed_content("network"), old.get_parsed_content("network")
    net_old.load_state_dict(net_new.state_dict())
    spec = new.get_parsed_content("fairness")
    rows = []
    for what in ("training epoch", "validation forward pass", "pruning fit (5 steps)"):
        pair = []
        for parser in (old, new):
            net = parser.get_parsed_content("network")
            if what == "training epoch":
                trainer = parser.get_parsed_content("train#trainer")
                with Clock() as clock:
                    trainer.run()
            elif what == "validation forward pass":
                loader = parser.get_parsed_content("study#val_loader")
                with Clock() as clock:
                    collect_outputs(net.eval(), loader, spec, device="cpu")
            else:
                loader = parser.get_parsed_content("study#val_loader")
                pruning = parser.get_parsed_content("debiasers#pruning")
                pruning.max_steps = 5
                with Clock() as clock:
                    pruning.fit(copy.deepcopy(net.eval()), loader)
            pair.append(clock)
        rows.append((what, *pair))
    print("\n== previous (per-sample augmentation, contiguous weights, val batch 64)")
    print("   vs now (batch augmentation on the device, channels_last weights, val batch 256) ==")
    for what, a, b in rows:
        print(
            f"  {what:<28} {a.wall:7.1f} s -> {b.wall:7.1f} s wall ({a.wall / b.wall:4.2f}x), cpu {a.cpu / b.cpu:4.2f}x"
        )
    total_old, total_new = sum(r[1].wall for r in rows), sum(r[2].wall for r in rows)
    print(f"headline: the dominant passes of a seed run {total_old / total_new:.2f}x faster (wall, old/new)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="training epochs of the profiled seed (bundle: 8)")
    parser.add_argument("--skip-profile", action="store_true")
    parser.add_argument("--skip-compare", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_profile:
            profile_seed(Path(tmp), args.epochs)
        if not args.skip_compare:
            compare(Path(tmp))


if __name__ == "__main__":
    main()
