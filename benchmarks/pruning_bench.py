# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Pruning speed: ``PruningDebiaser`` vs its own floor and vs a naive implementation of the same algorithm.

On a 1/8-width VGG-16 at 64 px (CPU-sized) with a few hundred validation images, EOD, dynamic influence:

1. the full ``PruningDebiaser.fit`` run, timed against its *floor*: the passes the algorithm cannot avoid, timed
   separately with the same loader and the same unmasked network: per step one forward+backward (to the
   activations) over the samples that carry proxy weight, plus one forward over all of validation per evaluation;
2. a naive implementation written here the way the reference code works: masks applied by decoding the pruned index
   list per batch, ``retain_grad`` on every layer output and a full parameter backward, per-batch host copies of the
   gradients to float64 NumPy, a full ``argsort`` of all units per step, a Python loop of 101 scikit-learn
   ``balanced_accuracy_score`` calls per evaluation.

Both versions must select the same number of units per step and give trajectories of the same length. The last line
prints the headline ratios.

Usage: ``python benchmarks/pruning_bench.py [--quick] [--n-val 384] [--steps 10] [--step-size 50] [--threads 1]``
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monai_fair.debias import PruningDebiaser, collect_outputs, count_prunable_units  # noqa: E402
from monai_fair.debias.influence import FullSetProxyWeights  # noqa: E402
from monai_fair.metrics import FairnessSpec  # noqa: E402

VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class SmallVGG(nn.Module):
    """VGG-16 layout at ``1/width_div`` width: 13 convolutions with in-place ReLUs, 5 max-pools, a small head."""

    def __init__(self, width_div: int = 8, in_channels: int = 1):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, v // width_div, 3, padding=1), nn.ReLU(inplace=True)]
                c = v // width_div
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * c, 64),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(64, 1),
        )

        for m in self.modules():  # VGG's usual initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def make_data(n: int, size: int, seed: int, label_noise: float = 0.2) -> dict[str, torch.Tensor]:
    """Greyscale images: a bright disc for positives, a corner marker for the privileged group (planted shortcut).

    A fraction ``label_noise`` of the labels is flipped, so the task is not separable.
    """
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g).float()
    a = torch.randint(0, 2, (n,), generator=g)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disc = (((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (size / 5) ** 2).float()
    img = torch.randn(n, 1, size, size, generator=g) + 1.0 * y.view(-1, 1, 1, 1) * disc
    img[:, :, : size // 4, : size // 4] += 2.0 * a.view(-1, 1, 1, 1).float()
    flip = torch.rand(n, generator=g) < label_noise
    return {"image": img, "label": torch.where(flip, 1.0 - y, y), "sex": a}


def make_loader(data: dict, batch_size: int) -> list[dict]:
    n = len(data["label"])
    return [{k: v[i : i + batch_size] for k, v in data.items()} for i in range(0, n, batch_size)]


def train_briefly(model: nn.Module, data: dict, steps: int, seed: int = 0) -> nn.Module:
    """A few Adam steps on shortcut labels (privileged negatives partly labelled positive), so the model is biased."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    target = data["label"].clone()
    target[(data["sex"] == 1) & (torch.rand(len(target), generator=g) < 0.4)] = 1.0
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for s in range(steps):
        idx = torch.randint(0, len(target), (32,), generator=g)
        opt.zero_grad()
        nn.functional.binary_cross_entropy_with_logits(model(data["image"][idx])[:, 0], target[idx]).backward()
        opt.step()
    return model.eval()


# ------------------------------------------------------------------------------------------------------------------
# floor: the passes the algorithm needs, on the plain network
class Timer:
    """Wall-clock and process CPU time of a block (CPU time is robust to other processes on a shared machine)."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def time_floor(model: nn.Module, loader: list[dict], weights: FullSetProxyWeights) -> tuple[Timer, Timer]:
    model.eval()
    with Timer() as t_fb:
        _floor_backward(model, loader, weights)
    with Timer() as t_f, torch.no_grad():
        for batch in loader:
            torch.sigmoid(model(batch["image"])[:, 0])
    return t_fb, t_f


def _floor_backward(model: nn.Module, loader: list[dict], weights: FullSetProxyWeights) -> None:
    for batch in loader:
        w = weights(batch["label"], batch["sex"])
        keep = w != 0
        if not bool(keep.any()):
            continue
        x = batch["image"][keep].detach().requires_grad_(True)
        out = model(x)
        torch.autograd.grad(torch.sum(w[keep] * torch.sigmoid(out[:, 0])), x)


# ------------------------------------------------------------------------------------------------------------------
# naive implementation of the same algorithm (reference-code style)
def naive_evaluate(probs: np.ndarray, labels: np.ndarray, groups: np.ndarray, privileged: int = 1):
    best_t, best_ba = 0.0, -1.0
    for t in np.linspace(0, 1, 101):
        ba = balanced_accuracy_score(labels, probs > t)
        if ba > best_ba:
            best_t, best_ba = t, ba
    pred = probs > best_t
    pos = labels > 0.5
    tpr_u = pred[pos & (groups != privileged)].mean()
    tpr_p = pred[pos & (groups == privileged)].mean()
    return best_t, best_ba, tpr_u - tpr_p


def naive_prune(model: nn.Module, loader: list[dict], step_size: int, max_steps: int, privileged: int = 1):
    model = copy.deepcopy(model).eval()
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False  # retain_grad semantics with in-place ops depend on the PyTorch version
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    shapes = {}

    def record(module, inputs, out):
        shapes[module] = tuple(out.shape[1:])

    hooks = [c.register_forward_hook(record) for c in convs]
    with torch.no_grad():
        model(loader[0]["image"][:1])
    for h in hooks:
        h.remove()
    sizes = [int(np.prod(shapes[c])) for c in convs]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    pruned: list[int] = []
    captured: list[torch.Tensor] = []

    def make_hook(li: int):
        def hook(module, inputs, out):
            arr = np.asarray(pruned, dtype=np.int64)
            local = arr[(arr >= offsets[li]) & (arr < offsets[li + 1])] - offsets[li]
            if local.size:
                out = out.clone()
                c, rest = np.divmod(local, shapes[module][1] * shapes[module][2])
                h, w = np.divmod(rest, shapes[module][2])
                out[:, torch.from_numpy(c), torch.from_numpy(h), torch.from_numpy(w)] = 0
            if torch.is_grad_enabled():
                out.retain_grad()
                captured.append(out)
            return out

        return hook

    for li, c in enumerate(convs):
        c.register_forward_hook(make_hook(li))

    def evaluate():
        ps, ys, gs = [], [], []
        with torch.no_grad():
            for batch in loader:
                ps.append(torch.sigmoid(model(batch["image"])[:, 0]).numpy())
                ys.append(batch["label"].numpy())
                gs.append(batch["sex"].numpy())
        return naive_evaluate(np.concatenate(ps), np.concatenate(ys), np.concatenate(gs), privileged)

    labels = torch.cat([b["label"] for b in loader])
    groups = torch.cat([b["sex"] for b in loader])
    weights = FullSetProxyWeights(labels, groups, privileged, "eod")
    t, ba, bias = evaluate()
    traj = [(0, ba, bias)]
    direction = 1.0 if bias >= 0 else -1.0
    steps_sel = []
    for step in range(1, max_steps + 1):
        influence = np.zeros(offsets[-1], dtype=np.float64)
        for batch in loader:
            captured.clear()
            model.zero_grad()
            out = model(batch["image"])
            loss = torch.sum(weights(batch["label"], batch["sex"]) * torch.sigmoid(out[:, 0]))
            loss.backward()
            for li, h in enumerate(captured):
                influence[offsets[li] : offsets[li + 1]] += h.grad.cpu().numpy().astype(np.float64).sum(0).ravel()
        order = np.argsort(-direction * influence, kind="stable")
        done = set(pruned)
        chosen = []
        for j in order:
            if len(chosen) == step_size or direction * influence[j] <= 0:
                break
            if int(j) not in done:
                chosen.append(int(j))
        if not chosen:
            break
        pruned.extend(chosen)
        steps_sel.append(chosen)
        t, ba, bias = evaluate()
        traj.append((step, ba, bias))
    return traj, steps_sel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small data, 2 steps")
    parser.add_argument("--n-val", type=int, default=384)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--step-size", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-steps", type=int, default=80)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.n_val, args.steps, args.train_steps, args.size = 64, 2, 5, 32
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    model = train_briefly(SmallVGG(8), make_data(256, args.size, seed=1, label_noise=0.0), args.train_steps)
    val = make_data(args.n_val, args.size, seed=2)
    loader = make_loader(val, args.batch_size)
    n_units = count_prunable_units(model, val["image"][:1])
    print(
        f"1/8-width VGG-16 at {args.size}px: {n_units} prunable units; {args.n_val} validation images, "
        f"batch {args.batch_size}, {args.steps} dynamic steps of {args.step_size} units, EOD, "
        f"{torch.get_num_threads()} CPU thread(s)"
    )

    with torch.no_grad():
        model(loader[0]["image"])  # warm-up
    spec = FairnessSpec("sex", reference=1, metric="eod")
    _, labels, groups = collect_outputs(model, loader, spec)
    weights = FullSetProxyWeights(labels, groups, 1, "eod")
    pruner = PruningDebiaser(step_size=args.step_size, max_steps=args.steps, rho=0.0, stop_early=False, spec=spec)
    # the fast run and the floor are timed twice, interleaved, keeping the faster (the CPU is shared)
    floors = [time_floor(model, loader, weights)]
    with Timer() as t_fast1:
        result = pruner.fit(model, loader)
    with Timer() as t_naive:
        naive_traj, naive_sel = naive_prune(model, loader, args.step_size, args.steps)
    floors.append(time_floor(model, loader, weights))
    with Timer() as t_fast2:
        fast_sel = _fast_selections(pruner, model, loader)
    t_fast = t_fast1 if t_fast1.cpu <= t_fast2.cpu else t_fast2

    n_steps = len(result.trajectory) - 1
    floor = {
        k: n_steps * min(getattr(f[0], k) for f in floors) + (n_steps + 1) * min(getattr(f[1], k) for f in floors)
        for k in ("wall", "cpu")
    }
    t_fb = min(f[0].cpu for f in floors)
    t_f = min(f[1].cpu for f in floors)
    fast_counts = [int(v) for v in result.trajectory.extra["n_pruned"]]
    naive_counts = [0] + [int(c) for c in np.cumsum([len(s) for s in naive_sel])]
    same_shape = len(naive_traj) == len(result.trajectory) and fast_counts == naive_counts
    overlap = [len(set(n) & set(f)) / max(len(n), 1) for n, f in zip(naive_sel, fast_sel)]
    diffs = [abs(a - b[2]) for a, b in zip(result.trajectory.bias, naive_traj)]
    print(
        f"fast run  : {t_fast.cpu:8.2f} s CPU ({t_fast.wall:7.2f} s wall)  trajectory {len(result.trajectory)}, "
        f"pruned {fast_counts}"
    )
    print(
        f"floor     : {floor['cpu']:8.2f} s CPU ({floor['wall']:7.2f} s wall)  = {n_steps} x fwd+bwd {t_fb:.3f} s "
        f"+ {n_steps + 1} x fwd {t_f:.3f} s (CPU)"
    )
    print(
        f"naive run : {t_naive.cpu:8.2f} s CPU ({t_naive.wall:7.2f} s wall)  trajectory {len(naive_traj)}, "
        f"pruned {naive_counts}"
    )
    print(f"same number of units per step and trajectory length: {same_shape}")
    print(f"per-step overlap of the selected units (fast vs naive): min {min(overlap, default=1.0):.3f}")
    print(f"max |bias(fast) - bias(naive)| over the trajectory: {max(diffs):.4f}")
    print(
        f"bias {result.trajectory.bias[0]:+.4f} -> {result.trajectory.bias[-1]:+.4f} (last step), "
        f"BA {result.trajectory.balanced_accuracy[0]:.4f} -> {result.trajectory.balanced_accuracy[-1]:.4f}"
    )
    if not same_shape:
        print("WARNING: the two implementations diverged (different unit counts or trajectory lengths).")
    print(
        f"wall-clock ratios: fast/floor = {t_fast.wall / floor['wall']:.2f}, naive/fast = "
        f"{t_naive.wall / t_fast.wall:.2f}x"
    )
    print(
        f"HEADLINE (CPU time) fast/floor = {t_fast.cpu / floor['cpu']:.2f} (goal <= 1.3); naive/fast speed-up = "
        f"{t_naive.cpu / t_fast.cpu:.2f}x"
    )


def _fast_selections(pruner: PruningDebiaser, model: nn.Module, loader: list[dict]) -> list[list[int]]:
    """Run the fast pruner again, recording the units chosen at each step."""
    chosen: list[list[int]] = []
    original = pruner.select_units

    def record(run, step):
        idx = original(run, step)
        chosen.append(idx.tolist())
        return idx

    pruner.select_units = record
    try:
        pruner.fit(model, loader)
    finally:
        del pruner.select_units
    return chosen


if __name__ == "__main__":
    main()
