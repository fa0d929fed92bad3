# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""tools/make_demo_data.py run in-process."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import tempfile
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("fair_make_demo_data_tool", REPO / "tools" / "make_demo_data.py")
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)


class TestMakeDemoData(unittest.TestCase):
    def test_parse_params(self):
        self.assertEqual(
            tool.parse_params(["a=1", "b=x", "c=[1, 2]", "d=true"]), {"a": 1, "b": "x", "c": [1, 2], "d": True}
        )
        with self.assertRaises(ValueError):
            tool.parse_params(["novalue"])

    def test_generate_mimic_and_chexpert(self):
        with tempfile.TemporaryDirectory() as tmp:
            for name, params in (
                ("mimic_cxr", ["n_subjects=12", "image_size=16"]),
                ("chexpert", ["n_patients=12", "n_valid_patients=2", "image_size=16"]),
            ):
                buf = io.StringIO()
                argv = [name, "--out", f"{tmp}/{name}", "--seed", "2"] + [x for p in params for x in ("--param", p)]
                with contextlib.redirect_stdout(buf):
                    self.assertEqual(tool.main(argv), 0)
                out = Path(buf.getvalue().strip().splitlines()[-1])
                self.assertEqual(out, Path(tmp) / name)
                info = json.loads((out / "DEMO_COMPLETE.json").read_text())
                self.assertEqual(info["seed"], 2)
                self.assertEqual(info["params"]["image_size"], 16)

    def test_list_and_errors(self):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            self.assertEqual(tool.main(["--list"]), 0)
        self.assertIn("mimic_cxr", buf.getvalue())
        with contextlib.redirect_stderr(io.StringIO()):
            with self.assertRaises(SystemExit):
                tool.main([])
            with self.assertRaises(SystemExit):
                tool.main(["nonexistent"])
            with self.assertRaises(SystemExit):
                tool.main(["mimic_cxr", "--param", "oops"])
        with tempfile.TemporaryDirectory() as tmp:
            with self.assertRaisesRegex(ValueError, "unknown"):
                tool.main(["mimic_cxr", "--out", tmp, "--param", "bogus=1"])


if __name__ == "__main__":
    unittest.main()
