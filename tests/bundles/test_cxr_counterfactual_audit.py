# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The cxr_counterfactual_audit bundle (metadata conformance: ``tests/bundles/test_conformance.py``): its configs
(fast) and end-to-end runs through ``python -m monai.bundle``
(slow tier: a tiny demo over 2 seeds, re-audit of the saved models, audit of a supplied TorchScript classifier on a
folder and on the real ISIC 2017 manifest when present)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from monai.bundle import ConfigParser
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundles" / "cxr_counterfactual_audit"
TRAIN = str(BUNDLE / "configs" / "train.json")
EVALUATE = str(BUNDLE / "configs" / "evaluate.json")
INFERENCE = str(BUNDLE / "configs" / "inference.json")
ISIC = Path(os.environ.get("MONAI_FAIR_ISIC2017_VAL", "/work/shared/data/isic2017_val"))

TINY = [
    "--demo_params",
    "{'n_subjects': 400, 'cue_width': 0.04, 'cue_contrast': 0.15}",
    "--seeds",
    "[1, 2]",
    "--generator_epochs",
    "2",
    "--classifier_epochs",
    "2",
    "--n_draws",
    "50",
    "--n_bootstrap",
    "10",
]


def _run(args: list[str], env: dict[str, str], cwd: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(
            f"command failed ({proc.returncode}): {' '.join(args)}\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


class TestConfigs(unittest.TestCase):
    def test_demo_defaults(self):
        parser = ConfigParser()
        parser.read_config(TRAIN)
        self.assertGreaterEqual(len(parser["seeds"]), 3)
        self.assertEqual(parser["tests"][0], "gcm")  # the default test comes first
        parser.read_config([TRAIN, INFERENCE])
        self.assertEqual(parser["classifiers"], {"user": "@classifier_file"})
        parser.read_config([TRAIN, EVALUATE])
        self.assertFalse(parser["study#fit"])


def _script_classifier(path: Path, channels: int, size: int) -> None:
    from monai.networks.nets import Classifier

    torch.manual_seed(0)
    net = Classifier(in_shape=(channels, size, size), classes=1, channels=(4, 8), strides=(2, 2), num_res_units=0)
    torch.jit.save(torch.jit.script(net.eval()), str(path))


@pytest.mark.slow
class TestBundleRuns(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.out = Path(self.tmp.name)
        self.env = {
            **os.environ,
            "MONAI_FAIR_DEMO_DIR": str(self.out / "demo"),
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO),
        }

    def tearDown(self):
        self.tmp.cleanup()

    def _bundle(self, configs: list[str], *args: str) -> subprocess.CompletedProcess:
        files = configs[0] if len(configs) == 1 else "[" + ",".join(f"'{c}'" for c in configs) + "]"
        paths = ["--output_dir", str(self.out / "eval"), "--ckpt_dir", str(self.out / "models")]
        cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", files, *args, *paths]
        return _run(cmd, self.env, cwd=str(self.out))

    def test_demo_train_reaudit_and_user_classifier(self):
        proc = self._bundle([TRAIN], *TINY)
        self.assertIn("DEMO DATA", proc.stdout + proc.stderr)
        eval_dir = self.out / "eval"
        for name in ("report.html", "tests.csv", "tests.md", "results_per_seed.csv", "pairs_sex_dependent.png"):
            self.assertTrue((eval_dir / name).is_file(), name)
        table = pd.read_csv(eval_dir / "results_per_seed.csv")
        self.assertEqual(set(table["method"]), {"sex_dependent", "invariant"})
        self.assertEqual(sorted(set(table["seed"])), [1, 2])
        for col in ("gcm_p_value", "crt_p_value", "paired_t_p_value", "flip_rate", "dp_p_value", "eo_p_value"):
            self.assertIn(col, table.columns)
        self.assertTrue((table["data"] == "DEMO DATA (synthetic)").all())
        self.assertIn("DEMO DATA", (eval_dir / "report.html").read_text())
        # the invariant classifier sees every image rendered as one sex: its two counterfactual versions agree
        self.assertTrue((table.loc[table["method"] == "invariant", "flip_rate"] == 0).all())
        # re-audit of the saved models reproduces every figure
        self._bundle([TRAIN, EVALUATE], *TINY)
        again = pd.read_csv(eval_dir / "reevaluated" / "results_per_seed.csv")
        cols = ["seed", "method", "balanced_accuracy", "gcm_p_value", "flip_rate"]
        merged = table[cols].merge(again[cols], on=["seed", "method"], suffixes=("", "_re"))
        self.assertEqual(len(merged), 4)
        for col in cols[2:]:
            np.testing.assert_allclose(merged[col], merged[f"{col}_re"], atol=1e-9, err_msg=col)
        # a supplied TorchScript classifier on a folder with one subfolder per sex
        rng = np.random.default_rng(0)
        for group in ("F", "M"):
            (self.out / "images" / group).mkdir(parents=True)
            for i in range(25):
                Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8)).save(
                    self.out / "images" / group / f"{i}.png"
                )
        _script_classifier(self.out / "user.ts", 1, 32)
        self._bundle(
            [TRAIN, INFERENCE],
            "--input_dir",
            str(self.out / "images"),
            "--classifier_file",
            str(self.out / "user.ts"),
            "--seeds",
            "[1]",
            "--generator_epochs",
            "2",
            "--n_draws",
            "50",
        )
        user = pd.read_csv(eval_dir / "inference" / "results_per_seed.csv")
        self.assertEqual(list(user["method"]), ["user"])
        self.assertTrue(np.isfinite(user["flip_rate"]).all())
        self.assertTrue((eval_dir / "inference" / "pairs_user.png").is_file())

    def test_missing_classifier_is_named_before_training(self):
        cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", f"['{TRAIN}','{INFERENCE}']"]
        proc = subprocess.run(
            cmd + ["--input_dir", str(self.out)], env=self.env, cwd=str(self.out), capture_output=True, text=True
        )
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("--classifier_file", proc.stdout + proc.stderr)

    @unittest.skipUnless((ISIC / "manifest.csv").is_file(), "ISIC 2017 validation images not available")
    def test_real_manifest_isic(self):
        _script_classifier(self.out / "isic.ts", 3, 64)
        self._bundle(
            [TRAIN, INFERENCE],
            "--manifest_file",
            str(ISIC / "manifest.csv"),
            "--classifier_file",
            str(self.out / "isic.ts"),
            "--audit_label",
            "melanoma",
            "--channels",
            "3",
            "--classifier_input_size",
            "64",
            "--seeds",
            "[1]",
            "--generator_epochs",
            "2",
            "--n_draws",
            "50",
            "--n_bootstrap",
            "10",
        )
        table = pd.read_csv(self.out / "eval" / "inference" / "results_per_seed.csv")
        self.assertNotIn("data", table.columns)  # real data: no demo label
        self.assertTrue(np.isfinite(table["gcm_statistic"]).all() or table["gcm_p_value"].isna().all())
        html = (self.out / "eval" / "inference" / "report.html").read_text()
        self.assertNotIn("DEMO DATA", html)


if __name__ == "__main__":
    unittest.main()
