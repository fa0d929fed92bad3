# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import math
import tempfile
import unittest
from pathlib import Path

import pandas as pd
from monai.bundle import ConfigParser

from monai_fair.study import StudyReport, collect_study_results


def _seed_run(seed: int, eod: float) -> dict:
    records = []
    for method, ba in (("standard", 0.8), ("pruning", 0.7)):
        for split in ("val", "test"):
            records.append(
                {"seed": seed, "method": method, "split": split, "threshold": 0.5, "balanced_accuracy": ba, "eod": eod,
                 "spd": 0.0, "aod": 0.0, "bias": eod, "objective": ba if abs(eod) < 0.05 else 0.0}
            )  # fmt: skip
    traj = {"step": [0, 1], "bias": [eod, eod / 2], "balanced_accuracy": [0.8, 0.7], "objective": [0.0, 0.7]}
    return {"seed": seed, "records": records, "trajectories": {"pruning": traj}, "rho": {"pruning": 0.65}}


# the report is declared once; a second config (like evaluate.json) only moves its folder
CONFIG = {
    "imports": ["$import os"],
    "out": "",
    "fairness": {"_target_": "monai_fair.FairnessSpec", "attributes": "sex", "reference": "M",
                 "group_names": {"0": "F", "1": "M"}, "metric": "eod", "epsilon": 0.05},
    "report": {"_target_": "monai_fair.study.StudyReport", "name": "tiny", "output_dir": "@out", "spec": "@fairness",
               "title": "Tiny study", "settings": {"dataset": "demo", "epochs": 2}, "demo": True},
    "results": "$[None]",
    "run": ["$@report.write(@results)"],
}  # fmt: skip


class TestStudyReport(unittest.TestCase):
    def test_declared_once_and_written(self):
        with tempfile.TemporaryDirectory() as d:
            parser = ConfigParser(dict(CONFIG))
            parser["out"] = d
            parser["results"] = [_seed_run(1, -0.1), None, _seed_run(2, 0.02)]
            parser["report#output_dir"] = "$os.path.join(@out, 'reevaluated')"
            parser.parse()
            paths = parser.get_parsed_content("run#0")
            self.assertEqual(Path(paths["report_html"]).parent, Path(d) / "reevaluated")
            summary = pd.read_csv(paths["summary_csv"])
            html = Path(paths["report_html"]).read_text()
        row = summary[(summary["method"] == "standard") & (summary["split"] == "test")].iloc[0]
        self.assertAlmostEqual(row["eod_mean"], (-0.1 + 0.02) / 2)
        self.assertAlmostEqual(row["balanced_accuracy_mean"], 0.8)
        self.assertEqual(row["n_seeds"], 2)
        self.assertIn("DEMO DATA", html)
        self.assertIn("Tiny study", html)
        self.assertIn("reference group", html)

    def test_log_line(self):
        report = StudyReport("unused", title="t", settings={"dataset": "mimic", "scale": "demo"}, name="tiny")
        with self.assertLogs("monai_fair", level="WARNING") as logs:
            line = report.log_settings()
        self.assertIn("tiny: attributes=sex", line)
        self.assertIn("dataset=mimic", line)
        self.assertIn("scale_paper.json", logs.output[0])

    def test_collect(self):
        results = collect_study_results([_seed_run(3, 0.2)], metric="eod", epsilon=0.05)
        self.assertEqual(results.seeds, [3])
        self.assertEqual(results.methods, ["standard", "pruning"])
        self.assertTrue(math.isclose(results.records[0]["eod"], 0.2))
        with self.assertRaisesRegex(ValueError, "no seed produced results"):
            collect_study_results([None])


if __name__ == "__main__":
    unittest.main()
