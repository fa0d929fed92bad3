# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Outputs computed on demo data say so in every file: results.json, the CSVs and the PNG titles."""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import pandas as pd

from monai_fair.report import StudyResults, study_plots, write_study_report
from tests.report.test_study_report import _study

LABEL = "DEMO DATA (synthetic)"


class TestDemoLabels(unittest.TestCase):
    def _write(self, demo: bool) -> tuple[dict[str, str], list[str]]:
        titles: list[str] = []
        real_save = study_plots._save

        def save(fig, path):
            texts = [fig._suptitle.get_text()] if fig._suptitle is not None else []
            texts += [ax.get_title() for ax in fig.axes]
            titles.append(" | ".join(t for t in texts if t))
            return real_save(fig, path)

        with mock.patch.object(study_plots, "_save", save):
            paths = write_study_report(_study(), Path(self.tmp.name) / str(demo), demo=demo)
        return paths, titles

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_demo_everywhere(self):
        paths, titles = self._write(demo=True)
        doc = json.loads(Path(paths["results_json"]).read_text())
        self.assertEqual(doc["data"], LABEL)
        self.assertEqual(len(StudyResults.from_dict(doc)), len(_study()))  # still loads
        for key in ("results_per_seed_csv", "summary_csv"):
            table = pd.read_csv(paths[key])
            self.assertEqual(table.columns[0], "data", key)
            self.assertEqual(set(table["data"]), {LABEL}, key)
        self.assertEqual(len(titles), sum(p.endswith(".png") for p in paths.values()))
        for title in titles:
            self.assertIn(LABEL, title)

    def test_real_data_unlabelled(self):
        paths, titles = self._write(demo=False)
        self.assertNotIn("data", json.loads(Path(paths["results_json"]).read_text()))
        self.assertNotIn("data", pd.read_csv(paths["results_per_seed_csv"]).columns)
        self.assertFalse([t for t in titles if "DEMO" in t])


if __name__ == "__main__":
    unittest.main()
