# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Bad and unusual chest X-ray files through the preprocessing chain the bundles use (cxr_preprocess_transforms).

The oracle of every "same content" case is the chain run on the hand-computed 0..255 array (``load=False``).
"""

from __future__ import annotations

import logging
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pydicom
from monai.transforms import Compose
from parameterized import parameterized
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from monai_fair.transforms import LoadCXRImaged, cxr_preprocess_transforms, read_cxr_image

RNG = np.random.default_rng(0)
CONTENT = RNG.integers(0, 256, size=(40, 48)).astype(np.uint8)  # 8-bit reference content, non-square


def chain(**kwargs):
    return Compose(cxr_preprocess_transforms("image", stored_size=16, input_size=24, channels=1, **kwargs))


def expected(display: np.ndarray) -> np.ndarray:
    """The chain's output for channel-first display values 0..255 (independent of any file reader)."""
    return np.asarray(chain(load=False)({"image": display[None].astype(np.float32)})["image"])


def write_dicom(path: Path, pixels: np.ndarray, **attrs) -> Path:
    """A minimal uncompressed CR image written by pydicom."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "CR"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    for k, v in attrs.items():
        setattr(ds, k, v)
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


class TestBitDepth(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        Image.fromarray(CONTENT).save(self.dir / "cxr8.png")
        self.reference = np.asarray(chain()({"image": str(self.dir / "cxr8.png")})["image"])

    def tearDown(self):
        self.tmp.cleanup()

    def test_8bit_png_matches_oracle(self):
        np.testing.assert_allclose(self.reference, expected(CONTENT.astype(np.float64)), atol=1e-5)

    @parameterized.expand([("png",), ("tif",)])
    def test_16bit_equals_8bit(self, ext):
        """Regression (silently wrong on the starting commit): a 16-bit export saturated every pixel to 1.0."""
        path = self.dir / f"cxr16.{ext}"
        Image.fromarray(CONTENT.astype(np.uint16) * 257).save(path)
        self.assertEqual(Image.open(path).mode, "I;16")
        out = np.asarray(chain()({"image": str(path)})["image"])
        np.testing.assert_allclose(out, self.reference, atol=1e-5)
        self.assertLess(float((out == 1.0).mean()), 0.5)

    def test_8bit_tiff_equals_png(self):
        path = self.dir / "cxr8.tif"
        Image.fromarray(CONTENT).save(path)
        np.testing.assert_allclose(np.asarray(chain()({"image": str(path)})["image"]), self.reference, atol=1e-5)

    def test_12bit_content_with_bits(self):
        content12 = RNG.integers(0, 4096, size=(40, 48)).astype(np.uint16)
        path = self.dir / "cxr12.png"
        Image.fromarray(content12).save(path)
        out = np.asarray(chain(bits=12)({"image": str(path)})["image"])
        np.testing.assert_allclose(out, expected(content12 / 4095.0 * 255.0), atol=1e-4)

    def test_12bit_content_without_bits_warns(self):
        path = self.dir / "cxr12.png"
        Image.fromarray(RNG.integers(0, 4096, size=(40, 48)).astype(np.uint16)).save(path)
        with self.assertLogs("monai_fair.transforms.cxr_io", logging.WARNING) as logs:
            read_cxr_image(path)
        self.assertIn("bits=12", logs.output[0])
        self.assertIn("cxr12.png", logs.output[0])
        self.assertNotIn(self.tmp.name, logs.output[0])  # the file name only

    def test_values_above_bits_raise(self):
        path = self.dir / "cxr16.png"
        Image.fromarray(CONTENT.astype(np.uint16) * 257).save(path)
        with self.assertRaisesRegex(ValueError, r"cxr16\.png.*exceed the 8-bit range.*bits="):
            read_cxr_image(path, bits=8)

    def test_int32_tiff_needs_bits(self):
        path = self.dir / "cxr32.tif"
        Image.fromarray(CONTENT.astype(np.int32) * 257).save(path)
        self.assertEqual(Image.open(path).mode, "I")
        with self.assertRaisesRegex(ValueError, r"cxr32\.tif.*'I'.*bits="):
            read_cxr_image(path)
        out = np.asarray(chain(bits=16)({"image": str(path)})["image"])
        np.testing.assert_allclose(out, self.reference, atol=1e-5)

    def test_float_tiff_needs_bits(self):
        path = self.dir / "cxrf.tif"
        Image.fromarray(CONTENT.astype(np.float32)).save(path)
        with self.assertRaisesRegex(ValueError, r"cxrf\.tif.*'F'.*bits="):
            read_cxr_image(path)

    def test_palette_png_equals_grey(self):
        path = self.dir / "cxrp.png"
        Image.fromarray(CONTENT).convert("P").save(path)
        grey = np.asarray(Image.open(path).convert("L"))
        np.testing.assert_allclose(
            np.asarray(chain()({"image": str(path)})["image"]), expected(grey.astype(np.float64)), atol=1e-3
        )

    def test_bilevel_png(self):
        path = self.dir / "cxr1.png"
        Image.fromarray(CONTENT > 127).convert("1").save(path)
        arr, meta = read_cxr_image(path)
        self.assertEqual(meta["bits"], 1)
        np.testing.assert_array_equal(np.unique(arr), [0.0, 255.0])

    @parameterized.expand([(0,), (40,), ("12",), (12.5,)])
    def test_bad_bits_argument(self, bits):
        with self.assertRaisesRegex(ValueError, "bits must be an integer 1..32"):
            read_cxr_image(self.dir / "cxr8.png", bits=bits)


class TestCorruptImages(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def test_truncated_jpeg_names_file(self):
        path = self.dir / "patient_dir" / "broken.jpg"
        path.parent.mkdir()
        Image.fromarray(CONTENT).save(path, quality=95)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
        with self.assertRaisesRegex(ValueError, r"broken\.jpg.*corrupt, truncated or not an image"):
            LoadCXRImaged("image")({"image": str(path)})

    @parameterized.expand([("text", b"not an image at all"), ("empty", b""), ("html", b"<html>404</html>")])
    def test_not_an_image_names_file(self, name, data):
        path = self.dir / f"{name}.png"
        path.write_bytes(data)
        with self.assertRaisesRegex(ValueError, rf"{name}\.png"):
            read_cxr_image(path)

    def test_missing_file(self):
        with self.assertRaisesRegex(FileNotFoundError, r"gone\.png does not exist"):
            LoadCXRImaged("image")({"image": str(self.dir / "gone.png")})

    def test_dcm_suffix_not_dicom(self):
        path = self.dir / "fake.dcm"
        path.write_bytes(b"\x00" * 10)
        with self.assertRaisesRegex(ValueError, r"fake\.dcm"):
            read_cxr_image(path)


class TestDicomDisplay(unittest.TestCase):
    """DICOM through the same chain: BitsStored, rescale, VOI window/LUT, MONOCHROME1."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.reference = expected(CONTENT.astype(np.float64))

    def tearDown(self):
        self.tmp.cleanup()

    def run_chain(self, path):
        return np.asarray(chain()({"image": str(path)})["image"])

    def test_bits_stored_with_overlay_bits(self):
        """8 stored bits in 16 allocated, garbage in the high bits: scaled by BitsStored, not by 65535 or the max."""
        pixels = CONTENT.astype(np.uint16) | np.uint16(1 << 12)
        path = write_dicom(self.dir / "a.dcm", pixels, BitsStored=8, HighBit=7)
        np.testing.assert_allclose(self.run_chain(path), self.reference, atol=1e-4)

    def test_12bit_stored_range(self):
        content12 = RNG.integers(0, 4096, size=(40, 48)).astype(np.uint16)
        path = write_dicom(self.dir / "b.dcm", content12, BitsStored=12, HighBit=11)
        np.testing.assert_allclose(self.run_chain(path), expected(content12 / 4095.0 * 255.0), atol=1e-4)

    def test_monochrome1_inverted(self):
        path = write_dicom(self.dir / "c.dcm", (255 - CONTENT).astype(np.uint16), BitsStored=8, HighBit=7,
                           PhotometricInterpretation="MONOCHROME1")  # fmt: skip
        np.testing.assert_allclose(self.run_chain(path), self.reference, atol=1e-4)

    def test_rescale_and_window(self):
        """stored s = c + 50, slope 2, intercept -100 → 2c; window centre 255.5, width 511 maps 2c to c/255."""
        pixels = CONTENT.astype(np.uint16) + 50
        path = write_dicom(self.dir / "d.dcm", pixels, BitsStored=12, HighBit=11, RescaleSlope=2, RescaleIntercept=-100,
                           WindowCenter=255.5, WindowWidth=511)  # fmt: skip
        np.testing.assert_allclose(self.run_chain(path), self.reference, atol=1e-3)

    def test_multivalued_window_uses_first(self):
        pixels = CONTENT.astype(np.uint16)
        path = write_dicom(self.dir / "e.dcm", pixels, BitsStored=12, HighBit=11, WindowCenter=[128, 2000],
                           WindowWidth=[256, 4000])  # fmt: skip
        np.testing.assert_allclose(self.run_chain(path), self.reference, atol=1e-3)

    def test_linear_exact_window(self):
        path = write_dicom(self.dir / "f.dcm", CONTENT.astype(np.uint16), BitsStored=12, HighBit=11, WindowCenter=127.5,
                           WindowWidth=255, VOILUTFunction="LINEAR_EXACT")  # fmt: skip
        np.testing.assert_allclose(self.run_chain(path), self.reference, atol=1e-3)

    def test_sigmoid_window(self):
        path = write_dicom(self.dir / "g.dcm", CONTENT.astype(np.uint16), BitsStored=12, HighBit=11, WindowCenter=128,
                           WindowWidth=256, VOILUTFunction="SIGMOID")  # fmt: skip
        sig = 255.0 / (1.0 + np.exp(-4.0 * (CONTENT.astype(np.float64) - 128.0) / 256.0))
        np.testing.assert_allclose(self.run_chain(path), expected(sig), atol=1e-3)

    def test_voi_lut_sequence(self):
        item = Dataset()
        item.LUTDescriptor = [4096, 0, 8]
        item.add_new(0x00283006, "US", [min(255, v // 2) for v in range(4096)])  # LUTData halving the stored value
        pixels = CONTENT.astype(np.uint16) * 2
        path = write_dicom(self.dir / "h.dcm", pixels, BitsStored=12, HighBit=11, VOILUTSequence=DicomSequence([item]))
        np.testing.assert_allclose(self.run_chain(path), self.reference, atol=1e-3)

    @parameterized.expand([("zero", 0), ("negative", -10)])
    def test_bad_window_falls_back_with_warning(self, _, width):
        path = write_dicom(self.dir / "w.dcm", CONTENT.astype(np.uint16), BitsStored=8, HighBit=7, WindowCenter=100,
                           WindowWidth=width)  # fmt: skip
        with self.assertLogs("monai_fair.transforms.cxr_io", logging.WARNING) as logs:
            out = self.run_chain(path)
        self.assertIn("w.dcm", logs.output[0])
        np.testing.assert_allclose(out, self.reference, atol=1e-4)

    def test_signed_ct_small(self):
        """pydicom's bundled CT_small.dcm (signed 16-bit, rescale, no window): the stored-range oracle by hand."""
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        arr, meta = read_cxr_image(get_testdata_file("CT_small.dcm"))
        bits = int(ds.BitsStored)
        slope, icpt = float(getattr(ds, "RescaleSlope", 1)), float(getattr(ds, "RescaleIntercept", 0))
        lo, hi = -(2 ** (bits - 1)) * slope + icpt, (2 ** (bits - 1) - 1) * slope + icpt
        oracle = (ds.pixel_array.astype(np.float64) * slope + icpt - lo) / (hi - lo) * 255.0
        self.assertEqual(meta["bits"], bits)
        np.testing.assert_allclose(arr[0], oracle, atol=1e-6)

    def test_dicom_without_suffix(self):
        path = write_dicom(self.dir / "IM0001", CONTENT.astype(np.uint16), BitsStored=8, HighBit=7)
        np.testing.assert_allclose(self.run_chain(path), self.reference, atol=1e-4)

    def test_multiframe_refused(self):
        path = write_dicom(self.dir / "mf.dcm", np.stack([CONTENT, CONTENT]).astype(np.uint16), NumberOfFrames=2)
        with self.assertRaisesRegex(ValueError, r"mf\.dcm has 2 frames"):
            read_cxr_image(path)

    def test_no_pixel_data(self):
        path = write_dicom(self.dir / "np.dcm", CONTENT.astype(np.uint16))
        ds = pydicom.dcmread(path)
        del ds.PixelData
        ds.save_as(path)
        with self.assertRaisesRegex(ValueError, r"np\.dcm"):
            read_cxr_image(path)

    def test_truncated_pixel_data(self):
        path = write_dicom(self.dir / "tr.dcm", CONTENT.astype(np.uint16))
        data = path.read_bytes()
        path.write_bytes(data[:-500])
        with self.assertRaisesRegex(ValueError, r"tr\.dcm"):
            read_cxr_image(path)

    def test_palette_colour_refused(self):
        path = write_dicom(self.dir / "pal.dcm", CONTENT.astype(np.uint16), PhotometricInterpretation="PALETTE COLOR")
        with self.assertRaisesRegex(ValueError, r"pal\.dcm.*PALETTE COLOR"):
            read_cxr_image(path)


if __name__ == "__main__":
    unittest.main()
