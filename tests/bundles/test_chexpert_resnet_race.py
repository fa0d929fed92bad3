# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The chexpert_resnet_race bundle: configs and settings checks (fast), end-to-end runs through
``python -m monai.bundle`` (slow tier)."""

from __future__ import annotations

import json
import unittest
from pathlib import Path

import pandas as pd
import pytest

from tests.bundles.bundle_runner import BundleRunMixin, bundle_configs, bundle_run_command, isic_manifest

TRAIN, EVALUATE, INFERENCE, MULTI_GPU, SCALE_PAPER = bundle_configs(
    "chexpert_resnet_race", "train", "evaluate", "inference", "multi_gpu_train", "scale_paper"
)
ISIC = isic_manifest()
GROUPS = ("White", "Black", "Asian", "Other")

# a tiny, fast configuration of the whole study: tiny networks and figures (TINY) on a tiny demo
TINY = [
    "--epochs",
    "1",
    "--stored_size",
    "32",
    "--input_size",
    "32",
    "--widen_factor",
    "0.25",
    "--n_bootstrap",
    "20",
    "--min_group_size",
    "3",
]
SMALL = [
    "--demo_params",
    "{'n_patients': 160, 'n_valid_patients': 4, 'image_size': 32, 'lateral_fraction': 0.0, 'appearance_shift': 1.0}",
    *TINY,
    "--seeds",
    "[0, 1]",
]


class TestChexpertResnetRaceConfigs(unittest.TestCase):
    def test_scale_profile_and_network(self):
        from monai.bundle import ConfigParser

        demo, paper = ConfigParser(), ConfigParser()
        demo.read_config(TRAIN)
        paper.read_config([TRAIN, SCALE_PAPER])
        self.assertEqual((demo["scale"], demo["input_size"]), ("demo", 64))
        self.assertEqual(
            (paper["scale"], paper["input_size"], paper["batch_size"], paper["lr"]), ("paper", 224, 64, 1e-4)
        )
        net = paper.get_parsed_content("network_def")
        self.assertEqual(net.fc.out_features, 14)
        self.assertEqual(len(paper["labels"]), 14)

    def test_settings_are_checked_first(self):
        first = ["$monai_fair.study.install_cause_hook()", "$monai_fair.study.validate_study_config()"]
        for path in (TRAIN, MULTI_GPU):
            with self.subTest(config=Path(path).name):
                init = json.loads(Path(path).read_text())["initialize"]
                self.assertEqual(init[:2], first)
                self.assertIn("check_cross_group_settings", init[2])

    def test_bad_override_fails_before_training(self):
        from monai.bundle import ConfigParser

        from monai_fair.study import BundleConfigError, root_cause

        for key, value, pattern in (
            ("run_models", ["single", "mixd"], "--run_models.*mixd.*mixed"),
            ("models#mixed#mitigation", "oversampling", "models#mixed#mitigation"),
            ("no_finding", "Healthy", "--no_finding"),
        ):
            parser = ConfigParser()
            parser.read_config(TRAIN)
            parser[key] = value
            with self.subTest(key=key), self.assertRaises(Exception) as ctx:
                parser.get_parsed_content("initialize#2")  # the check, before any data are read
            cause = root_cause(ctx.exception)
            self.assertIsInstance(cause, BundleConfigError)
            self.assertRegex(str(cause), pattern)

    def test_evaluate_reloads_checkpoints_without_training(self):
        from monai.bundle import ConfigParser

        parser = ConfigParser()
        parser.read_config([TRAIN, EVALUATE])
        parser["ckpt_dir"], parser["model_name"], parser["seed"] = "/m", "mixed", 3
        self.assertEqual(parser["seed_run"], [])
        self.assertEqual(parser.get_parsed_content("evaluation#checkpoint"), "/m/mixed/seed_3/model.pt")


@pytest.mark.slow
class TestChexpertResnetRaceBundle(BundleRunMixin, unittest.TestCase):
    def test_train_evaluate_infer(self):
        cmd = bundle_run_command(TRAIN, *SMALL, *self._paths("a"))
        proc = self._run(cmd)
        self.assertIn("DEMO DATA", proc.stdout + proc.stderr)
        eval_dir = self.out / "a" / "eval"
        for name in ("report.html", "summary.md", "summary.csv", "auc_same_other.png", "auc_by_group.png"):
            self.assertTrue((eval_dir / name).is_file(), name)
        table = pd.read_csv(eval_dir / "results_per_seed.csv")
        self.assertTrue((table["data"] == "DEMO DATA (synthetic)").all())
        self.assertEqual(
            sorted(zip(table["seed"], table["method"])), [(0, "mixed"), (0, "single"), (1, "mixed"), (1, "single")]
        )
        # every model is evaluated on every group's test set
        for group in GROUPS:
            self.assertTrue((table[f"n_test:{group}"] > 0).all(), group)
            self.assertIn(f"auc:Edema:{group}", table.columns)
        self.assertTrue(table["auc_drop"].notna().all())
        models = self.out / "a" / "models"
        for model in ("single", "mixed"):
            for seed in (0, 1):
                self.assertTrue((models / model / f"seed_{seed}" / "model.pt").is_file())
        self.assertTrue((models / "mixed" / "model.pt").is_file())
        network = json.loads((models / "mixed" / "network.json").read_text())
        self.assertEqual((network["input_size"], network["model_demo"]), (32, True))

        # re-evaluation reloads the saved models: the same figures, without training
        cmd = bundle_run_command(f"['{TRAIN}','{EVALUATE}']", *SMALL)
        self._run(cmd + self._paths("a"))
        again = pd.read_csv(eval_dir / "reevaluated" / "results_per_seed.csv")
        pd.testing.assert_series_equal(again["auc_drop"], table["auc_drop"], atol=1e-6, rtol=0)

        # inference with the published model's settings
        images = self.out / "demo"
        cmd = bundle_run_command(
            f"['{TRAIN}','{INFERENCE}','{models / 'mixed' / 'network.json'}']",
            "--input_dir",
            str(next(images.rglob("valid"))),
            *self._paths("a"),
        )
        self._run(cmd)
        rows = (eval_dir / "inference" / "predictions.csv").read_text().strip().splitlines()
        self.assertGreater(len(rows), 0)
        self.assertEqual(len(rows[0].split(",")), 1 + 14)

    @unittest.skipIf(ISIC is None, "the ISIC 2017 validation images are not here")
    def test_generic_manifest_of_real_images(self):
        cmd = bundle_run_command(
            TRAIN,
            "--manifest_file",
            str(ISIC),
            "--labels",
            "['melanoma']",
            "--no_finding",
            "",
            "--attribute",
            "sex",
            "--train_group",
            "female",
            "--intersect_with",
            "[]",
            "--missing_patient",
            "image",
            *TINY,
            "--seeds",
            "[0]",
            *self._paths("m"),
        )
        proc = self._run(cmd)
        self.assertIn("dataset=manifest", proc.stdout + proc.stderr)
        self.assertNotIn("DEMO DATA", (self.out / "m" / "eval" / "summary.md").read_text())
        table = pd.read_csv(self.out / "m" / "eval" / "results_per_seed.csv")
        self.assertEqual(set(table["method"]), {"single", "mixed"})
        self.assertIn("auc:melanoma:F", table.columns)
        self.assertIn("underdiagnosis:M", table.columns)


if __name__ == "__main__":
    unittest.main()
