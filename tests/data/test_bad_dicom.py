# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Bad DICOM input: series with a missing slice, same-UID series of two shapes, implausible or placeholder ages.

Series are generated with pydicom in the test; the expected spacing and reasons are hand-computed.
"""

from __future__ import annotations

import logging
import math
import tempfile
import unittest
import warnings
from pathlib import Path

import numpy as np
from monai.transforms import LoadImaged
from parameterized import parameterized
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from monai_fair.data.dicom_scan import scan_dicom_folder
from monai_fair.data.dicom_series import DicomSeriesReader, spacing_problem
from monai_fair.data.patient_age import resolve_patient_age

warnings.filterwarnings("ignore", message=".*nvImageCodec.*")


def write_slice(path: Path, z: float, series_uid: str, shape=(8, 8), number: int = 1, **attrs) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = series_uid
    ds.StudyInstanceUID = "1.2.3"
    ds.Modality = "CT"
    ds.PatientID = "MRN-0042"
    ds.PatientSex = "F"
    ds.PatientAge = "060Y"
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [0.0, 0.0, float(z)]
    ds.PixelSpacing = [0.7, 0.7]
    ds.InstanceNumber = number
    ds.Rows, ds.Columns = shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    for k, v in attrs.items():
        setattr(ds, k, v)
    ds.PixelData = np.full(shape, int(z * 10) % 60000, dtype=np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_series(folder: Path, zs, shape=(8, 8), uid: str | None = None, prefix: str = "IM", **attrs) -> list[Path]:
    uid = uid or generate_uid()
    return [
        write_slice(folder / f"{prefix}{i:03d}.dcm", z, uid, shape, number=i + 1, **attrs) for i, z in enumerate(zs)
    ]


# 2.5 mm spacing, the slice at 7.5 mm missing: the old mean-gap spacing was (20 - 0) / 7 ≈ 2.857 or 2.917 mm
MISSING = [0.0, 2.5, 5.0, 10.0, 12.5, 15.0, 17.5, 20.0]
REGULAR = [0.0, 2.5, 5.0, 7.5, 10.0, 12.5]


class TestMissingSlice(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def load(self, files, **reader_args):
        reader = DicomSeriesReader(prune_metadata=False, **reader_args)
        return LoadImaged("image", reader=reader, image_only=True)({"image": [str(f) for f in files]})["image"]

    def test_reader_refuses_missing_slice(self):
        """Regression (silently wrong on the starting commit): the hole was averaged into a 2.857 mm spacing."""
        files = write_series(self.root / "s", MISSING)
        with self.assertRaisesRegex(ValueError, r"irregular slice spacing.*2\.5-5 mm.*irregular_spacing='warn'"):
            self.load(files)

    def test_reader_warn_keeps_a_note(self):
        files = write_series(self.root / "s", MISSING)
        with self.assertWarnsRegex(UserWarning, "irregular slice spacing"):
            img = self.load(files, irregular_spacing="warn")
        self.assertIn("1 of 7 gaps differ", img.meta["spacing_note"])
        self.assertEqual(tuple(img.shape), (8, 8, len(MISSING)))

    def test_reader_regular_series(self):
        img = self.load(write_series(self.root / "s", REGULAR))
        self.assertAlmostEqual(float(img.meta["spacing"][2]), 2.5)
        self.assertNotIn("spacing_note", img.meta)
        self.assertEqual(tuple(img.shape), (8, 8, len(REGULAR)))

    def test_reader_bad_option(self):
        with self.assertRaisesRegex(ValueError, "irregular_spacing must be 'error' or 'warn'"):
            DicomSeriesReader(irregular_spacing="ignore")

    def test_scan_skips_missing_slice_with_reason(self):
        """Regression (silently wrong on the starting commit): the scan listed the holed series as one volume."""
        write_series(self.root / "s", MISSING)
        r = scan_dicom_folder(self.root)
        self.assertEqual(len(r.manifest), 0)
        self.assertEqual(len(r.skipped), len(MISSING))
        self.assertTrue(r.skipped["reason"].str.contains("irregular slice spacing").all())
        self.assertTrue(r.skipped["reason"].str.contains("irregular_spacing='keep'").all())

    def test_scan_keep_notes_missing_slice(self):
        write_series(self.root / "s", MISSING)
        r = scan_dicom_folder(self.root, irregular_spacing="keep")
        self.assertEqual(r.manifest["n_slices"].tolist(), [len(MISSING)])
        self.assertIn("irregular slice spacing", r.manifest["series_note"].iloc[0])

    def test_scan_regular_has_no_note(self):
        write_series(self.root / "s", REGULAR)
        r = scan_dicom_folder(self.root)
        self.assertEqual(r.manifest["series_note"].tolist(), [""])

    def test_scan_bad_option(self):
        with self.assertRaisesRegex(ValueError, "irregular_spacing must be 'skip' or 'keep'"):
            scan_dicom_folder(self.root, irregular_spacing="warn")

    @parameterized.expand(
        [
            ("regular", [0.0, 2.5, 5.0], None),
            ("rounding", [0.0, 2.5004, 4.9998, 7.5001], None),
            ("hole", MISSING, "1 of 7"),
            ("extra", [0.0, 2.5, 3.75, 5.0, 7.5], "4 of 4"),
            ("duplicate", [0.0, 0.0, 2.5], "median"),
        ]
    )
    def test_spacing_problem(self, _, positions, expected):
        got = spacing_problem(positions)
        if expected is None:
            self.assertIsNone(got)
        else:
            self.assertIn(expected, got)


class TestSameUidTwoShapes(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    @parameterized.expand([("big_first", "a", "b"), ("big_last", "b", "a")])
    def test_equal_counts_keep_the_larger_image(self, _, big_prefix, small_prefix):
        """Equal slice counts: the kept group no longer depends on which files sort first."""
        uid = generate_uid()
        write_series(self.root / "s", REGULAR, shape=(16, 16), uid=uid, prefix=big_prefix)
        write_series(self.root / "s", [z + 100 for z in REGULAR], shape=(8, 8), uid=uid, prefix=small_prefix)
        r = scan_dicom_folder(self.root, series_as="files")
        self.assertEqual(len(r.manifest), 1)
        kept = r.manifest["image"].iloc[0]
        self.assertTrue(all(Path(f).name.startswith(big_prefix) for f in kept))
        self.assertEqual(len(r.skipped), len(REGULAR))
        reason = r.skipped["reason"].iloc[0]
        self.assertIn("same SeriesInstanceUID but size 8x8 differs from the kept volume's 16x16", reason)
        self.assertNotIn("localizer", reason)

    def test_missing_orientation_named(self):
        uid = generate_uid()
        write_series(self.root / "s", REGULAR, uid=uid)
        stray = write_slice(self.root / "s" / "zz.dcm", 50.0, uid, ImageOrientationPatient=[1, 0, 0, 1, 0, 0])
        r = scan_dicom_folder(self.root)
        reason = r.skipped.set_index("file")["reason"][stray.relative_to(self.root).as_posix()]
        self.assertIn("no usable ImageOrientationPatient", reason)


class TestAgeNotes(unittest.TestCase):
    @parameterized.expand(
        [
            ("implausible_then_dates", "121Y", "19400101", "20040101", 64.0, "dates", "implausible (> 120 years)"),
            ("malformed_then_dates", "sixty", "19400101", "20040101", 64.0, "dates", "not in DICOM AS format"),
            ("placeholder_000D", "000D", "", "", 0.0, "PatientAge", "legal but usually a placeholder"),
            ("disagree", "030Y", "19400101", "20040101", 30.0, "PatientAge", "disagree by more than a year"),
            ("implausible_no_dates", "121Y", "", "20040101", math.nan, "", "PatientBirthDate missing"),
            ("birth_after_study", "", "20100101", "20040101", math.nan, "", "PatientBirthDate after study date"),
        ]
    )
    def test_notes(self, _, patient_age, birth, study, age, source, note):
        got = resolve_patient_age(patient_age, birth, study)
        if math.isnan(age):
            self.assertTrue(math.isnan(got.age))
        else:
            self.assertAlmostEqual(got.age, age, delta=0.01)
        self.assertEqual(got.source, source)
        self.assertIn(note, got.reason)
        for date in (birth, study):
            if date:
                self.assertNotIn(date, got.reason)  # dates are never echoed

    def test_agreeing_ages_have_no_note(self):
        self.assertEqual(resolve_patient_age("064Y", "19400101", "20040101").reason, "")

    def test_scan_row_carries_the_fallback_note(self):
        with tempfile.TemporaryDirectory() as tmp:
            write_slice(Path(tmp) / "a.dcm", 0.0, generate_uid(), PatientAge="121Y", PatientBirthDate="19400101",
                        StudyDate="20040101")  # fmt: skip
            r = scan_dicom_folder(tmp)
        row = r.manifest.iloc[0]
        self.assertEqual(row["age_source"], "dates")
        self.assertIn("implausible (> 120 years); age from the dates used", row["demographics_note"])
        self.assertEqual(r.note_counts, {"age: PatientAge implausible (> 120 years); age from the dates used": 1})


class TestRelativePaths(unittest.TestCase):
    def test_skip_report_and_log_relative_to_root(self):
        """A folder named after the patient must not reach the skip report or the log."""
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "dataset"
            bad = root / "MRN-0042_DOE^JANE" / "broken.dcm"
            bad.parent.mkdir(parents=True)
            bad.write_bytes(b"not dicom")
            write_series(root / "MRN-0042_DOE^JANE" / "ct", MISSING)
            with self.assertLogs("monai_fair.data.dicom_scan", logging.INFO) as logs:
                r = scan_dicom_folder(root)
        self.assertIn("MRN-0042_DOE^JANE/broken.dcm", r.skipped["file"].tolist())
        self.assertTrue(all(not Path(f).is_absolute() for f in r.skipped["file"]))
        self.assertFalse(any(tmp in line for line in logs.output))


if __name__ == "__main__":
    unittest.main()
