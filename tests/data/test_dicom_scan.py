# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the header-only DICOM folder scan: real files, 3D series, the bad-input suite, privacy."""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import struct
import tempfile
import unittest
import warnings

import numpy as np
import pandas as pd
import pydicom
from monai.transforms import LoadImaged
from pydicom.uid import generate_uid

from monai_fair.data.codes import UNKNOWN, encode_sex
from monai_fair.data.demo.ct import make_ct_demo
from monai_fair.data.dicom_scan import MANIFEST_COLUMNS, load_dicom_manifest, scan_dicom_folder
from monai_fair.data.dicom_series import DicomSeriesReader
from monai_fair.data.patient_age import resolve_patient_age
from monai_fair.data.privacy import hash_patient_id
from tests.data.dicom_privacy import leaks, personal_values, real_file

warnings.filterwarnings("ignore", message=".*nvImageCodec.*")

GOOD = {
    "good/ct_small.dcm": "CT_small.dcm",
    "good/mr_bigendian.dcm": "MR_small_bigendian.dcm",
    "good/jpeg_baseline.dcm": "SC_rgb_jpeg_dcmtk.dcm",
    "good/chest_cr.dcm": "RG1_UNCI.dcm",
    "good/multiframe_ct.dcm": "eCT_Supplemental.dcm",
}
# file → expected skip reason (substring)
BAD = {
    "bad/truncated_pixels.dcm": "pixel data truncated (file shorter",
    "bad/truncated_header.dcm": "truncated header",
    "bad/truncated_before_pixels.dcm": "no pixel data in an image object",
    "bad/truncated_jpeg.dcm": "encapsulated data has no end delimiter",
    "bad/text.dcm": "not a DICOM file",
    "bad/empty.dcm": "empty file",
    "bad/rtplan.dcm": "no pixel data (RT Plan Storage)",
    "bad/rows_mismatch.dcm": "pixel data shorter than Rows x Columns",
    "notes.txt": "not a DICOM file",
    # the same MR instance re-encoded (implicit VR, explicit VR) after the big-endian copy was read
    "good/mr_implicit.dcm": "duplicate of an earlier file (same SOPInstanceUID)",
    "good/mr_small.dcm": "duplicate of an earlier file (same SOPInstanceUID)",
}
# file → (PatientAge, PatientSex or None to delete), read as rows with unknown values and a note
ODD = {
    "odd/age_abc.dcm": ("ABC", "F"),
    "odd/age_999.dcm": ("999Y", "M"),
    "odd/age_empty.dcm": ("", "F"),
    "odd/no_sex.dcm": ("050Y", None),
    "odd/sex_x.dcm": ("050Y", "X"),
}


def garble(data: bytearray, tag: bytes, vr: bytes, fill: bytes = b"x") -> None:
    """Overwrite the value of an explicit-VR-little-endian element in place (same length), e.g. IS "1" → "x"."""
    i = data.find(tag + vr)
    length = struct.unpack("<H", data[i + 6 : i + 8])[0]
    data[i + 8 : i + 8 + length] = fill * length


def write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


class TestScanDicomFolder(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.root = os.path.join(cls.tmp, "archive")
        cls.sources = {}  # rel path → original dataset (oracle)
        for rel, name in GOOD.items():
            write(os.path.join(cls.root, rel), open(real_file(name), "rb").read())
            cls.sources[rel] = pydicom.dcmread(real_file(name), stop_before_pixels=True)
        ct = open(real_file("CT_small.dcm"), "rb").read()
        write(os.path.join(cls.root, "bad/truncated_pixels.dcm"), ct[: int(len(ct) * 0.6)])
        write(os.path.join(cls.root, "bad/truncated_header.dcm"), ct[:1000])
        write(os.path.join(cls.root, "bad/truncated_before_pixels.dcm"), ct[:3000])
        jpeg = open(real_file("SC_rgb_jpeg_dcmtk.dcm"), "rb").read()
        write(os.path.join(cls.root, "bad/truncated_jpeg.dcm"), jpeg[:-300])
        write(os.path.join(cls.root, "bad/text.dcm"), b"this is a text file, not DICOM\n")
        write(os.path.join(cls.root, "bad/empty.dcm"), b"")
        write(os.path.join(cls.root, "bad/rtplan.dcm"), open(real_file("rtplan.dcm"), "rb").read())
        write(os.path.join(cls.root, "notes.txt"), b"free text\n")
        for rel, name in (("good/mr_implicit.dcm", "MR_small_implicit.dcm"), ("good/mr_small.dcm", "MR_small.dcm")):
            write(os.path.join(cls.root, rel), open(real_file(name), "rb").read())
        ds = pydicom.dcmread(real_file("CT_small.dcm"))
        ds.Rows = 256  # header says 256x128 but pixel data holds 128x128
        ds.SOPInstanceUID = generate_uid()
        ds.save_as(os.path.join(cls.root, "bad/rows_mismatch.dcm"))
        for rel, (age, sex) in ODD.items():
            ds = pydicom.dcmread(real_file("CT_small.dcm"))
            ds.PatientAge = age
            del ds.PatientBirthDate
            if sex is None:
                del ds.PatientSex
            else:
                ds.PatientSex = sex
            ds.SeriesInstanceUID = generate_uid()
            ds.SOPInstanceUID = generate_uid()  # a distinct image, not a copy of ct_small.dcm
            os.makedirs(os.path.dirname(os.path.join(cls.root, rel)), exist_ok=True)
            ds.save_as(os.path.join(cls.root, rel))
        # values no parser accepts (InstanceNumber, ImagePositionPatient, PatientAge all "xxx"), written byte-wise
        raw = bytearray(ct)
        garble(raw, b"\x20\x00\x13\x00", b"IS")
        garble(raw, b"\x20\x00\x32\x00", b"DS")
        garble(raw, b"\x10\x00\x10\x10", b"AS")
        garble(raw, b"\x08\x00\x18\x00", b"UI", b"7")  # a distinct SOPInstanceUID
        write(os.path.join(cls.root, "odd/garbled_values.dcm"), bytes(raw))
        # two demo CT series; the first also gets a localizer and a duplicate slice in its series
        demo = make_ct_demo(os.path.join(cls.tmp, "demo"), seed=2, n_patients=2, n_slices=5, size=16)
        shutil.copytree(demo, os.path.join(cls.root, "ct"), ignore=shutil.ignore_patterns("*.csv", "*.json"))
        cls.demo = demo
        cls.series = sorted(glob.glob(os.path.join(cls.root, "ct", "*", "*", "*")))
        first = sorted(glob.glob(os.path.join(cls.series[0], "*.dcm")))[0]
        loc = pydicom.dcmread(first)
        loc.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
        loc.SOPInstanceUID = generate_uid()
        loc.save_as(os.path.join(cls.series[0], "localizer.dcm"))
        dup = pydicom.dcmread(first)
        dup.SOPInstanceUID = generate_uid()
        dup.save_as(os.path.join(cls.series[0], "zz_duplicate.dcm"))
        cls.result = scan_dicom_folder(cls.root)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def row(self, rel: str) -> pd.Series:
        path = os.path.join(self.root, rel)
        rows = self.result.manifest[self.result.manifest["image"].map(lambda v: v == path)]
        self.assertEqual(len(rows), 1, rel)
        return rows.iloc[0]

    def test_scan_completes_and_counts(self):
        r = self.result
        n_files = sum(len(f) for _, _, f in os.walk(self.root))
        self.assertEqual(r.n_files, n_files)
        self.assertEqual(list(r.manifest.columns), list(MANIFEST_COLUMNS))
        # every file is either in a row or skipped, never both, never lost
        in_rows = sum(int(n) for n in r.manifest["n_slices"][r.manifest["slice_order"] != ""]) + int(
            (r.manifest["slice_order"] == "").sum()
        )
        self.assertEqual(in_rows + len(r.skipped), n_files)
        self.assertEqual(len(r.manifest), len(GOOD) + len(ODD) + 1 + 2)

    def test_bad_files_are_skipped_with_reason(self):
        skipped = dict(zip(self.result.skipped["file"], self.result.skipped["reason"]))
        for rel, reason in BAD.items():
            self.assertIn(rel, skipped)
            self.assertIn(reason, skipped[rel], rel)
        series_rel = os.path.relpath(self.series[0], self.root)
        self.assertIn("same SeriesInstanceUID but orientation differs", skipped[f"{series_rel}/localizer.dcm"])
        self.assertIn("duplicate slice position", skipped[f"{series_rel}/zz_duplicate.dcm"])
        self.assertEqual(len(skipped), len(BAD) + 2)
        self.assertEqual(sum(self.result.skip_counts.values()), len(skipped))
        # without the pixel check the header-only scan cannot see the truncation
        lax = scan_dicom_folder(os.path.join(self.root, "bad"), check_pixel_data=False)
        self.assertNotIn("truncated_pixels.dcm", set(lax.skipped["file"]))

    def test_good_files_match_pydicom_oracle(self):
        for rel, ds in self.sources.items():
            row = self.row(rel)
            self.assertEqual(row["sex"], encode_sex(ds.get("PatientSex")), rel)
            age = resolve_patient_age(ds.get("PatientAge"), ds.get("PatientBirthDate"), ds.get("StudyDate")).age
            self.assertTrue(math.isnan(age) and math.isnan(row["age"]) or abs(age - row["age"]) < 1e-9, rel)
            self.assertEqual(row["patient_hash"], hash_patient_id(str(ds.PatientID)), rel)
            self.assertEqual(row["series_hash"], hash_patient_id(str(ds.SeriesInstanceUID)), rel)
            self.assertEqual(row["modality"], ds.Modality)
        self.assertEqual(self.row("good/multiframe_ct.dcm")["n_slices"], 2)  # NumberOfFrames
        self.assertEqual(int(self.row("good/chest_cr.dcm")["age"]), 64)  # from the dates
        self.assertEqual(self.row("good/chest_cr.dcm")["age_source"], "dates")

    def test_odd_tags_are_unknown_with_note(self):
        for rel, (age, sex) in ODD.items():
            row = self.row(rel)
            if sex in ("F", "M"):
                self.assertEqual(row["sex"], encode_sex(sex))
            else:
                self.assertEqual(row["sex"], UNKNOWN)
                self.assertIn("sex:", row["demographics_note"])
            if age == "050Y":
                self.assertEqual(row["age"], 50.0)
            else:
                self.assertTrue(math.isnan(row["age"]), rel)
                self.assertEqual(row["age_group"], UNKNOWN)
                self.assertIn("age:", row["demographics_note"])
        garbled = self.row("odd/garbled_values.dcm")
        self.assertEqual((garbled["sex"], garbled["n_slices"], garbled["slice_order"]), (2, 1, ""))
        self.assertTrue(math.isnan(garbled["age"]))
        self.assertIn("not in DICOM AS format", garbled["demographics_note"])
        notes = self.result.note_counts
        self.assertEqual(notes["sex: PatientSex not one of M/F/O"], 1)
        self.assertEqual(notes["sex: PatientSex missing or empty"], 1)

    def test_series_rows_are_spatially_ordered_volumes(self):
        volumes = self.result.manifest[self.result.manifest["slice_order"] == "position"]
        self.assertEqual(len(volumes), 2)
        self.assertTrue((volumes["n_slices"] == 5).all())
        # the first series folder also holds the skipped localizer/duplicate: its row lists the ordered files
        listed = [v for v in volumes["image"] if isinstance(v, list)]
        self.assertEqual(len(listed), 1)
        z = [float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]) for f in listed[0]]
        self.assertEqual(z, sorted(z))
        self.assertIn(self.series[1], list(volumes["image"]))  # a clean series folder is named as the folder
        image = LoadImaged(keys="image", reader=DicomSeriesReader())({"image": listed[0]})["image"]
        self.assertEqual(tuple(image.shape), (16, 16, 5))
        files = scan_dicom_folder(os.path.join(self.root, "ct"), series_as="files").manifest
        self.assertTrue(all(isinstance(v, list) and len(v) == 5 for v in files["image"]))

    def test_ethnic_group_codes_deterministic(self):
        names = self.result.ethnic_group_names
        self.assertEqual(list(names.values()), sorted(names.values()))
        demo_rows = self.result.manifest[self.result.manifest["slice_order"] == "position"]
        for image, code in zip(demo_rows["image"], demo_rows["ethnic_group"]):
            first = image[0] if isinstance(image, list) else glob.glob(os.path.join(image, "*.dcm"))[0]
            self.assertEqual(names[code], pydicom.dcmread(first, stop_before_pixels=True).EthnicGroup)
        self.assertTrue((self.result.manifest["ethnic_group"][self.result.manifest["modality"] != "CT"] == -1).all())

    def test_nothing_personal_in_outputs(self):
        out = os.path.join(self.tmp, "out")
        with self.assertLogs("monai_fair.data.dicom_scan", level="INFO") as logs:
            scan = scan_dicom_folder(self.root, output_dir=out)
        texts = {name: open(os.path.join(out, name)).read() for name in os.listdir(out)}
        self.assertEqual(set(texts), {"manifest.csv", "skipped.csv", "codes.json"})
        values = set()
        for ds in self.sources.values():
            values |= personal_values(ds)
        values |= personal_values(pydicom.dcmread(real_file("CT_small.dcm"), stop_before_pixels=True))
        demo_headers = [
            pydicom.dcmread(glob.glob(os.path.join(s, "*.dcm"))[0], stop_before_pixels=True) for s in self.series
        ]
        for ds in demo_headers:  # the demo's pid names its folder (NLST layout): judged without the image column
            values |= personal_values(ds) - {str(ds.PatientID)}
        records = scan.manifest.drop(columns=["image"]).to_dict("records")
        self.assertEqual(leaks(values, obj=records, text=texts["manifest.csv"]), [])
        self.assertEqual(leaks(values, obj=scan.skipped.to_dict("records"), text=texts["skipped.csv"]), [])
        self.assertEqual(leaks(values, text=texts["codes.json"] + "\n".join(logs.output)), [])
        for ds in demo_headers:
            self.assertNotIn(str(ds.PatientName), texts["manifest.csv"])
        self.assertFalse(any(col in scan.manifest.columns for col in ("patient_id", "PatientID", "name")))

    def test_write_and_load_round_trip(self):
        paths = self.result.write(os.path.join(self.tmp, "rt"), prefix="x_")
        back = load_dicom_manifest(paths["manifest"])
        self.assertEqual(len(back), len(self.result.manifest))
        self.assertEqual(list(back["image"]), list(self.result.manifest["image"]))
        np.testing.assert_array_equal(back["sex"], self.result.manifest["sex"])
        np.testing.assert_allclose(back["age"], self.result.manifest["age"])
        codes = json.loads(paths["codes"].read_text())
        self.assertEqual(codes["n_skipped"], len(self.result.skipped))
        self.assertEqual(codes["sex"], {"0": "F", "1": "M", "2": "O"})

    def test_with_labels(self):
        demo_scan = scan_dicom_folder(self.demo, pattern="*.dcm")
        self.assertTrue(demo_scan.skipped.empty)
        labels = pd.read_csv(os.path.join(self.demo, "nlst_demo_labels.csv"), dtype={"pid": str})
        m = demo_scan.with_labels(os.path.join(self.demo, "nlst_demo_labels.csv"), ["cancer_in_1", "cancer_in_2"])
        self.assertEqual(len(m.frame), 2)
        for _, row in m.frame.iterrows():
            pid = os.path.basename(os.path.dirname(os.path.dirname(row["image"])))
            truth = labels[labels["pid"] == pid].iloc[0]
            self.assertEqual(row["cancer_in_1"], truth["cancer_in_1"])
        self.assertNotIn("pid", m.frame.columns)
        partial = demo_scan.with_labels(labels.iloc[:1], "cancer_in_1")
        self.assertEqual(len(partial.frame), 1)
        self.assertEqual(partial.skipped.counts["no label row for the patient"], 1)
        with self.assertRaises(KeyError):
            demo_scan.with_labels(labels, "no_such_label")

    def test_bad_arguments(self):
        with self.assertRaises(NotADirectoryError):
            scan_dicom_folder(os.path.join(self.tmp, "missing"))
        with self.assertRaises(ValueError):
            scan_dicom_folder(self.root, series_as="tree")

    def test_real_dicomdir_collection(self):
        root = os.path.join(os.path.dirname(real_file("CT_small.dcm")), "dicomdirtests")
        r = scan_dicom_folder(root)
        ct5n = r.manifest[r.manifest["image"] == os.path.join(root, "98892001", "CT5N")]
        self.assertEqual(ct5n["n_slices"].tolist(), [5])
        self.assertEqual(ct5n["sex"].tolist(), [1])
        self.assertTrue(r.skip_counts["DICOMDIR (media directory, not an image)"] >= 1)
        # CT5N: 5 files in one row; CT2's 4 slices have a 202.5 mm hole: skipped with the reason by default
        self.assertEqual(len(r.manifest) + len(r.skipped) + 4, r.n_files)
        ct2 = r.skipped[r.skipped["reason"].str.startswith("irregular slice spacing")]
        self.assertEqual(len(ct2), 4)
        kept = scan_dicom_folder(root, irregular_spacing="keep")
        self.assertEqual(len(kept.manifest) + len(kept.skipped) + 4 + 3, kept.n_files)
        self.assertEqual(int((kept.manifest["series_note"] != "").sum()), 1)


if __name__ == "__main__":
    unittest.main()
