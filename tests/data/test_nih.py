# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the NIH ChestX-ray14 manifest on the real Data_Entry_2017_v2020.csv shipped in the torchxrayvision wheel
(pandas on the raw columns as the oracle) and on a tiny folder with images and official split lists."""

from __future__ import annotations

import importlib.util
import math
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd
from parameterized import parameterized

from monai_fair.data.codes import UNKNOWN
from monai_fair.data.nih import NIH_LABELS, build_nih_manifest, parse_nih_age
from monai_fair.data.privacy import hash_patient_id


def _txrv_data_dir() -> Path | None:
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    return folder if (folder / "Data_Entry_2017_v2020.csv.gz").is_file() else None


TXRV = _txrv_data_dir()
N_ROWS = 30000


@unittest.skipIf(TXRV is None, "torchxrayvision (with Data_Entry_2017_v2020.csv.gz) is not installed")
class TestRealNIHTable(unittest.TestCase):
    def test_group_counts(self):
        raw = pd.read_csv(TXRV / "Data_Entry_2017_v2020.csv.gz", nrows=N_ROWS)
        with tempfile.TemporaryDirectory() as tmp:
            raw.to_csv(Path(tmp) / "Data_Entry_2017_v2020.csv", index=False)
            m = build_nih_manifest(tmp, check_files=False)
        f = m.frame
        self.assertEqual(len(f), len(raw))
        sex = raw["Patient Gender"].value_counts()
        self.assertEqual(int((f.sex == 1).sum()), sex["M"])
        self.assertEqual(int((f.sex == 0).sum()), sex["F"])
        findings = raw["Finding Labels"].str.split("|").explode().value_counts()
        for name in NIH_LABELS:
            self.assertEqual(int(f[name].sum()), int(findings.get(name, 0)), name)
        self.assertEqual(f.patient_hash.nunique(), raw["Patient ID"].nunique())
        self.assertEqual(f.patient_hash.iloc[0], hash_patient_id(str(raw["Patient ID"].iloc[0])))
        np.testing.assert_allclose(f.age.to_numpy(), raw["Patient Age"].astype(float).to_numpy())
        self.assertEqual(int((f.age_group == 3).sum()), int((raw["Patient Age"] >= 80).sum()))
        self.assertTrue((f.split == "").all())


class TestNIHFolder(unittest.TestCase):
    def test_images_views_splits(self):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            pd.DataFrame(
                {
                    "Image Index": ["a.png", "b.png", "c.png", "d.png"],
                    "Finding Labels": ["Cardiomegaly|Effusion", "No Finding", "Hernia", "Mass"],
                    "Follow-up #": [0, 1, 0, 0],
                    "Patient ID": [1, 1, 2, 3],
                    "Patient Age": ["058Y", "059Y", "414", "030Y"],
                    "Patient Gender": ["M", "M", "F", "F"],
                    "View Position": ["PA", "AP", "PA", "PA"],
                }
            ).to_csv(root / "Data_Entry_2017.csv", index=False)
            (root / "images_001" / "images").mkdir(parents=True)
            for n in ("a.png", "b.png", "c.png"):
                (root / "images_001" / "images" / n).write_bytes(b"x")
            (root / "train_val_list.txt").write_text("a.png\nb.png\n")
            (root / "test_list.txt").write_text("c.png\nd.png\n")
            m = build_nih_manifest(root)
            f = m.frame
            self.assertEqual(len(f), 3)
            self.assertEqual(m.skipped.counts["missing image file"], 1)
            self.assertEqual(f.split.tolist(), ["train", "train", "test"])
            self.assertEqual(f.loc[0, ["Cardiomegaly", "Effusion", "Hernia"]].tolist(), [1.0, 1.0, 0.0])
            self.assertTrue(math.isnan(f.age.iloc[2]))
            self.assertEqual(f.age_group.iloc[2], UNKNOWN)
            self.assertEqual(f.patient_hash.iloc[0], f.patient_hash.iloc[1])
            pa = build_nih_manifest(root, views=["PA"])
            self.assertEqual(pa.skipped.counts["view not in PA"], 1)
            pd.DataFrame(
                {
                    "Image Index": ["x.png"],
                    "Finding Labels": ["Bogus"],
                    "Patient ID": [1],
                    "Patient Age": [3],
                    "Patient Gender": ["M"],
                    "View Position": ["PA"],
                }
            ).to_csv(root / "Data_Entry_2017.csv", index=False)
            with self.assertRaisesRegex(ValueError, "Bogus"):
                build_nih_manifest(root)
        with tempfile.TemporaryDirectory() as tmp:
            with self.assertRaises(FileNotFoundError):
                build_nih_manifest(tmp)

    @parameterized.expand([["058Y", 58.0], [45, 45.0], ["6M", 0.5], ["414", float("nan")], ["x", float("nan")]])
    def test_parse_age(self, value, expected):
        got = parse_nih_age(value)
        if math.isnan(expected):
            self.assertTrue(math.isnan(got))
        else:
            self.assertAlmostEqual(got, expected)


if __name__ == "__main__":
    unittest.main()
