# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Data dicts of a folder or manifest for inference, the audit's no-op cases and the published model."""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

import pandas as pd
import torch

from monai_fair.study import audit_predictions, inference_data, publish_model


class TestInferenceData(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name)
        (self.root / "a" / "b").mkdir(parents=True)
        for name in ("a/x.png", "a/b/y.JPG", "a/b/z.dcm", "a/notes.txt"):
            (self.root / name).write_bytes(b"0")

    def tearDown(self):
        self.tmp.cleanup()

    def test_folder_recursive_images_only(self):
        data = inference_data(input_dir=self.root / "a")
        self.assertEqual([d["filename"] for d in data], ["b/y.JPG", "b/z.dcm", "x.png"])
        self.assertEqual(data[2]["image"], str((self.root / "a" / "x.png").resolve()))

    def test_manifest_keys_are_its_own_values(self):
        pd.DataFrame({"path": ["a/x.png", "a/b/y.JPG"], "sex": ["F", "M"]}).to_csv(self.root / "m.csv", index=False)
        data = inference_data(manifest_file=self.root / "m.csv", image_column="path")
        self.assertEqual([d["filename"] for d in data], ["a/x.png", "a/b/y.JPG"])
        self.assertEqual(data[1]["image"], str((self.root / "a" / "b" / "y.JPG").resolve()))

    def test_errors_name_the_input(self):
        with self.assertRaisesRegex(ValueError, "exactly one of input_dir"):
            inference_data()
        with self.assertRaisesRegex(ValueError, "exactly one of input_dir"):
            inference_data(input_dir=self.root, manifest_file=self.root / "m.csv")
        with self.assertRaisesRegex(ValueError, "holds no image"):
            inference_data(input_dir=self._empty())
        pd.DataFrame({"image": ["a/x.png", "a/missing.png"]}).to_csv(self.root / "m.csv", index=False)
        with self.assertRaisesRegex(ValueError, "1 of 2 image.*'missing.png'"):
            inference_data(manifest_file=self.root / "m.csv")
        with self.assertRaisesRegex(ValueError, "no image column 'path'"):
            inference_data(manifest_file=self.root / "m.csv", image_column="path")

    def _empty(self) -> Path:
        (self.root / "empty").mkdir()
        return self.root / "empty"

    def test_audit_needs_manifest_columns(self):
        pd.DataFrame({"image": ["a/x.png"]}).to_csv(self.root / "m.csv", index=False)
        (self.root / "p.csv").write_text("a/x.png,0.3\n")
        for manifest, attributes in ((None, "sex"), (self.root / "m.csv", None), (self.root / "m.csv", "sex")):
            paths = audit_predictions(
                self.root / "p.csv", manifest, self.root / "out", label="y", attributes=attributes
            )
            self.assertEqual(paths, [])
        self.assertFalse((self.root / "out").exists())


class TestPublishModel(unittest.TestCase):
    def test_copies_selected_seed_with_network_config(self):
        with tempfile.TemporaryDirectory() as tmp:
            for seed in (42, 73):
                (Path(tmp) / f"seed_{seed}").mkdir()
                torch.save({"w": torch.full((2,), float(seed))}, Path(tmp) / f"seed_{seed}" / "model.pt")
            path = publish_model(tmp, 73, {"scale": "paper", "width": 1.0})
            self.assertEqual(path, str(Path(tmp) / "model.pt"))
            self.assertEqual(torch.load(path, weights_only=True)["w"].tolist(), [73.0, 73.0])
            self.assertEqual(json.loads((Path(tmp) / "network.json").read_text()), {"scale": "paper", "width": 1.0})
            with self.assertRaisesRegex(FileNotFoundError, "seed 7"):
                publish_model(tmp, 7)


if __name__ == "__main__":
    unittest.main()
