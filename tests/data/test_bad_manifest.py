# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Bad manifests: each ends in an error naming the CSV (and the option that fixes it), never in a silent result."""

from __future__ import annotations

import logging
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd
from parameterized import parameterized
from PIL import Image

from monai_fair.data.codes import UNKNOWN
from monai_fair.data.manifest import read_manifest
from monai_fair.data.sampling import marcinkevics_study_data, resolve_code
from monai_fair.data.splits import patient_level_split


def table(n: int = 8, **columns) -> pd.DataFrame:
    """A small valid manifest: two sexes in every split, one patient per row."""
    base = {
        "image": [f"img/{i}.png" for i in range(n)],
        "label": [i % 2 for i in range(n)],
        "sex": ["F", "M"] * (n // 2),
        "patient_id": [f"P{i}" for i in range(n)],
        "split": ["train"] * (n // 2) + ["test"] * (n // 2),
    }
    base.update(columns)
    return pd.DataFrame(base)


class Case(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name)
        self.csv = self.root / "manifest.csv"

    def tearDown(self):
        self.tmp.cleanup()

    def read(self, frame: pd.DataFrame | None = None, attrs=("sex",), **kwargs):
        if frame is not None:
            frame.to_csv(self.csv, index=False)
        return read_manifest(self.csv, "label", list(attrs), check_files=kwargs.pop("check_files", False), **kwargs)


class TestEmptyAndUnreadable(Case):
    def test_header_only(self):
        """Regression (silently wrong on the starting commit): an empty manifest came back, and exit 0."""
        self.csv.write_text("image,label,sex,patient_id\n")
        with self.assertRaisesRegex(ValueError, r"manifest\.csv has a header but no rows"):
            self.read()

    def test_empty_file(self):
        self.csv.write_bytes(b"")
        with self.assertRaisesRegex(ValueError, r"manifest CSV .*manifest\.csv is empty"):
            self.read()

    def test_not_text(self):
        self.csv.write_bytes("image,label\n".encode("utf-16"))
        with self.assertRaisesRegex(ValueError, r"manifest\.csv"):
            self.read(attrs=())

    def test_every_row_skipped(self):
        table().to_csv(self.csv, index=False)
        with self.assertRaisesRegex(ValueError, r"no usable row left in manifest .*manifest\.csv.*missing image file"):
            self.read(check_files=True)

    def test_missing_file(self):
        with self.assertRaisesRegex(FileNotFoundError, r"gone\.csv does not exist"):
            read_manifest(self.root / "gone.csv", "label")

    @parameterized.expand([("label", "nope", ["sex"], KeyError, "label column"), ("attribute", "label", ["race"],
                           KeyError, r"attribute column\(s\) \['race'\] not found .*available")])  # fmt: skip
    def test_missing_column(self, _, label, attrs, error, pattern):
        table().to_csv(self.csv, index=False)
        with self.assertRaisesRegex(error, pattern):
            read_manifest(self.csv, label, attrs, check_files=False)

    def test_text_label(self):
        with self.assertRaisesRegex(ValueError, "label column 'label' has non-numeric values, e.g. 'yes'"):
            self.read(table(label=["yes", "no"] * 4))

    def test_no_label_columns(self):
        with self.assertRaisesRegex(ValueError, "at least one label column"):
            read_manifest(self.csv, [], [])


class TestLeakage(Case):
    def test_patient_in_train_and_test(self):
        """Regression (silently wrong on the starting commit): a patient in two given splits passed unnoticed."""
        ids = ["MRN1234567"] + [f"P{i}" for i in range(1, 7)] + ["MRN1234567"]
        with self.assertRaisesRegex(ValueError, r"manifest\.csv: 1 patient\(s\) shared across splits") as ctx:
            self.read(table(patient_id=ids))
        self.assertNotIn("MRN1234567", str(ctx.exception))  # hashed IDs only

    def test_stored_hash_leakage(self):
        frame = table().drop(columns="patient_id").assign(patient_hash=["h0", "h1", "h2", "h3", "h0", "h5", "h6", "h7"])
        with self.assertRaisesRegex(ValueError, "1 patient"):
            self.read(frame)

    def test_opt_out(self):
        ids = ["A"] + [f"P{i}" for i in range(1, 7)] + ["A"]
        self.assertEqual(len(self.read(table(patient_id=ids), check_leakage=False).frame), 8)


class TestGroups(Case):
    def test_one_value(self):
        with self.assertRaisesRegex(ValueError, r"attribute 'sex' in .*manifest\.csv has 1 known value\(s\) \['M'\]"):
            self.read(table(sex=["M"] * 8))

    def test_one_value_after_skips(self):
        frame = table(label=[1, 0, 1, 0, 1, 0, 1, 0], sex=["F"] + ["M"] * 7)
        frame.loc[0, "label"] = None  # the only F row is skipped
        with self.assertRaisesRegex(ValueError, r"1 known value\(s\) \['M'\] after skips"):
            self.read(frame)

    def test_split_without_a_group(self):
        frame = table(sex=["F", "M", "F", "M", "M", "M", "M", "M"])
        with self.assertRaisesRegex(ValueError, r"split 'test' of .*manifest\.csv has no row of sex = \['F'\].*allow"):
            self.read(frame)

    def test_split_without_a_group_opt_out(self):
        frame = table(sex=["F", "M", "F", "M", "M", "M", "M", "M"])
        self.assertEqual(len(self.read(frame, check_split_groups=False).frame), 8)

    def test_numeric_sex_needs_names(self):
        with self.assertRaisesRegex(ValueError, r"sex column in .*manifest\.csv is numeric \(values \['1', '2'\]\).*"
                                    r"--group-names"):  # fmt: skip
            self.read(table(sex=[1, 2] * 4))

    def test_numeric_sex_with_names(self):
        m = self.read(table(sex=[1, 2] * 4), group_names={"sex": {1: "M", 2: "F"}})
        self.assertEqual(m.frame["sex"].tolist(), [1, 0] * 4)
        self.assertEqual(m.code_maps["sex"], {0: "F", 1: "M", 2: "O"})

    def test_group_names_missing_a_value(self):
        with self.assertRaisesRegex(ValueError, r"values \['3'\] are not in the given group names"):
            self.read(table(sex=[1, 2, 3, 1, 2, 3, 1, 2]), group_names={"sex": {1: "M", 2: "F"}})

    def test_group_names_for_unknown_attribute(self):
        with self.assertRaisesRegex(ValueError, r"group names given for \['race'\]"):
            self.read(table(), group_names={"race": {1: "A"}})

    @parameterized.expand([("intersex", "Intersex"), ("x", "X"), ("digit_in_text", "2")])
    def test_unrecognised_sex_spelling(self, _, value):
        with self.assertRaisesRegex(ValueError, rf"\['{value}'\] that are not among the accepted spellings"):
            self.read(table(sex=["F", "M", value, "M", "F", "M", "F", "M"]))

    @parameterized.expand(
        [
            ("words", ["female", "male"], [0, 1]),
            ("capitals", ["FEMALE", "MALE"], [0, 1]),
            ("woman_man", ["Woman", "Man"], [0, 1]),
            ("letters_spaced", [" f ", "m"], [0, 1]),
            ("unknown_markers", ["Unknown", "M", "F", "U"], [UNKNOWN, 1, 0, UNKNOWN]),
        ]
    )
    def test_sex_spellings(self, _, values, codes):
        n = 8
        m = self.read(table(sex=(values * n)[:n]))
        self.assertEqual(m.frame["sex"].tolist(), (codes * n)[:n])


class TestIdentifierAttributes(Case):
    @parameterized.expand(
        [
            ("mrn_digits", "mrn", [f"{1000000 + i}" for i in range(8)], "look like identifiers"),
            ("accession", "accession", [f"ACC{5550000 + i}" for i in range(8)], "look like identifiers"),
            ("named_unique", "patient_name", [f"Doe^J{i}" for i in "abcdefgh"], "name suggests an identifier"),
            ("free_text_unique", "comment", [f"note {i}" for i in range(30)], "nearly unique per row"),
        ]
    )
    def test_refused(self, _, column, values, why):
        n = len(values)
        frame = table(n=n, **{column: values})
        pattern = rf"attribute column '{column}' in .*manifest\.csv looks like a personal identifier \(.*{why}"
        with self.assertRaisesRegex(ValueError, pattern):
            self.read(frame, attrs=("sex", column))
        self.assertFalse((self.root / "manifest.csv.codes.json").exists())

    def test_site_id_is_fine(self):
        m = self.read(table(site_id=["a", "b"] * 4), attrs=("sex", "site_id"))
        self.assertEqual(m.code_maps["site_id"], {0: "a", 1: "b"})


class TestPatients(Case):
    def test_no_patient_column_warns(self):
        with self.assertLogs("monai_fair.data.manifest", logging.WARNING) as logs:
            self.read(table().drop(columns="patient_id"))
        self.assertIn("patient leakage between splits cannot be ruled out", "\n".join(logs.output))

    def test_split_without_patients_errors_with_option(self):
        with self.assertRaisesRegex(KeyError, "missing_patient='image'"):
            patient_level_split(table().drop(columns="patient_id"))

    def test_split_by_image(self):
        frame = table(n=20).drop(columns=["patient_id", "split"])
        with self.assertLogs("monai_fair.data.splits", logging.WARNING) as logs:
            out = patient_level_split(frame, missing_patient="image")
        self.assertIn("leakage", logs.output[0])
        self.assertEqual(out["split"].value_counts().to_dict(), {"train": 10, "val": 5, "test": 5})
        self.assertNotIn("patient_hash", out.columns)

    def test_bad_missing_patient(self):
        with self.assertRaisesRegex(ValueError, "missing_patient must be"):
            patient_level_split(table(), missing_patient="rows")

    def test_skip_examples_relative(self):
        """Image folders named after patients must not reach the report as absolute paths."""
        frame = table(image=[f"MRN123_DOE/{i}.png" for i in range(8)])
        (self.root / "MRN123_DOE").mkdir()
        for i in range(1, 8):
            (self.root / "MRN123_DOE" / f"{i}.png").write_bytes(b"x")
        m = self.read(frame, check_files=True, check_split_groups=False)
        self.assertEqual(m.skipped.examples["missing image file"], ["MRN123_DOE/0.png"])
        self.assertNotIn(self.tmp.name, m.skipped.summary())


class TestReference(unittest.TestCase):
    SEX = {0: "F", 1: "M", 2: "O"}

    @parameterized.expand([("male", 1), ("Female", 0), ("woman", 0), ("M", 1), ("1", 1)])
    def test_sex_spellings_resolve(self, value, code):
        self.assertEqual(resolve_code(value, self.SEX, "privileged group"), code)

    def test_unknown_name_lists_accepted(self):
        with self.assertRaisesRegex(ValueError, r"'mael' is not a code or a name .*accepted names: .*'Male'"):
            resolve_code("mael", self.SEX, "privileged group")

    def test_no_code_map(self):
        with self.assertRaisesRegex(ValueError, r"'M' is a name, but the attribute has no code map.*--group-names"):
            resolve_code("M", {}, "privileged group")

    def test_study_data_skips_corrupt_images(self):
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "m.csv"
            frame = table(n=40, split=["x"] * 40)
            for i, name in enumerate(frame["image"]):
                (Path(tmp) / name).parent.mkdir(exist_ok=True)
                Image.fromarray(np.full((8, 8), i, np.uint8)).save(Path(tmp) / name)
            (Path(tmp) / frame["image"][3]).write_bytes(b"\x89PNG broken")
            frame.to_csv(csv, index=False)
            with self.assertLogs("monai_fair.data.manifest", logging.WARNING) as logs:
                data, _ = marcinkevics_study_data(manifest=csv, attribute="sex", seed=0, verify_images=True)
        images = [d["image"] for v in data.values() for d in v]
        self.assertFalse(any(p.endswith("img/3.png") for p in images))
        self.assertIn("unreadable image file", "\n".join(logs.output))
        self.assertIn("img/3.png", "\n".join(logs.output))

    def test_study_data_missing_attribute(self):
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "m.csv"
            table().to_csv(csv, index=False)
            with self.assertRaisesRegex(KeyError, r"attribute column 'gender' not found in .*m\.csv; available"):
                marcinkevics_study_data(manifest=csv, attribute="gender", check_files=False)


if __name__ == "__main__":
    unittest.main()
