# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the CheXpert manifest: label policies, the real CheXpert train.csv shipped in the torchxrayvision wheel
(pandas value_counts on the raw columns as the oracle), and the demo dataset round trip."""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd

from monai_fair.data.chexpert import (
    CHEXPERT_LABELS,
    apply_uncertainty_policy,
    binary_disease_task,
    build_chexpert_manifest,
    read_chexpert_demographics,
)
from monai_fair.data.codes import UNKNOWN
from monai_fair.data.demo.chexpert import make_chexpert_demo
from monai_fair.data.sampling import joshi_race_splits
from monai_fair.data.splits import patient_overlap


def _txrv_data_dir() -> Path | None:
    """The torchxrayvision data folder, found without importing the package (it needs torchvision)."""
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    return folder if folder.is_dir() else None


TXRV = _txrv_data_dir()
N_ROWS = 15000  # a prefix of the real table keeps the test fast; the oracle reads the same prefix


class TestLabelPolicies(unittest.TestCase):
    def test_policies(self):
        df = pd.DataFrame({"a": [1.0, 0.0, -1.0, np.nan]})
        out = apply_uncertainty_policy(df, ["a"], "ignore", "zeros")["a"].tolist()
        self.assertEqual(out[:2] + out[3:], [1.0, 0.0, 0.0])
        self.assertTrue(np.isnan(out[2]))
        self.assertEqual(apply_uncertainty_policy(df, ["a"], "zeros")["a"].tolist(), [1.0, 0.0, 0.0, 0.0])
        self.assertEqual(apply_uncertainty_policy(df, ["a"], "ones")["a"].tolist(), [1.0, 0.0, 1.0, 0.0])
        out = apply_uncertainty_policy(df, ["a"], "ones", blank="ignore")["a"]
        self.assertTrue(np.isnan(out.iloc[3]))
        self.assertEqual(df["a"].iloc[2], -1.0)  # input untouched
        with self.assertRaises(ValueError):
            apply_uncertainty_policy(df, ["a"], "maybe")
        with self.assertRaises(ValueError):
            apply_uncertainty_policy(pd.DataFrame({"a": [2.0]}), ["a"])

    def test_binary_task(self):
        df = pd.DataFrame({"D": [1, -1, np.nan, 0, np.nan, 1], "No Finding": [np.nan, np.nan, 1, 1, np.nan, 1]})
        kept, excluded = binary_disease_task(df, "D")
        self.assertEqual(kept.index.tolist(), [0, 2, 3, 5])
        self.assertEqual(kept.label.tolist(), [1.0, 0.0, 0.0, 1.0])
        self.assertEqual(excluded, 2)
        with self.assertRaises(KeyError):
            binary_disease_task(df, "E")


@unittest.skipIf(
    TXRV is None or not (TXRV / "chexpert_train.csv.gz").is_file() if TXRV else True,
    "torchxrayvision (with its chexpert_train.csv.gz) is not installed",
)
class TestRealCheXpertTable(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.root = Path(cls.tmp.name) / "CheXpert-v1.0-small"
        cls.root.mkdir()
        cls.raw = pd.read_csv(TXRV / "chexpert_train.csv.gz", nrows=N_ROWS)
        cls.raw.to_csv(cls.root / "train.csv", index=False)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_group_counts(self):
        m = build_chexpert_manifest(self.root, csv_names=("train.csv",), check_files=False)
        frontal = self.raw[self.raw["Frontal/Lateral"] == "Frontal"]
        self.assertEqual(len(m.frame), len(frontal))
        self.assertEqual(m.skipped.counts["lateral view"], int((self.raw["Frontal/Lateral"] == "Lateral").sum()))
        sex = frontal["Sex"].value_counts()
        got = m.frame.sex.value_counts()
        self.assertEqual(got.get(1, 0), sex.get("Male", 0))
        self.assertEqual(got.get(0, 0), sex.get("Female", 0))
        self.assertEqual(got.get(UNKNOWN, 0), len(frontal) - sex.get("Male", 0) - sex.get("Female", 0))
        self.assertEqual(m.frame.patient_hash.nunique(), frontal.Path.str.extract(r"(patient\d+)")[0].nunique())
        for label in ("Edema", "Pleural Effusion"):
            self.assertEqual(int((m.frame[label] == 1).sum()), int((frontal[label] == 1).sum()))
            self.assertEqual(int(m.frame[label].isna().sum()), int((frontal[label] == -1).sum()))
        self.assertTrue((m.frame.race == UNKNOWN).all())  # no demographics table next to it
        self.assertEqual(m.skipped.counts["no demographics table (race unknown)"], len(frontal))
        self.assertTrue(m.frame.image.iloc[0].startswith(str(self.root)))
        self.assertTrue(m.frame.image.iloc[0].endswith(frontal.Path.iloc[0].split("/", 1)[1]))
        ages = pd.to_numeric(frontal.Age, errors="coerce")
        np.testing.assert_allclose(m.frame.age.to_numpy(), ages.to_numpy())

    def test_missing_files_are_counted(self):
        m = build_chexpert_manifest(self.root, csv_names=("train.csv",))
        self.assertEqual(len(m.frame), 0)
        self.assertEqual(m.skipped.counts["missing image file"], int((self.raw["Frontal/Lateral"] == "Frontal").sum()))


class TestCheXpertDemo(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.root = make_chexpert_demo(
            Path(cls.tmp.name) / "chx", seed=1, n_patients=80, n_valid_patients=8, image_size=32
        )
        cls.train = pd.read_csv(cls.root / "CheXpert-v1.0-small" / "train.csv")
        cls.demo = pd.read_csv(cls.root / "CHEXPERT DEMO.csv")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_layout_and_round_trip(self):
        self.assertEqual(list(self.train.columns[:5]), ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA"])
        self.assertEqual(list(self.train.columns[5:]), list(CHEXPERT_LABELS))
        self.assertTrue(self.train.Path.str.match(r"CheXpert-v1.0-small/train/patient\d{5}/study\d+/view\d_").all())
        m = build_chexpert_manifest(self.root)  # resolves CheXpert-v1.0-small/ and finds the demo table in root
        f = m.frame
        frontal = self.train[self.train["Frontal/Lateral"] == "Frontal"]
        self.assertEqual(int((f.split == "train").sum()), len(frontal))
        self.assertGreater(int((f.split == "val").sum()), 0)
        # race oracle: the demo table's PRIMARY_RACE, grouped by hand
        hand = {
            "White": 0,
            "White, non-Hispanic": 0,
            "White or Caucasian": 0,
            "White, Hispanic": 0,
            "Black or African American": 1,
            "Black, non-Hispanic": 1,
            "Asian": 2,
            "Asian, non-Hispanic": 2,
            "Other": 3,
            "Native Hawaiian or Other Pacific Islander": 3,
            "Native American, non-Hispanic": 3,
            "Unknown": UNKNOWN,
            "Patient Refused": UNKNOWN,
        }
        race_of = self.demo.set_index("PATIENT").PRIMARY_RACE.map(hand)
        patient = frontal.Path.str.extract(r"(patient\d+)")[0]
        expected = patient.map(race_of).fillna(UNKNOWN).astype(int).to_numpy()
        np.testing.assert_array_equal(f[f.split == "train"].race.to_numpy(), expected)
        self.assertEqual(m.code_maps["race"], {0: "White", 1: "Black", 2: "Asian", 3: "Other"})
        self.assertTrue(all(Path(p).is_file() for p in f.image))
        img = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(f.image.iloc[0]))
        self.assertGreater(img.shape[0], img.shape[1])  # CheXpert-like: taller than wide
        info = json.loads((self.root / "DEMO_COMPLETE.json").read_text())
        self.assertLess(info["race_cue_gain"]["Black"], 1.0)

    def test_explicit_table_and_joshi(self):
        m = build_chexpert_manifest(self.root / "CheXpert-v1.0-small", self.root / "CHEXPERT DEMO.csv")
        out = joshi_race_splits(m.frame, target_race=0, test_fraction=0.25, seed=0)
        self.assertTrue((out["train_single"].race == 0).all())
        self.assertEqual(
            patient_overlap({k: out[k] for k in ("train_mixed", "test_same", "test_other")}),
            {("train_mixed", "test_same"): 0, ("train_mixed", "test_other"): 0, ("test_same", "test_other"): 0},
        )
        task = build_chexpert_manifest(self.root, task="Cardiomegaly")
        self.assertTrue(set(task.frame.label.unique()) <= {0.0, 1.0})

    def test_demographics_errors(self):
        with tempfile.TemporaryDirectory() as tmp:
            with self.assertRaises(FileNotFoundError):
                read_chexpert_demographics(Path(tmp) / "none.csv")
            bad = Path(tmp) / "t.csv"
            pd.DataFrame({"PATIENT": ["patient00001"]}).to_csv(bad, index=False)
            with self.assertRaisesRegex(KeyError, "PRIMARY_RACE"):
                read_chexpert_demographics(bad)
            xlsx = Path(tmp) / "CHEXPERT DEMO.xlsx"
            xlsx.write_bytes(b"not really")
            if importlib.util.find_spec("openpyxl") is None:
                with self.assertRaisesRegex(ImportError, "openpyxl"):
                    read_chexpert_demographics(xlsx)
            with self.assertRaises(FileNotFoundError):
                build_chexpert_manifest(tmp)
            shutil.copytree(self.root / "CheXpert-v1.0-small", Path(tmp) / "c", ignore=shutil.ignore_patterns("*.jpg"))
            (Path(tmp) / "c" / "valid.csv").unlink()
            with self.assertRaises(FileNotFoundError):
                build_chexpert_manifest(Path(tmp) / "c")


if __name__ == "__main__":
    unittest.main()
