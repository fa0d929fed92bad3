# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Bad images for ITA: 16-bit files, images whose bit depth is not stated, non-finite arrays."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

import numpy as np
from parameterized import parameterized
from PIL import Image

from monai_fair.transforms.ita import as_rgb_uint8, load_rgb


class TestLoadRGB(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.grey = np.random.default_rng(1).integers(0, 256, size=(20, 30)).astype(np.uint8)

    def tearDown(self):
        self.tmp.cleanup()

    def test_16bit_png_equals_8bit(self):
        """Regression (silently wrong on the starting commit): PIL clipped 16-bit values, every pixel read white."""
        Image.fromarray(self.grey).save(self.dir / "a8.png")
        Image.fromarray(self.grey.astype(np.uint16) * 257).save(self.dir / "a16.png")
        np.testing.assert_array_equal(load_rgb(self.dir / "a16.png"), load_rgb(self.dir / "a8.png"))

    @parameterized.expand([("int32", np.int32), ("float32", np.float32)])
    def test_unstated_depth_refused(self, _, dtype):
        Image.fromarray(self.grey.astype(dtype)).save(self.dir / "a.tif")
        with self.assertRaisesRegex(ValueError, r"a\.tif: PIL mode .* does not state the bit depth"):
            load_rgb(self.dir / "a.tif")

    def test_non_finite_array(self):
        arr = np.zeros((4, 4, 3), np.float32)
        arr[0, 0, 0] = np.nan
        with self.assertRaisesRegex(ValueError, "NaN or infinite"):
            as_rgb_uint8(arr)


if __name__ == "__main__":
    unittest.main()
