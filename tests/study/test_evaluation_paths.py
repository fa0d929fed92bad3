# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""One fixture through every path that prints a pooled fairness figure: they all agree with the glossary.

The fixture holds unknown group codes, a declared but empty group and a group below ``min_group_size``. The paths
are the evaluation core, a debiaser's evaluation, the study (and its report), the selection handler and the audit
CLI; the expected values are computed here with numpy from the glossary's definitions (``docs/metrics.md``):
unknown samples belong to no group but count in the overall balanced accuracy; "rest" pools every known group
other than the reference, small ones included; a group below ``min_group_size`` has NaN rates of its own.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from ignite.engine import Engine

from monai_fair.debias import RandomPerturbation, evaluate_binary
from monai_fair.handlers import FairnessObjectiveMetric
from monai_fair.metrics import FairnessSpec, best_balanced_accuracy_threshold
from monai_fair.study import DebiasingStudy, write_debiasing_report

ROOT = Path(__file__).resolve().parents[2]
NAMES = {0: "F", 1: "M", 2: "O", 3: "X"}  # X is declared and has no sample
KEYS = ("balanced_accuracy", "spd", "eod", "aod", "objective")


def make_fixture(seed: int = 0):
    rng = np.random.default_rng(seed)
    groups = np.array([0] * 30 + [1] * 30 + [2] * 4 + [-1] * 6)
    labels = (rng.random(groups.size) < np.where(groups == 1, 0.5, 0.35)).astype(np.int64)
    labels[:4], labels[30:34] = 1, 1  # both classes in every sizeable group
    logits = 1.5 * (2 * labels - 1) + rng.normal(size=groups.size) + 0.4 * (groups == 1)
    # exactly representable scores (multiples of 1/256) keep float32 and float64 paths identical
    scores = np.clip(np.round(1.0 / (1.0 + np.exp(-logits)) * 256) / 256, 1 / 256, 255 / 256)
    return scores, labels, groups


def glossary(scores, labels, groups, threshold, reference=1, epsilon=0.05):
    """Pooled figures of ``score > threshold`` as the glossary defines them (independent numpy)."""
    h = scores > threshold
    tpr_all, tnr_all = h[labels == 1].mean(), 1 - h[labels == 0].mean()
    ref, rest = groups == reference, (groups >= 0) & (groups != reference)

    def rate(mask):
        return h[mask].mean() if mask.any() else math.nan

    spd = rate(rest) - rate(ref)
    eod = rate(rest & (labels == 1)) - rate(ref & (labels == 1))
    fpr = rate(rest & (labels == 0)) - rate(ref & (labels == 0))
    ba = 0.5 * (tpr_all + tnr_all)
    return {
        "balanced_accuracy": ba,
        "spd": spd,
        "eod": eod,
        "aod": 0.5 * (eod + fpr),
        "objective": ba * (abs(eod) < epsilon),
    }


class IdentityScore(torch.nn.Module):
    """A "classifier" whose output is its input score (so every path sees the same probabilities)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def batches(scores, labels, groups, size: int = 16):
    out = []
    for i in range(0, scores.size, size):
        sl = slice(i, i + size)
        out.append(
            {
                "image": torch.as_tensor(scores[sl], dtype=torch.float32).reshape(-1, 1),
                "label": torch.as_tensor(labels[sl], dtype=torch.float32).reshape(-1, 1),
                "sex": torch.as_tensor(groups[sl]),
            }
        )
    return out


class TestEveryPathAgrees(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.scores, cls.labels, cls.groups = make_fixture()
        cls.spec = FairnessSpec("sex", reference="M", group_names=NAMES, metric="eod", epsilon=0.05, min_group_size=5)
        s = torch.as_tensor(cls.scores)
        # the study and the debiasers choose the BA-optimal threshold over the observed scores by default
        cls.threshold = float(best_balanced_accuracy_threshold(s, torch.as_tensor(cls.labels))[0])
        cls.expected = glossary(cls.scores, cls.labels, cls.groups, cls.threshold)

    def assert_figures(self, got, where: str, keys=KEYS):
        for k in keys:
            with self.subTest(path=where, figure=k):
                self.assertAlmostEqual(float(got[k]), self.expected[k], places=12, msg=f"{where}: {k}")

    def test_fixture_exercises_the_policy(self):
        ev = self.spec.evaluate(
            torch.as_tensor(self.scores), torch.as_tensor(self.labels), torch.as_tensor(self.groups)
        )
        self.assertEqual(float(ev.n_unknown[0]), 6.0)
        self.assertIn("too small", self.spec.evaluate(self.scores, self.labels, self.groups).flags()[2])
        self.assertFalse(math.isnan(self.expected["eod"]))

    def test_core(self):
        ev = self.spec.evaluate(self.scores, self.labels, self.groups, thresholds=self.threshold)
        self.assert_figures(ev.point(), "core")

    def test_debiaser(self):
        ev = evaluate_binary(self.scores, self.labels, self.groups, self.spec, threshold=self.threshold)
        self.assert_figures(ev.as_dict(), "evaluate_binary", ("balanced_accuracy", "objective"))
        self.assertAlmostEqual(ev.bias, self.expected["eod"], places=12)
        # a debiaser whose only candidate is the input model reports the same validation figures
        loader = batches(self.scores, self.labels, self.groups)
        rp = RandomPerturbation(trials=0, spec=self.spec, activation="none", amp=False)
        result = rp.fit(IdentityScore(), loader)
        self.assertAlmostEqual(result.threshold, self.threshold, places=12)
        self.assertAlmostEqual(result.validation.bias, self.expected["eod"], places=12)
        self.assertAlmostEqual(result.validation.balanced_accuracy, self.expected["balanced_accuracy"], places=12)

    def test_study_and_report(self):
        loader = batches(self.scores, self.labels, self.groups)
        with tempfile.TemporaryDirectory() as tmp:
            study = DebiasingStudy(
                IdentityScore(),
                loader,
                loader,
                {},
                spec=self.spec,
                output_dir=tmp,
                activation="none",
                n_bootstrap=0,
                amp=False,
            )
            out = study.run()
            val = next(r for r in out["records"] if r["method"] == "standard" and r["split"] == "val")
            self.assertAlmostEqual(val["threshold"], self.threshold, places=12)
            self.assert_figures(val, "study")
            paths = write_debiasing_report([out], Path(tmp) / "report", metric="eod", epsilon=0.05)
            summary = pd.read_csv(paths["summary_csv"])
            row = summary[(summary["method"] == "standard") & (summary["split"] == "val")].iloc[0]
            for k in KEYS:
                col = f"{k}_mean" if f"{k}_mean" in summary.columns else k
                with self.subTest(path="report", figure=k):
                    self.assertAlmostEqual(float(row[col]), self.expected[k], places=12)

    def test_selection_handler(self):
        metric = FairnessObjectiveMetric(spec=self.spec, n_thresholds=101)
        data = batches(self.scores, self.labels, self.groups)

        def step(engine, batch):
            return {"pred": batch["image"].reshape(-1), "label": batch["label"].reshape(-1)}

        engine = Engine(step)
        metric.attach(engine, "objective")
        engine.run(data, max_epochs=1)
        self.assertAlmostEqual(engine.state.metrics["objective"], self.expected["objective"], places=12)

    def test_audit_cli(self):
        names = np.array([NAMES.get(int(c), "") for c in self.groups], dtype=object)
        frame = pd.DataFrame({"prob": self.scores, "y": self.labels, "sex": names})
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "pred.csv"
            frame.to_csv(csv, index=False)
            cmd = [sys.executable, str(ROOT / "tools" / "audit.py"), str(csv), "--score", "prob", "--label", "y"]
            cmd += ["--group", "sex", "--reference", "M", "--threshold", repr(self.threshold), "--min-group-size", "5"]
            cmd += ["--unknown", "exclude", "--metric", "eod", "--epsilon", "0.05", "--out", tmp, "--no-progress"]
            env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
            run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
            self.assertEqual(run.returncode, 0, run.stderr[-2000:])
            pooled = pd.read_csv(Path(tmp) / "pooled.csv").set_index("metric")["value"]
            self.assert_figures(pooled, "audit")
            table = pd.read_csv(Path(tmp) / "fairness_table.csv")
            tiny = table[(table["group_name"] == "O") & (table["metric"] == "tpr")]["value"]
            self.assertTrue(tiny.isna().all(), "the tiny group's TPR must be NaN (flagged), not a number")


if __name__ == "__main__":
    unittest.main()
