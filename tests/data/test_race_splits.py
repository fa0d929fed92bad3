# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from monai_fair.data import cross_group_splits, cross_group_study_data
from monai_fair.data.chexpert import CHEXPERT_LABELS


def _frame(seed: int = 0, n_patients: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        race = int(rng.choice([0, 1, 2, -1], p=[0.55, 0.2, 0.15, 0.1]))
        for k in range(1 + int(rng.integers(0, 3))):  # several images per patient
            rows.append({"image": f"p{p}_{k}.png", "race": race, "patient_hash": f"h{p}", "label": float(k % 2)})
    return pd.DataFrame(rows)


def _patients(frame: pd.DataFrame) -> set[str]:
    return set(frame["patient_hash"])


class TestCrossGroupSplits(unittest.TestCase):
    def test_equal_sizes_and_patient_disjoint(self):
        frame = _frame()
        for seed in range(3):
            s = cross_group_splits(frame, "race", 0, seed=seed)
            self.assertEqual(len(s["train_single"]), len(s["train_mixed"]))
            self.assertEqual(len(s["val_single"]), len(s["val_mixed"]))
            self.assertGreater(len(s["train_single"]), 0)
            train = _patients(s["train_single"]) | _patients(s["train_mixed"])
            val = _patients(s["val_single"]) | _patients(s["val_mixed"])
            test = _patients(s["test"])
            self.assertFalse(train & val)
            self.assertFalse(train & test)
            self.assertFalse(val & test)
            self.assertEqual(set(s["train_single"]["race"]), {0})
            self.assertEqual(set(s["val_single"]["race"]), {0})
            self.assertGreater(len(set(s["train_mixed"]["race"])), 1)
            # every known group has a test set, unknown race none; a test patient brings all its images
            self.assertEqual(set(s["test"]["race"]), {0, 1, 2})
            self.assertEqual(len(s["test"]), int(frame["patient_hash"].isin(test).sum()))
            self.assertFalse(s["train_single"].duplicated("image").any())

    def test_explicit_sizes_and_seed_determinism(self):
        frame = _frame()
        a = cross_group_splits(frame, "race", 0, train_size=50, val_size=20, seed=4)
        b = cross_group_splits(frame, "race", 0, train_size=50, val_size=20, seed=4)
        self.assertEqual(
            [len(a[k]) for k in ("train_single", "train_mixed", "val_single", "val_mixed")], [50, 50, 20, 20]
        )
        for k in a:
            pd.testing.assert_frame_equal(a[k], b[k])
        c = cross_group_splits(frame, "race", 0, train_size=50, val_size=20, seed=5)
        self.assertNotEqual(set(a["test"]["patient_hash"]), set(c["test"]["patient_hash"]))

    def test_unknown_group_only_with_flag(self):
        frame = _frame()
        s = cross_group_splits(frame, "race", 0, seed=0)
        self.assertNotIn(-1, set(s["train_mixed"]["race"]))
        s = cross_group_splits(frame, "race", 0, seed=0, mixed_includes_unknown=True, train_size=150)
        self.assertIn(-1, set(s["train_mixed"]["race"]))
        self.assertNotIn(-1, set(s["test"]["race"]))

    def test_bad_inputs(self):
        frame = _frame()
        with self.assertRaisesRegex(ValueError, "test_fraction"):
            cross_group_splits(frame, "race", 0, test_fraction=0.6, val_fraction=0.5)
        with self.assertRaisesRegex(ValueError, "another"):
            cross_group_splits(frame[frame["race"] == 0], "race", 0)
        with self.assertRaisesRegex(ValueError, "training group 7"):
            cross_group_splits(frame, "race", 7)
        with self.assertRaisesRegex(ValueError, "requested"):
            cross_group_splits(frame, "race", 0, train_size=10_000)
        with self.assertRaisesRegex(KeyError, "sex"):
            cross_group_splits(frame, "sex", 0)
        bad = frame.copy()
        bad.loc[bad.index[:2], "patient_hash"] = "same"
        bad.loc[bad.index[0], "race"], bad.loc[bad.index[1], "race"] = 0, 1
        with self.assertRaisesRegex(ValueError, "several"):
            cross_group_splits(bad, "race", 0)


class TestStudyData(unittest.TestCase):
    def test_chexpert_demo(self):
        from monai_fair.data.demo.chexpert import make_chexpert_demo

        with tempfile.TemporaryDirectory() as tmp:
            root = make_chexpert_demo(
                tmp, seed=0, n_patients=80, n_valid_patients=4, image_size=16, appearance_shift=1.0
            )
            data, maps = cross_group_study_data(dataset_dir=root, seed=1, train_group="White")
            self.assertEqual(set(data), {"train_single", "train_mixed", "val_single", "val_mixed", "test"})
            white = [c for c, n in maps["race"].items() if n == "White"][0]
            self.assertEqual({d["race"] for d in data["train_single"]}, {white})
            d = data["test"][0]
            self.assertEqual(d["label"].shape, (len(CHEXPERT_LABELS),))
            self.assertTrue({"sex", "age_group", "race", "patient_hash"} <= set(d))
            with self.assertRaisesRegex(KeyError, "not CheXpert labels"):
                cross_group_study_data(dataset_dir=root, labels=["Melanoma"])

    def test_generic_manifest_with_sex_and_one_label(self):
        with tempfile.TemporaryDirectory() as tmp:
            rows = []
            for i in range(60):
                Image.fromarray(np.full((8, 8), i, np.uint8)).save(Path(tmp, f"im{i}.png"))
                rows.append(
                    {"image": f"im{i}.png", "melanoma": float(i % 3 == 0), "sex": "female" if i % 2 else "male"}
                )
            csv = Path(tmp, "m.csv")
            pd.DataFrame(rows).to_csv(csv, index=False)
            with self.assertRaisesRegex(KeyError, "patient"):
                cross_group_study_data(manifest=csv, labels=["melanoma"], attribute="sex", train_group="F")
            data, maps = cross_group_study_data(
                manifest=csv, labels=["melanoma"], attribute="sex", train_group="female", missing_patient="image"
            )
            self.assertEqual(len(data["train_single"]), len(data["train_mixed"]))
            self.assertEqual(data["test"][0]["label"].shape, (1,))
            self.assertEqual({maps["sex"][d["sex"]] for d in data["test"]}, {"M", "F"})


if __name__ == "__main__":
    unittest.main()
