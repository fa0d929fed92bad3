# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the MIMIC-CXR-JPG manifest builder on the demo dataset (written in the real layout), with the raw CSVs
read by pandas as the oracle, plus the demo generator's determinism, caching and planted-bias bookkeeping."""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd

from monai_fair.data.codes import UNKNOWN
from monai_fair.data.demo import make_demo_dataset
from monai_fair.data.demo.mimic_cxr import make_mimic_cxr_demo
from monai_fair.data.mimic_cxr import MIMIC_CXR_LABELS, build_mimic_cxr_manifest, mimic_cxr_image_path
from monai_fair.data.privacy import hash_patient_id
from monai_fair.data.sampling import marcinkevics_study_data

SMALL = {"n_subjects": 60, "image_size": 32}


class TestMimicCXR(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.root = make_mimic_cxr_demo(Path(cls.tmp.name) / "mimic", seed=3, **SMALL)
        cls.meta = pd.read_csv(cls.root / "mimic-cxr-2.0.0-metadata.csv.gz", dtype={"dicom_id": str})
        cls.labels = pd.read_csv(cls.root / "mimic-cxr-2.0.0-chexpert.csv.gz")
        cls.patients = pd.read_csv(cls.root / "mimic-iv" / "hosp" / "patients.csv.gz")
        cls.adm = pd.read_csv(cls.root / "mimic-iv" / "hosp" / "admissions.csv.gz")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_layout(self):
        for name in ("metadata", "split", "chexpert"):
            self.assertTrue((self.root / f"mimic-cxr-2.0.0-{name}.csv.gz").is_file())
        row = self.meta.iloc[0]
        path = mimic_cxr_image_path(self.root, row.subject_id, row.study_id, row.dicom_id)
        self.assertTrue(path.is_file())
        self.assertEqual(path.parent.parent.parent.name, f"p{str(row.subject_id)[:2]}")
        info = json.loads((self.root / "DEMO_COMPLETE.json").read_text())
        self.assertEqual(info["params"]["n_subjects"], 60)
        self.assertIn("planted_bias", info)

    def test_frontal_counts_and_demographics(self):
        m = build_mimic_cxr_manifest(self.root)
        f = m.frame
        frontal = self.meta[self.meta.ViewPosition.isin(["PA", "AP"])]
        self.assertEqual(len(f), len(frontal))
        self.assertEqual(m.skipped.counts["view not in PA/AP"], len(self.meta) - len(frontal))
        # sex counts: oracle = pandas join of metadata and patients
        joined = frontal.merge(self.patients[["subject_id", "gender"]], on="subject_id", how="left")
        expected = joined.gender.map({"F": 0, "M": 1}).fillna(UNKNOWN).astype(int).value_counts().sort_index()
        pd.testing.assert_series_equal(f.sex.value_counts().sort_index(), expected, check_names=False)
        for col in ("subject_id", "study_id", "dicom_id", "StudyDate"):
            self.assertNotIn(col, f.columns)
        for col in MIMIC_CXR_LABELS:
            self.assertTrue(f[col].isin([0.0, 1.0]).all() or f[col].isna().any(), col)
        self.assertEqual(set(f.split) - {""}, {"train", "val", "test"} & set(f.split))
        self.assertEqual(set(m.code_maps["race"].values()), {"WHITE", "BLACK", "HISPANIC/LATINO", "ASIAN", "OTHER"})
        self.assertEqual(m.code_maps["race"][0], "WHITE")
        self.assertTrue(all(Path(p).is_file() for p in f.image))

    def test_last_admission_and_age(self):
        m = build_mimic_cxr_manifest(self.root)
        f = m.frame
        frontal = self.meta[self.meta.ViewPosition.isin(["PA", "AP"])].reset_index(drop=True)
        last = self.adm.assign(t=pd.to_datetime(self.adm.admittime)).sort_values("t").groupby("subject_id").tail(1)
        ins = frontal.subject_id.map(last.set_index("subject_id").insurance)
        names = m.code_maps["insurance"]
        got = f.insurance.map(lambda c: names.get(c))
        pd.testing.assert_series_equal(got.fillna("?"), ins.fillna("?"), check_names=False)
        pat = self.patients.set_index("subject_id")
        age = (
            frontal.subject_id.map(pat.anchor_age)
            + frontal.StudyDate.astype(str).str[:4].astype(int)
            - frontal.subject_id.map(pat.anchor_year)
        )
        np.testing.assert_allclose(f.age.to_numpy(), age.to_numpy())
        self.assertEqual(f.patient_hash.iloc[0], hash_patient_id(str(frontal.subject_id.iloc[0])))

    def test_uncertainty_policies_and_task(self):
        frontal = self.meta[self.meta.ViewPosition.isin(["PA", "AP"])].reset_index(drop=True)
        raw = frontal.merge(self.labels, on=["subject_id", "study_id"], how="left")["Enlarged Cardiomediastinum"]
        for policy, value in (("ignore", np.nan), ("zeros", 0.0), ("ones", 1.0)):
            f = build_mimic_cxr_manifest(self.root, uncertain=policy, check_files=False).frame
            got = f["Enlarged Cardiomediastinum"][raw.to_numpy() == -1]
            self.assertGreater(len(got), 0)
            if np.isnan(value):
                self.assertTrue(got.isna().all())
            else:
                self.assertTrue((got == value).all())
            self.assertTrue((f["Enlarged Cardiomediastinum"][raw.isna().to_numpy()] == 0).all())
        task = build_mimic_cxr_manifest(self.root, task="Enlarged Cardiomediastinum")
        nf = frontal.merge(self.labels, on=["subject_id", "study_id"], how="left")["No Finding"]
        self.assertEqual(int(task.frame.label.sum()), int((raw == 1).sum()))
        self.assertEqual(int((task.frame.label == 0).sum()), int(((nf == 1) & (raw != 1)).sum()))
        self.assertEqual(
            len(task.frame) + task.skipped.counts["neither Enlarged Cardiomediastinum nor No Finding"], len(frontal)
        )

    def test_missing_images_and_tables(self):
        with tempfile.TemporaryDirectory() as tmp:
            with self.assertRaises(FileNotFoundError):
                build_mimic_cxr_manifest(tmp)
            with self.assertRaises(FileNotFoundError):
                build_mimic_cxr_manifest(self.root, mimic_iv_dir=tmp)
        m0 = build_mimic_cxr_manifest(self.root)
        victim = Path(m0.frame.image.iloc[0])
        data = victim.read_bytes()
        victim.unlink()
        try:
            m = build_mimic_cxr_manifest(self.root)
            self.assertEqual(m.skipped.counts["missing image file"], 1)
            self.assertEqual(len(m.frame), len(m0.frame) - 1)
        finally:
            victim.write_bytes(data)

    def test_marcinkevics_study_data(self):
        data, maps = marcinkevics_study_data(dataset_dir=self.root, seed=1)
        self.assertEqual(set(data), {"train", "val", "test"})
        tr = data["train"]
        self.assertEqual(sum(d["sex"] == 1 for d in tr), 3 * sum(d["sex"] == 0 for d in tr))
        for split in ("val", "test"):
            self.assertEqual(sum(d["sex"] == 1 for d in data[split]), sum(d["sex"] == 0 for d in data[split]))
        self.assertEqual(set(tr[0]), {"image", "label", "sex", "age", "age_group", "race"})
        self.assertEqual(maps["sex"][1], "M")


class TestMimicDemo(unittest.TestCase):
    def test_deterministic_cached_and_validated(self):
        with tempfile.TemporaryDirectory() as tmp:
            a = make_mimic_cxr_demo(Path(tmp) / "a", seed=5, n_subjects=12, image_size=16)
            b = make_mimic_cxr_demo(Path(tmp) / "b", seed=5, n_subjects=12, image_size=16)
            for name in ("mimic-cxr-2.0.0-metadata.csv.gz", "mimic-cxr-2.0.0-chexpert.csv.gz"):
                self.assertEqual((a / name).read_bytes(), (b / name).read_bytes())
            first = next((a / "files").rglob("*.jpg"))
            self.assertEqual(first.read_bytes(), (b / first.relative_to(a)).read_bytes())
            stamp = (a / "DEMO_COMPLETE.json").stat().st_mtime_ns
            make_mimic_cxr_demo(a, seed=5, n_subjects=12, image_size=16)  # cached: untouched
            self.assertEqual((a / "DEMO_COMPLETE.json").stat().st_mtime_ns, stamp)
            c = make_mimic_cxr_demo(a, seed=6, n_subjects=12, image_size=16)  # other params: regenerated
            self.assertEqual(json.loads((c / "DEMO_COMPLETE.json").read_text())["seed"], 6)
            self.assertEqual(
                make_demo_dataset("mimic_cxr", Path(tmp) / "d", seed=5, n_subjects=12, image_size=16).name, "d"
            )
            with self.assertRaisesRegex(ValueError, "unknown"):
                make_mimic_cxr_demo(Path(tmp) / "e", bogus=1)
            with self.assertRaises(ValueError):
                make_mimic_cxr_demo(Path(tmp) / "e", female_cue_ratio=2.0)


if __name__ == "__main__":
    unittest.main()
