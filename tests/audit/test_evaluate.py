# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""monai_fair.audit: intersectional encoding, the unknown-code policy and the pooled reference-vs-rest figures."""

from __future__ import annotations

import math
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, selection_rate, true_positive_rate

from monai_fair.audit import AuditInputError, encode_group_columns, render_report, run_audit, write_outputs


def frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n)
    age = rng.choice(["18-59", "60-79"], n)
    y = (rng.random(n) < 0.4).astype(int)
    logit = np.where(sex == "F", 0.5, 1.8) * (2 * y - 1) + rng.normal(size=n)
    df = pd.DataFrame({"prob": 1 / (1 + np.exp(-logit)), "y": y, "sex": sex, "age_group": age})
    df.loc[:5, "sex"] = np.nan  # six unknown rows
    df.loc[6:8, "age_group"] = "80+"  # a tiny intersection
    return df


class TestAuditLibrary(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.df = frame()
        self.csv = Path(self.tmp.name) / "p.csv"
        self.df.to_csv(self.csv, index=False)

    def tearDown(self):
        self.tmp.cleanup()

    def test_intersectional_codes_and_names(self):
        spec, g, names = encode_group_columns(self.df, ["sex", "age_group"], reference="M × 18-59")
        self.assertEqual(spec.attributes, ("sex", "age_group"))
        self.assertEqual(names[spec.reference], "M × 18-59")
        self.assertEqual(int((g < 0).sum()), 6)
        self.assertIn("F × 60-79", names.values())
        with self.assertRaisesRegex(AuditInputError, "not a group name"):
            encode_group_columns(self.df, ["sex", "age_group"], reference="X × 18-59")
        with self.assertRaisesRegex(AuditInputError, "single --group"):
            encode_group_columns(self.df, ["sex", "age_group"], group_names="F,M")

    def test_per_group_against_metricframe(self):
        result = run_audit(
            self.csv, score=["prob"], label=["y"], group=["sex", "age_group"], reference="M × 18-59", min_group_size=5
        )
        known = self.df.dropna(subset=["sex"])
        hard = (known["prob"].to_numpy() > 0.5).astype(int)
        mf = MetricFrame(
            metrics={"tpr": true_positive_rate, "selection_rate": selection_rate},
            y_true=known["y"].to_numpy(),
            y_pred=hard,
            sensitive_features=known[["sex", "age_group"]],
        )
        table = result.table
        for (sx, ag), row in mf.by_group.iterrows():
            if f"{sx} × {ag}" not in table.group_names:  # fairlearn lists every combination, empty ones too
                self.assertEqual(int(((known.sex == sx) & (known.age_group == ag)).sum()), 0)
                continue
            gi = table.group_names.index(f"{sx} × {ag}")
            if ag == "80+":
                self.assertTrue(math.isnan(float(table.per_group["tpr"][gi])))  # 3 < min_group_size
                continue
            self.assertAlmostEqual(float(table.per_group["tpr"][gi]), row["tpr"], 12)
            self.assertAlmostEqual(float(table.per_group["selection_rate"][gi]), row["selection_rate"], 12)
        self.assertEqual(table.n_unknown, 6)
        self.assertNotIn("unknown", table.group_names)

    def test_pooled_reference_vs_rest_by_hand(self):
        for unknown in ("exclude", "group"):
            result = run_audit(
                self.csv, score=["prob"], label=["y"], group="sex", reference="M", unknown=unknown, n_bootstrap=200
            )
            df = self.df
            hard = df["prob"].to_numpy() > 0.5
            y = df["y"].to_numpy() == 1
            ref = (df["sex"] == "M").to_numpy()
            rest = (df["sex"] == "F").to_numpy() | (df["sex"].isna().to_numpy() if unknown == "group" else False)
            tpr = lambda m: hard[m & y].mean()  # noqa: E731
            fpr = lambda m: hard[m & ~y].mean()  # noqa: E731
            pooled = result.pooled[None]
            self.assertAlmostEqual(pooled["spd"], hard[rest].mean() - hard[ref].mean(), 12)
            self.assertAlmostEqual(pooled["eod"], tpr(rest) - tpr(ref), 12)
            self.assertAlmostEqual(pooled["aod"], 0.5 * ((fpr(rest) - fpr(ref)) + (tpr(rest) - tpr(ref))), 12)
            ba = 0.5 * (hard[y].mean() + (1 - hard[~y].mean()))  # every sample, unknown ones included
            self.assertAlmostEqual(pooled["balanced_accuracy"], ba, 12)
            self.assertLess(pooled["eod_ci_low"], pooled["eod"])
            self.assertGreater(pooled["eod_ci_high"], pooled["eod"])

    def test_report_and_outputs(self):
        result = run_audit(self.csv, score=["prob"], label=["y"], group=["sex", "age_group"], min_group_size=5)
        report = render_report(result)
        self.assertIn("groups (sex × age_group)", report)
        self.assertIn("unknown group codes: 6 sample(s), policy 'exclude'", report)
        self.assertIn("vs rest", report)
        out = Path(self.tmp.name) / "out"
        written = write_outputs(result, report, out)
        self.assertIn(str(out / "pooled.csv"), written)
        pooled = pd.read_csv(out / "pooled.csv")
        self.assertEqual(
            list(pooled.metric), ["balanced_accuracy", "spd", "eod", "aod", "objective", "better_than_chance"]
        )
        self.assertEqual(float(pooled.value.iloc[-1]), 1.0)
        self.assertNotIn("NOT better than chance", report)

    def test_model_no_better_than_chance_is_reported(self):
        df = self.df.assign(prob=0.5 + 1e-4 * np.random.default_rng(0).random(len(self.df)))  # a narrow band
        df.to_csv(self.csv, index=False)
        result = run_audit(
            self.csv, score=["prob"], label=["y"], group=["sex"], threshold="ba-optimal", n_bootstrap=50, seed=0
        )
        self.assertEqual(result.pooled[None]["better_than_chance"], 0.0)
        self.assertIn("near-constant scores", result.pooled[None]["chance_reason"])
        self.assertIn("NOT better than chance (near-constant scores", render_report(result))


if __name__ == "__main__":
    unittest.main()
