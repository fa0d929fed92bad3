# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the NIfTI folder + demographics CSV manifest builder, loading through MONAI's NibabelReader."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import unittest

import nibabel as nib
import numpy as np
import pandas as pd
from monai.data import DataLoader, Dataset
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged

from monai_fair.data.codes import UNKNOWN
from monai_fair.data.manifest import frame_to_data_dicts
from monai_fair.data.nifti_manifest import build_nifti_manifest, nifti_id
from monai_fair.data.privacy import hash_patient_id


def save_nifti(path: str, value: float, shape=(6, 7, 5), gz: bool = True) -> None:
    data = np.full(shape, value, dtype=np.float32)
    data[0, 0, 0] = value + 1  # so orientation/indexing is checkable
    nib.save(nib.Nifti1Image(data, np.diag([1.5, 1.5, 2.0, 1.0])), path)


class TestNiftiManifest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.images = os.path.join(self.tmp, "images")
        os.makedirs(os.path.join(self.images, "sub"))
        save_nifti(os.path.join(self.images, "S001.nii.gz"), 1.0)
        save_nifti(os.path.join(self.images, "sub", "S002.nii"), 2.0)  # nested, uncompressed
        save_nifti(os.path.join(self.images, "S003.nii.gz"), 3.0)
        save_nifti(os.path.join(self.images, "S004.nii.gz"), 4.0)
        save_nifti(os.path.join(self.images, "S099.nii.gz"), 9.0)  # no CSV row
        save_nifti(os.path.join(self.images, "S005.nii.gz"), 5.0)
        with open(os.path.join(self.images, "S006.nii.gz"), "wb") as f:
            f.write(b"not a nifti")
        save_nifti(os.path.join(self.images, "S007.nii"), 7.0)
        with open(os.path.join(self.images, "S007.nii"), "r+b") as f:
            f.truncate(400)  # header intact, voxels cut
        with open(os.path.join(self.images, "readme.txt"), "w") as f:
            f.write("ignored")
        self.csv = os.path.join(self.tmp, "demographics.csv")
        pd.DataFrame(
            {
                "id": ["S001", "S002", "S003", "S004", "S005", "S006", "S007", "S010", "S005", None],
                "sex": ["F", "male", "X", "M", "F", "M", "F", "F", "M", "F"],
                "age": ["64", "065Y", "abc", "150", "30", "40", "50", "60", "70", "80"],
                "race": ["White", "Black", "White", None, "Asian", "White", "White", "White", "White", "White"],
                "label": [1, 0, 1, 0, 1, 0, 1, 0, 1, 1],
            }
        ).to_csv(self.csv, index=False)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_join_and_skips(self):
        m = build_nifti_manifest(self.images, self.csv, label_columns=["label"], category_columns=["race"])
        frame = m.frame
        self.assertEqual(
            [os.path.basename(p) for p in frame["image"]], ["S001.nii.gz", "S002.nii", "S003.nii.gz", "S004.nii.gz"]
        )
        self.assertEqual(frame["sex"].tolist(), [0, 1, UNKNOWN, 1])
        self.assertEqual(frame["age"].tolist()[:2], [64.0, 65.0])
        self.assertTrue(math.isnan(frame["age"][2]) and math.isnan(frame["age"][3]))  # "abc", 150
        self.assertEqual(frame["age_group"].tolist(), [2, 2, UNKNOWN, UNKNOWN])
        self.assertIn("sex:", frame["demographics_note"][2])
        self.assertIn("age:", frame["demographics_note"][3])
        self.assertEqual(frame["patient_hash"].tolist(), [hash_patient_id(f"S00{i}") for i in range(1, 5)])
        self.assertEqual(m.code_maps["race"], {0: "Black", 1: "White"})
        self.assertEqual(frame["race"].tolist(), [1, 0, 1, UNKNOWN])
        self.assertEqual(frame["label"].tolist(), [1, 0, 1, 0])
        counts = m.skipped.counts
        self.assertEqual(counts["id repeated in csv (all its rows skipped)"], 2)  # S005 twice
        self.assertEqual(counts["csv row without id"], 1)
        self.assertEqual(counts["no demographics row for this file"], 2)  # S099 and S005 (its rows are ambiguous)
        self.assertEqual(counts["unreadable NIfTI header"], 1)  # S006
        self.assertEqual(counts["NIfTI file shorter than its header says (truncated)"], 1)  # S007
        self.assertEqual(counts["csv row without an image file"], 3)  # S006, S007 (skipped files) and S010
        # skip examples name files and CSV rows, never ids
        examples = " ".join(" ".join(v) for v in m.skipped.examples.values())
        self.assertNotIn("S010", examples)
        self.assertIn("S099.nii.gz", examples)
        self.assertNotIn("id", [c for c in frame.columns])

    def test_loads_with_nibabel_reader(self):
        m = build_nifti_manifest(self.images, self.csv, label_columns=["label"])
        data = frame_to_data_dicts(m.frame, "label", ["sex", "age", "age_group"])
        pipeline = Compose([LoadImaged(keys="image", reader="NibabelReader"), EnsureChannelFirstd(keys="image")])
        batch = next(iter(DataLoader(Dataset(data, transform=pipeline), batch_size=4)))
        self.assertEqual(tuple(batch["image"].shape), (4, 1, 6, 7, 5))
        np.testing.assert_allclose(batch["image"][:, 0, 1, 1, 1].numpy(), [1.0, 2.0, 3.0, 4.0])
        np.testing.assert_allclose(batch["image"][:, 0, 0, 0, 0].numpy(), [2.0, 3.0, 4.0, 5.0])
        self.assertEqual(batch["sex"].tolist(), [0, 1, UNKNOWN, 1])

    def test_sex_map_and_id_pattern(self):
        folder = os.path.join(self.tmp, "bids")
        os.makedirs(folder)
        save_nifti(os.path.join(folder, "sub-12_T1w.nii.gz"), 1.0)
        save_nifti(os.path.join(folder, "sub-13_T1w.nii.gz"), 2.0)
        table = pd.DataFrame({"pid": [12, 13], "gender": [1, 2], "age": [61.5, 70]})
        m = build_nifti_manifest(
            folder, table, id_column="pid", sex_column="gender", sex_map={1: "M", 2: "F"}, id_pattern=r"^sub-(\d+)_"
        )
        self.assertEqual(m.frame["sex"].tolist(), [1, 0])
        self.assertEqual(m.frame["age"].tolist(), [61.5, 70.0])
        self.assertEqual(nifti_id("a/sub-12_T1w.nii.gz", r"^sub-(\d+)_"), "12")
        self.assertIsNone(nifti_id("a/x.mgz"))

    def test_errors(self):
        with self.assertRaises(NotADirectoryError):
            build_nifti_manifest(os.path.join(self.tmp, "nope"), self.csv)
        with self.assertRaises(FileNotFoundError):
            build_nifti_manifest(self.images, os.path.join(self.tmp, "nope.csv"))
        with self.assertRaises(KeyError):
            build_nifti_manifest(self.images, self.csv, sex_column="gender")
        with self.assertRaises(ValueError):
            build_nifti_manifest(self.images, self.csv, label_columns=["race"])


if __name__ == "__main__":
    unittest.main()
