# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""write_embedding_report: every file, demo labels everywhere, and table cells equal to hand-computed mean ± std."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd

from monai_fair.report import StudyResults, poisoning_table, removal_table, write_embedding_report
from monai_fair.report.aggregate import aggregate_results


def fake_results() -> StudyResults:
    res = StudyResults(metric="eod")
    for seed, shift in ((0, 0.0), (1, 0.02), (2, 0.04)):
        for method, auc in (("original", 0.99), ("vae", 0.70), ("leace", 0.52)):
            res.add(
                seed,
                method,
                "test",
                linear_sex_auc=auc + shift,
                hgb_sex_auc=auc,
                linear_age_mae=3.0,
                hgb_age_mae=3.5,
                task_auc=0.8,
                task_accuracy=0.7,
                task_eod=-0.1 + shift,
            )
            for rate in (0.0, 0.5):
                res.add(
                    seed,
                    f"poisoned_{method}_{int(rate * 100)}",
                    "test",
                    flip_rate=rate,
                    task_eod=rate * (0.4 if method == "original" else 0.1) + shift,
                )
        for k in (4, 16):
            res.add(
                seed,
                f"vae_latent_{k}",
                "test",
                latent_size=k,
                linear_sex_auc=0.6 + k / 100,
                hgb_sex_auc=0.6,
                task_auc=0.7 + k / 100,
            )
        res.add_trajectory(
            seed,
            "vae",
            {
                "step": [0, 1],
                "recon": [1.0, 0.9],
                "kl": [0.1, 0.1],
                "sex_loss": [0.6, 0.7],
                "age_loss": [1.0, 1.1],
                "lambda": [0.0, 1.0],
            },
        )
    return res


class TestEmbeddingReport(unittest.TestCase):
    def test_tables_match_hand_computation(self):
        res = fake_results()
        summary = aggregate_results(res)
        table = removal_table(summary, ["original", "vae", "leace"], ["linear", "hgb"])
        vals = np.array([0.70, 0.72, 0.74])
        self.assertEqual(table.loc[1, "sex AUC (linear)"], f"{vals.mean():.3f} ± {vals.std(ddof=1):.3f}")
        self.assertEqual(table.loc[2, "sex AUC (hgb)"], "0.520 ± 0.000")
        per_seed = res.to_dataframe()
        pois = poisoning_table(summary, per_seed, ["original", "vae"])
        self.assertEqual(pois["flipped (%)"].tolist(), [0, 50])
        self.assertEqual(pois.loc[1, "original EOD"], f"{np.mean([0.2, 0.22, 0.24]):.3f} ± 0.020")

    def test_writes_every_file_with_demo_label(self):
        with tempfile.TemporaryDirectory() as tmp:
            paths = write_embedding_report(
                fake_results(),
                tmp,
                representations=["original", "vae", "leace"],
                demo=True,
                settings={"dataset": "demo"},
            )
            for key in (
                "results_json",
                "results_per_seed_csv",
                "summary_csv",
                "summary_md",
                "removal",
                "poisoning",
                "latent_sweep_vae",
                "trajectory_vae",
                "report_html",
            ):
                self.assertTrue(Path(paths[key]).is_file(), key)
            self.assertNotIn("latent_sweep_original", paths)
            self.assertIn("DEMO DATA", Path(paths["summary_md"]).read_text())
            self.assertIn("DEMO DATA", Path(paths["report_html"]).read_text())
            self.assertEqual(set(pd.read_csv(paths["summary_csv"])["data"]), {"DEMO DATA (synthetic)"})

    def test_empty(self):
        with tempfile.TemporaryDirectory() as tmp, self.assertRaisesRegex(ValueError, "no record"):
            write_embedding_report(StudyResults(), tmp, representations=["original"])


if __name__ == "__main__":
    unittest.main()
