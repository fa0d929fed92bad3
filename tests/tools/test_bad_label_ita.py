# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""tools/label_ita.py on bad input: unreadable sources and files, bad options (exit 2, or NaN with a reason)."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd
from parameterized import parameterized

from monai_fair.data.demo.isic import make_isic_demo
from tests.tools.test_label_ita import _run


class TestLabelITATool(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        demo = make_isic_demo(Path(cls.tmp.name) / "demo", seed=3, n_lesions=3, repeat_prob=0.0)
        cls.images = demo / "HAM10000_images_part_1"

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        self.work = tempfile.TemporaryDirectory()
        self.dir = Path(self.work.name)
        self.out = self.dir / "out" / "ita.csv"

    def tearDown(self):
        self.work.cleanup()

    def check_error(self, argv, pattern, code=2):
        rc, _, err = _run([*argv, "--out", str(self.out), "--quiet", "--no-plot"])
        self.assertEqual(rc, code, err)
        self.assertRegex(err, pattern)
        self.assertNotIn("Traceback", err)

    def test_empty_manifest(self):
        (self.dir / "m.csv").write_bytes(b"")
        self.check_error([str(self.dir / "m.csv")], r"manifest .*m\.csv is empty")

    def test_header_only_manifest(self):
        (self.dir / "m.csv").write_text("image\n")
        self.check_error([str(self.dir / "m.csv")], r"no images found in .*m\.csv")

    def test_manifest_without_image_column(self):
        pd.DataFrame({"path": ["a.jpg"]}).to_csv(self.dir / "m.csv", index=False)
        self.check_error([str(self.dir / "m.csv")], r"has no 'image' column; found \['path'\]")

    def test_missing_source(self):
        self.check_error([str(self.dir / "nothing")], "neither a folder nor a manifest CSV")

    @parameterized.expand([("max_side", ["--max-side", "0"], "--max-side must be >= 16"),
                           ("workers", ["--workers", "0"], "--workers must be >= 1")])  # fmt: skip
    def test_bad_option(self, _, extra, pattern):
        self.check_error([str(self.images), *extra], pattern)

    def test_all_unreadable(self):
        folder = self.dir / "MRN55_DOE"
        folder.mkdir()
        (folder / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
        (folder / "b.png").write_text("text")
        self.check_error([str(folder)], "no image of .* gave an ITA", code=1)
        table = pd.read_csv(self.out, keep_default_na=False)
        self.assertTrue(table["reason"].str.startswith("unreadable").all())
        self.assertFalse(table["reason"].str.contains(str(self.dir)).any())  # file name only, no folder path

    def test_corrupt_among_good(self):
        manifest = self.dir / "m.csv"
        good = sorted(self.images.glob("*.jpg"))[:2]
        (self.dir / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
        pd.DataFrame({"image": [*map(str, good), "bad.jpg", "missing.jpg"]}).to_csv(manifest, index=False)
        rc, out, err = _run([str(manifest), "--out", str(self.out), "--quiet", "--no-plot"])
        self.assertEqual(rc, 0, err)
        table = pd.read_csv(self.out, keep_default_na=False, na_values=[""])
        self.assertTrue(np.isfinite(table["ita"].iloc[:2]).all())
        self.assertTrue(table["ita"].iloc[2:].isna().all())
        self.assertIn("2 unreadable files skipped", out)


if __name__ == "__main__":
    unittest.main()
