# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import json
import math
import tempfile
import unittest
from dataclasses import dataclass, field
from pathlib import Path

import torch

from monai_fair.study import load_debiased, load_seed_results, save_debiased, save_seed_results


class GroupThresholds:
    """A post-processor with one threshold per group (saved and rebuilt by class path)."""

    def __init__(self, thresholds: dict[int, float]):
        self.thresholds = dict(thresholds)

    def predict(self, probs: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        t = torch.tensor([self.thresholds[int(g)] for g in groups])
        return (probs > t).long()

    def state_dict(self) -> dict:
        return {"codes": torch.tensor(list(self.thresholds)), "values": torch.tensor(list(self.thresholds.values()))}

    @classmethod
    def from_state_dict(cls, state: dict) -> GroupThresholds:
        return cls(dict(zip(state["codes"].tolist(), state["values"].tolist())))


@dataclass
class Result:
    model: torch.nn.Module | None
    postprocessor: object | None
    threshold: float
    state: dict = field(default_factory=dict)


class TestArtefacts(unittest.TestCase):
    def test_model_round_trip(self):
        torch.manual_seed(0)
        net = torch.nn.Linear(3, 1)
        with tempfile.TemporaryDirectory() as d:
            info = save_debiased(d, "bias_gda", Result(net, None, 0.37, {"step": torch.tensor(4)}))
            self.assertEqual(info, {"method": "bias_gda", "threshold": 0.37, "kind": "model"})
            fresh = torch.nn.Linear(3, 1)
            loaded, thr = load_debiased(fresh, d, "bias_gda")
            state = torch.load(Path(d) / "bias_gda_state.pt", weights_only=True)
        self.assertIs(loaded, fresh)
        self.assertEqual(thr, 0.37)
        self.assertTrue(torch.equal(loaded.weight, net.weight) and torch.equal(loaded.bias, net.bias))
        self.assertEqual(int(state["step"]), 4)

    def test_postprocessor_round_trip(self):
        pp = GroupThresholds({0: 0.3, 1: 0.6})
        probs, groups = torch.tensor([0.2, 0.4, 0.5, 0.7]), torch.tensor([0, 0, 1, 1])
        with tempfile.TemporaryDirectory() as d:
            save_debiased(d, "reject_option", Result(None, pp, 0.5))
            loaded, thr = load_debiased(torch.nn.Linear(1, 1), d, "reject_option")
            info = json.loads((Path(d) / "reject_option.json").read_text())
        self.assertEqual(info["postprocessor_class"], f"{__name__}:GroupThresholds")
        self.assertIsInstance(loaded, GroupThresholds)
        self.assertEqual(loaded.predict(probs, groups).tolist(), [0, 1, 0, 1])
        self.assertEqual(thr, 0.5)

    def test_missing(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(FileNotFoundError, "pruning"):
                load_debiased(torch.nn.Linear(1, 1), d, "pruning")
            with self.assertRaises(FileNotFoundError):
                load_seed_results(d)

    def test_seed_results_round_trip(self):
        out = {"seed": 7, "records": [{"method": "standard", "eod": float("nan"), "balanced_accuracy": 0.75}]}
        with tempfile.TemporaryDirectory() as d:
            path = save_seed_results(Path(d) / "seed_7", out)
            back = load_seed_results(path.parent)
        self.assertEqual(back["seed"], 7)
        self.assertEqual(back["records"][0]["balanced_accuracy"], 0.75)
        self.assertTrue(math.isnan(back["records"][0]["eod"]))


if __name__ == "__main__":
    unittest.main()
