# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The label-free critic handler logs a predicted SPD for batches that carry neither labels nor attributes."""

from __future__ import annotations

import math
import tempfile
import unittest
import warnings
from pathlib import Path

import torch
from monai.engines import SupervisedEvaluator
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader

from monai_fair.handlers import CriticFairnessMonitor
from monai_fair.networks import BiasCriticHeads, fair_vgg11, split_vgg


def _net_and_heads():
    torch.manual_seed(0)
    net = fair_vgg11(spatial_dims=2, in_channels=3, out_channels=1, width=0.0625, fc_channels=16, pool_size=2)
    return net.eval(), BiasCriticHeads(in_channels=32, spatial_size=2).eval()


class TestCriticFairnessMonitor(unittest.TestCase):
    def test_logs_on_unlabelled_batches(self):
        net, heads = _net_and_heads()
        data = [{"image": torch.rand(3, 32, 32)} for _ in range(12)]  # no label, no attribute
        loader = DataLoader(data, batch_size=4)
        with tempfile.TemporaryDirectory() as tmp:
            # as a bundle declares it: among the evaluator's val_handlers (attached before the network is set)
            monitor = CriticFairnessMonitor(heads, feature_module="avgpool", log_dir=tmp)
            evaluator = SupervisedEvaluator(device="cpu", val_data_loader=loader, network=net, val_handlers=[monitor])
            evaluator.run()
            monitor.summary_writer.flush()
            # the oracle: P's batch mean on G's output of each batch, computed directly
            gen, _ = split_vgg(net)
            with torch.no_grad():
                expected = [
                    float(heads.predict_spd(gen(torch.stack([d["image"] for d in data[i : i + 4]])))) for i in (0, 4, 8)
                ]
            self.assertEqual(len(monitor.values), 3)
            for got, want in zip(monitor.values, expected):
                self.assertAlmostEqual(got, want, places=5)
            acc = EventAccumulator(str(next(Path(tmp).glob("events.*"))), size_guidance={"scalars": 0})
            acc.Reload()
            logged = [e.value for e in acc.Scalars("critic/predicted_spd")]
            self.assertEqual(len(logged), 3)
            self.assertAlmostEqual(logged[1], expected[1], places=5)
            self.assertIn("critic/predicted_spd_epoch_mean", acc.Tags()["scalars"])
            self.assertAlmostEqual(evaluator.state.metrics["critic/predicted_spd_epoch_mean"], sum(expected) / 3, 5)

    def test_group_ratio_readout_is_what_it_logs(self):
        net, _ = _net_and_heads()
        heads = BiasCriticHeads(in_channels=32, spatial_size=2, readout="group_ratio").eval()
        data = [{"image": torch.rand(3, 32, 32)} for _ in range(8)]  # no label, no attribute
        evaluator = SupervisedEvaluator(device="cpu", val_data_loader=DataLoader(data, batch_size=4), network=net)
        monitor = CriticFairnessMonitor(heads, feature_module="avgpool")
        monitor.attach(evaluator)
        evaluator.run()
        gen, _ = split_vgg(net)
        with torch.no_grad():
            for i, got in zip((0, 4), monitor.values):
                h = gen(torch.stack([d["image"] for d in data[i : i + 4]]))
                _, p = heads(h)
                self.assertAlmostEqual(got, float(heads.pool(p)), places=5)

    def test_never_ends_a_run(self):
        net, _ = _net_and_heads()
        wrong = BiasCriticHeads(in_channels=8, spatial_size=2)  # does not fit the network's features
        loader = DataLoader([{"image": torch.rand(3, 32, 32)} for _ in range(4)], batch_size=2)
        evaluator = SupervisedEvaluator(device="cpu", val_data_loader=loader, network=net)
        monitor = CriticFairnessMonitor(wrong, feature_module="avgpool")
        monitor.attach(evaluator)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            evaluator.run()
        self.assertEqual(monitor.failures, 2)
        self.assertTrue(all(math.isnan(v) for v in monitor.values))
        self.assertTrue(any("CriticFairnessMonitor" in str(w.message) for w in caught))

    def test_rejects_a_module_without_predict_spd(self):
        with self.assertRaisesRegex(TypeError, "predict_spd"):
            CriticFairnessMonitor(torch.nn.Linear(2, 2))


if __name__ == "__main__":
    unittest.main()
