# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Slow check that the MIMIC-CXR demo's planted bias shows up in a model other than the bundle's: a tiny CNN trained
with the Marcinkevics protocol (train 3 : 1 M : F, the bundle's demo-scale 25/20/55 split) learns the disease
(BA >= 0.75) but under-diagnoses women at the balanced-accuracy-optimal validation threshold: EOD = TPR_F - TPR_M is
negative beyond sampling noise (below -2.58 binomial standard errors, and below -0.05). Run with ``pytest -m slow``."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_fair.data.demo.mimic_cxr import make_mimic_cxr_demo
from monai_fair.data.sampling import marcinkevics_study_data


def _load(items: list[dict], size: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = np.stack(
        [np.asarray(Image.open(d["image"]).resize((size, size), Image.BILINEAR), np.float32) / 255 for d in items]
    )
    return (
        torch.tensor(x)[:, None],
        torch.tensor([float(d["label"]) for d in items]),
        torch.tensor([d["sex"] for d in items]),
    )


def _ba_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """Independent numpy oracle of the studies' rule: first maximum of BA over linspace(0, 1, 101)."""
    grid = np.linspace(0, 1, 101)
    ba = [0.5 * ((scores[labels == 1] > t).mean() + (scores[labels == 0] <= t).mean()) for t in grid]
    return float(grid[int(np.argmax(ba))])


@pytest.mark.slow
class TestPlantedBias(unittest.TestCase):
    def test_standard_training_is_unfair_but_accurate(self):
        torch.manual_seed(0)
        with tempfile.TemporaryDirectory() as tmp:
            root = make_mimic_cxr_demo(Path(tmp) / "mimic", seed=0)
            data, _ = marcinkevics_study_data(dataset_dir=root, seed=42, fractions=(0.25, 0.2, 0.55))
            (xt, yt, _), (xv, yv, _), (xe, ye, ge) = (_load(data[k]) for k in ("train", "val", "test"))
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(16, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Dropout(0.3),
            torch.nn.Linear(32 * 8 * 8, 1),
        )
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        for _ in range(10):
            net.train()
            perm = torch.randperm(len(xt))
            for i in range(0, len(xt), 32):
                b = perm[i : i + 32]
                loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xt[b]).squeeze(1), yt[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
        net.eval()
        with torch.no_grad():
            sv = torch.sigmoid(net(xv).squeeze(1)).numpy()
            se = torch.sigmoid(net(xe).squeeze(1)).numpy()
        t = _ba_threshold(sv, yv.numpy())
        pred, y, g = se > t, ye.numpy() == 1, ge.numpy()
        ba = 0.5 * (pred[y].mean() + (~pred[~y]).mean())
        tpr_f, tpr_m = pred[y & (g == 0)].mean(), pred[y & (g == 1)].mean()
        se = np.sqrt(tpr_f * (1 - tpr_f) / (y & (g == 0)).sum() + tpr_m * (1 - tpr_m) / (y & (g == 1)).sum())
        eod = tpr_f - tpr_m
        self.assertGreaterEqual(ba, 0.75)
        self.assertLess(eod, -0.05)
        self.assertLess(eod, -2.58 * se, f"EOD {eod:+.3f} is within sampling noise (se {se:.3f})")


if __name__ == "__main__":
    unittest.main()
