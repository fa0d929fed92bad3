# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the study sampling protocols and group-balanced sampler weights."""

from __future__ import annotations

import unittest

import numpy as np
import pandas as pd
import torch
from parameterized import parameterized

from monai_fair.data.sampling import (
    balance_negatives,
    group_balanced_weights,
    joshi_race_splits,
    marcinkevics_split,
    resolve_code,
    subsample_to_proportions,
)
from monai_fair.data.splits import assert_no_patient_leakage, patient_overlap


def _cohort(n_patients: int = 600, seed: int = 0) -> pd.DataFrame:
    """Patients with 1-3 images, sex (with a few unknowns), race and a 0/1 label (30 % positives)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_patients):
        sex = int(rng.choice([0, 1, -1], p=[0.45, 0.53, 0.02]))
        race = int(rng.choice([0, 1, 2, 3, -1], p=[0.55, 0.15, 0.12, 0.1, 0.08]))
        for _ in range(int(rng.integers(1, 4))):
            rows.append(
                {
                    "image": f"x{len(rows)}.jpg",
                    "patient_hash": f"p{i:05d}",
                    "sex": sex,
                    "race": race,
                    "label": float(rng.random() < 0.3),
                }
            )
    return pd.DataFrame(rows)


class TestBalanceNegatives(unittest.TestCase):
    def test_equal_counts_and_all_positives_kept(self):
        df = _cohort()
        out = balance_negatives(df, seed=1)
        self.assertEqual(int((out.label == 1).sum()), int((df.label == 1).sum()))
        self.assertEqual(int((out.label == 0).sum()), int((df.label == 1).sum()))
        pd.testing.assert_frame_equal(out, balance_negatives(df, seed=1))

    def test_short_of_negatives_keeps_all(self):
        df = pd.DataFrame({"label": [1.0] * 5 + [0.0] * 2})
        self.assertEqual(len(balance_negatives(df)), 7)

    def test_bad_labels(self):
        with self.assertRaises(ValueError):
            balance_negatives(pd.DataFrame({"label": [0.0, 2.0]}))
        with self.assertRaises(ValueError):
            balance_negatives(pd.DataFrame({"label": [0.0, 0.0]}))


class TestSubsample(unittest.TestCase):
    @parameterized.expand([[(0.75, 0.25)], [(0.5, 0.5)], [(0.6, 0.4)]])
    def test_exact_proportions(self, props):
        df = _cohort()
        out = subsample_to_proportions(df, "sex", [[1], [0]], props, seed=0)
        n1, n0 = int((out.sex == 1).sum()), int((out.sex == 0).sum())
        self.assertAlmostEqual(n1 / (n1 + n0), props[0], delta=2 / (n1 + n0))
        if props[0] / props[1] == round(props[0] / props[1]):
            self.assertEqual(n1 * props[1], n0 * props[0])  # integer ratios are exact
        # largest such subset: one of the groups is exhausted (up to one ratio unit)
        avail1, avail0 = int((df.sex == 1).sum()), int((df.sex == 0).sum())
        self.assertTrue(avail1 - n1 < 3 or avail0 - n0 < 3)

    def test_small_exact_ratio(self):
        df = pd.DataFrame({"sex": [1] * 20 + [0] * 14})
        out = subsample_to_proportions(df, "sex", [[1], [0]], (0.75, 0.25))
        self.assertEqual(out.sex.value_counts().to_dict(), {1: 18, 0: 6})

    def test_overlapping_groups_rejected(self):
        with self.assertRaises(ValueError):
            subsample_to_proportions(_cohort(), "sex", [[0, 1], [1]], (0.5, 0.5))


class TestMarcinkevics(unittest.TestCase):
    def test_protocol(self):
        df = _cohort(1200)
        out = marcinkevics_split(df, "sex", privileged=1, unprivileged=0, seed=42)
        assert_no_patient_leakage(out)
        self.assertEqual(set(out.split), {"train", "val", "test"})
        self.assertTrue(out.sex.isin([0, 1]).all())
        tr, va, te = (out[out.split == s] for s in ("train", "val", "test"))
        self.assertEqual(int((tr.sex == 1).sum()), 3 * int((tr.sex == 0).sum()))
        for part in (va, te):
            self.assertEqual(int((part.sex == 1).sum()), int((part.sex == 0).sum()))
        # after label balancing, 50/25/25 of patients: the train set is about twice the val set before subsampling
        n_pat = out.groupby("split")["patient_hash"].nunique()
        self.assertGreater(n_pat["train"], n_pat["val"])
        pd.testing.assert_frame_equal(out, marcinkevics_split(df, "sex", 1, 0, seed=42))
        self.assertFalse(out.equals(marcinkevics_split(df, "sex", 1, 0, seed=43)))

    def test_unprivileged_default_is_all_other_known(self):
        df = _cohort(800)
        out = marcinkevics_split(df, "race", privileged=0, unprivileged=None, seed=0)
        self.assertNotIn(-1, set(out.race))
        tr = out[out.split == "train"]
        self.assertEqual(int((tr.race == 0).sum()), 3 * int((tr.race != 0).sum()))

    def test_bad_fraction(self):
        with self.assertRaises(ValueError):
            marcinkevics_split(_cohort(50), train_privileged_fraction=1.0)


class TestJoshi(unittest.TestCase):
    def test_protocol(self):
        df = _cohort(1500)
        out = joshi_race_splits(df, target_race=0, train_size=300, test_size=100, seed=0)
        self.assertEqual(set(out), {"train_single", "train_mixed", "test_same", "test_other"})
        self.assertEqual(len(out["train_single"]), 300)
        self.assertEqual(len(out["train_mixed"]), 300)
        self.assertEqual(len(out["test_same"]), 100)
        self.assertEqual(len(out["test_other"]), 100)
        self.assertTrue((out["train_single"].race == 0).all())
        self.assertTrue((out["test_same"].race == 0).all())
        self.assertTrue(((out["test_other"].race != 0) & (out["test_other"].race != -1)).all())
        self.assertGreater(out["train_mixed"].race.nunique(), 2)
        overlap = patient_overlap(out)
        for (a, b), n in overlap.items():
            if a.startswith("train") and b.startswith("train"):
                continue  # the two training sets are alternatives, they may share patients
            self.assertEqual(n, 0, (a, b))
        again = joshi_race_splits(df, target_race=0, train_size=300, test_size=100, seed=0)
        for k in out:
            pd.testing.assert_frame_equal(out[k], again[k])

    def test_defaults_and_errors(self):
        df = _cohort(400)
        out = joshi_race_splits(df, target_race=0)
        self.assertEqual(len(out["train_single"]), len(out["train_mixed"]))
        self.assertEqual(len(out["test_same"]), len(out["test_other"]))
        with self.assertRaisesRegex(ValueError, "requested"):
            joshi_race_splits(df, target_race=0, train_size=10**6)
        with self.assertRaises(ValueError):
            joshi_race_splits(df, target_race=9)


class TestWeights(unittest.TestCase):
    def test_group_mass_equal(self):
        g = np.array([0] * 10 + [1] * 30 + [-1] * 5)
        w = group_balanced_weights(g)
        self.assertEqual(w.dtype, torch.float64)
        self.assertAlmostEqual(float(w.mean()), 1.0, places=12)
        masses = [float(w[torch.as_tensor(g == k)].sum()) for k in (0, 1, -1)]
        np.testing.assert_allclose(masses, [len(g) / 3] * 3)
        # oracle: sklearn's "balanced" class weights are n / (k * n_c) too
        from sklearn.utils.class_weight import compute_sample_weight

        np.testing.assert_allclose(w.numpy(), compute_sample_weight("balanced", g))

    def test_with_labels(self):
        g = np.array([0, 0, 0, 1, 1, 1, 1, 1])
        y = np.array([0, 0, 1, 0, 1, 1, 1, 1])
        w = group_balanced_weights(g, y)
        strata = g * 2 + y
        from sklearn.utils.class_weight import compute_sample_weight

        np.testing.assert_allclose(w.numpy(), compute_sample_weight("balanced", strata))
        with self.assertRaises(ValueError):
            group_balanced_weights(g, y[:-1])
        with self.assertRaises(ValueError):
            group_balanced_weights(g, np.array([np.nan] * 8))

    def test_sampler_draws_groups_evenly(self):
        g = np.array([0] * 20 + [1] * 180)
        sampler = torch.utils.data.WeightedRandomSampler(
            group_balanced_weights(g), 20000, generator=torch.Generator().manual_seed(0)
        )
        drawn = g[np.fromiter(iter(sampler), dtype=int)]
        self.assertAlmostEqual(float((drawn == 0).mean()), 0.5, delta=0.02)


class TestResolveCode(unittest.TestCase):
    def test_resolve(self):
        m = {0: "F", 1: "M"}
        self.assertEqual(resolve_code("m", m), 1)
        self.assertEqual(resolve_code(0, m), 0)
        self.assertEqual(resolve_code("1", m), 1)
        with self.assertRaises(ValueError):
            resolve_code("X", m)


if __name__ == "__main__":
    unittest.main()
