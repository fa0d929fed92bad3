# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import json
import math
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch.utils.data import DataLoader

from monai_fair.metrics import FairnessSpec, best_f1_threshold
from monai_fair.study import BundleConfigError, CrossGroupEvaluation, CrossGroupLoop, check_cross_group_settings
from monai_fair.study.cross_group import probe_group

LABELS = ["No Finding", "A", "B"]
NAMES = {"race": {0: "White", 1: "Black", 2: "Asian"}, "sex": {0: "M", 1: "F"}}


class _Toy(torch.nn.Module):
    """Scores from the first 4 pixels; ``fc`` is the last linear layer (its input: the 'penultimate' features)."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, len(LABELS))
        with torch.no_grad():  # a "trained" model: output k reads pixel k, where label k is drawn
            self.fc.weight.copy_(torch.eye(len(LABELS), 4))
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(x.flatten(1)[:, :4])


def _data(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        race = int(rng.choice(3, p=[0.5, 0.25, 0.25]))
        y = (rng.random(len(LABELS)) < 0.4).astype(np.float32)
        image = rng.normal(size=(1, 2, 4)).astype(np.float32)
        image[0, 0, :3] += 1.5 * y[:3] * (1.0 if race == 0 else 0.3)  # weaker signal outside White
        image[0, 0, 3] += race  # the group is in the features
        if i % 17 == 0:
            y[2] = np.nan  # an ignored label
        out.append(
            {"image": image, "label": y, "race": race, "sex": int(rng.integers(0, 2)), "patient_hash": f"p{i // 2}"}
        )
    return out


def _spec(min_group_size: int = 5) -> FairnessSpec:
    return FairnessSpec(attributes="race", reference="White", group_names=NAMES["race"], min_group_size=min_group_size)


def _loader(data):
    return DataLoader(data, batch_size=16, shuffle=False)


class TestCrossGroupEvaluation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.test, cls.val = _data(300, 0), _data(120, 1)
        cls.model = _Toy()
        cls.result = CrossGroupEvaluation(
            cls.model,
            _loader(cls.test),
            _loader(cls.val),
            LABELS,
            _spec(),
            NAMES,
            "single",
            3,
            n_bootstrap=50,
            intersect_with=["sex"],
        ).run()
        cls.rec = cls.result["records"][0]
        with torch.no_grad():
            x = torch.as_tensor(np.stack([d["image"] for d in cls.test]))
            cls.prob = torch.sigmoid(cls.model(x)).numpy()
        cls.y = np.stack([d["label"] for d in cls.test])
        cls.race = np.array([d["race"] for d in cls.test])

    def test_every_group_every_label(self):
        for label in LABELS:
            for group in ("White", "Black", "Asian"):
                self.assertIn(f"auc:{label}:{group}", self.rec)
                self.assertFalse(math.isnan(self.rec[f"auc:{label}:{group}"]))
        for group in ("White", "Black", "Asian"):
            self.assertEqual(
                self.rec[f"n_test:{group}"], float((self.race == ["White", "Black", "Asian"].index(group)).sum())
            )

    def test_auc_matches_sklearn(self):
        for k, label in enumerate(LABELS):
            m = ~np.isnan(self.y[:, k])
            for code, group in enumerate(("White", "Black", "Asian")):
                sel = m & (self.race == code)
                self.assertAlmostEqual(
                    self.rec[f"auc:{label}:{group}"], roc_auc_score(self.y[sel, k], self.prob[sel, k])
                )
            same = roc_auc_score(self.y[m & (self.race == 0), k], self.prob[m & (self.race == 0), k])
            other = roc_auc_score(self.y[m & (self.race != 0), k], self.prob[m & (self.race != 0), k])
            self.assertAlmostEqual(self.rec[f"auc_same:{label}"], same)
            self.assertAlmostEqual(self.rec[f"auc_other:{label}"], other)
            self.assertAlmostEqual(self.rec[f"auc_drop:{label}"], same - other)
        mean_drop = np.mean([self.rec[f"auc_drop:{label}"] for label in LABELS])
        self.assertAlmostEqual(self.rec["auc_drop"], mean_drop)
        self.assertLessEqual(self.rec["auc_drop_ci_low"], self.rec["auc_drop"])
        self.assertGreaterEqual(self.rec["auc_drop_ci_high"], self.rec["auc_drop"])

    def test_underdiagnosis_matches_hand_count(self):
        with torch.no_grad():
            xv = torch.as_tensor(np.stack([d["image"] for d in self.val]))
            pv = torch.sigmoid(self.model(xv))[:, 0].double()
        yv = torch.as_tensor(np.stack([d["label"] for d in self.val])[:, 0]).double()
        thr = best_f1_threshold(pv, yv)[0]
        self.assertAlmostEqual(self.rec["nf_threshold"], thr)
        sex = np.array([d["sex"] for d in self.test])
        for code, group in enumerate(("White", "Black", "Asian")):
            with_finding = (self.y[:, 0] == 0) & (self.race == code)
            expected = float(np.mean(self.prob[with_finding, 0] > thr))
            self.assertAlmostEqual(self.rec[f"underdiagnosis:{group}"], expected, places=6)
            self.assertEqual(self.rec[f"n_finding:{group}"], float(with_finding.sum()))
            for s, sname in enumerate(("M", "F")):
                sel = with_finding & (sex == s)
                key = f"underdiagnosis:{group} × {sname}"
                if sel.sum() >= 5:
                    self.assertAlmostEqual(self.rec[key], float(np.mean(self.prob[sel, 0] > thr)), places=6)

    def test_probe_and_chance_flag(self):
        self.assertGreater(self.rec["probe_auc"], 0.8)  # the group is feature 3
        self.assertEqual(self.rec["better_than_chance"], 1.0)
        self.assertEqual(self.result["train_group"], "White")

    def test_one_label_without_no_finding(self):
        data = [{**d, "label": d["label"][1:2]} for d in self.test]
        model = _Toy()
        model.fc = torch.nn.Linear(4, 1)
        rec = CrossGroupEvaluation(
            model,
            _loader(data),
            _loader([{**d, "label": d["label"][1:2]} for d in self.val]),
            ["A"],
            _spec(),
            NAMES,
            "m",
            0,
            no_finding=None,
            n_bootstrap=0,
            intersect_with=[],
        ).run()["records"][0]
        with torch.no_grad():
            p = torch.sigmoid(model(torch.as_tensor(np.stack([d["image"] for d in data]))))[:, 0].numpy()
        y = np.stack([d["label"] for d in data])[:, 0]
        missed = (y == 1) & (self.race == 1)  # "no finding" = label 0: its false rate is the label's misses
        self.assertAlmostEqual(
            rec["underdiagnosis:Black"], float(np.mean(1 - p[missed] > rec["nf_threshold"])), places=6
        )

    def test_no_finding_must_be_a_label(self):
        with self.assertRaisesRegex(ValueError, "no_finding"):
            CrossGroupEvaluation(self.model, None, None, ["A"], _spec(), NAMES, "m", 0)
        with self.assertRaisesRegex(ValueError, "reference"):
            spec = FairnessSpec(attributes=["race", "sex"], reference=[0, 0])
            CrossGroupEvaluation(self.model, None, None, LABELS, spec, NAMES, "m", 0)


class TestProbe(unittest.TestCase):
    def test_separable_vs_random(self):
        rng = np.random.default_rng(0)
        target = rng.integers(0, 2, 400)
        patients = [f"p{i // 2}" for i in range(400)]
        sep = rng.normal(size=(400, 5)) + 3.0 * target[:, None]
        out = probe_group(sep, target, patients, n_bootstrap=100)
        self.assertGreater(out["probe_auc"], 0.95)
        self.assertLessEqual(out["probe_auc_ci_low"], out["probe_auc"])
        noise = probe_group(rng.normal(size=(400, 5)), target, patients, n_bootstrap=100)
        self.assertLess(noise["probe_auc_ci_low"], 0.5 + 0.1)
        self.assertLess(abs(noise["probe_auc"] - 0.5), 0.15)


class TestSettingsCheck(unittest.TestCase):
    MODELS = {"single": {"train_set": "single", "mitigation": "none"}, "mixed": {"train_set": "mixed"}}

    def test_good(self):
        check_cross_group_settings(self.MODELS, ["single", "mixed"], "mixed", LABELS, "No Finding")

    def test_bad(self):
        cases = [
            (({**self.MODELS, "x": {"train_set": "both"}}, ["single"], None, LABELS, None), "models#x#train_set"),
            (({"m": {"train_set": "mixed", "mitigation": "oversample"}}, ["m"], None, LABELS, None), "mitigation"),
            ((self.MODELS, ["single", "mixd"], None, LABELS, None), "--run_models.*mixd"),
            ((self.MODELS, [], None, LABELS, None), "--run_models"),
            ((self.MODELS, ["single"], "other", LABELS, None), "--published_model"),
            ((self.MODELS, ["single"], None, LABELS, "Healthy"), "--no_finding"),
            ((self.MODELS, ["single"], None, [], None), "--labels"),
        ]
        for args, pattern in cases:
            with self.subTest(pattern=pattern), self.assertRaisesRegex(BundleConfigError, pattern):
                check_cross_group_settings(*args)
        with self.assertRaisesRegex(BundleConfigError, "--uncertain"):
            check_cross_group_settings(self.MODELS, ["single"], None, LABELS, None, uncertain="maybe")
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp, "m.csv")
            csv.write_text("image,melanoma,sex\n")
            with self.assertRaisesRegex(BundleConfigError, "not in the manifest"):
                check_cross_group_settings(self.MODELS, ["single"], None, ["nevus"], None, manifest_file=csv)


class TestCrossGroupLoop(unittest.TestCase):
    def test_every_model_every_seed_from_a_fresh_config(self):
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp, "c.json")
            config.write_text(
                json.dumps({"seed": 0, "model_name": "x", "extra": 1, "seed_result": "$[@seed, @model_name, @extra]"})
            )
            loop = CrossGroupLoop([3, 4], ["single", "mixed"], config_file=str(config), overrides={"extra": 7})
            self.assertEqual(loop.run(), [[3, "single", 7], [3, "mixed", 7], [4, "single", 7], [4, "mixed", 7]])
            with self.assertRaisesRegex(ValueError, "models"):
                CrossGroupLoop([3], [], config_file=str(config))
            with self.assertRaisesRegex(ValueError, "seeds"):
                CrossGroupLoop(["a"], ["x"], config_file=str(config))


if __name__ == "__main__":
    unittest.main()
