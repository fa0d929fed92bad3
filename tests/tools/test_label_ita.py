# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""tools/label_ita.py run in-process on a small demo folder with corrupt files mixed in."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd

from monai_fair.data.demo.isic import make_isic_demo
from monai_fair.transforms.ita import OutsideLesionSampler, ita_category, load_rgb

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("fair_label_ita_tool", REPO / "tools" / "label_ita.py")
label_ita = importlib.util.module_from_spec(_spec)
import sys  # noqa: E402

sys.modules[_spec.name] = label_ita
_spec.loader.exec_module(label_ita)


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = label_ita.main(argv)
    return code, out.getvalue(), err.getvalue()


class TestLabelITA(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        demo = make_isic_demo(Path(cls.tmp.name) / "demo", seed=5, n_lesions=6, repeat_prob=0.0)
        cls.images = demo / "HAM10000_images_part_1"
        (cls.images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        (cls.images / "notes.png").write_text("this is text")
        (cls.images / "readme.txt").write_text("ignored: not an image extension")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_folder(self):
        out = Path(self.tmp.name) / "out" / "ita.csv"
        code, stdout, _ = _run(
            [str(self.images), "--out", str(out), "--scheme", "kinyanjui_fitz6", "--scheme", "binary45", "--quiet"]
        )
        self.assertEqual(code, 0)
        table = pd.read_csv(out, keep_default_na=False, na_values=[""])
        self.assertEqual(len(table), 8)
        for col in (
            "image",
            "ita",
            "ita_group",
            "ita_group_kinyanjui_fitz6",
            "ita_group_binary45",
            "n_pixels",
            "frac_kept",
            "l_star",
            "b_star",
            "l_std",
            "b_std",
            "reason",
            "sampler",
        ):
            self.assertIn(col, table.columns)
        bad = table[table["image"].isin(["broken.jpg", "notes.png"])]
        self.assertEqual(len(bad), 2)
        self.assertTrue(bad["ita"].isna().all())
        self.assertTrue(bad["reason"].str.startswith("unreadable").all())
        self.assertTrue((bad["ita_group"] == -1).all())
        self.assertIn("2 unreadable files skipped", stdout)
        good = table[~table.index.isin(bad.index)]
        self.assertTrue(good["ita"].notna().all())
        sampler = OutsideLesionSampler(return_mask=False)
        direct = [sampler(load_rgb(self.images / name)).ita for name in good["image"]]
        np.testing.assert_allclose(good["ita"], direct, rtol=1e-9)
        np.testing.assert_array_equal(good["ita_group"], ita_category(good["ita"].to_numpy(), "kinyanjui_fitz6"))
        np.testing.assert_array_equal(good["ita_group_binary45"], ita_category(good["ita"].to_numpy(), "binary45"))
        self.assertTrue((out.parent / "ita_hist.png").is_file())

    def test_manifest_and_workers(self):
        names = sorted(p.name for p in self.images.glob("ISIC_*.jpg"))
        manifest = Path(self.tmp.name) / "m.csv"
        pd.DataFrame({"image": [f"demo/HAM10000_images_part_1/{n}" for n in names]}).to_csv(manifest, index=False)
        out1, out2 = Path(self.tmp.name) / "m1.csv", Path(self.tmp.name) / "m2.csv"
        self.assertEqual(
            _run([str(manifest), "--out", str(out1), "--quiet", "--no-plot", "--sampler", "patches"])[0], 0
        )
        self.assertEqual(
            _run([str(manifest), "--out", str(out2), "--quiet", "--no-plot", "--sampler", "patches", "--workers", "2"])[
                0
            ],
            0,
        )
        t1, t2 = pd.read_csv(out1), pd.read_csv(out2)
        self.assertEqual(t1["image"].tolist(), [f"demo/HAM10000_images_part_1/{n}" for n in names])
        self.assertTrue((t1["sampler"] == "patches").all())
        pd.testing.assert_frame_equal(t1, t2)
        self.assertFalse((out1.parent / "m1_hist.png").exists())

    def test_errors(self):
        self.assertEqual(_run([str(Path(self.tmp.name) / "missing"), "--quiet"])[0], 2)
        empty = Path(self.tmp.name) / "empty"
        empty.mkdir(exist_ok=True)
        self.assertEqual(_run([str(empty), "--quiet"])[0], 2)
        bad_manifest = Path(self.tmp.name) / "bad.csv"
        pd.DataFrame({"path": ["a.jpg"]}).to_csv(bad_manifest, index=False)
        self.assertEqual(_run([str(bad_manifest), "--quiet"])[0], 2)


if __name__ == "__main__":
    unittest.main()
