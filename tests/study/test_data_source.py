# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import unittest

from monai_fair.study import DataSource, StudySplits


class TestDataSource(unittest.TestCase):
    def test_choice_from_paths(self):
        self.assertEqual(DataSource("mimic_cxr", real_name="mimic").kind, "demo")
        real = DataSource("mimic_cxr", dataset_dir="/data/mimic", real_name="mimic")
        self.assertEqual(
            (real.kind, real.demo, real.dataset_dir, real.manifest_file), ("mimic", False, "/data/mimic", None)
        )
        self.assertEqual(real.label_column("Cardiomegaly"), "label")
        man = DataSource("mimic_cxr", dataset_dir="/data/mimic", manifest_file="/data/m.csv")
        self.assertEqual((man.kind, man.dataset_dir, man.manifest_file), ("manifest", None, "/data/m.csv"))
        self.assertEqual(man.label_column("Cardiomegaly"), "Cardiomegaly")
        self.assertEqual(man.description, "manifest")
        self.assertIn("DEMO", DataSource("mimic_cxr").description)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "manifest_file"):
            DataSource("mimic_cxr", dataset="manifest")
        with self.assertRaisesRegex(ValueError, "dataset_dir"):
            DataSource("mimic_cxr", dataset="mimic")


class TestStudySplits(unittest.TestCase):
    def test_calls_split_with_the_source(self):
        calls = []

        def split(dataset_dir, manifest, label_column, seed):
            calls.append((dataset_dir, manifest, label_column, seed))
            return {"train": [{"x": 1}], "val": [], "test": [{"x": 2}, {"x": 3}]}, {"sex": {0: "F", 1: "M"}}

        splits = StudySplits(split, DataSource("mimic_cxr", manifest_file="/m.csv"), "Cardiomegaly", 5)
        self.assertEqual(calls, [(None, "/m.csv", "Cardiomegaly", 5)])
        self.assertEqual(list(splits), ["train", "val", "test"])
        self.assertEqual(len(splits["test"]), 2)
        self.assertEqual(splits.code_maps, {"sex": {0: "F", 1: "M"}})


if __name__ == "__main__":
    unittest.main()
