# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the demo embedding tables: files, consistency across formats, determinism, planted bias."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import unittest

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from monai_fair.data.demo.embeddings import make_embeddings_demo
from monai_fair.data.embeddings import NLST_SEX_MAP, has_pyarrow, load_embedding_table

SMALL = {"n": 300, "dim": 16}


class TestEmbeddingsDemo(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_files_and_consistency(self):
        root = make_embeddings_demo(os.path.join(self.tmp, "a"), seed=0, **SMALL)
        expected = {
            "nlst_train_with_labels.npz",
            "nlst_tune_with_labels.npz",
            "nlst_780_prsn_idc_20210527.csv",
            "embeddings.csv",
            "DEMO_COMPLETE.json",
        } | ({"embeddings.parquet"} if has_pyarrow else set())
        self.assertEqual(set(os.listdir(root)), expected)
        side = root / "nlst_780_prsn_idc_20210527.csv"
        train = load_embedding_table(
            root / "nlst_train_with_labels.npz",
            ["cancer_in_1", "cancer_in_2"],
            id_column="pid",
            demographics=side,
            sex_column="gender",
            sex_map=NLST_SEX_MAP,
        )
        tune = load_embedding_table(
            root / "nlst_tune_with_labels.npz",
            ["cancer_in_1", "cancer_in_2"],
            id_column="pid",
            demographics=side,
            sex_column="gender",
            sex_map=NLST_SEX_MAP,
        )
        self.assertEqual(len(train) + len(tune), 300)
        self.assertEqual(len(tune), 90)
        self.assertEqual(train.dim, 16)
        self.assertEqual(train.notes, {})
        flat = load_embedding_table(root / "embeddings.csv", ["cancer_in_1", "cancer_in_2"], id_column="pid")
        frame = pd.read_csv(root / "embeddings.csv")
        # the same pid has the same vector, sex and labels in the NPZ + person CSV and in the flat table
        row_of = {h: i for i, h in enumerate(flat.patient_hash)}
        idx = [row_of[h] for h in train.patient_hash]
        np.testing.assert_allclose(flat.embeddings[idx], train.embeddings, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(flat.sex[idx], train.sex)
        np.testing.assert_array_equal(flat.labels[idx], train.labels)
        np.testing.assert_array_equal(flat.age[idx], train.age)
        self.assertEqual(set(frame["split"]), {"train", "tune"})
        self.assertTrue((frame["clean_cancer_in_2"] >= frame["clean_cancer_in_1"]).all())  # 2-year ⊇ 1-year
        if has_pyarrow:
            pq = load_embedding_table(root / "embeddings.parquet", ["cancer_in_1"], id_column="pid")
            np.testing.assert_allclose(pq.embeddings, flat.embeddings, rtol=1e-4, atol=1e-4)
        info = json.loads((root / "DEMO_COMPLETE.json").read_text())
        self.assertTrue({"group_dependent_prevalence", "shortcut_feature", "label_noise"} <= set(info["planted_bias"]))
        self.assertEqual(info["params"]["dim"], 16)

    def test_deterministic(self):
        a = make_embeddings_demo(os.path.join(self.tmp, "a"), seed=3, formats=["npz"], **SMALL)
        b = make_embeddings_demo(os.path.join(self.tmp, "b"), seed=3, formats=["npz"], **SMALL)
        c = make_embeddings_demo(os.path.join(self.tmp, "c"), seed=4, formats=["npz"], **SMALL)
        load = lambda r: np.load(r / "nlst_train_with_labels.npz")["embeddings"]  # noqa: E731
        np.testing.assert_array_equal(load(a), load(b))
        self.assertFalse(np.array_equal(load(a), load(c)))
        self.assertEqual(set(os.listdir(a)) & {"embeddings.csv", "embeddings.parquet"}, set())

    def test_planted_bias(self):
        root = make_embeddings_demo(os.path.join(self.tmp, "big"), seed=1, n=3000, dim=8, formats=["csv"])
        frame = pd.read_csv(root / "embeddings.csv")
        male = frame["sex"] == "M"
        # group-dependent prevalence (clean labels) close to the parameters
        self.assertAlmostEqual(frame.loc[male, "clean_cancer_in_1"].mean(), 0.35, delta=0.04)
        self.assertAlmostEqual(frame.loc[~male, "clean_cancer_in_1"].mean(), 0.15, delta=0.04)
        # label noise only for women
        flipped = frame["clean_cancer_in_1"] != frame["cancer_in_1"]
        self.assertEqual(int(flipped[male].sum()), 0)
        self.assertAlmostEqual(flipped[~male].mean(), 0.15, delta=0.04)
        # shortcut presence follows sex
        self.assertAlmostEqual(frame.loc[male, "shortcut"].mean(), 0.85, delta=0.04)
        self.assertAlmostEqual(frame.loc[~male, "shortcut"].mean(), 0.15, delta=0.04)
        # embeddings leak sex and carry the disease signal (linear probe, sklearn as the oracle)
        x = frame[[f"emb_{i}" for i in range(8)]].to_numpy()
        half = len(frame) // 2
        for target, floor in ((male.to_numpy(), 0.95), (frame["clean_cancer_in_1"].to_numpy(), 0.75)):
            probe = LogisticRegression(max_iter=1000).fit(x[:half], target[:half])
            self.assertGreater(roc_auc_score(target[half:], probe.predict_proba(x[half:])[:, 1]), floor)

    def test_bad_parameters(self):
        with self.assertRaises(ValueError):
            make_embeddings_demo(os.path.join(self.tmp, "x"), formats=["h5"])
        with self.assertRaises(ValueError):
            make_embeddings_demo(os.path.join(self.tmp, "x"), n=5)
        with self.assertRaises(ValueError):
            make_embeddings_demo(os.path.join(self.tmp, "x"), prevalence={"F": -0.1, "M": 0.2})


if __name__ == "__main__":
    unittest.main()
