# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import math
import tempfile
import unittest
from pathlib import Path

import pandas as pd

from monai_fair.report import cross_group_results, write_cross_group_report


def _run(seed: int, model: str, drop: float, small_n: float = 3.0) -> dict:
    rec = {"seed": seed, "method": model, "split": "test", "auc_same": 0.8, "auc_other": 0.8 - drop, "auc_drop": drop}
    rec.update(auc_drop_ci_low=drop - 0.05, auc_drop_ci_high=drop + 0.05, drop_excludes_zero=float(drop > 0.05))
    rec.update(better_than_chance=1.0, probe_auc=0.9)
    for label in ("No Finding", "Edema"):
        rec[f"auc_same:{label}"], rec[f"auc_other:{label}"], rec[f"auc_drop:{label}"] = 0.8, 0.8 - drop, drop
        for group in ("White", "Black"):
            rec[f"auc:{label}:{group}"] = 0.8 if group == "White" else 0.8 - drop
    for group in ("White", "Black"):
        rec[f"mean_auc:{group}"], rec[f"n_test:{group}"] = 0.8, 50.0
        rec[f"underdiagnosis:{group}"], rec[f"n_finding:{group}"] = 0.2, 40.0
    rec["underdiagnosis:Black × F"], rec["n_finding:Black × F"] = math.nan, small_n
    return {
        "seed": seed,
        "model": model,
        "train_set": model,
        "mitigation": "none",
        "records": [rec],
        "labels": ["No Finding", "Edema"],
        "group_names": {},
        "train_group": "White",
    }


class TestCrossGroupReport(unittest.TestCase):
    def test_writes_every_file_with_demo_labels(self):
        runs = [_run(s, m, d + 0.01 * s) for s in (0, 1, 2) for m, d in (("single", 0.3), ("mixed", 0.02))]
        with tempfile.TemporaryDirectory() as tmp:
            paths = write_cross_group_report(runs, tmp, demo=True, models=["single", "mixed"], settings={"x": 1})
            for key in (
                "results_json",
                "results_per_seed_csv",
                "summary_csv",
                "summary_md",
                "report_html",
                "auc_same_other",
                "auc_by_group",
                "underdiagnosis",
            ):
                self.assertTrue(Path(paths[key]).is_file(), key)
            summary = pd.read_csv(paths["summary_csv"])
            self.assertTrue((summary["data"] == "DEMO DATA (synthetic)").all())
            single = summary[summary["method"] == "single"].iloc[0]
            self.assertAlmostEqual(single["auc_drop_mean"], 0.31)
            self.assertAlmostEqual(single["auc_drop_std"], 0.01)
            self.assertEqual(int(single["n_seeds"]), 3)
            html = Path(paths["report_html"]).read_text()
            self.assertIn("DEMO DATA", html)
            md = Path(paths["summary_md"]).read_text()
            self.assertIn("| single | single | none | 0.800 ± 0.000 | 0.490 ± 0.010 | 0.310 ± 0.010 | 3/3 seeds", md)
            self.assertIn("Black × F | 3 | n/a (below min size)", md)
            self.assertIn('"data": "DEMO DATA (synthetic)"', Path(paths["results_json"]).read_text())

    def test_real_data_files_carry_no_demo_label(self):
        with tempfile.TemporaryDirectory() as tmp:
            paths = write_cross_group_report(
                [_run(0, "single", 0.2)], tmp, demo=False, settings={"dataset": "manifest"}
            )
            self.assertNotIn("data", pd.read_csv(paths["summary_csv"]).columns)
            self.assertNotIn("DEMO DATA", Path(paths["report_html"]).read_text())

    def test_no_runs(self):
        with self.assertRaisesRegex(ValueError, "no"):
            cross_group_results([])


if __name__ == "__main__":
    unittest.main()
