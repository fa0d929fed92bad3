# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The calibration benchmark's tiny configuration: it prints both rates, writes the plots and its power rises."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import tempfile
import unittest
from pathlib import Path

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "invariance_calibration.py"


def _load():
    spec = importlib.util.spec_from_file_location("invariance_calibration", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestInvarianceCalibrationBench(unittest.TestCase):
    def test_tiny(self):
        bench = _load()
        with tempfile.TemporaryDirectory() as tmp:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                result = bench.run(
                    [
                        "--runs",
                        "20",
                        "--power-runs",
                        "10",
                        "--leaks",
                        "0",
                        "2",
                        "--n",
                        "200",
                        "--k",
                        "4",
                        "--n-draws",
                        "100",
                        "--out",
                        tmp,
                    ]
                )
            for key in ("null_pvalues", "power_curve"):
                self.assertTrue(Path(result["paths"][key]).read_bytes().startswith(b"\x89PNG"))
            self.assertTrue((Path(tmp) / "invariance_calibration.json").is_file())
        text = out.getvalue()
        self.assertIn("type-I error", text)
        self.assertIn("power (rejection rate)", text)
        for test in ("gcm", "crt"):
            # 20 null runs: a calibrated test rejects more than 5 times with probability < 0.003
            self.assertLessEqual(result["type1_error"][test], 0.25, test)
            self.assertGreater(result["power"][test][1], result["power"][test][0], test)
        self.assertEqual(result["flip_rate"][0], 0.0)  # the null classifier never flips
        self.assertGreater(result["flip_rate"][1], 0.0)


if __name__ == "__main__":
    unittest.main()
