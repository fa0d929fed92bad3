# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""End-to-end test of ``write_study_report`` (small synthetic study, a few seconds)."""

from __future__ import annotations

import base64
import io
import json
import re
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from monai_fair.debias.base import BinaryEvaluation, Trajectory
from monai_fair.report import StudyResults, write_study_report

METHODS = ["default", "random", "pruning", "bias_gda"]
SEEDS = [42, 73, 666]


def _study() -> StudyResults:
    rng = np.random.default_rng(3)
    r = StudyResults(metric="eod", epsilon=0.03, methods=METHODS)
    for seed in SEEDS:
        for m in METHODS:
            for split in ("val", "test"):
                eod = float("nan") if m == "random" else float(rng.normal(0.05 if m == "default" else 0.0, 0.02))
                r.add(
                    seed,
                    m,
                    split,
                    balanced_accuracy=float(rng.uniform(0.6, 0.75)),
                    eod=eod,
                    spd=float(rng.normal(0, 0.03)),
                    threshold=0.5,
                )
        for m in ("pruning", "bias_gda"):
            t = Trajectory()
            for step in range(4):
                t.append(step, BinaryEvaluation(0.5, 0.72 - 0.01 * step, 0.06 - 0.02 * step, 0.0))
            r.add_trajectory(seed, m, t)
    return r


class TestWriteStudyReport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.results = _study()
        cls.paths = write_study_report(
            cls.results,
            Path(cls.tmp.name) / "demo",
            title="MIMIC VGG pruning",
            settings={"dataset": "MIMIC-CXR demo", "attribute": "sex"},
            demo=True,
            rho={"pruning": 0.65, "bias_gda": 0.75},
        )

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_every_file_written(self):
        expected = {
            "results_json",
            "results_per_seed_csv",
            "summary_csv",
            "summary_md",
            "report_html",
            "bars_test",
            "bars_val",
            "tradeoff_test",
            "tradeoff_val",
            "trajectory_pruning",
            "trajectory_bias_gda",
        }
        self.assertEqual(set(self.paths), expected)
        for p in self.paths.values():
            self.assertGreater(Path(p).stat().st_size, 0, p)
        for key, p in self.paths.items():
            if p.endswith(".png"):
                with Image.open(p) as img:
                    img.verify()
                    self.assertEqual(img.format, "PNG", key)

    def test_html_embeds_every_plot(self):
        text = Path(self.paths["report_html"]).read_text(encoding="utf-8")
        srcs = re.findall(r'<img src="([^"]+)"', text)
        pngs = [p for p in self.paths.values() if p.endswith(".png")]
        self.assertEqual(len(srcs), len(pngs))
        embedded = {base64.b64decode(s.split(",", 1)[1]) for s in srcs}
        self.assertEqual(embedded, {Path(p).read_bytes() for p in pngs})
        for s in srcs:
            Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))).verify()
        self.assertNotIn('src="http', text)
        self.assertNotIn('href="http', text)
        self.assertIn('class="demo-banner"', text)
        self.assertIn("MIMIC-CXR demo", text)  # caller's settings
        self.assertIn("<td>epsilon</td><td>0.03</td>", text)  # settings filled from the results

    def test_summary_and_per_seed(self):
        md = Path(self.paths["summary_md"]).read_text(encoding="utf-8")
        self.assertIn("**DEMO DATA (synthetic)**", md)
        df = self.results.to_dataframe()
        v = df[(df["method"] == "pruning") & (df["split"] == "test")]["balanced_accuracy"]
        self.assertIn(f"| pruning | {v.mean():.3f} ± {v.std(ddof=1):.3f} |", md)
        random_row = next(line for line in md.splitlines() if line.startswith("| random |"))
        self.assertEqual(random_row.split(" | ")[2], "n/a")  # NaN EOD on every seed
        per_seed = pd.read_csv(self.paths["results_per_seed_csv"])
        self.assertEqual(len(per_seed), len(SEEDS) * len(METHODS) * 2)
        summary = pd.read_csv(self.paths["summary_csv"])
        self.assertEqual(list(dict.fromkeys(summary["method"])), METHODS)

    def test_json_reloads_into_same_report(self):
        doc = json.loads(Path(self.paths["results_json"]).read_text())
        out = Path(self.tmp.name) / "real"
        paths = write_study_report(doc, out, settings={"dataset": "MIMIC-CXR-JPG 2.0.0"}, demo=False)
        html = Path(paths["report_html"]).read_text(encoding="utf-8")
        self.assertFalse("demo-banner" in html or "DEMO" in html)
        md = Path(paths["summary_md"]).read_text(encoding="utf-8")
        self.assertEqual(md.splitlines()[2], "**MIMIC-CXR-JPG 2.0.0**")
        # the same numbers; the demo file adds its "data" column
        demo_summary = pd.read_csv(self.paths["summary_csv"]).drop(columns="data")
        self.assertEqual(pd.read_csv(paths["summary_csv"]).to_csv(), demo_summary.to_csv())

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "no record"):
            write_study_report(StudyResults(), Path(self.tmp.name) / "empty")
        with self.assertRaisesRegex(ValueError, "metric"):
            write_study_report(self.results, Path(self.tmp.name) / "x", metric="spd")
        with self.assertRaisesRegex(ValueError, "epsilon"):
            write_study_report(self.results, Path(self.tmp.name) / "x", epsilon=0.05)


if __name__ == "__main__":
    unittest.main()
