# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the CXR preprocessing transforms (PIL is the oracle for equalisation and greyscale)."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Compose
from parameterized import parameterized
from PIL import Image, ImageOps

from monai_fair.transforms.cxr import (
    CenterCropToSquared,
    CXRChannelsd,
    HistogramEqualized,
    cxr_preprocess_transforms,
    equalize_histogram,
)

_RNG = np.random.default_rng(0)
EQ_CASES = [
    [_RNG.integers(0, 256, (17, 23)).astype(np.uint8)],  # full range
    [_RNG.integers(100, 110, (9, 31)).astype(np.uint8)],  # narrow range
    [np.clip(_RNG.normal(128, 30, (32, 32)), 0, 255).astype(np.uint8)],
    [_RNG.choice([0, 17, 255], (8, 8)).astype(np.uint8)],  # three levels
    [np.full((5, 5), 77, np.uint8)],  # a single level: identity
    [np.array([[0, 255]], np.uint8)],  # step == 0: identity
]


class TestHistogramEqualisation(unittest.TestCase):
    @parameterized.expand(EQ_CASES)
    def test_matches_pil(self, arr):
        ref = np.asarray(ImageOps.equalize(Image.fromarray(arr)))
        got = equalize_histogram(torch.tensor(arr, dtype=torch.float32)[None])[0].numpy()
        np.testing.assert_array_equal(got, ref.astype(np.float32))

    def test_rgb_per_channel_and_meta_kept(self):
        arr = _RNG.integers(0, 256, (12, 14, 3)).astype(np.uint8)
        ref = np.asarray(ImageOps.equalize(Image.fromarray(arr))).transpose(2, 0, 1)
        img = MetaTensor(torch.tensor(arr.transpose(2, 0, 1), dtype=torch.float32), meta={"filename_or_obj": "x"})
        out = HistogramEqualized("image")({"image": img})["image"]
        self.assertIsInstance(out, MetaTensor)
        self.assertEqual(out.meta["filename_or_obj"], "x")
        np.testing.assert_array_equal(out.numpy(), ref)

    def test_unit_range(self):
        arr = _RNG.integers(0, 256, (10, 10)).astype(np.uint8)
        ref = np.asarray(ImageOps.equalize(Image.fromarray(arr))) / 255.0
        out = HistogramEqualized("image", value_range=(0.0, 1.0))({"image": np.asarray(arr[None] / 255.0)})["image"]
        self.assertIsInstance(out, np.ndarray)
        np.testing.assert_allclose(out[0], ref, atol=1e-6)
        with self.assertRaises(ValueError):
            HistogramEqualized("image", value_range=(1.0, 0.0))


class TestCropAndChannels(unittest.TestCase):
    @parameterized.expand([[(1, 10, 6), (1, 6, 6)], [(3, 7, 12), (3, 7, 7)], [(1, 8, 8), (1, 8, 8)]])
    def test_square_crop(self, shape, expected):
        x = torch.arange(int(np.prod(shape)), dtype=torch.float32).reshape(shape)
        out = CenterCropToSquared("image")({"image": x})["image"]
        self.assertEqual(tuple(out.shape), expected)
        h, w = shape[1:]
        s = min(h, w)
        top, left = h // 2 - s // 2, w // 2 - s // 2  # MONAI's centre convention
        np.testing.assert_array_equal(np.asarray(out), x[:, top : top + s, left : left + s].numpy())

    def test_channels(self):
        rgb = _RNG.integers(0, 256, (6, 5, 3)).astype(np.uint8)
        grey = CXRChannelsd("image", 1)({"image": torch.tensor(rgb.transpose(2, 0, 1), dtype=torch.float32)})["image"]
        ref = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32)
        np.testing.assert_allclose(grey[0].numpy(), ref, atol=0.51)  # PIL rounds to integers
        three = CXRChannelsd("image", 3)({"image": grey})["image"]
        self.assertEqual(tuple(three.shape), (3, 6, 5))
        torch.testing.assert_close(three[2], grey[0])
        rgba = torch.zeros(4, 2, 2)
        self.assertEqual(tuple(CXRChannelsd("image", 1)({"image": rgba})["image"].shape), (1, 2, 2))
        with self.assertRaises(ValueError):
            CXRChannelsd("image", 2)
        with self.assertRaises(ValueError):
            CXRChannelsd("image", 3)({"image": torch.zeros(2, 4, 4)})
        with self.assertRaises(KeyError):
            CXRChannelsd("image", 3)({"other": torch.zeros(1, 4, 4)})


class TestPipeline(unittest.TestCase):
    def test_study_chain_on_a_jpeg(self):
        with tempfile.TemporaryDirectory() as tmp:
            arr = _RNG.integers(0, 256, (40, 30)).astype(np.uint8)
            arr[:5] = 0  # a distinctive top edge: checks H x W order is kept
            path = Path(tmp) / "x.jpg"
            Image.fromarray(arr).save(path, quality=100)
            chain = Compose(cxr_preprocess_transforms("image", stored_size=16, input_size=24, channels=3))
            out = chain({"image": str(path), "sex": 1})
            img = out["image"]
            self.assertEqual(tuple(img.shape), (3, 24, 24))
            self.assertEqual(img.dtype, torch.float32)
            self.assertGreaterEqual(float(img.min()), 0.0)
            self.assertLessEqual(float(img.max()), 1.0)
            self.assertEqual(out["sex"], 1)
            aug = Compose(cxr_preprocess_transforms("image", 16, 24, channels=1, augment=True))
            aug.set_random_state(0)
            self.assertEqual(tuple(aug({"image": str(path)})["image"].shape), (1, 24, 24))

    def test_chain_without_load_on_array(self):
        x = torch.tensor(_RNG.integers(0, 256, (1, 20, 26)), dtype=torch.float32)
        out = Compose(cxr_preprocess_transforms(load=False, stored_size=8, input_size=None, channels=1))({"image": x})
        self.assertEqual(tuple(out["image"].shape), (1, 8, 8))


if __name__ == "__main__":
    unittest.main()
