# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""CTEmbedder: pydicom's real CT series goes through the header scan, LoadImaged and a MONAI 3D encoder into a
cached, de-identified embedding table, which a debiaser then turns into debiased embeddings and a report."""

from __future__ import annotations

import os
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from monai_fair.data.ct_embeddings import CTEmbedder
from monai_fair.data.embeddings import load_embedding_table
from monai_fair.debias import VAEDebiaser
from monai_fair.study import debias_ct_folder
from tests.data.dicom_privacy import real_file


class TinyEncoder(torch.nn.Module):
    """Mean, std and a fixed random projection of the volume: a fast, deterministic stand-in encoder."""

    def __init__(self, n_voxels: int, dim: int = 6) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(n_voxels, dim - 2)
        torch.nn.init.normal_(self.proj.weight, generator=torch.Generator().manual_seed(0))

    def forward(self, x):
        flat = x.flatten(1)
        return torch.cat([flat.mean(1, keepdim=True), flat.std(1, keepdim=True), self.proj(flat)], 1)


class TestCTEmbedder(unittest.TestCase):
    def setUp(self):
        self.series = os.path.join(os.path.dirname(real_file("CT_small.dcm")), "dicomdirtests", "98892001", "CT5N")
        self.tmp = tempfile.TemporaryDirectory()
        self.out = Path(self.tmp.name)
        self.embedder = CTEmbedder(encoder=TinyEncoder(16 * 16 * 8), roi_size=(16, 16, 8))

    def tearDown(self):
        self.tmp.cleanup()

    def test_real_series_to_table(self):
        path = self.embedder.embed_dicom_folder(self.series, self.out / "ct.npz")
        table = load_embedding_table(path, label_columns=())
        self.assertEqual(table.embeddings.shape, (1, 6))
        self.assertEqual(table.sex.tolist(), [1])  # the header's PatientSex M, through the shared scan
        self.assertEqual(table.age.tolist(), [43.0])
        # the first two features are the mean and std of the HU-windowed, resized volume: check against MONAI
        volume = self.embedder.transforms(True)({"image": self.series})["image"]
        self.assertEqual(tuple(volume.shape), (1, 16, 16, 8))
        np.testing.assert_allclose(table.embeddings[0, 0], float(volume.mean()), rtol=1e-5)
        self.assertTrue(0.0 <= float(volume.min()) and float(volume.max()) <= 1.0)
        with np.load(path) as npz:  # no raw header values: only hash, sex, age, vectors
            self.assertEqual(sorted(npz.files), ["age", "embeddings", "patient_hash", "sex"])
        # cached: the second call does not encode again
        stamp = os.stat(path).st_mtime_ns
        self.embedder.embed_dicom_folder(self.series, self.out / "ct.npz")
        self.assertEqual(os.stat(path).st_mtime_ns, stamp)

    def test_debias_ct_folder_writes_embeddings_and_report(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(40, 6)).astype(np.float32)
        deb = VAEDebiaser(latent_size=3, epochs=1, seed=0).fit(x, rng.integers(0, 2, 40), rng.normal(60, 5, 40))
        deb.save(self.out / "vae.pt")
        paths = debias_ct_folder(self.series, self.out / "vae.pt", self.out / "inf", embedder=self.embedder)
        table = load_embedding_table(paths["embeddings"], label_columns=())
        debiased = load_embedding_table(paths["table"], label_columns=())
        np.testing.assert_allclose(debiased.embeddings, deb.transform(table.embeddings).numpy(), rtol=1e-5, atol=1e-6)
        self.assertIn("Debiased embeddings", Path(paths["report_html"]).read_text())
        self.assertTrue(Path(paths["summary_json"]).is_file())

    def test_demo_layout_with_labels(self):
        from monai_fair.data.demo.ct import make_ct_demo

        root = make_ct_demo(self.out / "demo", seed=0, n_patients=6, n_slices=8, size=16)
        labels = pd.read_csv(root / "nlst_demo_labels.csv")
        path = self.embedder.embed_dicom_folder(root, self.out / "demo.csv", labels, ["cancer_in_1"])
        table = load_embedding_table(path, label_columns=["cancer_in_1"])
        self.assertEqual(len(table), 6)
        self.assertEqual(sorted(table.labels[:, 0].tolist()), sorted(labels["cancer_in_1"].astype(float).tolist()))
        self.assertNotIn("pid", pd.read_csv(path).columns)

    def test_invalid(self):
        with self.assertRaisesRegex(ValueError, "roi_size"):
            CTEmbedder(encoder=TinyEncoder(8), roi_size=(4, 4))
        with self.assertRaisesRegex(ValueError, "hu_window"):
            CTEmbedder(encoder=TinyEncoder(8), hu_window=(400, -1000))
        with self.assertRaisesRegex(ValueError, "no 3D series"):
            self.embedder.embed_dicom_folder(self.out, self.out / "x.npz")
        with self.assertRaisesRegex(ValueError, "no CT volumes"):
            self.embedder.encode([])


if __name__ == "__main__":
    unittest.main()
