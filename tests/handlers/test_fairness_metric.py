# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""GroupFairnessMetric inside real SupervisedEvaluator runs (StatsHandler, MetricsSaver, TensorBoardStatsHandler)."""

from __future__ import annotations

import logging
import math
import sys
import tempfile
import unittest
from pathlib import Path

import torch
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference, true_positive_rate
from monai.handlers import ROCAUC, MetricsSaver, StatsHandler, TensorBoardStatsHandler, from_engine
from monai.transforms import Activationsd, Compose, CopyItemsd
from sklearn.metrics import roc_auc_score
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from monai_fair.handlers import FairnessSummaryMetric, GroupFairnessMetric
from monai_fair.metrics import FairnessSpec, compute_fairness_table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluator_fixture import expected_scores, make_evaluator, make_samples  # noqa: E402

NAMES = {"0": "F", "1": "M"}


def _scalars(log_dir: str) -> dict[str, float]:
    acc = EventAccumulator(log_dir)
    acc.Reload()
    return {tag: acc.Scalars(tag)[-1].value for tag in acc.Tags()["scalars"]}


class TestGroupFairnessMetricInEvaluator(unittest.TestCase):
    def test_flat_keys_reach_stats_metricssaver_tensorboard(self):
        samples = make_samples(96)
        s, y, g = expected_scores(samples)
        with tempfile.TemporaryDirectory() as tmp:
            evaluator = make_evaluator(
                samples,
                key_val_metric={"val_auc": ROCAUC(output_transform=from_engine(["pred", "label"]))},
                additional_metrics={
                    "sex_fairness": GroupFairnessMetric(
                        attributes="sex", group_names=NAMES, reference=1, min_group_size=5, metrics="all"
                    )
                },
                val_handlers=[
                    StatsHandler(iteration_log=False, name="fair_stats"),
                    MetricsSaver(save_dir=tmp, metrics="*"),
                    TensorBoardStatsHandler(log_dir=tmp, iteration_log=False),
                ],
            )
            with self.assertLogs("fair_stats", level="INFO") as logs:
                evaluator.run()
            metrics = evaluator.state.metrics
            # oracles: sklearn AUC, fairlearn rates and gaps on the same scores
            hard = (s.numpy() > 0.5).astype(float)
            for code, name in ((0, "F"), (1, "M")):
                m = (g == code).numpy()
                self.assertAlmostEqual(metrics[f"sex/auc_{name}"], roc_auc_score(y.numpy()[m], s.numpy()[m]), 6)
                self.assertAlmostEqual(metrics[f"sex/tpr_{name}"], true_positive_rate(y.numpy()[m], hard[m]), 6)
            self.assertAlmostEqual(
                metrics["sex/spd_max_min"],
                demographic_parity_difference(y.numpy(), hard, sensitive_features=g.numpy()),
                6,
            )
            self.assertAlmostEqual(
                metrics["sex/equalized_odds"],
                equalized_odds_difference(y.numpy(), hard, sensitive_features=g.numpy()),
                6,
            )
            self.assertAlmostEqual(metrics["sex/eod_F"], metrics["sex/tpr_F"] - metrics["sex/tpr_M"], 12)
            self.assertEqual(metrics["sex/eod_M"], 0.0)
            self.assertGreater(metrics["sex/auc_gap"], 0.05)  # the planted gap is visible
            # StatsHandler printed the flat keys
            self.assertIn("sex/eod_F", "\n".join(logs.output))
            # MetricsSaver wrote them
            rows = dict(line.split(",", 1) for line in Path(tmp, "metrics.csv").read_text().splitlines())
            self.assertAlmostEqual(float(rows["sex/auc_gap"]), metrics["sex/auc_gap"], 12)
            # TensorBoardStatsHandler logged them as scalars
            tb = _scalars(tmp)
            self.assertAlmostEqual(tb["sex/tpr_F"], metrics["sex/tpr_F"], 5)
            self.assertIn("val_auc", tb)
            # details for plotting: full table + gathered buffers, not in metric_details (MetricsSaver "*")
            details = evaluator.state.fairness_details["sex_fairness"]
            torch.testing.assert_close(details.y_pred.float(), s.float())
            self.assertEqual(details.table.group_names, ["F", "M"])
            self.assertNotIn("sex_fairness", getattr(evaluator.state, "metric_details", {}) or {})

    def test_collated_batches_and_metric_filter(self):
        samples = make_samples(64, seed=1)
        s, y, g = expected_scores(samples)
        metric = GroupFairnessMetric(
            attributes="sex", group_names=NAMES, metrics=["tpr", "auc", "auc_gap"], min_group_size=5, prefix=""
        )
        # collated dict batches and batch-tensor outputs (B, 1)
        evaluator = make_evaluator(
            samples,
            additional_metrics={"fair": metric},
            decollate=False,
            postprocessing=lambda d: {**d, "pred": torch.sigmoid(d["pred"])},
        )
        evaluator.run()
        values = evaluator.state.metrics["fair"]
        self.assertEqual(sorted(values), ["auc_F", "auc_M", "auc_gap", "tpr_F", "tpr_M"])
        ref = compute_fairness_table(s, y, g, group_names={0: "F", 1: "M"}, min_group_size=5).as_flat_dict()
        for k, v in values.items():
            self.assertAlmostEqual(v, ref[k], 6)

    def test_groups_from_output_transform(self):
        samples = make_samples(64, seed=2)
        s, y, g = expected_scores(samples)
        post = Compose([Activationsd(keys="pred", sigmoid=True), CopyItemsd(keys="sex", names="group")])
        metric = GroupFairnessMetric(
            output_transform=from_engine(["pred", "label", "group"]), min_group_size=5, metrics="all"
        )
        evaluator = make_evaluator(samples, additional_metrics={"fair": metric}, postprocessing=post)
        evaluator.run()
        ref = compute_fairness_table(s, y, g, min_group_size=5).as_flat_dict(prefix="sex/")
        for k, v in ref.items():
            self.assertTrue(math.isclose(evaluator.state.metrics[k], v, rel_tol=1e-6, abs_tol=1e-9), k)

    def test_multilabel_softmax_and_bootstrap(self):
        samples = make_samples(80, seed=3, labels=2)
        s, y, g = expected_scores(samples)
        metric = GroupFairnessMetric(
            attributes="sex",
            group_names=NAMES,
            label_names=["a", "b"],
            n_bootstrap=40,
            seed=0,
            min_group_size=5,
            metrics="all",
        )
        evaluator = make_evaluator(samples, additional_metrics={"fair": metric})
        evaluator.run()
        metrics = evaluator.state.metrics
        m = (g == 0).numpy()
        self.assertAlmostEqual(metrics["sex/auc_b_F"], roc_auc_score(y.numpy()[m, 1], s.numpy()[m, 1]), 6)
        for key in ("sex/auc_b_F", "sex/eod_a_F", "sex/auc_gap_a"):
            self.assertLessEqual(metrics[f"{key}_ci_low"], metrics[key] + 1e-12)
            self.assertGreaterEqual(metrics[f"{key}_ci_high"], metrics[key] - 1e-12)
        self.assertNotIn("sex/n_F_ci_low", metrics)  # counts have no interval

    def test_two_class_softmax_with_class_index(self):
        samples = make_samples(64, seed=4)
        s, y, g = expected_scores(samples)
        two_class = torch.nn.Sequential()
        two_class.forward = lambda x: torch.cat([-x.mean(dim=(2, 3)), x.mean(dim=(2, 3))], dim=1)
        metric = GroupFairnessMetric(attributes="sex", output_index=1, min_group_size=5, prefix="", metrics="all")
        evaluator = make_evaluator(
            samples,
            additional_metrics={"fair": metric},
            network=two_class,
            key_val_metric={"worst": FairnessSummaryMetric("worst_group_auc", output_index=1, min_group_size=5)},
            postprocessing=Activationsd(keys="pred", softmax=True),
        )
        evaluator.run()
        # softmax([-z, z])[1] = sigmoid(2z)
        s2 = torch.sigmoid(2 * torch.logit(s.double()))
        ref = compute_fairness_table(s2, y, g, min_group_size=5).as_flat_dict()
        self.assertAlmostEqual(evaluator.state.metrics["worst"], ref["worst_group_auc"], 6)
        for k in ("tpr_0", "auc_1", "eod_max_min"):
            self.assertAlmostEqual(evaluator.state.metrics[k], ref[k], 6)

    def test_errors(self):
        samples = make_samples(32)
        metric = GroupFairnessMetric(attributes=["sex", "age_group"], min_group_size=1)
        evaluator = make_evaluator(samples, additional_metrics={"fair": metric})
        with self.assertRaisesRegex(KeyError, "GroupFairnessMetric 'fair': the batch has no key 'age_group'"):
            evaluator.run()
        bad = GroupFairnessMetric(attributes="sex", metrics=["tpr_rate"], min_group_size=1)
        with self.assertRaisesRegex(ValueError, "unknown fairness metric"):
            make_evaluator(samples, additional_metrics={"fair": bad}).run()

    def test_spec_and_field_overrides(self):
        spec = FairnessSpec(attributes="sex", group_names={0: "F", 1: "M"}, reference="M", min_group_size=5)
        samples = make_samples(64, seed=6)
        s, y, g = expected_scores(samples)
        a = GroupFairnessMetric(spec, metrics=["tpr", "eod"])
        b = GroupFairnessMetric(spec, reference="F", metrics=["eod"], prefix="ref_f/")
        evaluator = make_evaluator(samples, additional_metrics={"a": a, "b": b})
        evaluator.run()
        m = evaluator.state.metrics
        ref = compute_fairness_table(s, y, g, reference=1, group_names={0: "F", 1: "M"}, min_group_size=5)
        self.assertAlmostEqual(m["sex/eod_F"], float(ref.gaps["eod"][0]), 9)
        self.assertAlmostEqual(m["ref_f/eod_M"], -float(ref.gaps["eod"][0]), 9)
        self.assertEqual(a.spec.reference, 1)
        self.assertEqual(b.spec.reference, 0)

    def test_select_longest_stem(self):
        table = compute_fairness_table(
            torch.rand(40), (torch.arange(40) % 2).float(), torch.arange(40) % 2, min_group_size=1
        )
        picked = table.as_flat_dict(prefix="p/", metrics=["auc"])
        self.assertEqual(sorted(picked), ["p/auc_0", "p/auc_1"])  # not auc_gap / auc_diff_*


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    unittest.main()
