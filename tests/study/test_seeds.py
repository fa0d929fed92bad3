# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import torch

from monai_fair.study import SeedLoop, resolve_seed_workers, run_seed
from monai_fair.study.errors import StudyRunError

# a tiny study: the network is initialised per seed, the result shows the seed, an override and the weights
CONFIG = {
    "imports": ["$import torch", "$import json"],
    "seed": 0,
    "seeds": [3, 5],
    "scale": 10,
    "net": {"_target_": "torch.nn.Linear", "in_features": 2, "out_features": 1},
    "seen": [],
    "seed_run": ["$@seen.append(@seed)"],
    "seed_result": "$(@seed * @scale, float(@net.weight.sum()), list(@seen))",
}


REPO = str(Path(__file__).resolve().parents[2])


def _write(folder: str, config: dict) -> str:
    os.makedirs(os.path.join(folder, "configs"), exist_ok=True)
    path = os.path.join(folder, "configs", "train.json")
    Path(path).write_text(json.dumps(config))
    return path


class TestRunSeed(unittest.TestCase):
    def test_fresh_instantiation_per_seed(self):
        with tempfile.TemporaryDirectory() as d:
            path = _write(d, CONFIG)
            results = SeedLoop([3, 5, 3], config_file=path, overrides={"scale": 100}).run()
        # the override reaches every seed; the run list ran once per seed on a fresh "seen" list
        self.assertEqual([r[0] for r in results], [300, 500, 300])
        self.assertEqual([r[2] for r in results], [[3], [5], [3]])
        # same seed -> same initialisation (set_determinism before instantiation); another seed -> another one
        self.assertEqual(results[0][1], results[2][1])
        self.assertNotEqual(results[0][1], results[1][1])

    def test_merged_files_and_no_run_list(self):
        with tempfile.TemporaryDirectory() as d:
            path = _write(d, CONFIG)
            extra = os.path.join(d, "configs", "scale.json")
            Path(extra).write_text(json.dumps({"scale": 2, "seed_run": []}))
            self.assertEqual(run_seed([path, extra], 4)[0], 8)
            self.assertEqual(run_seed([path, extra], 4, {"scale": 3})[2], [])

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "seeds must not be empty"):
            SeedLoop([], config_file="unused.json")
        with self.assertRaisesRegex(ValueError, "needs config_file"):
            SeedLoop([1])  # pytest's command line is not a monai.bundle run

    def test_worker_processes_give_the_same_results_in_order(self):
        with tempfile.TemporaryDirectory() as d:
            path = _write(d, CONFIG)
            sequential = SeedLoop([3, 5, 3], config_file=path, overrides={"scale": 100}).run()
            parallel = SeedLoop([3, 5, 3], config_file=path, overrides={"scale": 100}, workers=2).run()
            self.assertEqual(parallel, sequential)
            # a failing seed names itself and its cause
            bad = SeedLoop([3, 5], config_file=path, overrides={"seed_result": "$1 // (@seed - 5)"}, workers=2)
            with self.assertRaisesRegex(StudyRunError, r"seed 5 \(2 of 2\) failed: .*ZeroDivisionError"):
                bad.run()

    def test_resolve_seed_workers(self):
        self.assertEqual(resolve_seed_workers(1, 5), (1, None))
        self.assertEqual(resolve_seed_workers(4, 2)[0], 2)  # never more processes than seeds
        workers, threads = resolve_seed_workers("auto", 3)
        cores = len(os.sched_getaffinity(0))
        if torch.cuda.is_available():
            self.assertEqual(workers, 1)
        else:
            self.assertEqual(workers, min(3, 2 * cores))
            self.assertEqual(threads, None if workers == 1 else max(1, cores // workers))
        for bad in (0, -1, "two", 1.5, True):
            with self.assertRaisesRegex(ValueError, "seed_workers"):
                resolve_seed_workers(bad, 3)

    def test_from_bundle_command_line(self):
        with tempfile.TemporaryDirectory() as d:
            cfg = dict(CONFIG, out=os.path.join(d, "out.json"))
            cfg["seed_loop"] = {"_target_": "monai_fair.study.SeedLoop", "seeds": "@seeds"}
            cfg["run"] = ["$open(@out, 'w').write(json.dumps(@seed_loop.run()))"]
            path = _write(d, cfg)
            subprocess.run(
                [sys.executable, "-m", "monai.bundle", "run", "--config_file", path, "--scale", "7"],
                check=True,
                capture_output=True,
                cwd=d,
                env={**os.environ, "PYTHONPATH": REPO},
            )
            results = json.loads(Path(cfg["out"]).read_text())
        self.assertEqual([r[0] for r in results], [21, 35])


if __name__ == "__main__":
    unittest.main()
