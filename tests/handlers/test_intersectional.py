# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Intersectional groups (sex × age group) through the handlers, against fairlearn's MetricFrame."""

from __future__ import annotations

import math
import sys
import unittest
from pathlib import Path

import pandas as pd
import torch
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from sklearn.metrics import balanced_accuracy_score

from monai_fair.handlers import FairnessObjectiveMetric, FairnessSummaryMetric, GroupFairnessMetric
from monai_fair.metrics import FairnessSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluator_fixture import expected_scores, make_evaluator, make_samples  # noqa: E402

SEX = {0: "F", 1: "M"}
AGE = {0: "18-59", 1: "60-79", 2: "80+"}


def samples_with_age(n: int = 240, seed: int = 0) -> list[dict]:
    samples = make_samples(n, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    age = torch.randint(0, 2, (n,), generator=gen)
    for i, d in enumerate(samples):
        d["age_group"] = int(age[i])
    for d in samples[:3]:  # a tiny group: M × 80+ (or F × 80+)
        d["age_group"] = 2
    return samples


class TestIntersectionalAgainstFairlearn(unittest.TestCase):
    def test_per_group_rates_and_differences(self):
        samples = samples_with_age()
        s, y, _ = (x.numpy() for x in expected_scores(samples))
        df = pd.DataFrame(
            {"sex": [SEX[d["sex"]] for d in samples], "age_group": [AGE[d["age_group"]] for d in samples]}
        )
        spec = FairnessSpec(
            attributes=["sex", "age_group"],
            group_names={"sex": SEX, "age_group": AGE},
            reference="M × 18-59",
            min_group_size=5,
        )
        metric = GroupFairnessMetric(spec, metrics="all")
        evaluator = make_evaluator(samples, additional_metrics={"fair": metric})
        evaluator.run()
        m = evaluator.state.metrics
        table = evaluator.state.fairness_details["fair"].table
        hard = (s > 0.5).astype(int)
        mf = MetricFrame(
            metrics={
                "tpr": true_positive_rate,
                "fpr": false_positive_rate,
                "selection_rate": selection_rate,
                "balanced_accuracy": balanced_accuracy_score,
            },
            y_true=y.astype(int),
            y_pred=hard,
            sensitive_features=df[["sex", "age_group"]],
        )
        by_group = mf.by_group
        big = [(sx, ag) for (sx, ag), n in df.value_counts().items() if n >= 5]
        self.assertEqual(len(big), 4)
        for sx, ag in big:
            name = f"{sx} × {ag}"
            for k in ("tpr", "fpr", "selection_rate", "balanced_accuracy"):
                self.assertAlmostEqual(m[f"sex+age_group/{k}_{name}"], by_group.loc[(sx, ag), k], 9, f"{k} {name}")
        # the tiny group is flagged and NaN, so the max–min gaps are over the four estimable groups
        tiny = [n for n in table.group_names if "80+" in n]
        self.assertTrue(tiny and all(math.isnan(m[f"sex+age_group/tpr_{n}"]) for n in tiny))
        code = table.group_codes[table.group_names.index(tiny[0])]
        self.assertIn("min_group_size", table.flags[code])
        keep = df["age_group"] != "80+"
        mf_big = MetricFrame(
            metrics={"tpr": true_positive_rate, "fpr": false_positive_rate, "selection_rate": selection_rate},
            y_true=y[keep].astype(int),
            y_pred=hard[keep],
            sensitive_features=df.loc[keep, ["sex", "age_group"]],
        )
        diff = mf_big.difference()
        self.assertAlmostEqual(m["sex+age_group/eod_max_min"], diff["tpr"], 9)
        self.assertAlmostEqual(m["sex+age_group/fpr_max_min"], diff["fpr"], 9)
        self.assertAlmostEqual(m["sex+age_group/spd_max_min"], diff["selection_rate"], 9)
        # signed gaps are "group − reference" with the reference named by the spec
        ref = by_group.loc[("M", "18-59"), "tpr"]
        self.assertAlmostEqual(m["sex+age_group/eod_F × 60-79"], by_group.loc[("F", "60-79"), "tpr"] - ref, 9)

    def test_selection_metrics_on_intersections(self):
        samples = samples_with_age(seed=3)
        s, y, g = expected_scores(samples)
        codes = torch.tensor([d["sex"] * 1000 + d["age_group"] for d in samples])
        spec = FairnessSpec(attributes=["sex", "age_group"], reference=[1, 0], min_group_size=5, epsilon=0.3)
        evaluator = make_evaluator(
            samples,
            key_val_metric={"phi": FairnessObjectiveMetric(spec)},
            additional_metrics={"worst": FairnessSummaryMetric("worst_group_ba", spec)},
        )
        evaluator.run()
        grid = torch.linspace(0, 1, 101, dtype=torch.float64)
        core = spec.evaluate(s, y, codes, thresholds=grid)
        best = int(torch.argmax(core.balanced_accuracy[0]))
        self.assertAlmostEqual(evaluator.state.metrics["phi/bias"], float(core.bias[0, best]), 12)
        self.assertAlmostEqual(evaluator.state.metrics["phi"], float(core.objective[0, best]), 12)
        hard = (s > 0.5).numpy()
        bas = [
            balanced_accuracy_score(y.numpy()[codes.numpy() == c], hard[codes.numpy() == c])
            for c in torch.unique(codes).tolist()
            if int((codes == c).sum()) >= 5
        ]
        self.assertAlmostEqual(evaluator.state.metrics["worst"], min(bas), 9)


if __name__ == "__main__":
    unittest.main()
