# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest

from monai.bundle import ConfigParser

from monai_fair.per_seed import run_per_seed

CONFIG = {
    "imports": ["$import torch"],
    "seed": 0,
    "seeds": [3, 5],
    "scale": 10,
    "net": {"_target_": "torch.nn.Linear", "in_features": 2, "out_features": 1},
    "seed_run": ["$monai.utils.set_determinism(@seed)"],
    "seed_result": "$(@seed * @scale, float(@net.weight.sum()))",
}


class TestRunPerSeed(unittest.TestCase):
    def test_fresh_instantiation_per_seed(self):
        parser = ConfigParser(dict(CONFIG))
        parser["scale"] = 100  # an override must carry into every seed
        results = run_per_seed([3, 5, 3], parser=parser)
        self.assertEqual([r[0] for r in results], [300, 500, 300])
        # same seed -> same network initialisation; different seed -> different one
        self.assertEqual(results[0][1], results[2][1])
        self.assertNotEqual(results[0][1], results[1][1])

    def test_errors(self):
        with self.assertRaises(ValueError):
            run_per_seed([], parser=ConfigParser(dict(CONFIG)))
        with self.assertRaises(RuntimeError):
            run_per_seed([1])

    def test_from_bundle_cli(self):
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "configs"))
            cfg = dict(CONFIG)
            cfg["imports"] = ["$import torch", "$import json", "$from monai_fair.per_seed import run_per_seed"]
            cfg["out"] = os.path.join(d, "out.json")
            cfg["run"] = ["$open(@out, 'w').write(json.dumps(run_per_seed(@seeds)))"]
            path = os.path.join(d, "configs", "train.json")
            with open(path, "w") as f:
                json.dump(cfg, f)
            subprocess.run(
                [sys.executable, "-m", "monai.bundle", "run", "--config_file", path, "--scale", "7"],
                check=True,
                capture_output=True,
            )
            with open(cfg["out"]) as f:
                self.assertEqual([r[0] for r in json.load(f)], [21, 35])


if __name__ == "__main__":
    unittest.main()
