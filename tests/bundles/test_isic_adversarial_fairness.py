# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The isic_adversarial_fairness bundle: configs (fast) and end-to-end runs through ``python -m monai.bundle`` (slow):
train over two seeds on a tiny demo, reload and re-evaluate, label-free inference with the critic, and a generic
manifest of real dermoscopy images."""

from __future__ import annotations

import json
import unittest
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.bundles.bundle_runner import BundleRunMixin, bundle_configs, bundle_run_command

TRAIN, EVALUATE, INFERENCE, MULTI_GPU, SCALE_PAPER = bundle_configs(
    "isic_adversarial_fairness", "train", "evaluate", "inference", "multi_gpu_train", "scale_paper"
)
VARIANTS = {"vanilla", "ours_wo_orth", "ours_w_orth"}

SMALL = [
    "--demo_params", "{'n_lesions': 40, 'size': 64}",
    "--seeds", "[0, 1]",
    "--epochs", "1",
    "--input_size", "32",
    "--width", "0.125",
    "--fc_channels", "32",
    "--batch_size", "12",
    "--n_bootstrap", "10",
    "--critic_n_batches", "8",
    "--critic_batch_size", "8",
    "--split_fractions", "[0.5, 0.25, 0.25]",
]  # fmt: skip


class TestIsicAdversarialConfigs(unittest.TestCase):
    def test_scale_profile_and_spec(self):
        from monai.bundle import ConfigParser

        demo, paper = ConfigParser(), ConfigParser()
        demo.read_config(TRAIN)
        paper.read_config([TRAIN, SCALE_PAPER])
        self.assertEqual((demo["scale"], demo["input_size"], demo["width"]), ("demo", 64, 0.25))
        self.assertEqual(
            (paper["scale"], paper["input_size"], paper["width"], paper["batch_size"]), ("paper", 224, 1.0, 64)
        )
        self.assertEqual((paper["lr"], paper["bias_lr"], len(paper["seeds"])), (1e-3, 1e-4, 5))
        self.assertEqual((paper["orth_form"], paper["confusion"]), ("paper", "privileged"))
        # the paper's critic (batch mean, co-trained only, stratified test batches) stays one override away
        self.assertEqual(
            (paper["critic_readout"], paper["critic_steps"], paper["critic_eval"]), ("mean", 0, "stratified")
        )
        self.assertEqual((demo["critic_readout"], demo["critic_eval"]), ("group_ratio", "shifted"))
        self.assertGreater(demo["critic_steps"], 0)
        self.assertEqual(demo["bias_heads#readout"], "@critic_readout")
        self.assertEqual((paper["critic_weight"], demo["critic_weight"]), (0.0, 1.0))  # the paper: no critic term
        self.assertEqual(set(demo["variants"]), VARIANTS)
        self.assertEqual((demo["study#spec"], demo["report#spec"]), ("@fairness", "@fairness"))
        self.assertEqual(demo["bias_heads#channels"], [16, 32])
        self.assertEqual(demo["bias_heads#hidden"], [128, 32])

    def test_settings_are_checked_first(self):
        first = [
            "$monai_fair.study.install_cause_hook()",
            "$monai_fair.study.validate_study_config()",
            "@check_settings",
        ]
        for path in (TRAIN, MULTI_GPU):
            self.assertEqual(json.loads(Path(path).read_text())["initialize"][:3], first)

    def test_bad_override_fails_before_training(self):
        from monai.bundle import ConfigParser

        from monai_fair.study import BundleConfigError

        for key, value in (
            ("orth_form", "sine"),
            ("task", "dx"),
            ("run_variants", ["ours"]),
            ("bias_lr", 0),
            ("critic_readout", "attention"),
            ("critic_eval", "random"),
        ):
            parser = ConfigParser()
            parser.read_config(TRAIN)
            parser[key] = value
            # the check reads plain settings only: nothing is read or trained before it fails
            with self.assertRaises(Exception) as ctx:
                parser.get_parsed_content("check_settings")
            err = ctx.exception
            while not isinstance(err, BundleConfigError) and err.__cause__ is not None:
                err = err.__cause__
            self.assertIsInstance(err, BundleConfigError)
            self.assertIn(f"--{key}", str(err))


@pytest.mark.slow
class TestIsicAdversarialBundle(BundleRunMixin, unittest.TestCase):
    def test_train_evaluate_infer(self):
        cmd = bundle_run_command(TRAIN, *SMALL, *self._paths("a"))
        proc = self._run(cmd)
        self.assertIn("DEMO DATA", proc.stdout + proc.stderr)
        eval_dir = self.out / "a" / "eval"
        for name in (
            "report.html",
            "summary.csv",
            "results.json",
            "table1_group_performance.csv",
            "table2_fairness.csv",
        ):
            self.assertTrue((eval_dir / name).is_file(), name)
        table = pd.read_csv(eval_dir / "results_per_seed.csv")
        self.assertEqual(set(table["method"]), VARIANTS)
        self.assertEqual(set(table["seed"]), {0, 1})
        test = table[table["split"] == "test"]
        adversarial = test[test["method"] != "vanilla"]
        for col in ("critic_corr", "critic_corr_shifted", "critic_corr_stratified"):
            self.assertTrue(adversarial[col].notna().any(), col)
            self.assertTrue(adversarial[col].dropna().between(-1, 1).all(), col)
        self.assertTrue(test.loc[test["method"] == "vanilla", "critic_corr"].isna().all())
        # the default read-out: two outputs per sample (score, group), saved with the published heads
        heads = torch.load(self.out / "a" / "models" / "bias_heads.pt", weights_only=True)
        self.assertEqual(tuple(heads["critic.4.weight"].shape)[0], 2)
        self.assertIn("Corr shifted", pd.read_csv(eval_dir / "table2_fairness.csv").columns)
        self.assertIn("f1_light", table.columns)
        self.assertIn("DEMO DATA", (eval_dir / "table2_fairness.md").read_text())
        models = self.out / "a" / "models"
        for name in ("model.pt", "bias_heads.pt", "network.json"):
            self.assertTrue((models / name).is_file(), name)
        # reloading the saved variants reproduces the test figures exactly
        cmd = bundle_run_command(f"['{TRAIN}','{EVALUATE}']", *SMALL, *self._paths("a"))
        self._run(cmd)
        again = pd.read_csv(eval_dir / "reevaluated" / "results_per_seed.csv")
        cols = ["seed", "method", "split", "balanced_accuracy", "spd", "eod", "critic_corr"]
        merged = table[cols].merge(again[cols], on=["seed", "method", "split"], suffixes=("", "_re"))
        self.assertEqual(len(merged), len(table))
        for col in ("balanced_accuracy", "spd", "eod", "critic_corr"):
            pd.testing.assert_series_equal(merged[col], merged[f"{col}_re"], check_names=False, atol=1e-6)
        # label-free inference: images only, the critic's estimate per batch
        images = sorted((self.out / "demo").rglob("*.jpg"))[:20]
        folder = self.out / "unlabelled"
        folder.mkdir()
        for p in images:
            (folder / p.name).write_bytes(p.read_bytes())
        cmd = bundle_run_command(f"['{TRAIN}','{INFERENCE}','{models / 'network.json'}']", *SMALL, *self._paths("a"),
                                 "--input_dir", str(folder))  # fmt: skip
        self._run(cmd)
        critic = pd.read_csv(eval_dir / "inference" / "critic_spd.csv")
        self.assertEqual(len(critic), 3)  # 20 images in batches of 8
        self.assertTrue(critic["predicted_spd"].notna().all())
        self.assertEqual(len(pd.read_csv(eval_dir / "inference" / "predictions.csv", header=None)), 20)
        self.assertTrue(list((eval_dir / "inference").glob("events.*")))

    def test_generic_manifest_of_real_images(self):
        manifest = self._real_manifest()
        cmd = bundle_run_command(TRAIN, *SMALL, *self._paths("m"), "--manifest_file", str(manifest), "--label",
                                 "melanoma", "--attribute", "sex", "--privileged", "F", "--seeds", "[0]")  # fmt: skip
        proc = self._run(cmd)
        self.assertNotIn("DEMO DATA", (self.out / "m" / "eval" / "table2_fairness.md").read_text())
        self.assertIn("manifest", proc.stdout + proc.stderr)


if __name__ == "__main__":
    unittest.main()
