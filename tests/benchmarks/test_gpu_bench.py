# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The GPU benchmark's tiny CPU configuration: both loops train the bundle's network and the ratio is printed last."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import unittest
from pathlib import Path

import torch

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_bench.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_bench", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestGpuBench(unittest.TestCase):
    def test_tiny_cpu(self):
        bench = _load()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            result = bench.run(["--tiny", "--device", "cpu", "--batches", "3"])
        self.assertEqual((result["network"], result["width"], result["input_size"]), ("FairVGG", 0.0625, 32))
        self.assertFalse(result["amp"])  # bf16 autocast on CUDA only, as the bundle's engine_amp
        self.assertGreater(result["bundle_images_per_s"], 0)
        self.assertGreater(result["plain_images_per_s"], 0)
        self.assertAlmostEqual(result["ratio"], result["bundle_images_per_s"] / result["plain_images_per_s"])
        last = out.getvalue().strip().splitlines()[-1]
        self.assertEqual(last, f"ratio bundle trainer / plain loop: {result['ratio']:.3f} (goal >= 0.9)")

    def test_bundle_trainer_trains_the_bundle_network(self):
        bench = _load()
        device = torch.device("cpu")
        parser = bench.bundle_parser(True, device, 2)
        loader = bench.DataLoader(bench.cached_batches(2, 2, 32), batch_size=2)
        before = {k: v.clone() for k, v in parser.get_parsed_content("network_def").state_dict().items()}
        _, network = bench.time_bundle_trainer(parser, loader, device, amp=False, warmup=0, epochs=1)
        self.assertIs(network, parser.get_parsed_content("network"))
        changed = [k for k, v in network.state_dict().items() if not torch.equal(v, before[k])]
        self.assertTrue(changed, "the bundle's trainer did not update its network")
        self.assertTrue(network.state_dict()[next(iter(before))].is_contiguous(memory_format=torch.channels_last))

    def test_nothing_timed_is_an_error(self):
        bench = _load()
        timer = bench._Timer(torch.device("cpu"), warmup=5, batch_size=2)
        for i in range(1, 4):
            timer.iteration_done(i)
        with self.assertRaisesRegex(ValueError, "warmup=5"):
            timer.images_per_second()


if __name__ == "__main__":
    unittest.main()
