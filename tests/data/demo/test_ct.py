# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the demo CT DICOM generator: layout, real tags, order, determinism, caching, planted bias."""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
import unittest
import warnings

import numpy as np
import pandas as pd
import pydicom
from monai.transforms import LoadImaged

from monai_fair.data.demo import cached_demo_dir
from monai_fair.data.demo.ct import make_ct_demo
from monai_fair.data.dicom_scan import scan_dicom_folder
from monai_fair.data.dicom_series import DicomSeriesReader

warnings.filterwarnings("ignore", message=".*nvImageCodec.*")

SMALL = {"n_patients": 4, "n_slices": 5, "size": 16}


class TestCtDemo(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_layout_and_tags(self):
        root = make_ct_demo(os.path.join(self.tmp, "a"), seed=0, **SMALL)
        series = sorted(glob.glob(os.path.join(root, "*", "*", "*")))
        self.assertEqual(len(series), 4)
        labels = pd.read_csv(root / "nlst_demo_labels.csv", dtype={"pid": str})
        self.assertEqual(list(labels.columns), ["pid", "cancer_in_1", "cancer_in_2"])
        for folder in series:
            files = sorted(glob.glob(os.path.join(folder, "*.dcm")))
            self.assertEqual(len(files), 5)
            headers = [pydicom.dcmread(f) for f in files]
            first = headers[0]
            self.assertEqual(first.Modality, "CT")
            self.assertEqual(first.file_meta.MediaStorageSOPClassUID, pydicom.uid.CTImageStorage)
            self.assertIn(first.PatientSex, ("F", "M"))
            self.assertRegex(first.PatientAge, r"^\d{3}Y$")
            self.assertIn(first.EthnicGroup, ("WHITE", "BLACK", "ASIAN"))
            self.assertEqual(first.PatientID, folder.split(os.sep)[-3])
            self.assertIn(first.PatientID, set(labels["pid"]))
            self.assertEqual(len({h.SeriesInstanceUID for h in headers}), 1)
            self.assertEqual(len({h.SOPInstanceUID for h in headers}), 5)
            self.assertTrue(pydicom.uid.UID(first.SOPInstanceUID).is_valid)
            self.assertEqual(first.pixel_array.dtype, np.int16)
            self.assertEqual(float(first.RescaleIntercept), -1024.0)
            # file name order is not the slice order: ordering must come from the headers
            z = [float(h.ImagePositionPatient[2]) for h in headers]
            self.assertNotEqual(z, sorted(z))
            self.assertNotEqual(z, sorted(z, reverse=True))
            # InstanceNumber 1 is the most superior slice
            by_number = sorted(headers, key=lambda h: int(h.InstanceNumber))
            self.assertEqual([float(h.ImagePositionPatient[2]) for h in by_number], sorted(z, reverse=True))
        info = json.loads((root / "DEMO_COMPLETE.json").read_text())
        self.assertTrue(info["synthetic"])
        self.assertEqual(set(info["planted_bias"]), {"group_dependent_prevalence", "shortcut_feature", "label_noise"})
        self.assertEqual(info["params"]["label_noise"], {"F": 0.15, "M": 0.0})

    def test_volume_in_hu_and_ordered(self):
        root = make_ct_demo(os.path.join(self.tmp, "a"), seed=0, **SMALL)
        folder = sorted(glob.glob(os.path.join(root, "*", "*", "*")))[0]
        image = LoadImaged(keys="image", reader=DicomSeriesReader())({"image": folder})["image"]
        self.assertEqual(tuple(image.shape), (16, 16, 5))
        self.assertLess(float(image.min()), -900)  # air in HU after RescaleIntercept
        self.assertGreater(float(image.max()), 0)
        scan = scan_dicom_folder(root, pattern="*.dcm")
        self.assertTrue(scan.skipped.empty)
        self.assertEqual(scan.manifest["n_slices"].tolist(), [5] * 4)
        self.assertEqual(set(scan.manifest["slice_order"]), {"position"})

    def test_deterministic_and_cached(self):
        a = make_ct_demo(os.path.join(self.tmp, "a"), seed=5, **SMALL)
        b = make_ct_demo(os.path.join(self.tmp, "b"), seed=5, **SMALL)
        c = make_ct_demo(os.path.join(self.tmp, "c"), seed=6, **SMALL)

        def content(root):
            out = {}
            for f in sorted(glob.glob(os.path.join(root, "**", "*"), recursive=True)):
                if os.path.isfile(f):
                    out[os.path.relpath(f, root)] = open(f, "rb").read()
            return out

        self.assertEqual(content(a), content(b))
        self.assertNotEqual(content(a), content(c))
        marker = a / "DEMO_COMPLETE.json"
        before = marker.stat().st_mtime_ns
        self.assertEqual(make_ct_demo(a, seed=5, **SMALL), a)  # complete: reused, not rewritten
        self.assertEqual(marker.stat().st_mtime_ns, before)
        os.environ["MONAI_FAIR_DEMO_DIR"] = os.path.join(self.tmp, "cache")
        try:
            cached = make_ct_demo(None, seed=5, **SMALL)
            self.assertTrue(str(cached).startswith(os.path.join(self.tmp, "cache")))
            params = json.loads((cached / "DEMO_COMPLETE.json").read_text())["params"]
            self.assertEqual(cached_demo_dir(None, "ct", 5, params), (cached, True))
        finally:
            del os.environ["MONAI_FAIR_DEMO_DIR"]

    def test_planted_bias_is_tunable(self):
        root = make_ct_demo(
            os.path.join(self.tmp, "extreme"),
            seed=1,
            n_patients=12,
            n_slices=3,
            size=16,
            prevalence={"F": 0.0, "M": 1.0},
            shortcut_prob={"F": 0.0, "M": 1.0},
            label_noise={"F": 1.0, "M": 0.0},
            prevalence_2y_extra=0.0,
        )
        truth = pd.read_csv(root / "nlst_demo_truth.csv", dtype={"pid": str})
        labels = pd.read_csv(root / "nlst_demo_labels.csv", dtype={"pid": str})
        sex = {}
        strip = {}
        for folder in glob.glob(os.path.join(root, "*", "*", "*")):
            files = glob.glob(os.path.join(folder, "*.dcm"))
            ds = pydicom.dcmread(files[0])
            sex[ds.PatientID] = ds.PatientSex
            strip[ds.PatientID] = bool((ds.pixel_array[-2:, 4:12] > 2000).all())  # the bright table strip
        for _, row in truth.iterrows():
            male = sex[row["pid"]] == "M"
            self.assertEqual(row["cancer_in_1"], int(male))
            self.assertEqual(row["shortcut"], int(male))
            self.assertEqual(strip[row["pid"]], male)
            recorded = labels[labels["pid"] == row["pid"]].iloc[0]
            self.assertEqual(recorded["cancer_in_1"], 1)  # men: true positives; women: every negative flipped

    def test_bad_parameters(self):
        with self.assertRaises(ValueError):
            make_ct_demo(os.path.join(self.tmp, "x"), prevalence={"F": 1.5, "M": 0.1})
        with self.assertRaises(ValueError):
            make_ct_demo(os.path.join(self.tmp, "x"), n_slices=1)
        with self.assertRaises(ValueError):
            make_ct_demo(os.path.join(self.tmp, "x"), label_noise={"F": 0.1})


if __name__ == "__main__":
    unittest.main()
