# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Two-process (torchrun, gloo, CPU) run of the fairness metrics gives the single-process numbers."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import ddp_fairness_script as script  # noqa: E402


@pytest.mark.slow
class TestFairnessMetricDistributed(unittest.TestCase):
    def test_two_ranks_match_single_process(self):
        single = script.run_evaluation(None)
        single.update(script.run_empty_rank(None))
        with tempfile.TemporaryDirectory() as out:
            env = dict(
                os.environ,
                PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                OMP_NUM_THREADS="1",
            )
            cmd = [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nnodes=1",
                "--nproc_per_node=2",
                str(HERE / "ddp_fairness_script.py"),
                out,
            ]
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
            self.assertEqual(proc.returncode, 0, proc.stderr[-4000:])
            ranks = [json.loads((Path(out) / f"rank{r}.json").read_text()) for r in range(2)]
        self.assertEqual(ranks[0], ranks[1])  # identical on both ranks, CIs included
        dist = ranks[0]
        self.assertEqual(dist["n_total"], script.N_SAMPLES)  # uneven shards 51 + 50, nothing duplicated
        self.assertIn("empty_rank/auc_1", dist)
        compared = 0
        for key, value in single.items():
            if key.endswith(("_ci_low", "_ci_high")):
                continue  # resamples depend on the gathered order (rank-interleaved), the point estimates do not
            self.assertIn(key, dist)
            if math.isnan(value):
                self.assertIsNone(dist[key], key)
            else:
                # float32 network outputs differ in the last bits between batch compositions
                self.assertAlmostEqual(dist[key], value, places=6, msg=key)
            compared += 1
        self.assertGreater(compared, 100)


if __name__ == "__main__":
    unittest.main()
