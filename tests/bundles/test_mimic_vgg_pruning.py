# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""End-to-end runs of the mimic_vgg_pruning bundle through ``python -m monai.bundle`` (slow tier)."""

from __future__ import annotations

import json
import sys
import unittest
from pathlib import Path

import pandas as pd
import pytest

from tests.bundles.bundle_runner import BundleRunMixin, bundle_configs, bundle_run_command

TRAIN, EVALUATE, MULTI_GPU, SCALE_PAPER, META = bundle_configs(
    "mimic_vgg_pruning", "train", "evaluate", "multi_gpu_train", "scale_paper", "metadata"
)

# a small, fast configuration of the whole study (every method, tiny steps)
SMALL = [
    "--demo_params",
    "{'n_subjects': 400}",
    "--epochs",
    "2",
    "--input_size",
    "32",
    "--n_bootstrap",
    "20",
    "--debiasers#random_perturbation#trials",
    "3",
    "--debiasers#adversarial#epochs",
    "1",
    "--debiasers#adversarial#critic_steps",
    "3",
    "--debiasers#adversarial#actor_steps",
    "2",
    "--debiasers#pruning#max_steps",
    "2",
    "--debiasers#adaptive_pruning#max_steps",
    "2",
    "--debiasers#bias_gda#epochs",
    "1",
    "--debiasers#engineered_bias_gradient#epochs",
    "1",
]


class TestMimicVggPruningConfigs(unittest.TestCase):
    """The configs themselves (fast): the paper profile merges over the demo values, one spec and one report."""

    def test_scale_profile_merge(self):
        from monai.bundle import ConfigParser

        demo, paper = ConfigParser(), ConfigParser()
        demo.read_config(TRAIN)
        paper.read_config([TRAIN, SCALE_PAPER])
        self.assertEqual((demo["scale"], demo["input_size"], demo["debiasers#pruning#step_size"]), ("demo", 64, 20))
        self.assertEqual(
            (paper["scale"], paper["input_size"], paper["debiasers#pruning#step_size"]), ("paper", 224, 1500)
        )
        self.assertIsNone(paper["debiasers#pruning#rho_relative"])
        self.assertEqual(paper["debiasers#pruning#rho"], 0.65)
        # the spec is declared once and handed to every debiaser, the study and the report
        for name, debiaser in demo["debiasers"].items():
            self.assertEqual(debiaser["spec"], "@fairness", name)
        self.assertEqual((demo["study#spec"], demo["report#spec"]), ("@fairness", "@fairness"))
        for path in (TRAIN, EVALUATE, MULTI_GPU):
            self.assertNotIn("write_debiasing_report", Path(path).read_text())


class TestMimicVggPruningChecks(unittest.TestCase):
    def test_settings_are_checked_first(self):
        # the cause hook and the settings check run before anything reads data or trains (tests/study/test_validation)
        first = ["$monai_fair.study.install_cause_hook()", "$monai_fair.study.validate_study_config()"]
        for path in (TRAIN, MULTI_GPU):
            with self.subTest(config=Path(path).name):
                self.assertEqual(json.loads(Path(path).read_text())["initialize"][:2], first)

    def test_bundle_options_reach_the_data_and_transforms(self):
        config = json.loads(Path(TRAIN).read_text())
        for key in ("patient_column", "missing_patient", "verify_images"):
            self.assertEqual(config["split"][key], f"@{key}")
        for part in ("train", "validate"):
            self.assertEqual(config[part]["image_transforms"]["bits"], "@bits")
        self.assertIn("group_code(@attribute, @privileged)", config["fairness"]["reference"])


@pytest.mark.slow
class TestMimicVggPruningBundle(BundleRunMixin, unittest.TestCase):
    omp_threads = "2"

    def test_train_evaluate_export(self):
        # run from a folder that is not the repo root: paths must resolve relative to the bundle
        # two seeds side by side in worker processes (seed_workers "auto" on a CPU)
        seeds = ["--seeds", "[42, 43]"]
        cmd = bundle_run_command(TRAIN, *SMALL, *seeds, *self._paths("a"))
        proc = self._run(cmd)
        self.assertIn("DEMO DATA", proc.stdout + proc.stderr)
        eval_dir = self.out / "a" / "eval"
        for name in ("report.html", "summary.md", "summary.csv", "results.json", "results_per_seed.csv"):
            self.assertTrue((eval_dir / name).is_file(), name)
        table = pd.read_csv(eval_dir / "results_per_seed.csv")
        methods = set(json.loads(Path(TRAIN).read_text())["methods"]) | {"standard"}
        self.assertEqual(set(table["method"]), methods)
        self.assertEqual(sorted(set(table["seed"])), [42, 43])
        self.assertIn("in 2 worker processes", proc.stdout + proc.stderr)
        self.assertIn("DEMO DATA", (eval_dir / "summary.md").read_text())
        # every saved debiased model / post-processor reloads and reproduces its test figures exactly
        cmd = bundle_run_command(f"['{TRAIN}','{EVALUATE}']", *SMALL, *seeds, *self._paths("a"))
        self._run(cmd)
        again = pd.read_csv(eval_dir / "reevaluated" / "results_per_seed.csv")
        # two seeds: a row is one (seed, method, split)
        cols = ["seed", "method", "split", "balanced_accuracy", "eod", "spd"]
        merged = table[cols].merge(again[cols], on=["seed", "method", "split"], suffixes=("", "_re"))
        self.assertEqual(len(merged), len(table))
        test_rows = merged[merged["split"] == "test"]
        for col in ("balanced_accuracy", "eod", "spd"):
            pd.testing.assert_series_equal(test_rows[col], test_rows[f"{col}_re"], check_names=False, atol=1e-9)
        # TorchScript export of the published model, with the documented command (network.json gives its scale)
        ts = self.out / "model.ts"
        cmd = [
            sys.executable,
            "-m",
            "monai.bundle",
            "ckpt_export",
            "network_def",
            "--filepath",
            str(ts),
            "--ckpt_file",
            str(self.out / "a" / "models" / "model.pt"),
            "--meta_file",
            META,
            "--config_file",
            f"['{TRAIN}','{self.out / 'a' / 'models' / 'network.json'}']",
        ]
        self._run(cmd)
        self.assertTrue(ts.is_file())

    def test_generic_manifest_of_real_images(self):
        manifest = self._real_manifest(patient_id=True)
        cmd = bundle_run_command(
            TRAIN,
            *SMALL,
            *self._paths("m"),
            "--dataset",
            "manifest",
            "--manifest_file",
            str(manifest),
            "--label",
            "melanoma",
            "--privileged",
            "M",
            "--unprivileged",
            "F",
            "--methods",
            "['reject_option']",
            "--val_batch_size",
            "8",
            # 150 images leave a handful per group in validation: estimate the figures anyway
            "--fairness#min_group_size",
            "2",
        )
        proc = self._run(cmd)
        self.assertNotIn("DEMO DATA", (self.out / "m" / "eval" / "summary.md").read_text())
        self.assertIn("dataset=manifest", proc.stdout + proc.stderr)
        result = pd.read_csv(self.out / "m" / "eval" / "results_per_seed.csv")
        self.assertEqual(set(result["method"]), {"standard", "reject_option"})

    def test_multi_process_training(self):
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nnodes=1",
            "--nproc_per_node=2",
            "-m",
            "monai.bundle",
            "run",
            "--config_file",
            f"['{TRAIN}','{MULTI_GPU}']",
            *SMALL,
            "--methods",
            "['reject_option','pruning']",
            *self._paths("ddp"),
        ]
        self._run(cmd)
        table = pd.read_csv(self.out / "ddp" / "eval" / "results_per_seed.csv")
        self.assertEqual(set(table["method"]), {"standard", "reject_option", "pruning"})


if __name__ == "__main__":
    unittest.main()
