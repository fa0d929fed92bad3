# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import unittest

from monai_fair.study import parse_bundle_command

MAIN = "/env/lib/python3.12/site-packages/monai/bundle/__main__.py"


class TestParseBundleCommand(unittest.TestCase):
    def test_files_and_overrides(self):
        cmd = parse_bundle_command(
            [
                MAIN,
                "run",
                "--config_file",
                "['a/configs/train.json','a/configs/evaluate.json']",
                "--epochs",
                "2",
                "--seeds",
                "[1, 2]",
                "--demo_params",
                "{'n_subjects': 400}",
                "--debiasers#pruning#max_steps=3",
                "--device",
                "cpu",
                "--meta_file",
                "m.json",
            ]
        )
        self.assertEqual(cmd.config_file, ["a/configs/train.json", "a/configs/evaluate.json"])
        self.assertEqual(cmd.meta_file, "m.json")
        self.assertEqual(
            cmd.overrides,
            {
                "epochs": 2,
                "seeds": [1, 2],
                "demo_params": {"n_subjects": 400},
                "debiasers#pruning#max_steps": 3,
                "device": "cpu",
            },
        )

    def test_single_file_and_run_id(self):
        cmd = parse_bundle_command([MAIN, "run", "training", "--config_file", "train.json"])
        self.assertEqual((cmd.config_file, cmd.overrides), (["train.json"], {}))

    def test_not_a_bundle_command(self):
        self.assertIsNone(parse_bundle_command(["/usr/bin/pytest", "run", "--config_file", "x.json"]))
        self.assertIsNone(parse_bundle_command([MAIN, "ckpt_export", "--config_file", "x.json"]))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "--epochs has no value"):
            parse_bundle_command([MAIN, "run", "--config_file", "x.json", "--epochs"])
        with self.assertRaisesRegex(ValueError, "no --config_file"):
            parse_bundle_command([MAIN, "run", "--epochs", "2"])


if __name__ == "__main__":
    unittest.main()
