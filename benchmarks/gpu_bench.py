# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Training throughput of ``mimic_vgg_pruning``'s own trainer against a plain PyTorch AMP loop.

The bundle's trainer is ``train#trainer`` of ``configs/train.json`` (+ ``configs/scale_paper.json``: VGG-16 at full
width, 224 px) instantiated by MONAI's ``ConfigParser``: its ``SupervisedTrainer``, network, loss and optimizer,
with only the data loader swapped for in-memory cached tensors and its handlers removed (no validation). On CUDA it
runs bf16 autocast (``amp_kwargs``), channels_last inputs and weights and cuDNN benchmark. The plain loop trains a
copy of the same network on the same cached batches with the same settings (``torch.autocast`` in bf16, no grad
scaler: bf16 needs none). Both skip ``--warmup`` iterations before timing (cuDNN autotuning, allocator), and the
device is synchronised around the timed span.

Prints images/s of each and, last, the ratio ``bundle trainer / plain loop`` (goal: >= 0.9).

Usage:
    python benchmarks/gpu_bench.py                      # paper scale on cuda (VGG-16, 224 px, bf16)
    python benchmarks/gpu_bench.py --tiny               # CPU check: VGG width 1/16, 32 px, a few iterations
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Events
from monai.bundle import ConfigParser
from monai.data import DataLoader

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "mimic_vgg_pruning"
TINY = {"width": 0.0625, "fc_channels": 32, "pool_size": 1, "input_size": 32, "batch_norm": True}


def bundle_parser(tiny: bool, device: torch.device, batch_size: int) -> ConfigParser:
    """The bundle's config at the paper scale (or the tiny CPU one), on ``device``."""
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / "train.json"), str(BUNDLE / "configs" / "scale_paper.json")])
    for key, value in (TINY if tiny else {}).items():
        parser[key] = value
    parser["device"] = str(device)
    parser["batch_size"] = batch_size
    return parser


def cached_batches(n_batches: int, batch_size: int, size: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Decoded, preprocessed single-channel images and binary labels held in memory (what ``CacheDataset`` keeps)."""
    gen = torch.Generator().manual_seed(seed)
    n = n_batches * batch_size
    images = torch.rand(n, 1, size, size, generator=gen)
    labels = (torch.rand(n, 1, generator=gen) < 0.5).float()
    return [{"image": images[i], "label": labels[i]} for i in range(n)]


class _Timer:
    """Wall time of iterations ``warmup + 1 ..`` of a run, the device synchronised at both ends."""

    def __init__(self, device: torch.device, warmup: int, batch_size: int) -> None:
        self.device, self.warmup, self.batch_size = device, warmup, batch_size
        self.start: float | None = None
        self.iterations = 0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def begin(self) -> None:
        """Before the first iteration (starts the clock when nothing is warm-up)."""
        if self.warmup == 0:
            self._sync()
            self.start = time.perf_counter()

    def iteration_done(self, iteration: int) -> None:
        if iteration == self.warmup:
            self._sync()
            self.start = time.perf_counter()
        elif iteration > self.warmup:
            self.iterations += 1

    def images_per_second(self) -> float:
        self._sync()
        if self.start is None or self.iterations == 0:
            raise ValueError(f"nothing timed: run more than warmup={self.warmup} iterations.")
        return self.iterations * self.batch_size / (time.perf_counter() - self.start)


def time_bundle_trainer(
    parser: ConfigParser, loader: DataLoader, device: torch.device, amp: bool, warmup: int, epochs: int
) -> tuple[float, torch.nn.Module]:
    """images/s of the bundle's ``train#trainer`` over ``loader`` (its handlers removed)."""
    parser["train#trainer#train_data_loader"] = loader
    parser["train#trainer#train_handlers"] = []
    parser["train#trainer#max_epochs"] = epochs
    parser["train#trainer#amp"] = amp
    parser["train#trainer#amp_kwargs"] = {"dtype": torch.bfloat16}
    # the bundle's own prepare_batch: batch augmentation on the device, channels-last output
    parser["train#augmentation#channels_last"] = True
    parser["train#trainer#non_blocking"] = True
    trainer = parser.get_parsed_content("train#trainer")
    trainer.network.to(memory_format=torch.channels_last)
    timer = _Timer(device, warmup, loader.batch_size)
    trainer.add_event_handler(Events.STARTED, lambda e: timer.begin())
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: timer.iteration_done(e.state.iteration))
    trainer.run()
    return timer.images_per_second(), trainer.network


def time_plain_loop(
    network: torch.nn.Module,
    lr: float,
    loader: DataLoader,
    device: torch.device,
    amp: bool,
    warmup: int,
    epochs: int,
    augment: Callable[[torch.Tensor], torch.Tensor],
) -> float:
    """images/s of a plain PyTorch AMP loop (bf16 autocast, channels_last) over ``loader``, with the bundle's batch
    augmentation ``augment`` (the same work per batch as the bundle's ``prepare_batch``)."""
    network = network.to(device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=1e-8)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    timer = _Timer(device, warmup, loader.batch_size)
    iteration = 0
    timer.begin()
    for _ in range(epochs):
        for batch in loader:
            x = augment(batch["image"].to(device, non_blocking=True)).contiguous(memory_format=torch.channels_last)
            y = batch["label"].to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = loss_fn(network(x), y)
            loss.backward()
            optimizer.step()
            iteration += 1
            timer.iteration_done(iteration)
    return timer.images_per_second()


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse ``argv``, time both loops, print the figures (ratio last) and return them."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="CPU check: VGG width 1/16, 32 px, few iterations")
    ap.add_argument("--device", default=None, help="default: cuda:0 when available, else cpu")
    ap.add_argument("--batch_size", type=int, default=None, help="default 32 (tiny: 4)")
    ap.add_argument("--batches", type=int, default=None, help="cached batches per epoch (default 40; tiny: 4)")
    ap.add_argument("--epochs", type=int, default=None, help="epochs of each loop (default 2; tiny: 1)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed iterations (default 10; tiny: 1)")
    args = ap.parse_args(argv)
    device = torch.device(args.device or ("cuda:0" if torch.cuda.is_available() else "cpu"))
    batch_size = args.batch_size or (4 if args.tiny else 32)
    n_batches = args.batches or (4 if args.tiny else 40)
    epochs = args.epochs or (1 if args.tiny else 2)
    warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 10)
    amp = device.type == "cuda"  # the bundle's engine_amp: bf16 autocast on CUDA only
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    parser = bundle_parser(args.tiny, device, batch_size)
    size = int(parser["input_size"])
    data = cached_batches(n_batches, batch_size, size)
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=0, pin_memory=device.type == "cuda")
    # the plain loop starts from the same weights as the bundle's network
    start = copy.deepcopy(parser.get_parsed_content("network_def")).cpu()
    bundle_ips, network = time_bundle_trainer(parser, loader, device, amp, warmup, epochs)
    augment = parser.get_parsed_content("train#augmentation").augment
    plain_ips = time_plain_loop(start, float(parser["lr"]), loader, device, amp, warmup, epochs, augment)
    ratio = bundle_ips / plain_ips
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device {name}; network {type(network).__name__} width {parser['width']}, {size} px, batch {batch_size}, "
        f"{n_batches} cached batches x {epochs} epoch(s), warmup {warmup}; "
        f"{'bf16 autocast, channels_last, cudnn.benchmark' if amp else 'fp32'}"
    )
    print(f"bundle SupervisedTrainer: {bundle_ips:.1f} images/s")
    print(f"plain PyTorch AMP loop:   {plain_ips:.1f} images/s")
    print(f"ratio bundle trainer / plain loop: {ratio:.3f} (goal >= 0.9)")
    return {
        "device": name,
        "network": type(network).__name__,
        "width": float(parser["width"]),
        "input_size": size,
        "amp": amp,
        "bundle_images_per_s": bundle_ips,
        "plain_images_per_s": plain_ips,
        "ratio": ratio,
    }


if __name__ == "__main__":
    run()
