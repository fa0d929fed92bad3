# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the table formatting and writers."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd
from parameterized import parameterized

from monai_fair.report import (
    StudyResults,
    aggregate_results,
    format_mean_std,
    format_value,
    markdown_table,
    summary_display_table,
    summary_markdown,
    write_csv,
)


def _table_rows(md: str, section: str) -> dict[str, list[str]]:
    """``{method: cells}`` of the Markdown table under ``## <section>``."""
    lines = md.split(f"## {section}", 1)[1].strip().splitlines()[2:]  # skip header and rule
    rows = {}
    for line in lines:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows[cells[0]] = cells[1:]
    return rows


class TestFormat(unittest.TestCase):
    @parameterized.expand(
        [
            ("plain", (0.71234, 0.01234), {}, "0.712 ± 0.012"),
            ("digits", (0.71234, 0.01234), {"digits": 2}, "0.71 ± 0.01"),
            ("nan_mean", (float("nan"), 0.1), {}, "n/a"),
            ("none_mean", (None, None), {}, "n/a"),
            ("single_seed", (0.5, float("nan")), {}, "0.500"),
            ("partial", (0.03, 0.028), {"n": 2, "n_seeds": 3}, "0.030 ± 0.028 (n=2/3)"),
            ("complete", (0.03, 0.028), {"n": 3, "n_seeds": 3}, "0.030 ± 0.028"),
            ("negative", (-0.0456, 0.01), {}, "-0.046 ± 0.010"),
            ("negative_zero", (-0.0001, 0.0), {}, "0.000 ± 0.000"),
        ]
    )
    def test_format_mean_std(self, _, args, kwargs, expected):
        self.assertEqual(format_mean_std(*args, **kwargs), expected)

    def test_format_value(self):
        self.assertEqual(format_value(float("nan")), "n/a")
        self.assertEqual(format_value(np.float64(0.1236), 3), "0.124")


class TestSummaryTables(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.results = StudyResults(metric="eod", epsilon=0.03, methods=["default", "pruning", "broken"])
        cls.values = {  # method -> per-seed (BA, EOD, SPD) on test
            "default": [(0.70, 0.06, 0.02), (0.72, 0.04, 0.00), (0.74, 0.08, 0.01)],
            "pruning": [(0.66, 0.01, -0.01), (0.68, -0.02, 0.00), (0.67, 0.00, 0.02)],
            "broken": [(0.50, float("nan"), 0.0), (0.52, float("nan"), 0.1), (0.51, float("nan"), 0.2)],
        }
        for m, rows in cls.values.items():
            for seed, (ba, eod, spd) in zip((1, 2, 3), rows):
                cls.results.add(seed, m, "test", balanced_accuracy=ba, eod=eod, spd=spd)
                cls.results.add(seed, m, "val", balanced_accuracy=ba + 0.01, eod=eod, spd=spd)
        cls.summary = aggregate_results(cls.results)
        cls.md = summary_markdown(
            cls.summary, data_label="DEMO DATA (synthetic)", metric="eod", epsilon=0.03, title="Pruning study"
        )

    def test_header_and_sections(self):
        lines = self.md.splitlines()
        self.assertEqual(lines[0], "# Pruning study")
        self.assertEqual(lines[2], "**DEMO DATA (synthetic)**")
        self.assertLess(self.md.index("## Test split"), self.md.index("## Validation split"))
        header = self.md.split("## Test split", 1)[1].strip().splitlines()[0]
        self.assertEqual(header, "| method | BA | EOD* | SPD | objective φ | seeds | \\|EOD\\| < 0.03 |")

    def test_numbers_match_numpy(self):
        rows = _table_rows(self.md, "Test split")
        self.assertEqual(list(rows), ["default", "pruning", "broken"])
        for m in ("default", "pruning"):
            v = np.array(self.values[m])
            for col, k in enumerate((0, 1, 2)):
                expected = f"{v[:, k].mean():.3f} ± {v[:, k].std(ddof=1):.3f}".replace("-0.000", "0.000")
                self.assertEqual(rows[m][col], expected, (m, k))
        self.assertEqual(rows["default"][3], "0.000 ± 0.000")  # every seed has |EOD| >= 0.03 -> phi = 0
        self.assertEqual(rows["default"][5], "0/3")
        v = np.array(self.values["pruning"])
        self.assertEqual(rows["pruning"][3], f"{v[:, 0].mean():.3f} ± {v[:, 0].std(ddof=1):.3f}")
        self.assertEqual(rows["pruning"][5], "3/3")
        self.assertEqual(rows["pruning"][4], "3")

    def test_nan_method_renders_na(self):
        rows = _table_rows(self.md, "Test split")
        self.assertEqual(rows["broken"][1], "n/a")  # EOD undefined on every seed
        self.assertEqual(rows["broken"][3], "n/a")  # so is the objective
        self.assertEqual(rows["broken"][5], "n/a")
        self.assertEqual(rows["broken"][0], "0.510 ± 0.010")
        self.assertNotIn("nan", self.md.lower().replace("n/a", ""))

    def test_aod_column_only_when_present(self):
        self.assertNotIn("AOD", summary_display_table(self.summary, "test").columns)
        r = StudyResults(metric="aod")
        r.add(1, "m", "test", balanced_accuracy=0.7, aod=0.01, eod=0.0, spd=0.0)
        table = summary_display_table(aggregate_results(r), "test", metric="aod")
        self.assertIn("AOD*", table.columns)
        self.assertEqual(table["AOD*"].iloc[0], "0.010")

    def test_unknown_split(self):
        with self.assertRaises(ValueError):
            summary_display_table(self.summary, "train")

    def test_markdown_escapes_pipes(self):
        md = markdown_table(pd.DataFrame({"a|b": ["x|y", None]}))
        self.assertIn("a\\|b", md)
        self.assertIn("x\\|y", md)
        self.assertIn("| n/a |", md)

    def test_csv_round_trip(self):
        with tempfile.TemporaryDirectory() as d:
            path = write_csv(self.results.to_dataframe(), Path(d) / "per_seed.csv")
            back = pd.read_csv(path)
        pd.testing.assert_frame_equal(back, self.results.to_dataframe(), check_dtype=False)
        self.assertTrue(back.loc[back["method"] == "broken", "eod"].isna().all())


if __name__ == "__main__":
    unittest.main()
