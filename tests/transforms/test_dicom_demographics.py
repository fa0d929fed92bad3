# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of DicomDemographicsd in LoadImaged pipelines (2D radiographs, 3D series), on real DICOM files."""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import tempfile
import unittest
import warnings

import pydicom
import torch
from monai.data import DataLoader, Dataset, MetaTensor, PersistentDataset, PydicomReader
from monai.transforms import Compose, LoadImaged
from parameterized import parameterized

from monai_fair.data.codes import UNKNOWN, encode_age_group, encode_sex
from monai_fair.data.demo.ct import make_ct_demo
from monai_fair.data.patient_age import resolve_patient_age
from monai_fair.data.privacy import hash_patient_id
from monai_fair.transforms import DicomDemographicsd
from tests.data.dicom_privacy import leaks, personal_values, real_file

warnings.filterwarnings("ignore", message=".*nvImageCodec.*")
warnings.filterwarnings("ignore", message=".*ImageOrientationPatient.*")


def oracle(ds: pydicom.Dataset) -> tuple[int, float]:
    """Sex code and age read independently with pydicom."""
    age = resolve_patient_age(ds.get("PatientAge"), ds.get("PatientBirthDate"), ds.get("StudyDate")).age
    return encode_sex(ds.get("PatientSex")), age


def load(path, **kwargs):
    return LoadImaged(keys="image", reader=PydicomReader(prune_metadata=False), **kwargs)({"image": path})


def same_age(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) < 1e-9


class TestDicomDemographicsd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.ct_root = make_ct_demo(os.path.join(cls.tmp, "ct"), seed=3, n_patients=2, n_slices=5, size=16)
        cls.series = sorted(glob.glob(os.path.join(cls.ct_root, "*", "*", "*")))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def copy_real(self, name: str, new_name: str = "img.dcm") -> str:
        dest = os.path.join(self.tmp, f"{len(os.listdir(self.tmp))}_{new_name}")
        shutil.copy(real_file(name), dest)
        return dest

    @parameterized.expand([("CT_small.dcm",), ("MR_small.dcm",), ("RG1_UNCI.dcm",)])
    def test_2d_pipeline_matches_oracle_and_strips(self, name):
        path = self.copy_real(name)
        ds = pydicom.dcmread(path)
        data = load(path)
        self.assertIn("00100010", data["image"].meta)  # PatientName is there before the transform
        out = DicomDemographicsd(keys="image", patient_hash_key="patient_hash")(data)
        sex, age = oracle(ds)
        self.assertEqual(out["sex"], sex)
        self.assertTrue(same_age(out["age"], age))
        self.assertEqual(out["age_group"], encode_age_group(age))
        self.assertEqual(out["ethnic_group"], UNKNOWN)
        self.assertEqual(out["patient_hash"], hash_patient_id(str(ds.PatientID)))
        meta = out["image"].meta
        for tag in ("00100010", "00100020", "00100030", "00080020", "00080030", "00080080", "0020000D", "0020000E"):
            self.assertNotIn(tag, meta)
        no_path = {k: v for k, v in meta.items() if k != "filename_or_obj"}
        self.assertEqual(leaks(personal_values(ds), obj=no_path, text=json.dumps(no_path, default=str)), [])
        self.assertIn("affine", meta)
        self.assertIn("00280030", meta)  # geometry stays

    def test_chest_radiograph_age_from_dates(self):
        out = DicomDemographicsd()(load(self.copy_real("RG1_UNCI.dcm")))
        self.assertEqual(out["sex"], 0)
        self.assertEqual(int(out["age"]), 64)  # no PatientAge: 1940-03-05 to 2004-08-26
        self.assertEqual(out["age_group"], 2)

    def test_3d_series_from_demo(self):
        data = load(self.series[0])
        self.assertEqual(tuple(data["image"].shape), (16, 16, 5))
        first = pydicom.dcmread(glob.glob(os.path.join(self.series[0], "*.dcm"))[0], stop_before_pixels=True)
        t = DicomDemographicsd(patient_hash_key="patient_hash")
        out = t(data)
        sex, age = oracle(first)
        self.assertEqual((out["sex"], out["age"]), (sex, age))
        self.assertEqual(t.ethnic_group_names[out["ethnic_group"]], first.EthnicGroup.upper())
        self.assertEqual(out["patient_hash"], hash_patient_id(first.PatientID))
        meta = {k: v for k, v in out["image"].meta.items() if k != "filename_or_obj"}
        self.assertEqual(leaks(personal_values(first), obj=meta), [])
        self.assertNotIn("00102160", out["image"].meta)  # EthnicGroup leaves as a code only

    def test_3d_real_series(self):
        folder = os.path.join(os.path.dirname(real_file("CT_small.dcm")), "dicomdirtests", "98892001", "CT5N")
        out = DicomDemographicsd()(load(folder))
        ds = pydicom.dcmread(glob.glob(os.path.join(folder, "*"))[0], stop_before_pixels=True)
        self.assertEqual((out["sex"], out["age"]), oracle(ds))
        self.assertEqual((out["sex"], out["age"]), (1, 43.0))

    def test_image_only_false_meta_dict_is_stripped(self):
        data = load(self.copy_real("CT_small.dcm"), image_only=False)
        out = DicomDemographicsd()(data)
        self.assertNotIn("00100010", out["image_meta_dict"])
        self.assertNotIn("00100010", out["image"].meta)
        self.assertEqual(out["sex"], 2)

    def test_dataset_input_header_only(self):
        path = self.copy_real("CT_small.dcm")
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        out = DicomDemographicsd()({"image": ds})
        self.assertEqual((out["sex"], out["age"]), oracle(ds))
        self.assertNotIn("PatientName", out["image"])
        self.assertNotIn("PatientID", out["image"])
        self.assertIn("PatientName", ds)  # the caller's dataset is not modified

    def test_path_input_before_loading(self):
        path = self.copy_real("MR_small.dcm")
        pipeline = Compose([DicomDemographicsd(keys="image"), LoadImaged(keys="image", reader="PydicomReader")])
        out = pipeline({"image": path})
        self.assertEqual(out["sex"], 0)
        self.assertIsInstance(out["image"], MetaTensor)
        self.assertNotIn("00100010", out["image"].meta)  # default prune_metadata never loaded it
        series = DicomDemographicsd()({"image": self.series[1]})
        self.assertEqual(series["image"], self.series[1])
        self.assertIn(series["sex"], (0, 1))

    @parameterized.expand(
        [
            ("ABC", "F", 0, "age: PatientAge not in DICOM AS format"),
            ("999Y", "M", 1, "age: PatientAge implausible"),
            ("", "X", UNKNOWN, "sex: PatientSex not one of M/F/O"),
            ("065Y", None, UNKNOWN, "sex: PatientSex missing or empty"),
        ]
    )
    def test_bad_tags_give_unknown_with_reason(self, age, sex, sex_code, reason):
        ds = pydicom.dcmread(real_file("CT_small.dcm"))
        ds.PatientAge = age
        del ds.PatientBirthDate
        if sex is None:
            del ds.PatientSex
        else:
            ds.PatientSex = sex
        path = os.path.join(self.tmp, f"bad_{age}_{sex}.dcm")
        ds.save_as(path)
        t = DicomDemographicsd(reason_key="demographics_note")
        with self.assertLogs("monai_fair.transforms.dicom_demographics", level="WARNING") as logs:
            out = t(load(path))
            t(load(path))
        self.assertEqual(out["sex"], sex_code)
        if age == "065Y":
            self.assertEqual(out["age"], 65.0)
        else:
            self.assertTrue(math.isnan(out["age"]))
            self.assertEqual(out["age_group"], UNKNOWN)
        self.assertIn(reason, out["demographics_note"])
        self.assertEqual(t.reason_counts[next(r for r in t.reason_counts if r.startswith(reason))], 2)
        log_text = "\n".join(logs.output)
        self.assertEqual(len([line for line in logs.output if reason in line]), 1)  # logged once, then counted
        self.assertEqual(leaks(personal_values(ds), text=log_text + out["demographics_note"]), [])

    def test_ethnic_group_codes(self):
        paths = []
        for value in ("WHITE", "asian ", "White", None):
            ds = pydicom.dcmread(real_file("CT_small.dcm"))
            if value is not None:
                ds.EthnicGroup = value
            path = os.path.join(self.tmp, f"eth_{value}.dcm")
            ds.save_as(path)
            paths.append(path)
        t = DicomDemographicsd()
        codes = [t(load(p))["ethnic_group"] for p in paths]
        self.assertEqual(codes, [0, 1, 0, UNKNOWN])
        self.assertEqual(t.ethnic_group_names, {0: "WHITE", 1: "ASIAN"})
        frozen = DicomDemographicsd(ethnic_groups={"asian": 0}, reason_key="why")
        self.assertEqual(frozen(load(paths[1]))["ethnic_group"], 0)
        out = frozen(load(paths[0]))
        self.assertEqual(out["ethnic_group"], UNKNOWN)
        self.assertIn("not in the given code map", out["why"])

    def test_collation_and_all_tags(self):
        t = DicomDemographicsd(strip="all_tags", patient_hash_key="patient_hash")
        items = [t(load(s)) for s in self.series]
        self.assertFalse(any(len(k) == 8 and k.isalnum() and k[:4].isdigit() for k in items[0]["image"].meta))
        batch = next(iter(DataLoader(Dataset(items), batch_size=2)))
        self.assertEqual(batch["sex"].dtype, torch.int64)
        self.assertEqual(batch["sex"].tolist(), [i["sex"] for i in items])
        self.assertEqual(batch["age"].tolist(), [i["age"] for i in items])
        self.assertEqual(tuple(batch["image"].shape), (2, 16, 16, 5))

    def test_persistent_cache_holds_no_personal_values(self):
        cache = os.path.join(self.tmp, "cache")
        path = self.copy_real("CT_small.dcm")
        ds = pydicom.dcmread(path)
        pipeline = Compose([LoadImaged(keys="image", reader=PydicomReader(prune_metadata=False)), DicomDemographicsd()])
        dataset = PersistentDataset([{"image": path}], transform=pipeline, cache_dir=cache, track_meta=True)
        first, second = dataset[0], dataset[0]  # second comes from the cache (torch.load weights_only=True)
        self.assertEqual(first["sex"], second["sex"])
        self.assertEqual(second["sex"], 2)
        blob = b"".join(open(os.path.join(cache, f), "rb").read() for f in os.listdir(cache))
        for value in personal_values(ds):
            if len(value) >= 6:
                self.assertNotIn(value.encode(), blob)

    def test_errors(self):
        with self.assertRaises(ValueError):
            DicomDemographicsd(strip="some")
        with self.assertRaises(ValueError):
            DicomDemographicsd(age_bins=(0, 60, 40))
        with self.assertRaises(TypeError):
            DicomDemographicsd()({"image": torch.zeros(2, 2)})
        with self.assertRaises(KeyError):
            DicomDemographicsd()({"other": 1})
        self.assertEqual(DicomDemographicsd(allow_missing_keys=True)({"other": 1}), {"other": 1})


if __name__ == "__main__":
    unittest.main()
