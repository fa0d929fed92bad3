# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of DICOM header demographics and personal-element removal, on pydicom's real test files."""

from __future__ import annotations

import json
import math
import unittest

import pydicom
from parameterized import parameterized
from pydicom.datadict import tag_for_keyword

from monai_fair.data.codes import UNKNOWN, encode_age_group, encode_sex
from monai_fair.data.dicom_header import (
    PERSONAL_KEYWORDS,
    extract_dicom_demographics,
    normalize_ethnic_group,
    read_dicom_header,
    strip_personal_dataset,
    strip_personal_json,
)
from monai_fair.data.patient_age import resolve_patient_age
from monai_fair.data.privacy import hash_patient_id
from tests.data.dicom_privacy import leaks, personal_values, real_file

REAL_FILES = [("CT_small.dcm",), ("MR_small.dcm",), ("rtplan.dcm",), ("RG1_UNCI.dcm",), ("eCT_Supplemental.dcm",)]


class TestExtractDemographics(unittest.TestCase):
    @parameterized.expand(REAL_FILES)
    def test_matches_pydicom_oracle(self, name):
        ds = pydicom.dcmread(real_file(name))
        demo = extract_dicom_demographics(ds)
        # oracle: the raw tags read by pydicom, decoded independently
        self.assertEqual(demo.sex, encode_sex(ds.get("PatientSex")))
        expected_age = resolve_patient_age(ds.get("PatientAge"), ds.get("PatientBirthDate"), ds.get("StudyDate"))
        if math.isnan(expected_age.age):
            self.assertTrue(math.isnan(demo.age))
        else:
            self.assertAlmostEqual(demo.age, expected_age.age)
        self.assertEqual(demo.age_group, encode_age_group(demo.age))
        self.assertEqual(demo.patient_hash, hash_patient_id(str(ds.PatientID)))

    def test_known_values(self):
        ct = extract_dicom_demographics(pydicom.dcmread(real_file("CT_small.dcm")))
        self.assertEqual((ct.sex, ct.age, ct.age_source), (2, 0.0, "PatientAge"))  # "O", "000Y"
        mr = extract_dicom_demographics(pydicom.dcmread(real_file("MR_small.dcm")))
        self.assertEqual(mr.sex, 0)  # "F", no age, no birth date
        self.assertTrue(math.isnan(mr.age))
        self.assertEqual(mr.age_group, UNKNOWN)
        self.assertTrue(any("PatientAge missing" in r for r in mr.reasons))
        cr = extract_dicom_demographics(pydicom.dcmread(real_file("RG1_UNCI.dcm")))
        self.assertEqual((cr.sex, cr.age_source, int(cr.age)), (0, "dates", 64))  # 1940-03-05 → 2004-08-26
        ect = extract_dicom_demographics(pydicom.dcmread(real_file("eCT_Supplemental.dcm")))
        self.assertEqual((ect.sex, ect.age), (1, 52.0))

    def test_json_and_dataset_agree(self):
        for name in ("CT_small.dcm", "RG1_UNCI.dcm", "MR_small.dcm"):
            ds = pydicom.dcmread(real_file(name), stop_before_pixels=True)
            a = extract_dicom_demographics(ds)
            b = extract_dicom_demographics(ds.to_json_dict())
            self.assertEqual(a.sex, b.sex)
            self.assertEqual(a.patient_hash, b.patient_hash)
            self.assertTrue(a.age == b.age or (math.isnan(a.age) and math.isnan(b.age)))

    @parameterized.expand(
        [
            ("X", "ABC", "sex: PatientSex not one of M/F/O", "not in DICOM AS format"),
            ("", "999Y", "sex: PatientSex missing", "implausible"),
            (None, "", "sex: PatientSex missing", "PatientAge missing"),
        ]
    )
    def test_garbage_tags_give_unknown_with_reason(self, sex, age, sex_reason, age_reason):
        ds = pydicom.dcmread(real_file("CT_small.dcm"), stop_before_pixels=True)
        if sex is None:
            del ds.PatientSex
        else:
            ds.PatientSex = sex
        ds.PatientAge = age
        demo = extract_dicom_demographics(ds)
        self.assertEqual(demo.sex, UNKNOWN)
        self.assertTrue(math.isnan(demo.age))
        self.assertEqual(demo.age_group, UNKNOWN)
        text = "; ".join(demo.reasons)
        self.assertIn(sex_reason, text)
        self.assertIn(age_reason, text)
        self.assertEqual(leaks(personal_values(ds), obj=list(demo.reasons), text=text), [])

    def test_ethnic_group_normalized(self):
        self.assertEqual(normalize_ethnic_group("  white  british "), "WHITE BRITISH")
        self.assertEqual(normalize_ethnic_group(None), "")
        ds = pydicom.dcmread(real_file("CT_small.dcm"), stop_before_pixels=True)
        ds.EthnicGroup = "Asian"
        self.assertEqual(extract_dicom_demographics(ds).ethnic_group, "ASIAN")

    def test_header_only_read(self):
        ds = read_dicom_header(real_file("CT_small.dcm"))
        self.assertNotIn("PixelData", ds)
        self.assertEqual(ds.PatientSex, "O")

    def test_bad_header_type(self):
        with self.assertRaises(TypeError):
            extract_dicom_demographics(42)  # type: ignore[arg-type]


class TestStripPersonal(unittest.TestCase):
    def test_every_personal_keyword_is_a_dicom_keyword(self):
        for kw in PERSONAL_KEYWORDS:
            self.assertIsNotNone(tag_for_keyword(kw), kw)

    @parameterized.expand(REAL_FILES)
    def test_json_has_no_personal_value_left(self, name):
        ds = pydicom.dcmread(real_file(name), stop_before_pixels=True)
        meta = ds.to_json_dict(suppress_invalid_tags=True)
        removed = strip_personal_json(meta)
        self.assertGreater(removed, 0)
        self.assertEqual(leaks(personal_values(ds), obj=meta, text=json.dumps(meta)), [], name)
        for kw in ("PatientName", "PatientID", "PatientBirthDate", "StudyDate", "InstitutionName"):
            self.assertNotIn(f"{tag_for_keyword(kw):08X}", meta)
        # what is needed downstream stays
        if "PatientSex" in ds:
            self.assertIn("00100040", meta)
        self.assertIn("00080060", meta)  # Modality

    def test_all_tags_mode(self):
        meta = pydicom.dcmread(real_file("CT_small.dcm"), stop_before_pixels=True).to_json_dict()
        meta["affine"] = "kept"
        strip_personal_json(meta, all_tags=True)
        self.assertEqual(meta, {"affine": "kept"})

    def test_nested_sequences_and_private_tags(self):
        ds = pydicom.dcmread(real_file("RG1_UNCI.dcm"), stop_before_pixels=True)
        item = pydicom.Dataset()
        item.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7"
        item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        item.PatientName = "Nested^Person"
        ds.ReferencedImageSequence = [item]
        ds.add_new(0x00091001, "LO", "private secret")
        meta = ds.to_json_dict()
        strip_personal_json(meta)
        text = json.dumps(meta)
        for secret in ("Nested^Person", "1.2.3.4.5.6.7", "private secret"):
            self.assertNotIn(secret, text)
        self.assertIn("1.2.840.10008.5.1.4.1.1.2", text)  # class UIDs stay
        clean = strip_personal_dataset(ds)
        self.assertNotIn("PatientName", clean)
        self.assertNotIn((0x0009, 0x1001), clean)
        self.assertNotIn("PatientName", clean.ReferencedImageSequence[0])
        self.assertNotIn("MediaStorageSOPInstanceUID", clean.file_meta)
        # the original is untouched (including its sequences)
        self.assertEqual(ds.ReferencedImageSequence[0].PatientName, "Nested^Person")
        self.assertIn("PatientName", ds)


if __name__ == "__main__":
    unittest.main()
