# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The audit study's pieces: planted labels, the audit data of a manifest or a folder, input checks, the test
table."""

from __future__ import annotations

import os
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from monai_fair.study import (
    AuditData,
    BundleConfigError,
    audit_test_table,
    check_audit_inputs,
    check_audit_settings,
    planted_labels,
)


def _write_images(folder: Path, n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        name = f"img_{i:03d}.png"
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(folder / name)
        names.append(name)
    return names


class TestPlantedLabels(unittest.TestCase):
    def test_unprivileged_positives_become_negative(self):
        y = torch.tensor([1.0, 1.0, 0.0, 1.0])
        a = torch.tensor([0, 1, 0, 1])
        torch.testing.assert_close(planted_labels(y, a, 0), torch.tensor([0.0, 1.0, 0.0, 1.0]))
        torch.testing.assert_close(y, torch.tensor([1.0, 1.0, 0.0, 1.0]))  # input untouched


class TestAuditData(unittest.TestCase):
    def test_manifest_split_and_codes(self):
        with tempfile.TemporaryDirectory() as tmp:
            names = _write_images(Path(tmp) / "img", 50)
            sex = ["female" if i % 3 else "male" for i in range(50)]
            sex[0] = "unknown"
            pd.DataFrame(
                {"image": [f"img/{n}" for n in names], "sex": sex, "melanoma": [i % 2 for i in range(50)]}
            ).to_csv(Path(tmp) / "m.csv", index=False)
            data = AuditData(manifest_file=Path(tmp) / "m.csv", label="melanoma", generator_fraction=0.4, seed=1)
            self.assertEqual((len(data["train"]), len(data["test"])), (20, 30))
            self.assertEqual(data.group_code("sex", "M"), 1)
            rows = data["train"] + data["test"]
            self.assertEqual(sorted(os.path.basename(r["image"]) for r in rows), sorted(names))
            self.assertIn(-1, {r["sex"] for r in rows})  # unknown kept as the unknown code (the study drops it)
            self.assertTrue(all("label" in r for r in rows))
            unlabelled = AuditData(manifest_file=Path(tmp) / "m.csv", seed=1)
            self.assertFalse(any("label" in r for r in unlabelled["test"]))
            # the split is seeded
            again = AuditData(manifest_file=Path(tmp) / "m.csv", label="melanoma", generator_fraction=0.4, seed=1)
            self.assertEqual([r["image"] for r in again["test"]], [r["image"] for r in data["test"]])

    def test_folder_per_group(self):
        with tempfile.TemporaryDirectory() as tmp:
            _write_images(Path(tmp) / "F", 25)
            _write_images(Path(tmp) / "M", 25, seed=1)
            data = AuditData(input_dir=tmp)
            rows = data["train"] + data["test"]
            self.assertEqual(sorted({r["sex"] for r in rows}), [0, 1])
            self.assertEqual(sum(r["sex"] == 1 for r in rows), 25)
            self.assertEqual(data.code_maps["sex"][0], "F")

    def test_bad_inputs(self):
        with self.assertRaisesRegex(ValueError, "exactly one of input_dir"):
            AuditData()
        with self.assertRaisesRegex(ValueError, "not found"):
            AuditData(manifest_file="/nonexistent.csv")
        with tempfile.TemporaryDirectory() as tmp:
            _write_images(Path(tmp) / "F", 3)
            with self.assertRaisesRegex(ValueError, "one subfolder per sex"):
                AuditData(input_dir=tmp)
            _write_images(Path(tmp) / "M", 3)
            with self.assertRaisesRegex(ValueError, "at least 40"):
                AuditData(input_dir=tmp)

    def test_check_audit_inputs(self):
        with self.assertRaisesRegex(BundleConfigError, "--classifier_file"):
            check_audit_inputs({"user": None})
        with self.assertRaisesRegex(BundleConfigError, "not found"):
            check_audit_inputs({"user": "/nonexistent/model.ts"})
        with self.assertRaisesRegex(BundleConfigError, "supply"):
            check_audit_inputs({})
        check_audit_inputs({"user": torch.nn.Linear(1, 1)})


class TestAuditSettings(unittest.TestCase):
    def test_each_setting_is_named(self):
        good = dict(tests=["gcm"], alpha=0.05, regressor="logistic", n_folds=2, n_draws=10, image_size=32, channels=1)
        check_audit_settings(**good)
        for key, bad in (
            ("tests", ["hsic"]),
            ("tests", "gcm"),
            ("alpha", 1.5),
            ("regressor", "forest"),
            ("n_folds", 1),
            ("n_draws", 0),
            ("image_size", 30),
            ("channels", 2),
        ):
            with self.assertRaisesRegex(BundleConfigError, f"--{key}"):
                check_audit_settings(**{**good, key: bad})


class TestAuditTable(unittest.TestCase):
    def test_counts_and_medians(self):
        per_seed = pd.DataFrame(
            {
                "method": ["dep", "dep", "dep", "inv", "inv", "inv"],
                "gcm_p_value": [1e-5, 0.01, 0.2, 0.5, 0.04, np.nan],
                "gcm_rejects": [1.0, 1.0, 0.0, 0.0, 1.0, np.nan],
                "gcm_effect": [0.3, 0.2, 0.1, 0.0, 0.05, np.nan],
            }
        )
        table = audit_test_table(per_seed, 0.05, tests=("gcm",))
        self.assertEqual(list(table["rejects at α=0.05"]), ["2/3", "1/2"])
        self.assertEqual(list(table["median p"]), ["0.01", "0.27"])
        self.assertEqual(table["effect (mean ± std)"][0], "0.200 ± 0.100")


if __name__ == "__main__":
    unittest.main()
