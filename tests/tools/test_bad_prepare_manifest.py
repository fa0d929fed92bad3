# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""tools/prepare_manifest.py on bad input: exit status 2 and one line naming the input and the option, no traceback."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd
from parameterized import parameterized
from PIL import Image

from tests.data.test_bad_dicom import MISSING, REGULAR, write_series
from tools import prepare_manifest as tool


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = tool.main(argv)
    return rc, out.getvalue(), err.getvalue()


class Case(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name)
        self.src = self.root / "in.csv"
        self.out = self.root / "out" / "m.csv"

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, n: int = 8, **columns) -> Path:
        base = {
            "image": [f"{i}.png" for i in range(n)],
            "y": [i % 2 for i in range(n)],
            "sex": ["F", "M"] * (n // 2),
            "patient_id": [f"P{i}" for i in range(n)],
        }
        base.update(columns)
        pd.DataFrame(base).to_csv(self.src, index=False)
        return self.src

    def generic(self, *extra: str) -> tuple[int, str, str]:
        return run(["generic", str(self.src), "--label", "y", "--no-check-files", "--out", str(self.out), *extra])

    def assert_error(self, result, *patterns: str):
        rc, _, err = result
        self.assertEqual(rc, 2, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)  # one line, no traceback
        self.assertTrue(err.startswith("prepare_manifest: error: "), err)
        for p in patterns:
            self.assertRegex(err, p)
        self.assertFalse(self.out.exists())


class TestGenericErrors(Case):
    def test_header_only(self):
        """Regression (silently wrong on the starting commit): an empty manifest was written with exit 0."""
        self.src.write_text("image,y,sex,patient_id\n")
        self.assert_error(self.generic("--attribute", "sex"), r"in\.csv has a header but no rows")

    def test_empty_csv(self):
        self.src.write_bytes(b"")
        self.assert_error(self.generic(), r"in\.csv is empty")

    def test_missing_csv(self):
        self.assert_error(self.generic(), r"in\.csv does not exist")

    def test_missing_attribute(self):
        self.write()
        self.assert_error(self.generic("--attribute", "gender"), r"\['gender'\] not found in .*in\.csv; available")

    def test_numeric_sex_asks_for_names(self):
        self.write(sex=[1, 2] * 4)
        self.assert_error(self.generic("--attribute", "sex"), "is numeric", "--group-names sex:1=M")

    def test_numeric_sex_with_group_names(self):
        self.write(sex=[1, 2] * 4)
        rc, _, err = self.generic("--attribute", "sex", "--group-names", "sex:1=M,2=F")
        self.assertEqual(rc, 0, err)
        self.assertEqual(pd.read_csv(self.out)["sex"].tolist(), [1, 0] * 4)
        self.assertEqual(json.loads(Path(f"{self.out}.codes.json").read_text())["sex"], {"0": "F", "1": "M", "2": "O"})

    @parameterized.expand([("no_colon", "sex"), ("no_pairs", "sex:"), ("no_value", "sex:=M"), ("no_attr", ":1=M"),
                           ("no_name", "sex:1=")])  # fmt: skip
    def test_bad_group_names_syntax(self, _, spec):
        self.write(sex=[1, 2] * 4)
        self.assert_error(self.generic("--attribute", "sex", "--group-names", spec), "--group-names expects")

    @parameterized.expand([("text", "a,b"), ("descending", "60,0"), ("repeated", "0,0")])
    def test_bad_age_bins(self, _, bins):
        self.write(age=[30, 70] * 4)
        self.assert_error(self.generic("--attribute", "age", "--age-bins", bins), "--age-bins must be")

    def test_patient_in_two_splits(self):
        self.write(patient_id=["A", "B", "C", "D", "A", "F", "G", "H"], split=["train"] * 4 + ["test"] * 4)
        self.assert_error(self.generic("--attribute", "sex"), r"1 patient\(s\) shared across splits")

    def test_one_valued_attribute(self):
        self.write(site=["a"] * 8)
        self.assert_error(self.generic("--attribute", "site"), r"attribute 'site' .* 1 known value")
        rc, _, err = self.generic("--attribute", "site", "--min-groups", "1")
        self.assertEqual(rc, 0, err)

    def test_split_missing_group(self):
        self.write(sex=["F", "M", "F", "M", "M", "M", "M", "M"], split=["train"] * 4 + ["test"] * 4)
        self.assert_error(self.generic("--attribute", "sex"), r"split 'test' .* --allow-missing-groups")
        rc, _, err = self.generic("--attribute", "sex", "--allow-missing-groups")
        self.assertEqual(rc, 0, err)

    def test_identifier_attribute(self):
        self.write(mrn=[f"{7000000 + i}" for i in range(8)])
        self.assert_error(self.generic("--attribute", "mrn"), r"'mrn' .* looks like a personal identifier")
        self.assertFalse(Path(f"{self.out}.codes.json").exists())

    def test_no_patient_column_warns(self):
        self.write()
        with self.assertLogs("monai_fair.data.manifest", logging.WARNING) as logs:
            rc, _, err = self.generic("--attribute", "sex", "--patient-column", "pid")
        self.assertEqual(rc, 0, err)
        self.assertIn("leakage between splits cannot be ruled out", "\n".join(logs.output))


class TestBuilders(Case):
    COLUMNS = "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position\n"

    def test_nih_header_only_table(self):
        (self.root / "Data_Entry_2017.csv").write_text(self.COLUMNS)
        self.assert_error(run(["nih", "--dataset_dir", str(self.root), "--out", str(self.out)]), "no usable row from")

    def test_nih_empty_table(self):
        (self.root / "Data_Entry_2017.csv").write_bytes(b"")
        self.assert_error(run(["nih", "--dataset_dir", str(self.root), "--out", str(self.out)]), "could not be read")

    def test_nih_missing_columns(self):
        (self.root / "Data_Entry_2017.csv").write_text("Image Index,Finding Labels\na.png,No Finding\n")
        self.assert_error(
            run(["nih", "--dataset_dir", str(self.root), "--out", str(self.out)]), r"lacks columns \['Patient Age'"
        )


class TestFiles(Case):
    def setUp(self):
        super().setUp()
        folder = self.root / "MRN777_SMITH"
        folder.mkdir()
        for i in range(8):
            Image.fromarray(np.full((8, 8), 10 * i, np.uint8)).save(folder / f"{i}.jpg")
        data = (folder / "3.jpg").read_bytes()
        (folder / "3.jpg").write_bytes(data[: len(data) // 2])  # corrupt
        (folder / "5.jpg").unlink()  # missing
        self.write(image=[f"MRN777_SMITH/{i}.jpg" for i in range(8)])

    def cmd(self, *extra):
        return run(["generic", str(self.src), "--label", "y", "--attribute", "sex", "--out", str(self.out), *extra])

    def test_corrupt_image_skipped_with_reason(self):
        rc, out, err = self.cmd("--verify-images")
        self.assertEqual(rc, 0, err)
        self.assertIn("unreadable image file (OSError: corrupt, truncated or not an image): 1", out)
        self.assertIn("MRN777_SMITH/3.jpg", out)
        self.assertEqual(len(pd.read_csv(self.out)), 6)
        self.assertNotIn(self.tmp.name, out.splitlines()[0])  # the skip report names files relative to the root

    def test_hashed_file_keys(self):
        rc, out, err = self.cmd("--verify-images", "--hashed-file-keys")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("MRN777", out)
        self.assertIn(tool.file_key("MRN777_SMITH/5.jpg"), out)


class TestDicom(Case):
    def test_folder_to_manifest(self):
        data = self.root / "dicom"
        write_series(data / "MRN-0042" / "ct", REGULAR)
        write_series(data / "MRN-0042" / "holed", MISSING)
        (data / "MRN-0042" / "notes.txt").write_text("not dicom")
        rc, out, err = run(["dicom", str(data), "--out", str(self.out)])
        self.assertEqual(rc, 0, err)
        manifest = pd.read_csv(self.out)
        self.assertEqual(manifest["n_slices"].tolist(), [len(REGULAR)])
        self.assertNotIn("MRN-0042", " ".join(map(str, manifest.drop(columns="image").to_numpy().ravel())))
        codes = json.loads(Path(f"{self.out}.codes.json").read_text())
        self.assertEqual(codes["sex"]["0"], "F")
        skipped = pd.read_csv(f"{self.out}.skipped.csv")
        self.assertEqual(len(skipped), len(MISSING) + 1)
        self.assertTrue(all(not f.startswith("/") for f in skipped["file"]))
        self.assertIn("irregular slice spacing", out)

    def test_hashed_file_keys(self):
        data = self.root / "dicom"
        write_series(data / "MRN-0042" / "ct", REGULAR)
        (data / "MRN-0042" / "notes.txt").write_text("not dicom")
        rc, out, err = run(["dicom", str(data), "--out", str(self.out), "--hashed-file-keys"])
        self.assertEqual(rc, 0, err)
        skipped = pd.read_csv(f"{self.out}.skipped.csv")
        self.assertEqual(list(skipped.columns), ["file_key", "reason"])
        self.assertEqual(skipped["file_key"].tolist(), [tool.file_key("MRN-0042/notes.txt")])
        self.assertNotIn("MRN-0042", out)

    def test_with_labels(self):
        data = self.root / "dicom"
        write_series(data / "a", REGULAR)
        labels = self.root / "labels.csv"
        pd.DataFrame({"pid": ["MRN-0042"], "y": [1]}).to_csv(labels, index=False)
        rc, _, err = run(["dicom", str(data), "--labels", str(labels), "--label", "y", "--out", str(self.out)])
        self.assertEqual(rc, 0, err)
        self.assertEqual(pd.read_csv(self.out)["y"].tolist(), [1])

    def test_empty_folder(self):
        (self.root / "empty").mkdir()
        self.assert_error(run(["dicom", str(self.root / "empty"), "--out", str(self.out)]), "no usable DICOM image in")

    def test_not_a_folder(self):
        self.assert_error(run(["dicom", str(self.root / "nope"), "--out", str(self.out)]), r"nope is not a folder")

    def test_labels_without_label(self):
        (self.root / "d").mkdir()
        self.assert_error(
            run(["dicom", str(self.root / "d"), "--labels", "x.csv", "--out", str(self.out)]), "--labels .* --label"
        )


if __name__ == "__main__":
    unittest.main()
