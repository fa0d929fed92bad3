# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Colour maths: sRGB→CIELAB against scikit-image, the ITA formula, trimming, category edges; the transforms package
re-exports the same objects, and no module of ``monai_fair.data`` imports ``monai_fair.transforms``."""

from __future__ import annotations

import ast
import math
import unittest
from pathlib import Path

import numpy as np
from parameterized import parameterized
from skimage.color import rgb2lab

import monai_fair
import monai_fair.data
import monai_fair.transforms
from monai_fair.data.colour import (
    ITA_SCHEMES,
    gray_world,
    ita_category,
    ita_from_lab,
    ita_group_names,
    srgb_to_lab,
    trimmed_median,
)


class TestColourAndFormula(unittest.TestCase):
    def test_lab_matches_skimage_uint8(self):
        rng = np.random.default_rng(0)
        rgb = rng.integers(0, 256, size=(200000, 3)).astype(np.uint8)
        rgb[:256] = np.arange(256)[:, None]  # the grey axis, including black and white
        ours = srgb_to_lab(rgb)
        ref = rgb2lab(rgb[:, None, :])[:, 0, :]
        self.assertEqual(ours.dtype, np.float32)
        self.assertLess(float(np.abs(ours - ref).max()), 1e-3)

    def test_lab_matches_skimage_float(self):
        rgb = np.random.default_rng(1).random((64, 64, 3))
        self.assertLess(float(np.abs(srgb_to_lab(rgb) - rgb2lab(rgb)).max()), 1e-3)
        with self.assertRaises(ValueError):
            srgb_to_lab(np.zeros((4, 4)))

    def test_ita_formula(self):
        self.assertAlmostEqual(ita_from_lab(50.0, 20.0), 0.0)
        self.assertAlmostEqual(ita_from_lab(100.0, 50.0), 45.0)
        self.assertAlmostEqual(ita_from_lab(25.0, 25.0), -45.0)
        # b* < 0: arctan flips sign, arctan2 does not
        self.assertAlmostEqual(ita_from_lab(60.0, -10.0, "arctan"), -45.0)
        self.assertAlmostEqual(ita_from_lab(60.0, -10.0, "arctan2"), 135.0)
        np.testing.assert_allclose(ita_from_lab(np.array([60.0, 40.0]), np.array([10.0, 10.0])), [45.0, -45.0])
        self.assertTrue(math.isnan(ita_from_lab(50.0, 0.0)))
        with self.assertRaises(ValueError):
            ita_from_lab(50.0, 1.0, "atan")

    def test_trimmed_median(self):
        v = np.array([10.0] * 50 + [11.0] * 50 + [100.0] * 5)
        centre, sd, n = trimmed_median(v, 1.0)
        self.assertEqual(n, 100)
        self.assertAlmostEqual(centre, 10.5)
        self.assertAlmostEqual(sd, 0.5)
        self.assertAlmostEqual(trimmed_median(v, 1.0, "mean")[0], 10.5)
        self.assertTrue(math.isnan(trimmed_median([])[0]))
        with self.assertRaises(ValueError):
            trimmed_median(v, reduce="mode")


class TestCategories(unittest.TestCase):
    @parameterized.expand(
        [
            ("chardon_delbino6", 55.0, "light"),
            ("chardon_delbino6", 55.01, "very_light"),
            ("chardon_delbino6", -30.0, "dark"),
            ("chardon_delbino6", -29.99, "brown"),
            ("chardon_delbino6", 10.0, "brown"),
            ("chardon_delbino6", 41.0, "intermediate"),
            ("kinyanjui8", 34.5, "int1"),
            ("kinyanjui8", 34.51, "int2"),
            ("kinyanjui8", 48.0, "lt1"),
            ("kinyanjui8", 10.0, "dark"),
            ("kinyanjui8", 19.0, "tan1"),
            ("kinyanjui8", 80.0, "very_lt"),
            ("kinyanjui_fitz6", 55.0, "II"),
            ("kinyanjui_fitz6", 56.0, "I"),
            ("kinyanjui_fitz6", 28.0, "IV"),
            ("kinyanjui_fitz6", 10.0, "VI"),
            ("kinyanjui_fitz6", -60.0, "VI"),
            ("bencevic3", 41.0, "FST12"),
            ("bencevic3", 40.99, "FST34"),
            ("bencevic3", 19.0, "FST34"),
            ("bencevic3", 18.99, "FST56"),
            ("binary45", 45.0, "dark"),
            ("binary45", 45.01, "light"),
        ]
    )
    def test_edges(self, scheme, ita, name):
        self.assertEqual(ita_group_names(scheme)[ita_category(ita, scheme)], name)

    def test_codes_lightest_first_and_nan_unknown(self):
        for scheme, s in ITA_SCHEMES.items():
            codes = ita_category(np.array([89.0, -89.0, np.nan]), scheme)
            self.assertEqual(codes.tolist(), [0, len(s.names_dark_to_light) - 1, -1])
        self.assertEqual(ita_category(float("nan"), "binary45"), -1)
        with self.assertRaises(ValueError):
            ita_category(10.0, "fitzpatrick")


class TestPackageBoundary(unittest.TestCase):
    def test_transforms_reexport_the_same_objects(self):
        for name in ("ITA_SCHEMES", "srgb_to_lab", "ita_from_lab", "trimmed_median", "ita_category", "gray_world"):
            self.assertIs(getattr(monai_fair.transforms, name), getattr(monai_fair.data.colour, name), name)
        self.assertIs(monai_fair.data.gray_world, gray_world)

    def test_data_does_not_import_transforms(self):
        offenders = []
        root = Path(monai_fair.__file__).parent
        for path in (root / "data").rglob("*.py"):
            package = ["monai_fair", *path.parent.relative_to(root).parts]
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    # resolve relative imports (``from ..transforms import x``) against the file's package
                    base = package[: len(package) - node.level + 1] if node.level else []
                    names = [".".join([*base, node.module or ""]).rstrip(".")]
                offenders += [f"{path.name}:{node.lineno}" for n in names if n.startswith("monai_fair.transforms")]
        self.assertEqual(offenders, [])


if __name__ == "__main__":
    unittest.main()
