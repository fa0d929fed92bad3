# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of patient-level splits."""

from __future__ import annotations

import unittest

import numpy as np
import pandas as pd
from parameterized import parameterized

from monai_fair.data.splits import assert_no_patient_leakage, patient_level_split, patient_overlap, split_frames


def _frame(n_patients: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    images = rng.integers(1, 5, n_patients)
    patients = np.repeat([f"h{i:04d}" for i in range(n_patients)], images)
    return pd.DataFrame({"image": [f"img{i}.jpg" for i in range(len(patients))], "patient_hash": patients})


class TestPatientLevelSplit(unittest.TestCase):
    @parameterized.expand([[(0.5, 0.25, 0.25)], [(0.8, 0.1, 0.1)], [(0.6, 0.4, 0.0)]])
    def test_fractions_of_patients_and_no_leakage(self, fractions):
        df = _frame()
        out = patient_level_split(df, fractions, seed=3)
        per_patient = out.groupby("patient_hash")["split"].nunique()
        self.assertTrue((per_patient == 1).all())
        counts = out.drop_duplicates("patient_hash")["split"].value_counts()
        for name, frac in zip(("train", "val", "test"), fractions):
            self.assertAlmostEqual(counts.get(name, 0), frac * 200, delta=1)
        assert_no_patient_leakage(out)
        self.assertEqual(len(out), len(df))

    def test_deterministic_and_order_independent(self):
        df = _frame()
        a = patient_level_split(df, seed=7)
        b = patient_level_split(df.sample(frac=1.0, random_state=1), seed=7).sort_index()
        pd.testing.assert_series_equal(a["split"], b["split"])
        c = patient_level_split(df, seed=8)
        self.assertFalse((a["split"] == c["split"]).all())

    def test_mapping_fractions(self):
        out = patient_level_split(_frame(), {"a": 0.3, "b": 0.7}, seed=0)
        self.assertEqual(set(out["split"]), {"a", "b"})

    def test_bad_input(self):
        df = _frame()
        with self.assertRaises(ValueError):
            patient_level_split(df, (0.5, 0.6, 0.1))
        with self.assertRaises(ValueError):
            patient_level_split(df, (0.5, 0.5))
        with self.assertRaises(KeyError):
            patient_level_split(df.drop(columns="patient_hash"))
        bad = df.copy()
        bad.loc[0, "patient_hash"] = None
        with self.assertRaises(ValueError):
            patient_level_split(bad)

    def test_leakage_detected(self):
        df = pd.DataFrame({"patient_hash": ["a", "a", "b", "c"], "split": ["train", "test", "train", "val"]})
        with self.assertRaisesRegex(ValueError, "shared"):
            assert_no_patient_leakage(df)
        frames = split_frames(df)
        self.assertEqual(patient_overlap(frames)[("test", "train")], 1)


if __name__ == "__main__":
    unittest.main()
