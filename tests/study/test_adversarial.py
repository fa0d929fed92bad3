# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The adversarial study's data (ISIC layout, generic manifest, ITA at ingestion), critic batches, paper tables and
settings checks."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from monai_fair import FairnessSpec
from monai_fair.data.demo.isic import make_isic_demo
from monai_fair.study import BundleConfigError
from monai_fair.study.adversarial import (
    ADVERSARIAL_STUDY_VARIANTS,
    AdversarialStudyReport,
    critic_batches,
    isic_adversarial_study_data,
    validate_adversarial_config,
)


class TestStudyData(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.root = make_isic_demo(Path(cls.tmp.name) / "demo", seed=4, n_lesions=40, size=64)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_isic_layout_with_ita_groups(self):
        data, maps = isic_adversarial_study_data(dataset_dir=self.root, seed=0, fractions=(0.6, 0.2, 0.2))
        self.assertEqual(maps["ita_group"], {0: "light", 1: "dark"})
        n = sum(len(v) for v in data.values())
        self.assertEqual(n, len(pd.read_csv(self.root / "ita_truth.csv")))
        for split in data.values():
            self.assertEqual([d["index"] for d in split], list(range(len(split))))
            self.assertTrue(all(d["ita_group"] in (-1, 0, 1) and d["label"] in (0.0, 1.0) for d in split))
        self.assertTrue((self.root / ".monai_fair_ita").is_dir())  # the ITA cache sits next to the data
        again, _ = isic_adversarial_study_data(dataset_dir=self.root, seed=0, fractions=(0.6, 0.2, 0.2))
        self.assertEqual([d["image"] for d in again["test"]], [d["image"] for d in data["test"]])
        other, _ = isic_adversarial_study_data(dataset_dir=self.root, seed=1, fractions=(0.6, 0.2, 0.2))
        self.assertNotEqual({d["image"] for d in other["test"]}, {d["image"] for d in data["test"]})

    def test_generic_manifest_by_sex_and_by_ita(self):
        truth = pd.read_csv(self.root / "ita_truth.csv")
        meta = pd.read_csv(self.root / "HAM10000_metadata.csv").set_index("image_id")
        manifest = Path(self.tmp.name) / "manifest.csv"
        pd.DataFrame(
            {
                "image": [str(self.root / p) for p in truth["image"]],
                "melanoma": truth["malignant_recorded"],
                "sex": meta.loc[truth["image_id"], "sex"].to_numpy(),
            }
        ).to_csv(manifest, index=False)
        data, maps = isic_adversarial_study_data(manifest=manifest, label_column="melanoma", attribute="sex")
        self.assertIn("sex", maps)
        self.assertTrue(all("sex" in d for d in data["train"]))
        data, maps = isic_adversarial_study_data(manifest=manifest, label_column="melanoma", attribute="ita_group")
        self.assertTrue(all(d["ita_group"] in (-1, 0, 1) for d in data["train"]))
        with self.assertRaisesRegex(ValueError, "attribute"):
            isic_adversarial_study_data(manifest=manifest, label_column="melanoma", attribute="race")
        with self.assertRaisesRegex(ValueError, "exactly one"):
            isic_adversarial_study_data(dataset_dir=self.root, manifest=manifest)


class TestCriticBatches(unittest.TestCase):
    def test_every_batch_holds_both_groups(self):
        groups = torch.tensor([0] * 40 + [1] * 20)
        batches = critic_batches(groups, batch_size=12, n_batches=30, seed=1)
        self.assertEqual(len(batches), 30)
        for b in batches:
            self.assertEqual(len(b), 12)
            self.assertEqual(int(groups[b].sum()), 4)  # a third of each batch, as in the data


def _run(seed: int, spd: dict[str, float], corr: float) -> dict:
    recs = []
    for m, s in spd.items():
        rec = {
            "seed": seed,
            "method": m,
            "split": "test",
            "balanced_accuracy": 0.8,
            "spd": s,
            "eod": 0.1,
            "aod": 0.0,
            "bias": s,
            "objective": 0.0,
            "threshold": 0.5,
            "better_than_chance": 1.0,
            "precision_light": 0.9,
            "recall_light": 0.8,
            "f1_light": 0.85 + seed / 100,
            "precision_dark": 0.7,
            "recall_dark": 0.6,
            "f1_dark": 0.65,
        }
        if m != "vanilla":
            rec["critic_corr"] = corr
        recs.append(rec)
    return {
        "seed": seed,
        "records": recs,
        "trajectories": {},
        "rho": {},
        "critic": {"ours_w_orth": {"predicted": [0.1, 0.2, 0.3], "true": [0.0, 0.1, 0.3]}},
    }


class TestAdversarialStudyReport(unittest.TestCase):
    def test_paper_tables_and_report(self):
        runs = [
            _run(0, {"vanilla": -0.2, "ours_w_orth": 0.05}, 0.4),
            _run(1, {"vanilla": -0.1, "ours_w_orth": -0.03}, 0.2),
        ]
        spec = FairnessSpec(attributes="ita_group", reference=0, group_names={0: "light", 1: "dark"}, metric="spd")
        with tempfile.TemporaryDirectory() as tmp:
            report = AdversarialStudyReport(tmp, spec, demo=True)
            t1, t2 = report.tables(runs)
            row = t1[(t1["group"] == "light") & (t1["metric"] == "f1")].iloc[0]
            self.assertEqual(row["vanilla"], f"0.855 ({np.std([0.85, 0.86], ddof=1):.3f})")
            van = t2[t2["method"] == "vanilla"].iloc[0]
            self.assertEqual(van["SPD"], f"0.150 ({np.std([0.2, 0.1], ddof=1):.3f})")  # magnitudes
            self.assertEqual(van["Corr"], "n/a")
            self.assertEqual(
                t2[t2["method"] == "ours_w_orth"].iloc[0]["Corr"], f"0.300 ({np.std([0.4, 0.2], ddof=1):.3f})"
            )
            paths = report.write(runs)
            html = Path(paths["report_html"]).read_text()
            self.assertIn("Table 2", html)
            self.assertIn("DEMO DATA", (Path(tmp) / "table2_fairness.md").read_text())
            self.assertTrue(Path(paths["critic_scatter"]).is_file())


class TestValidation(unittest.TestCase):
    def test_bad_settings_name_the_override(self):
        v = ADVERSARIAL_STUDY_VARIANTS
        validate_adversarial_config(v, None, "ita_group", {"lr": 1e-3, "orthogonality_weight": 0.0})
        for args, flag in (
            ((v, ["ours"], "sex", {}), "--run_variants"),
            ((v, None, "skin", {}), "--attribute"),
            ((v, None, "sex", {"orthogonality_weight": -1}), "--orthogonality_weight"),
            ((v, None, "sex", {"bias_lr": 0}), "--bias_lr"),
            ((v, None, "sex", {"orth_form": "cos"}), "--orth_form"),
            ((v, None, "sex", {"critic_batch_size": 1}), "--critic_batch_size"),
            ((v, None, "sex", {"task": "dx"}), "--task"),
            ((v, None, "sex", {"critic_readout": "attention"}), "--critic_readout"),
            ((v, None, "sex", {"critic_eval": "random"}), "--critic_eval"),
            ((v, None, "sex", {"critic_steps": -1}), "--critic_steps"),
            ((v, None, "sex", {"critic_lr": 0}), "--critic_lr"),
            ((v, None, "sex", {"critic_aux_weight": -0.5}), "--critic_aux_weight"),
        ):
            with self.assertRaisesRegex(BundleConfigError, flag):
                validate_adversarial_config(*args)


if __name__ == "__main__":
    unittest.main()
