# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of spatial slice ordering and DicomSeriesReader on real and demo CT series."""

from __future__ import annotations

import glob
import os
import random
import shutil
import tempfile
import unittest
import warnings

import numpy as np
import pydicom
from monai.data import PydicomReader
from monai.transforms import LoadImaged

from monai_fair.data.demo.ct import make_ct_demo
from monai_fair.data.dicom_series import DicomSeriesReader, order_slices, slice_normal, slice_positions
from tests.data.dicom_privacy import real_file

warnings.filterwarnings("ignore", message=".*nvImageCodec.*")


def oracle_volume(files: list[str]) -> tuple[np.ndarray, list[float]]:
    """Slices stacked by ascending position along the normal, in HU, transposed like MONAI (swap_ij)."""
    datasets = [pydicom.dcmread(f) for f in files]
    normal = np.cross(
        np.asarray(datasets[0].ImageOrientationPatient[:3], float),
        np.asarray(datasets[0].ImageOrientationPatient[3:], float),
    )
    pos = [float(np.dot(np.asarray(d.ImagePositionPatient, float), normal)) for d in datasets]
    order = np.argsort(pos)
    slices = [
        datasets[i].pixel_array.T * float(datasets[i].get("RescaleSlope", 1))
        + float(datasets[i].get("RescaleIntercept", 0))
        for i in order
    ]
    return np.stack(slices, axis=-1), [pos[i] for i in order]


class TestSliceOrder(unittest.TestCase):
    def test_normal(self):
        np.testing.assert_allclose(slice_normal([1, 0, 0, 0, 1, 0]), [0, 0, 1])
        np.testing.assert_allclose(slice_normal([0, 1, 0, 0, 0, -1]), [-1, 0, 0])
        self.assertIsNone(slice_normal([1, 0, 0, 1, 0, 0]))  # degenerate
        self.assertIsNone(slice_normal(["a"] * 6))
        self.assertIsNone(slice_normal(None))

    def test_real_series_descending_instance_numbers(self):
        folder = os.path.join(os.path.dirname(real_file("CT_small.dcm")), "dicomdirtests", "98892001", "CT5N")
        files = sorted(glob.glob(os.path.join(folder, "*")))
        headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
        order, method = order_slices(headers)
        self.assertEqual(method, "position")
        z = [float(headers[i].ImagePositionPatient[2]) for i in order]
        self.assertEqual(z, sorted(z))
        numbers = [int(headers[i].InstanceNumber) for i in order]
        self.assertEqual(numbers, sorted(numbers, reverse=True))  # instance numbers run against z here

    def test_fallbacks(self):
        a, b, c = pydicom.Dataset(), pydicom.Dataset(), pydicom.Dataset()
        a.InstanceNumber, b.InstanceNumber, c.InstanceNumber = 3, 1, 2
        self.assertEqual(order_slices([a, b, c]), ([1, 2, 0], "instance_number"))
        del c.InstanceNumber
        self.assertEqual(order_slices([a, b, c]), ([0, 1, 2], "none"))
        for d, z in zip((a, b), (5.0, 1.0)):
            d.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            d.ImagePositionPatient = [0, 0, z]
        self.assertEqual(order_slices([a, b]), ([1, 0], "position"))
        b.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]  # a different plane: geometry unusable
        self.assertIsNone(slice_positions([a, b]))
        self.assertEqual(order_slices([a, b]), ([1, 0], "instance_number"))


class TestDicomSeriesReader(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        # InstanceNumber scrambled: only ImagePositionPatient gives the right order
        cls.root = make_ct_demo(cls.tmp, seed=1, n_patients=1, n_slices=6, size=16, shuffle_instance_numbers=True)
        cls.folder = glob.glob(os.path.join(cls.root, "*", "*", "*"))[0]
        cls.files = glob.glob(os.path.join(cls.folder, "*.dcm"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_folder_in_spatial_order(self):
        expected, pos = oracle_volume(self.files)
        out = LoadImaged(keys="image", reader=DicomSeriesReader())({"image": self.folder})["image"]
        self.assertEqual(tuple(out.shape), (16, 16, 6))
        np.testing.assert_allclose(out.numpy(), expected)
        # the affine walks the slices in the same order: slice k sits at the k-th ascending position (z, RAS)
        z_ras = [float((out.affine @ np.array([0, 0, k, 1.0]))[2]) for k in range(6)]
        np.testing.assert_allclose(z_ras, pos, atol=1e-4)
        # MONAI's own reader orders by (scrambled) InstanceNumber, so it does not match
        plain = LoadImaged(keys="image", reader=PydicomReader())({"image": self.folder})["image"]
        self.assertFalse(np.allclose(plain.numpy(), expected))

    def test_shuffled_file_list_as_one_series(self):
        expected, _ = oracle_volume(self.files)
        shuffled = list(self.files)
        random.Random(0).shuffle(shuffled)
        out = LoadImaged(keys="image", reader=DicomSeriesReader(prune_metadata=False))({"image": shuffled})["image"]
        np.testing.assert_allclose(out.numpy(), expected)
        self.assertIn("00100040", out.meta)  # reader kwargs still apply
        # MONAI's reader would stack a list as channels, which slices at different positions refuse
        with self.assertRaisesRegex(RuntimeError, "affine matrix of all images should be the same"):
            LoadImaged(keys="image", reader=PydicomReader())({"image": shuffled})

    def test_single_file_and_real_series(self):
        out = LoadImaged(keys="image", reader=DicomSeriesReader())({"image": self.files[0]})["image"]
        self.assertEqual(tuple(out.shape), (16, 16))
        folder = os.path.join(os.path.dirname(real_file("CT_small.dcm")), "dicomdirtests", "98892001", "CT5N")
        expected, _ = oracle_volume(glob.glob(os.path.join(folder, "*")))
        real = LoadImaged(keys="image", reader=DicomSeriesReader())({"image": folder})["image"]
        np.testing.assert_allclose(real.numpy(), expected)

    def test_errors(self):
        with self.assertRaises(ValueError):
            DicomSeriesReader(to_gpu=True)
        other = os.path.join(self.tmp, "other_shape.dcm")
        ds = pydicom.dcmread(real_file("CT_small.dcm"))  # 128x128, not 16x16
        ds.save_as(other)
        with self.assertRaisesRegex(ValueError, "different shapes"):
            LoadImaged(keys="image", reader=DicomSeriesReader())({"image": [*self.files[:2], other]})


if __name__ == "__main__":
    unittest.main()
