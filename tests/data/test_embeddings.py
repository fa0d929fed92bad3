# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of embedding-table loading (NPZ, CSV, Parquet), validation and the dict dataset."""

from __future__ import annotations

import os
import shutil
import tempfile
import unittest

import numpy as np
import pandas as pd
import torch
from parameterized import parameterized

from monai_fair.data.codes import UNKNOWN
from monai_fair.data.embeddings import (
    NLST_SEX_MAP,
    EmbeddingDataset,
    has_pyarrow,
    load_embedding_table,
    write_embedding_table,
)
from monai_fair.data.privacy import hash_patient_id

N, D = 12, 6


class TestEmbeddingTable(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(N, D)).astype(np.float32)
        self.cols = {
            "pid": np.arange(100, 100 + N),
            "sex": np.array(["F", "M", "female", "Male", "", "F"] * 2, dtype=object),
            "age": np.array([45, 61, 59.5, 80, np.nan, 130] * 2, dtype=float),
            "cancer_in_1": np.array([0, 1] * 6),
            "cancer_in_2": np.array([1, 1, 0, 0] * 3),
        }
        self.expected_sex = [0, 1, 0, 1, UNKNOWN, 0] * 2
        self.expected_group = [1, 2, 1, 3, UNKNOWN, UNKNOWN] * 2

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, name: str) -> str:
        return os.path.join(self.tmp, name)

    @parameterized.expand([("npz",), ("csv",), ("parquet",)])
    def test_round_trip_formats(self, fmt):
        if fmt == "parquet" and not has_pyarrow:
            self.skipTest("pyarrow required")
        cols = dict(self.cols)
        if fmt == "npz":
            cols["sex"] = np.array(["F", "M", "female", "Male", "", "F"] * 2)  # no object arrays in NPZ
        path = write_embedding_table(self.path(f"t.{fmt}"), self.x, cols)
        table = load_embedding_table(path, label_columns=["cancer_in_1", "cancer_in_2"], id_column="pid")
        np.testing.assert_allclose(table.embeddings, self.x, rtol=1e-5)
        np.testing.assert_array_equal(table.labels[:, 0], self.cols["cancer_in_1"])
        self.assertEqual(table.sex.tolist(), self.expected_sex)
        self.assertEqual(table.age_group.tolist(), self.expected_group)
        self.assertTrue(np.isnan(table.age[4]) and np.isnan(table.age[5]))  # missing, implausible 130
        self.assertEqual(table.patient_hash[0], hash_patient_id("100"))
        self.assertEqual(table.notes, {"sex unknown": 2, "age unknown": 4})

    def test_parquet_list_column(self):
        if not has_pyarrow:
            self.skipTest("pyarrow required")
        frame = pd.DataFrame(
            {
                "embedding": list(self.x),
                "sex": self.cols["sex"],
                "age": self.cols["age"],
                "cancer_in_1": self.cols["cancer_in_1"],
            }
        )
        frame.to_parquet(self.path("list.parquet"))
        table = load_embedding_table(self.path("list.parquet"), embedding_key="embedding")
        np.testing.assert_allclose(table.embeddings, self.x)

    def test_dataset_items_and_collation(self):
        path = write_embedding_table(self.path("t.csv"), self.x, self.cols)
        ds = load_embedding_table(path, label_columns="cancer_in_1").dataset()
        self.assertIsInstance(ds, EmbeddingDataset)
        item = ds[3]
        self.assertEqual(set(item), {"embedding", "label", "sex", "age", "age_group"})
        self.assertEqual(item["embedding"].shape, (D,))
        self.assertEqual(item["label"].shape, ())
        self.assertEqual(item["sex"].dtype, torch.int64)
        batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=N)))
        torch.testing.assert_close(batch["embedding"], torch.from_numpy(self.x), rtol=1e-5, atol=1e-6)
        self.assertEqual(batch["sex"].tolist(), self.expected_sex)
        two = load_embedding_table(path, label_columns=["cancer_in_1", "cancer_in_2"]).dataset(
            transform=lambda d: {**d, "twice": d["embedding"] * 2}
        )
        self.assertEqual(two[0]["label"].shape, (2,))
        torch.testing.assert_close(two[0]["twice"], two[0]["embedding"] * 2)
        self.assertEqual(two.tensors()["embedding"].shape, (N, D))

    def test_nlst_side_table_join(self):
        npz = write_embedding_table(
            self.path("nlst_train_with_labels.npz"),
            self.x,
            {"pid": self.cols["pid"], "cancer_in_1": self.cols["cancer_in_1"]},
        )
        side = pd.DataFrame(
            {"pid": self.cols["pid"][::-1][:-1], "gender": ([1, 2] * 6)[:-1], "age": np.arange(60, 60 + N - 1)}
        )
        table = load_embedding_table(npz, id_column="pid", demographics=side, sex_column="gender", sex_map=NLST_SEX_MAP)
        # pid 100 + i sits at side row N-1-i; pid 100 has no side row
        expected_sex = [UNKNOWN] + [1 if (N - 1 - i) % 2 == 0 else 0 for i in range(1, N)]
        self.assertEqual(table.sex.tolist(), expected_sex)
        self.assertTrue(np.isnan(table.age[0]))
        self.assertEqual(table.age[1], 60 + N - 2)
        self.assertEqual(table.notes["no demographics row for id"], 1)
        with self.assertRaisesRegex(ValueError, "1/2 coding"):
            load_embedding_table(npz, id_column="pid", demographics=side, sex_column="gender")
        with self.assertRaisesRegex(ValueError, "needs id_column"):
            load_embedding_table(npz, demographics=side, sex_column="gender", sex_map=NLST_SEX_MAP)
        dup = pd.concat([side, side.iloc[:1]])
        with self.assertRaisesRegex(ValueError, "duplicate ids"):
            load_embedding_table(npz, id_column="pid", demographics=dup, sex_column="gender", sex_map=NLST_SEX_MAP)

    def test_nan_and_shape_validation(self):
        x = self.x.copy()
        x[2, 1] = np.nan
        labels = self.cols["cancer_in_1"].astype(float)
        labels[5] = np.nan
        cols = {**self.cols, "cancer_in_1": labels}
        path = write_embedding_table(self.path("nan.csv"), x, cols)
        with self.assertRaisesRegex(
            ValueError, r"1 rows have non-finite embeddings and 1 rows missing labels.*\[2, 5\]"
        ):
            load_embedding_table(path)
        table = load_embedding_table(path, nan_policy="drop")
        self.assertEqual(len(table), N - 2)
        self.assertEqual(table.notes["dropped: non-finite embedding"], 1)
        self.assertEqual(table.notes["dropped: missing label"], 1)
        ok = write_embedding_table(self.path("ok.npz"), self.x, {**self.cols, "sex": np.zeros(N, int)})
        with self.assertRaisesRegex(ValueError, "expected 1408"):
            load_embedding_table(ok, expected_dim=1408)
        np.savez(
            self.path("short.npz"), embeddings=self.x, sex=np.zeros(N - 1), age=np.zeros(N), cancer_in_1=np.zeros(N)
        )
        with self.assertRaisesRegex(ValueError, "column 'sex' has shape"):
            load_embedding_table(self.path("short.npz"))
        np.savez(
            self.path("flat.npz"), embeddings=np.zeros(N), sex=np.zeros(N), age=np.zeros(N), cancer_in_1=np.zeros(N)
        )
        with self.assertRaisesRegex(ValueError, r"\(N, D\) matrix"):
            load_embedding_table(self.path("flat.npz"))
        with self.assertRaisesRegex(KeyError, "label column"):
            load_embedding_table(ok, label_columns="cancer_in_5")
        np.savez(self.path("nokey.npz"), other=self.x)
        with self.assertRaisesRegex(KeyError, "no embedding array"):
            load_embedding_table(self.path("nokey.npz"))
        with self.assertRaisesRegex(ValueError, "codes F=0"):
            np.savez(
                self.path("sex7.npz"), embeddings=self.x, sex=np.full(N, 7), age=np.zeros(N), cancer_in_1=np.zeros(N)
            )
            load_embedding_table(self.path("sex7.npz"))
        with self.assertRaises(FileNotFoundError):
            load_embedding_table(self.path("missing.npz"))
        with self.assertRaisesRegex(ValueError, "unsupported"):
            write_embedding_table(self.path("t.h5"), self.x, {})

    def test_gapped_columns(self):
        frame = pd.DataFrame(self.x, columns=[f"emb_{i}" for i in range(D)]).drop(columns=["emb_2"])
        frame["sex"], frame["age"], frame["cancer_in_1"] = "F", 50, 0
        frame.to_csv(self.path("gap.csv"), index=False)
        with self.assertRaisesRegex(ValueError, "without gaps"):
            load_embedding_table(self.path("gap.csv"))
        frame.drop(columns=[c for c in frame.columns if c.startswith("emb_")]).to_csv(self.path("none.csv"))
        with self.assertRaisesRegex(KeyError, "no embedding columns"):
            load_embedding_table(self.path("none.csv"))


if __name__ == "__main__":
    unittest.main()
