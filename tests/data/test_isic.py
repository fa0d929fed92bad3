# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""ISIC 2018 / HAM10000 and ISIC 2017 manifests: labels, codes, unknowns, lesion hashing, ITA join, bad input."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd

from monai_fair.data.codes import UNKNOWN, encode_sex
from monai_fair.data.demo.isic import make_isic_demo
from monai_fair.data.isic import ISIC2017_DX, ISIC2018_DX, build_isic2017_manifest, build_isic2018_manifest
from monai_fair.data.privacy import hash_patient_id

SHARED_VAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "isic2017_val"


class TestISIC2018Manifest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.root = make_isic_demo(Path(cls.tmp.name) / "demo", seed=2, n_lesions=25, repeat_prob=0.4)
        cls.meta = pd.read_csv(cls.root / "HAM10000_metadata.csv", dtype=str)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_from_metadata(self):
        m = build_isic2018_manifest(self.root, salt="s")
        f = m.frame
        self.assertEqual(len(f), len(self.meta))
        self.assertEqual(f["image_id"].tolist(), self.meta["image_id"].tolist())
        self.assertTrue(all(Path(p).is_file() and Path(p).stem == i for p, i in zip(f["image"], f["image_id"])))
        self.assertEqual([ISIC2018_DX[c] for c in f["dx"]], self.meta["dx"].tolist())
        np.testing.assert_array_equal(f["malignant"], self.meta["dx"].isin(["mel", "bcc", "akiec"]).astype(int))
        np.testing.assert_array_equal(f["sex"], [encode_sex(s) for s in self.meta["sex"]])
        ages = pd.to_numeric(self.meta["age"], errors="coerce")
        np.testing.assert_array_equal(np.isnan(f["age"]), ages.isna())
        expected_group = np.where(ages.isna(), UNKNOWN, (ages >= 60).astype(int))
        np.testing.assert_array_equal(f["age_group"], expected_group)
        self.assertEqual(m.code_maps["age_group"], {0: "<60", 1: ">=60"})
        self.assertEqual(m.code_maps["dx"][0], "mel")
        # lesion-level hashing: same lesion, same hash; raw ids never in the table
        self.assertEqual(f["lesion_hash"].tolist(), [hash_patient_id(v, "s") for v in self.meta["lesion_id"]])
        self.assertLess(f["lesion_hash"].nunique(), len(f))  # some lesions have two images
        self.assertTrue((f["patient_hash"] == f["lesion_hash"]).all())
        self.assertFalse(f.astype(str).isin(self.meta["lesion_id"].tolist()).any().any())

    def test_unknown_age_and_sex(self):
        meta = self.meta.copy()
        meta.loc[0, "age"] = "unknown"
        meta.loc[1, "age"] = ""
        meta.loc[2, "sex"] = "unknown"
        path = Path(self.tmp.name) / "meta_unknown.csv"
        meta.to_csv(path, index=False)
        f = build_isic2018_manifest(metadata_csv=path, images_dir=self.root).frame
        self.assertTrue(np.isnan(f["age"][0]) and np.isnan(f["age"][1]))
        self.assertEqual(f["age_group"][:2].tolist(), [UNKNOWN, UNKNOWN])
        self.assertEqual(f["sex"][2], UNKNOWN)

    def test_ground_truth_only_and_disagreement(self):
        gt_path = self.root / "ISIC2018_Task3_Training_GroundTruth" / "ISIC2018_Task3_Training_GroundTruth.csv"
        f = build_isic2018_manifest(ground_truth_csv=gt_path, images_dir=self.root).frame
        self.assertEqual([ISIC2018_DX[c] for c in f["dx"]], self.meta["dx"].tolist())
        self.assertTrue((f["sex"] == UNKNOWN).all() and f["age"].isna().all() and (f["age_group"] == UNKNOWN).all())
        self.assertEqual(f["lesion_hash"].nunique(), len(f))
        gt = pd.read_csv(gt_path)
        row = gt.iloc[0, 1:].to_numpy(float)
        gt.iloc[0, 1:] = np.roll(row, 1)  # a different class for the first image
        bad = Path(self.tmp.name) / "gt_bad.csv"
        gt.to_csv(bad, index=False)
        with self.assertRaises(ValueError):
            build_isic2018_manifest(self.root, ground_truth_csv=bad)
        gt.iloc[0, 1:] = 0.5
        gt.to_csv(bad, index=False)
        with self.assertRaises(ValueError):
            build_isic2018_manifest(ground_truth_csv=bad)

    def test_missing_images_are_counted(self):
        with tempfile.TemporaryDirectory() as empty:
            m = build_isic2018_manifest(self.root, images_dir=empty)
            self.assertEqual(len(m.frame), 0)
            self.assertEqual(m.skipped.counts["missing image file"], len(self.meta))
            kept = build_isic2018_manifest(self.root, images_dir=empty, check_files=False).frame
            self.assertTrue((kept["image"] == "").all())
        with self.assertRaises(FileNotFoundError):
            build_isic2018_manifest(Path(self.tmp.name) / "nowhere")

    def test_ita_join(self):
        ids = self.meta["image_id"].tolist()
        ita = pd.DataFrame({"image": [f"HAM10000_images_part_1/{i}.jpg" for i in ids[:-1]], "ita": np.nan})
        ita.loc[0, "ita"], ita.loc[1, "ita"], ita.loc[2, "ita"] = 60.0, 45.0, 12.0
        path = Path(self.tmp.name) / "ita.csv"
        ita.to_csv(path, index=False)
        m = build_isic2018_manifest(self.root, ita_csv=path, ita_scheme="binary45")
        f = m.frame
        self.assertEqual(f["ita_group"][:4].tolist(), [0, 1, 1, UNKNOWN])
        self.assertTrue(np.isnan(f["ita"].iloc[-1]) and f["ita_group"].iloc[-1] == UNKNOWN)
        self.assertEqual(m.code_maps["ita_group"], {0: "light", 1: "dark"})
        f6 = build_isic2018_manifest(self.root, ita_csv=path, ita_scheme="kinyanjui_fitz6").frame
        self.assertEqual(f6["ita_group"][:3].tolist(), [0, 1, 4])


class TestISIC2017Manifest(unittest.TestCase):
    def test_official_layout_with_unknowns(self):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            pd.DataFrame(
                {
                    "image_id": ["ISIC_1", "ISIC_2", "ISIC_3", "ISIC_4"],
                    "melanoma": [1.0, 0.0, 0.0, 0.0],
                    "seborrheic_keratosis": [0.0, 1.0, 0.0, 0.0],
                }
            ).to_csv(root / "ISIC-2017_Validation_Part3_GroundTruth.csv", index=False)
            pd.DataFrame(
                {
                    "image_id": ["ISIC_1", "ISIC_2", "ISIC_3"],
                    "age_approximate": [65, "unknown", 60],
                    "sex": ["male", "unknown", "female"],
                }
            ).to_csv(root / "ISIC-2017_Validation_Data_metadata.csv", index=False)
            for i in range(1, 4):
                (root / f"ISIC_{i}.jpg").write_bytes(b"x")
            m = build_isic2017_manifest(root)
            f = m.frame
            self.assertEqual(f["image_id"].tolist(), ["ISIC_1", "ISIC_2", "ISIC_3"])  # ISIC_4 has no image
            self.assertEqual(m.skipped.counts["missing image file"], 1)
            self.assertEqual([ISIC2017_DX[c] for c in f["dx"]], ["mel", "sk", "nv"])
            self.assertEqual(f["malignant"].tolist(), [1, 0, 0])
            self.assertEqual(f["sex"].tolist(), [1, UNKNOWN, 0])
            self.assertTrue(np.isnan(f["age"][1]))
            self.assertEqual(f["age_group"].tolist(), [1, UNKNOWN, 1])  # 60 is in the >= 60 group
            f_all = build_isic2017_manifest(root, check_files=False).frame
            self.assertEqual(f_all["sex"].iloc[-1], UNKNOWN)  # not in the metadata
            pd.DataFrame({"image_id": ["a"], "melanoma": [1], "seborrheic_keratosis": [1]}).to_csv(
                root / "both.csv", index=False
            )
            with self.assertRaises(ValueError):
                build_isic2017_manifest(ground_truth_csv=root / "both.csv")

    @unittest.skipUnless(SHARED_VAL.is_dir(), f"shared ISIC 2017 images not found at {SHARED_VAL}")
    def test_real_validation_images(self):
        shared = pd.read_csv(SHARED_VAL / "manifest.csv", dtype=str)
        with tempfile.TemporaryDirectory() as tmp:
            gt = Path(tmp) / "ISIC-2017_Validation_Part3_GroundTruth.csv"
            meta = Path(tmp) / "ISIC-2017_Validation_Data_metadata.csv"
            shared.assign(seborrheic_keratosis=0.0)[["image_id", "melanoma", "seborrheic_keratosis"]].to_csv(
                gt, index=False
            )
            shared[["image_id", "age_approximate", "sex"]].to_csv(meta, index=False)
            f = build_isic2017_manifest(ground_truth_csv=gt, metadata_csv=meta, images_dir=SHARED_VAL).frame
        self.assertEqual(len(f), len(shared))
        unknown_age = shared["age_approximate"].str.strip().str.lower().eq("unknown")
        self.assertEqual(int(np.isnan(f["age"]).sum()), int(unknown_age.sum()))
        self.assertEqual(int((f["age_group"] == UNKNOWN).sum()), int(unknown_age.sum()))
        np.testing.assert_array_equal(f["malignant"], shared["melanoma"].astype(float).astype(int))
        np.testing.assert_array_equal(f["sex"], [encode_sex(s) for s in shared["sex"]])


if __name__ == "__main__":
    unittest.main()
