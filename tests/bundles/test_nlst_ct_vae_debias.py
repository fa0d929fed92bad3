# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The nlst_ct_vae_debias bundle: metadata against the stored schema and the network's in/out (fast); end-to-end
runs of train / evaluate / inference on the demo embeddings and of the CT path on demo DICOM series (slow)."""

from __future__ import annotations

import json
import sys
import unittest

import numpy as np
import pandas as pd
import pytest
from monai.bundle import ConfigParser, verify_metadata, verify_net_in_out

from monai_fair.study import BundleConfigError, validate_study_config
from tests.bundles.bundle_runner import SCHEMA, BundleRunMixin, bundle_configs, bundle_run_command

TRAIN, EVALUATE, INFERENCE, MULTI_GPU, SCALE_PAPER, META = bundle_configs(
    "nlst_ct_vae_debias", "train", "evaluate", "inference", "multi_gpu_train", "scale_paper", "metadata"
)

SMALL = [
    "--seeds",
    "[0, 1]",
    "--demo_params",
    "{'n': 400, 'dim': 16, 'tune_fraction': 0.5, 'formats': ['csv']}",
    "--embedding_dim",
    "16",
    "--latent_size",
    "8",
    "--epochs",
    "2",
    "--adversary_steps",
    "1",
    "--latent_sizes",
    "[4]",
    "--poison_fractions",
    "[0.0, 0.5]",
    "--n_bootstrap",
    "20",
]


class TestNlstConfigs(unittest.TestCase):
    def test_verify_metadata_offline(self):
        verify_metadata(meta_file=META, filepath=SCHEMA)

    def test_verify_net_in_out_both_scales(self):
        # metadata describes the paper's 1408-d embeddings; the demo network is built at its own size
        verify_net_in_out(net_id="network_def", meta_file=META, config_file=[TRAIN, SCALE_PAPER], device="cpu")
        verify_net_in_out(
            net_id="network_def",
            meta_file=META,
            config_file=TRAIN,
            device="cpu",
            **{
                "_meta_#network_data_format#inputs#image#num_channels": 128,
                "_meta_#network_data_format#outputs#pred#num_channels": 128,
            },
        )

    def test_scale_profile(self):
        demo, paper = ConfigParser(), ConfigParser()
        demo.read_config(TRAIN)
        paper.read_config([TRAIN, SCALE_PAPER])
        self.assertEqual((paper["embedding_dim"], paper["latent_size"], paper["epochs"]), (1408, 500, 100))
        self.assertEqual((paper["lr"], paper["adversary_lr"], paper["batch_size"]), (5e-4, 2e-3, 32))
        self.assertGreaterEqual(len(demo["seeds"]), 3)
        # the paper's losses only at its scale; the demo default adds the table-wide decorrelation penalty
        self.assertEqual((paper["decorrelation_weight"], paper["mmd_weight"], paper["task_weight"]), (0.0, 0.0, 0.0))
        self.assertGreater(demo["decorrelation_weight"], 0.0)
        self.assertEqual(demo["debiasers#vae#decorrelation_weight"], "@decorrelation_weight")
        self.assertEqual((demo["study#spec"], demo["report#spec"]), ("@fairness", "@fairness"))

    def test_bad_overrides_fail_before_anything_runs(self):
        with self.assertRaisesRegex(BundleConfigError, "--methods"):
            validate_study_config(TRAIN, {"methods": ["vea"]})
        with self.assertRaisesRegex(BundleConfigError, "debiasers#vae"):
            validate_study_config(TRAIN, {"scheme": "gradient"})
        with self.assertRaisesRegex(BundleConfigError, "decorrelation_weight must be non-negative"):
            validate_study_config(TRAIN, {"decorrelation_weight": -1.0})
        with self.assertRaisesRegex(BundleConfigError, "--epochs"):
            validate_study_config(TRAIN, {"epochs": 0})


@pytest.mark.slow
class TestNlstBundle(BundleRunMixin, unittest.TestCase):
    def _cmd(self, configs: list[str], *extra: str) -> list[str]:
        return bundle_run_command(str(configs), "--meta_file", META, "--bundle_root", str(self.out / "b"), *extra)

    def test_train_evaluate_inference(self):
        proc = self._run(self._cmd([TRAIN], *SMALL))
        self.assertIn("DEMO DATA", proc.stdout + proc.stderr)
        eval_dir = self.out / "b" / "eval"
        for name in (
            "report.html",
            "summary.md",
            "summary.csv",
            "results_per_seed.csv",
            "removal.png",
            "poisoning.png",
            "latent_sweep_vae.png",
            "trajectory_vae.png",
        ):
            self.assertTrue((eval_dir / name).is_file(), name)
        table = pd.read_csv(eval_dir / "results_per_seed.csv")
        self.assertEqual(set(table["data"]), {"DEMO DATA (synthetic)"})
        self.assertTrue({"original", "vae", "leace", "poisoned_vae_50", "vae_latent_4"} <= set(table["method"]))
        self.assertEqual(sorted(set(table["seed"])), [0, 1])
        # re-evaluation reloads the saved debiasers: the same figures without fitting
        self._run(self._cmd([TRAIN, EVALUATE], *SMALL))
        again = pd.read_csv(eval_dir / "reevaluated" / "results_per_seed.csv")
        a = table.set_index(["seed", "method"])["linear_sex_auc"]
        b = again.set_index(["seed", "method"])["linear_sex_auc"]
        for key in [(0, "vae"), (1, "leace"), (0, "original")]:
            self.assertAlmostEqual(a[key], b[key], places=6)
        # inference: the published VAE debiases the demo's tune table
        demo_dir = next((self.out / "demo").glob("embeddings-seed0-*"))
        opts = "{'sex_column': 'gender', 'id_column': 'pid', 'demographics': '%s', 'sex_map': {1: 'M', 2: 'F'}}" % (
            demo_dir / "nlst_780_prsn_idc_20210527.csv"
        )
        self._run(
            self._cmd(
                [TRAIN, INFERENCE],
                *SMALL,
                "--input_table",
                str(demo_dir / "nlst_tune_with_labels.npz"),
                "--table_options",
                opts,
            )
        )
        inf = self.out / "b" / "eval" / "inference"
        with np.load(inf / "debiased_embeddings.npz") as npz:
            self.assertEqual(npz["embeddings"].shape, (200, 16))
            self.assertNotIn("pid", npz.files)
        self.assertTrue(json.loads((inf / "inference.json").read_text())["data"].startswith("DEMO"))

    def test_multi_gpu_config_spreads_seeds(self):
        # two CPU ranks (gloo): each runs one seed, rank 0 gathers both and writes the report
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "-m",
            "monai.bundle",
            "run",
            "--config_file",
            str([TRAIN, MULTI_GPU]),
            "--meta_file",
            META,
            "--bundle_root",
            str(self.out / "mg"),
            *SMALL,
            "--latent_sizes",
            "[]",
            "--epochs",
            "1",
            "--probes",
            "['linear']",
            "--poison_fractions",
            "[0.0]",
        ]
        self._run(cmd)
        table = pd.read_csv(self.out / "mg" / "eval" / "results_per_seed.csv")
        self.assertEqual(sorted(set(table["seed"])), [0, 1])
        self.assertTrue((self.out / "mg" / "models" / "vae.pt").is_file())

    def test_ct_series_path(self):
        from monai_fair.data.demo.ct import make_ct_demo

        ct = make_ct_demo(self.out / "ct", seed=0, n_patients=24, n_slices=8, size=16)
        small = [
            *SMALL[2:],
            "--ct_dir",
            str(ct),
            "--ct_roi_size",
            "[16, 16, 8]",
            "--embedding_dim",
            "512",
            "--seeds",
            "[0]",
            "--probes",
            "['linear']",
        ]
        self._run(self._cmd([TRAIN], *small))
        eval_dir = self.out / "b" / "eval"
        self.assertTrue((eval_dir / "ct_embeddings.npz").is_file())
        self.assertIn("CT DICOM series", (eval_dir / "report.html").read_text())
        self.assertIn("DEMO DATA", (eval_dir / "summary.md").read_text())


if __name__ == "__main__":
    unittest.main()
