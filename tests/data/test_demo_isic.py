# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The ISIC demo dataset: HAM10000 layout, determinism and caching, planted bias, and known skin tone per image."""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd

from monai_fair.data.demo import make_demo_dataset
from monai_fair.data.demo.isic import make_isic_demo
from monai_fair.transforms.ita import OutsideLesionSampler, ita_category, load_rgb


class TestISICDemo(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.root = make_isic_demo(Path(cls.tmp.name) / "a", seed=3, n_lesions=30, sticker_prob=0.3)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_layout_and_columns(self):
        meta = pd.read_csv(self.root / "HAM10000_metadata.csv")
        self.assertEqual(list(meta.columns), ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"])
        self.assertGreaterEqual(len(meta), 30)
        self.assertEqual(meta["lesion_id"].nunique(), 30)
        self.assertTrue(set(meta["dx"]) <= {"mel", "nv", "bcc", "akiec", "bkl", "df", "vasc"})
        self.assertTrue(set(meta["sex"]) <= {"male", "female", "unknown"})
        gt = pd.read_csv(self.root / "ISIC2018_Task3_Training_GroundTruth" / "ISIC2018_Task3_Training_GroundTruth.csv")
        self.assertEqual(list(gt.columns), ["image", "MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"])
        np.testing.assert_array_equal(gt.iloc[:, 1:].sum(axis=1), 1.0)
        self.assertEqual(
            gt.iloc[:, 1:].columns[gt.iloc[:, 1:].to_numpy().argmax(axis=1)].str.lower().tolist(), meta["dx"].tolist()
        )
        for image_id in meta["image_id"]:
            self.assertTrue((self.root / "HAM10000_images_part_1" / f"{image_id}.jpg").is_file())
        info = json.loads((self.root / "DEMO_COMPLETE.json").read_text())
        self.assertIn("planted_bias", info)
        self.assertEqual(info["params"]["n_lesions"], 30)

    def test_deterministic_and_cached(self):
        again = make_isic_demo(Path(self.tmp.name) / "b", seed=3, n_lesions=30, sticker_prob=0.3)
        for rel in ("HAM10000_metadata.csv", "ita_truth.csv", "HAM10000_images_part_1/ISIC_0024310.jpg"):
            self.assertEqual((self.root / rel).read_bytes(), (again / rel).read_bytes(), rel)
        marker = self.root / "DEMO_COMPLETE.json"
        before = marker.stat().st_mtime_ns
        self.assertEqual(make_isic_demo(self.root, seed=3, n_lesions=30, sticker_prob=0.3), self.root)
        self.assertEqual(marker.stat().st_mtime_ns, before)
        other = make_isic_demo(Path(self.tmp.name) / "c", seed=4, n_lesions=30, sticker_prob=0.3)
        self.assertNotEqual((other / "ita_truth.csv").read_bytes(), (self.root / "ita_truth.csv").read_bytes())

    def test_explicit_folder_with_other_parameters_is_not_reused(self):
        # a folder given explicitly is not keyed by the parameters: a stale demo must not be served silently
        with self.assertRaisesRegex(ValueError, "other parameters"):
            make_isic_demo(self.root, seed=3, n_lesions=31, sticker_prob=0.3)
        with self.assertRaisesRegex(ValueError, "other parameters"):
            make_isic_demo(self.root, seed=4, n_lesions=30, sticker_prob=0.3)

    def test_registry(self):
        path = make_demo_dataset("isic", root=Path(self.tmp.name) / "d", seed=0, n_lesions=4)
        self.assertTrue((path / "DEMO_COMPLETE.json").is_file())

    def test_known_skin_tone_is_recovered_from_the_files(self):
        truth = pd.read_csv(self.root / "ita_truth.csv")
        self.assertTrue(((truth["skin_group"] == "dark") == (truth["ita_true"] <= 45)).all())
        # the rendered colour survives JPEG to within ~1 degree of ITA
        self.assertLess((truth["ita_file"] - truth["ita_true"]).abs().max(), 1.5)
        sampler = OutsideLesionSampler(return_mask=False)
        est = np.array([sampler(load_rgb(self.root / p)).ita for p in truth["image"]])
        err = np.abs(est - truth["ita_file"].to_numpy())
        self.assertLess(float(np.median(err)), 0.5)
        self.assertLess(float(np.quantile(err, 0.9)), 1.0)
        self.assertLess(float(err.max()), 2.0)
        agree = ita_category(est, "binary45") == np.where(truth["skin_group"] == "light", 0, 1)
        self.assertGreaterEqual(agree.mean(), 0.9)
        self.assertGreater(truth["sticker"].fillna("").astype(bool).sum(), 0)
        self.assertGreater((truth["hair"] > 0).sum(), 0)

    def test_planted_bias_is_tunable(self):
        root = make_isic_demo(
            Path(self.tmp.name) / "e",
            seed=1,
            n_lesions=40,
            prevalence={"light": 1.0, "dark": 0.0},
            label_noise={"light": 0.0, "dark": 1.0},
            repeat_prob=0.0,
        )
        truth = pd.read_csv(root / "ita_truth.csv")
        light = truth["skin_group"] == "light"
        self.assertTrue((truth.loc[light, "malignant_true"] == 1).all())
        self.assertTrue((truth.loc[~light, "malignant_true"] == 0).all())
        self.assertTrue((truth.loc[light, "label_flipped"] == 0).all())
        self.assertTrue((truth.loc[~light, "malignant_recorded"] == 1).all())  # every dark label flipped
        meta = pd.read_csv(root / "HAM10000_metadata.csv")
        self.assertTrue(meta["dx"].isin(["mel", "bcc", "akiec"]).all())
        # malignant lesions are darker relative to the skin on light skin (contrast 1.0) than benign ones would be
        self.assertTrue((truth.loc[light, "lesion_contrast"] > 25).all())

    def test_bad_parameters(self):
        with self.assertRaises(ValueError):
            make_isic_demo(Path(self.tmp.name) / "f", prevalence={"light": 0.5})
        with self.assertRaises(ValueError):
            make_isic_demo(Path(self.tmp.name) / "f", dark_fraction=1.5)
        with self.assertRaises(ValueError):
            make_isic_demo(Path(self.tmp.name) / "f", size=8)


if __name__ == "__main__":
    unittest.main()
