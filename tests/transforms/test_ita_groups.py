# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""ITA skin-tone groups computed at ingestion: agreement with the demo's true skin tone, the disk cache, bad files."""

from __future__ import annotations

import math
import tempfile
import unittest
from pathlib import Path

import pandas as pd

from monai_fair.data.demo.isic import make_isic_demo
from monai_fair.transforms.ita_groups import ita_groups


class TestItaGroups(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.root = make_isic_demo(Path(cls.tmp.name) / "demo", seed=3, n_lesions=30, size=64)
        cls.truth = pd.read_csv(cls.root / "ita_truth.csv")
        cls.images = [str(cls.root / p) for p in cls.truth["image"]]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_matches_true_skin_tone_and_uses_the_cache(self):
        cache = Path(self.tmp.name) / "cache"
        ita, group = ita_groups(self.images, cache)
        truth = (self.truth["skin_group"] == "dark").astype(int).to_numpy()  # binary45: 0 light, 1 dark
        self.assertGreaterEqual((group == truth).mean(), 0.85)
        files = list(cache.glob("*.csv"))
        self.assertEqual(len(files), 1)
        stamp = files[0].stat().st_mtime_ns
        ita2, group2 = ita_groups(self.images, cache)  # everything cached: the file is not rewritten
        self.assertEqual(files[0].stat().st_mtime_ns, stamp)
        self.assertEqual(group2.tolist(), group.tolist())

    def test_unreadable_image_is_unknown(self):
        bad = Path(self.tmp.name) / "broken.jpg"
        bad.write_bytes(b"not an image")
        ita, group = ita_groups([str(bad), self.images[0]], None)
        self.assertTrue(math.isnan(ita[0]))
        self.assertEqual(int(group[0]), -1)
        self.assertTrue(math.isfinite(ita[1]))


if __name__ == "__main__":
    unittest.main()
