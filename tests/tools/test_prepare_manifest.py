# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""tools/prepare_manifest.py run in-process on the demo datasets and a generic CSV; outputs reloaded."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import tempfile
import unittest
from pathlib import Path

import pandas as pd

from monai_fair.data.demo.chexpert import make_chexpert_demo
from monai_fair.data.demo.mimic_cxr import make_mimic_cxr_demo
from monai_fair.data.manifest import code_maps_path, load_manifest
from monai_fair.data.sampling import marcinkevics_study_data

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("fair_prepare_manifest_tool", REPO / "tools" / "prepare_manifest.py")
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)


def _run(argv: list[str]) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert tool.main(argv) == 0
    return buf.getvalue()


class TestPrepareManifest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = Path(cls.tmp.name)
        cls.mimic = make_mimic_cxr_demo(cls.dir / "mimic", seed=0, n_subjects=40, image_size=16)
        cls.chexpert = make_chexpert_demo(cls.dir / "chx", seed=0, n_patients=20, n_valid_patients=3, image_size=16)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_mimic_then_marcinkevics_from_manifest(self):
        out = self.dir / "m.csv"
        text = _run(
            ["mimic_cxr", "--dataset_dir", str(self.mimic), "--task", "Enlarged Cardiomediastinum", "--out", str(out)]
        )
        self.assertIn("view not in PA/AP", text)
        table = pd.read_csv(out)
        for col in ("image", "label", "sex", "age", "age_group", "race", "insurance", "patient_hash", "split"):
            self.assertIn(col, table.columns)
        for col in ("subject_id", "study_id", "dicom_id", "StudyDate"):
            self.assertNotIn(col, table.columns)
        maps = json.loads(code_maps_path(out).read_text())
        self.assertEqual(maps["sex"]["1"], "M")
        data, cmaps = marcinkevics_study_data(manifest=out, seed=0)
        direct, _ = marcinkevics_study_data(dataset_dir=self.mimic, seed=0)
        self.assertEqual([d["image"] for d in data["train"]], [d["image"] for d in direct["train"]])
        self.assertEqual(cmaps["race"][0], "WHITE")

    def test_chexpert_and_all_views(self):
        out = self.dir / "c.csv"
        _run(["chexpert", "--dataset_dir", str(self.chexpert), "--uncertain", "ones", "--out", str(out)])
        frontal = pd.read_csv(out)
        _run(["chexpert", "--dataset_dir", str(self.chexpert), "--all-views", "--out", str(out)])
        self.assertGreater(len(pd.read_csv(out)), len(frontal))
        self.assertFalse(frontal["Edema"].isna().any())  # U-Ones: no NaN left

    def test_nih(self):
        nih = self.dir / "nih"
        (nih / "images").mkdir(parents=True)
        (nih / "images" / "a.png").write_bytes(b"x")
        pd.DataFrame(
            {
                "Image Index": ["a.png"],
                "Finding Labels": ["Edema"],
                "Patient ID": [7],
                "Patient Age": [40],
                "Patient Gender": ["F"],
                "View Position": ["PA"],
            }
        ).to_csv(nih / "Data_Entry_2017.csv", index=False)
        out = self.dir / "n.csv"
        _run(["nih", "--dataset_dir", str(nih), "--out", str(out)])
        self.assertEqual(pd.read_csv(out)["Edema"].tolist(), [1.0])

    def test_generic(self):
        src = self.dir / "g" / "in.csv"
        src.parent.mkdir()
        (src.parent / "x.png").write_bytes(b"x")
        pd.DataFrame(
            {"path": ["x.png", "missing.png"], "y": [1, 0], "site": ["b", "a"], "age": [70, 30], "pid": ["A1", "A2"]}
        ).to_csv(src, index=False)
        out = self.dir / "g" / "out.csv"
        text = _run(
            [
                "generic",
                str(src),
                "--label",
                "y",
                "--attribute",
                "site",
                "--attribute",
                "age",
                "--image-column",
                "path",
                "--patient-column",
                "pid",
                "--age-bins",
                "0,60",
                "--min-groups",
                "1",
                "--out",
                str(out),
            ]
        )
        self.assertIn("missing image file: 1", text)
        table = pd.read_csv(out)
        self.assertNotIn("pid", table.columns)
        self.assertEqual(table.site.tolist(), [1])
        data, maps = load_manifest(out, "y", ["site", "age_group"], min_groups=1)
        self.assertEqual(maps["site"], {0: "a", 1: "b"})
        self.assertEqual(data[0]["age_group"], 1)
        with contextlib.redirect_stderr(io.StringIO()):
            with self.assertRaises(SystemExit):
                tool.main(["generic", str(src), "--out", str(out)])  # --label is required


if __name__ == "__main__":
    unittest.main()
