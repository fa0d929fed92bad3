# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Degenerate validation epochs never end a run: NaN, a flag and a warning instead of an exception."""

from __future__ import annotations

import logging
import math
import sys
import tempfile
import unittest
from pathlib import Path

import torch
from ignite.engine import Engine
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator
from monai.transforms import Activationsd

from monai_fair.handlers import (
    FairnessObjectiveMetric,
    FairnessSummaryMetric,
    FairnessTensorBoardHandler,
    GroupFairnessMetric,
)
from monai_fair.metrics.fairness_table import compute_fairness_table, estimable_plot_inputs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluator_fixture import MeanLogit, make_evaluator, make_samples  # noqa: E402


def _all_metrics(threshold="ba-optimal"):
    kw = dict(attributes="sex", reference=1, min_group_size=2)
    return {
        "sex_fairness": GroupFairnessMetric(threshold=threshold, metrics="all", **kw),
        "worst_ba": FairnessSummaryMetric("worst_group_ba", threshold=threshold, **kw),
        "eod_gap": FairnessSummaryMetric("eod_max_min", threshold=threshold, **kw),
    }


class TestDegenerateEpochs(unittest.TestCase):
    def _run(self, samples, threshold="ba-optimal"):
        with tempfile.TemporaryDirectory() as d:
            tb = FairnessTensorBoardHandler(log_dir=d, background=False)
            evaluator = make_evaluator(
                samples,
                key_val_metric={"phi": FairnessObjectiveMetric(attributes="sex", reference=1, min_group_size=2)},
                additional_metrics=_all_metrics(threshold),
                val_handlers=[tb],
            )
            with self.assertLogs("monai_fair", level="WARNING") as logs:
                evaluator.run()
            tb.close()
        return evaluator, "\n".join(logs.output)

    def test_epoch_without_reference_group(self):
        samples = make_samples(48, seed=2)
        for d in samples:
            d["sex"] = 0  # the reference group 1 is absent this epoch
        evaluator, log = self._run(samples)
        m = evaluator.state.metrics
        self.assertTrue(math.isnan(m["sex/eod_0"]))
        self.assertTrue(math.isnan(m["sex/spd_0"]))
        self.assertFalse(math.isnan(m["sex/tpr_0"]))  # the present group is still reported
        table = evaluator.state.fairness_details["sex_fairness"].table
        self.assertIn("empty group", table.flags[1])
        self.assertIn("reference group 1 is not estimable", log)
        self.assertEqual(m["phi"], -math.inf)  # undefined objective: the worst value, with a warning
        self.assertIn("FairnessObjectiveMetric", log)

    def test_epoch_with_one_label_class_under_ba_optimal(self):
        samples = make_samples(48, seed=3)
        for d in samples:
            d["label"] = torch.zeros_like(d["label"])
        evaluator, log = self._run(samples)
        m = evaluator.state.metrics
        for key in ("sex/selection_rate_0", "sex/fpr_1", "sex/spd_0", "sex/balanced_accuracy_1"):
            self.assertTrue(math.isnan(m[key]), key)
        self.assertEqual(m["worst_ba"], -math.inf)
        self.assertEqual(m["eod_gap"], math.inf)
        table = evaluator.state.fairness_details["sex_fairness"].table
        self.assertTrue(math.isnan(float(table.threshold)))
        self.assertIn("ba-optimal threshold undefined", table.flags[0])
        self.assertIn("ba-optimal threshold undefined", log)


def _evaluator_without_key_metric(samples, additional_metrics=None, val_handlers=None) -> SupervisedEvaluator:
    return SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(samples), batch_size=16, num_workers=0),
        network=MeanLogit(),
        postprocessing=Activationsd(keys="pred", sigmoid=True),
        additional_metrics=additional_metrics,
        val_handlers=val_handlers,
    )


class TestNoKeyMetric(unittest.TestCase):
    def test_missing_key_metric_warns(self):
        samples = make_samples(32, seed=4)
        with tempfile.TemporaryDirectory() as d:
            tb = FairnessTensorBoardHandler(log_dir=d, background=False)
            with self.assertLogs("monai_fair.handlers", level="WARNING") as logs:
                evaluator = _evaluator_without_key_metric(samples, _all_metrics(0.5), [tb])
                evaluator.run()
            tb.close()
        text = "\n".join(logs.output)
        self.assertIn("no key_val_metric", text)
        self.assertIn("no fairness metric ran this epoch", text)
        self.assertNotIn("sex/tpr_0", evaluator.state.metrics)  # MONAI's behaviour, now announced

    def test_handler_attaches_given_metrics(self):
        samples = make_samples(32, seed=4)
        metric = GroupFairnessMetric(attributes="sex", reference=1, min_group_size=2)
        with tempfile.TemporaryDirectory() as d:
            tb = FairnessTensorBoardHandler(log_dir=d, background=False, metrics={"sex_fairness": metric})
            evaluator = _evaluator_without_key_metric(samples, val_handlers=[tb])
            evaluator.run()
            tb.close()
        self.assertIn("sex/tpr_0", evaluator.state.metrics)
        self.assertIn("sex_fairness", evaluator.state.fairness_details)

    def test_plain_ignite_engine(self):
        # a bare ignite Engine (no MONAI workflow) with output/batch dicts, as a custom validation loop would have
        samples = make_samples(24, seed=5)
        batches = [
            {
                "pred": torch.sigmoid(torch.stack([d["image"].mean() for d in samples[i : i + 8]])),
                "label": torch.stack([d["label"][0] for d in samples[i : i + 8]]),
                "sex": torch.zeros(8, dtype=torch.long),
            }
            for i in range(0, 24, 8)
        ]
        engine = Engine(lambda e, b: {"pred": b["pred"], "label": b["label"]})
        GroupFairnessMetric(attributes="sex", reference=1, min_group_size=2).attach(engine, "fair")
        with self.assertLogs("monai_fair.handlers", level="WARNING"):
            engine.run(batches)
        self.assertTrue(math.isnan(engine.state.metrics["sex/eod_0"]))


class TestPlotInputs(unittest.TestCase):
    def test_small_groups_left_out_of_figures(self):
        gen = torch.Generator().manual_seed(0)
        g = torch.tensor([0] * 30 + [1] * 30 + [2] * 4)
        y = (torch.rand(64, generator=gen) < 0.5).double()
        s = torch.rand(64, generator=gen, dtype=torch.float64)
        table = compute_fairness_table(s, y, g, min_group_size=10, group_names={0: "A", 1: "B", 2: "C"})
        self.assertTrue(math.isnan(float(table.per_group["auc"][2])))
        s2, y2, g2, kw = estimable_plot_inputs(table, s, y, g, 10, "ROC by group")
        self.assertEqual(kw["group_codes"], [0, 1])
        self.assertFalse(bool((g2 == 2).any()))
        self.assertEqual(s2.numel(), 60)
        self.assertIn("C (n=4)", kw["title"])
        self.assertTrue(kw["title"].startswith("ROC by group"))
        *_, kw_all = estimable_plot_inputs(table, s, y, g, 1)
        self.assertIsNone(kw_all["title"])


if __name__ == "__main__":
    logging.basicConfig()
    unittest.main()
