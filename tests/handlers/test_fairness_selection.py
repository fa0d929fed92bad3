# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Scalar fairness key metrics: values against independent oracles, and model selection with CheckpointSaver."""

from __future__ import annotations

import math
import os
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch
from fairlearn.metrics import equal_opportunity_difference
from monai.handlers import CheckpointSaver
from parameterized import parameterized
from sklearn.metrics import balanced_accuracy_score, recall_score, roc_auc_score

from monai_fair.handlers import FairnessObjectiveMetric, FairnessSummaryMetric, lower_is_better

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluator_fixture import MeanLogit, expected_scores, make_evaluator, make_samples  # noqa: E402


def _objective_oracle(s, y, g, eps, reference=1):
    """BA-optimal threshold over the distinct observed scores with sklearn, then the privileged-vs-rest TPR gap."""
    grid = np.unique(s)
    bas = [balanced_accuracy_score(y, (s > t).astype(int)) for t in grid]
    t = grid[int(np.argmax(bas))]
    hard = (s > t).astype(int)
    tpr_u = recall_score(y[g != reference], hard[g != reference])
    tpr_p = recall_score(y[g == reference], hard[g == reference])
    bias = tpr_u - tpr_p
    return (max(bas) if abs(bias) < eps else 0.0), max(bas), bias, t


class TestSelectionValues(unittest.TestCase):
    @parameterized.expand([[0.05], [0.5]])
    def test_objective_matches_sklearn(self, eps):
        samples = make_samples(120, seed=5)
        s, y, g = (x.numpy() for x in expected_scores(samples))
        metric = FairnessObjectiveMetric(attributes="sex", reference=1, epsilon=eps)
        evaluator = make_evaluator(samples, key_val_metric={"phi": metric})
        evaluator.run()
        obj, ba, bias, thr = _objective_oracle(s, y, g, eps)
        m = evaluator.state.metrics
        self.assertAlmostEqual(m["phi"], obj, 9)
        self.assertAlmostEqual(m["phi/balanced_accuracy"], ba, 9)
        self.assertAlmostEqual(m["phi/bias"], bias, 9)
        self.assertAlmostEqual(m["phi/threshold"], thr, 9)

    def test_worst_group_and_gap(self):
        samples = make_samples(120, seed=6)
        s, y, g = (x.numpy() for x in expected_scores(samples))
        evaluator = make_evaluator(
            samples,
            additional_metrics={
                "worst_auc": FairnessSummaryMetric("worst_group_auc", attributes="sex", min_group_size=5),
                "worst_ba": FairnessSummaryMetric("worst_group_ba", attributes="sex", min_group_size=5),
                "eod_gap": FairnessSummaryMetric(attributes="sex", summary="eod_max_min", min_group_size=5),
            },
        )
        evaluator.run()
        m = evaluator.state.metrics
        aucs = [roc_auc_score(y[g == c], s[g == c]) for c in (0, 1)]
        bas = [balanced_accuracy_score(y[g == c], (s[g == c] > 0.5).astype(int)) for c in (0, 1)]
        self.assertAlmostEqual(m["worst_auc"], min(aucs), 9)
        self.assertAlmostEqual(m["worst_ba"], min(bas), 9)
        eod = equal_opportunity_difference(y, (s > 0.5).astype(int), sensitive_features=g)
        self.assertAlmostEqual(m["eod_gap"], eod, 9)

    def test_undefined_reports_worst_value(self):
        samples = make_samples(40, seed=7)
        for d in samples:
            d["sex"] = 1  # no unprivileged group: bias and gaps are undefined
        evaluator = make_evaluator(
            samples,
            key_val_metric={"phi": FairnessObjectiveMetric(attributes="sex")},
            additional_metrics={"gap": FairnessSummaryMetric("eod_max_min", attributes="sex", min_group_size=1)},
        )
        with self.assertLogs("monai_fair.handlers.fairness_selection", level="WARNING"):
            evaluator.run()
        self.assertEqual(evaluator.state.metrics["phi"], -math.inf)
        self.assertEqual(evaluator.state.metrics["gap"], math.inf)

    def test_bad_arguments(self):
        with self.assertRaises(ValueError):
            FairnessObjectiveMetric(metric="xyz")
        with self.assertRaises(ValueError):
            FairnessSummaryMetric("worst_group_f1")
        with self.assertRaises(ValueError):
            FairnessSummaryMetric("eod")
        self.assertTrue(FairnessSummaryMetric("worst_group_ba").higher_is_better)
        gap = FairnessSummaryMetric("equalized_odds")
        self.assertFalse(gap.higher_is_better)
        self.assertEqual(gap.undefined_value, math.inf)

    def test_multilabel_label_index(self):
        samples = make_samples(100, seed=8, labels=2)
        s, y, g = (x.numpy() for x in expected_scores(samples))
        evaluator = make_evaluator(
            samples,
            additional_metrics={
                "worst_b": FairnessSummaryMetric("worst_group_auc", attributes="sex", label_index=1, min_group_size=5),
                "worst_mean": FairnessSummaryMetric("worst_group_auc", attributes="sex", min_group_size=5),
            },
        )
        evaluator.run()
        per_label = [min(roc_auc_score(y[g == c, j], s[g == c, j]) for c in (0, 1)) for j in (0, 1)]
        self.assertAlmostEqual(evaluator.state.metrics["worst_b"], per_label[1], 9)
        self.assertAlmostEqual(evaluator.state.metrics["worst_mean"], float(np.mean(per_label)), 9)


class TestModelSelection(unittest.TestCase):
    def _run_epochs(self, key_metric, scales, tmp, **saver_kwargs):
        """Evaluate the same data with different network scales (= different models), one epoch each."""
        samples = make_samples(80, seed=9)
        network = MeanLogit()
        evaluator = make_evaluator(
            samples, key_val_metric=key_metric, network=network, metric_cmp_fn=saver_kwargs.pop("metric_cmp_fn", None)
        )
        CheckpointSaver(
            save_dir=tmp,
            save_dict={"model": network},
            save_key_metric=True,
            key_metric_filename="model.pt",
            **saver_kwargs,
        ).attach(evaluator)
        values = []
        for epoch, scale in enumerate(scales, start=1):
            with torch.no_grad():
                network.scale.fill_(scale)
            evaluator.run(global_epoch=epoch)
            values.append(evaluator.state.metrics[evaluator.state.key_metric_name])
        return values, evaluator, torch.load(os.path.join(tmp, "model.pt"), weights_only=True)

    def test_checkpoint_keeps_best_objective(self):
        # a negative scale flips the scores: BA-optimal threshold still finds a bad model -> lower objective
        with tempfile.TemporaryDirectory() as tmp:
            values, evaluator, state = self._run_epochs(
                {"phi": FairnessObjectiveMetric(attributes="sex", epsilon=1.0)}, [0.2, 1.0, -1.0], tmp
            )
            best = int(np.argmax(values))
            self.assertNotEqual(best, 2)  # the flipped model is not selected
            self.assertEqual(evaluator.state.best_metric, values[best])
            self.assertEqual(evaluator.state.best_metric_epoch, best + 1)
            self.assertAlmostEqual(float(state["scale"]), [0.2, 1.0, -1.0][best])

    def test_checkpoint_keeps_smallest_gap(self):
        with tempfile.TemporaryDirectory() as tmp:
            values, evaluator, state = self._run_epochs(
                {
                    "gap": FairnessSummaryMetric(
                        attributes="sex", summary="spd_max_min", threshold=0.6, min_group_size=5
                    )
                },
                [3.0, 0.05, 1.0],
                tmp,
                key_metric_negative_sign=True,
                metric_cmp_fn=lower_is_better,
            )
            best = int(np.argmin(values))
            self.assertLess(values[best], max(values))  # the epochs really differ
            self.assertEqual(evaluator.state.best_metric, values[best])
            self.assertAlmostEqual(float(state["scale"]), [3.0, 0.05, 1.0][best])
            self.assertTrue(lower_is_better(0.1, 0.2))
            self.assertFalse(lower_is_better(0.2, 0.1))


if __name__ == "__main__":
    unittest.main()
