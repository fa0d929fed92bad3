# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of multi-seed aggregation against numpy / pandas / scipy oracles."""

from __future__ import annotations

import math
import unittest

import numpy as np
import pandas as pd
from scipy import stats

from monai_fair.report import StudyResults, aggregate_results, bootstrap_mean_interval, summary_display_table

METHODS = ["default", "random", "pruning"]
SEEDS = [42, 73, 666, 777, 1009]


def _random_results(rng: np.random.Generator) -> StudyResults:
    r = StudyResults(metric="eod", epsilon=0.03, methods=METHODS)
    for seed in SEEDS:
        for m in METHODS:
            for split in ("val", "test"):
                eod = float(rng.normal(0.0, 0.05))
                r.add(
                    seed,
                    m,
                    split,
                    balanced_accuracy=float(rng.uniform(0.6, 0.8)),
                    eod=eod,
                    spd=float(rng.normal(0, 0.05)),
                    threshold=float(rng.uniform(0.3, 0.6)),
                    eod_ci_low=eod - float(rng.uniform(0.01, 0.03)),
                    eod_ci_high=eod + float(rng.uniform(0.01, 0.03)),
                )
    return r


class TestAggregate(unittest.TestCase):
    def setUp(self):
        self.results = _random_results(np.random.default_rng(0))
        self.df = self.results.to_dataframe()

    def test_matches_pandas_groupby(self):
        summary = aggregate_results(self.results)
        # independent oracle: pandas groupby (its std is ddof=1 too)
        g = self.df.groupby(["method", "split"])
        for col in ("balanced_accuracy", "eod", "spd", "objective", "threshold"):
            for (m, s), mean in g[col].mean().items():
                row = summary[(summary["method"] == m) & (summary["split"] == s)].iloc[0]
                self.assertAlmostEqual(row[f"{col}_mean"], mean, places=12)
                self.assertAlmostEqual(row[f"{col}_std"], g[col].std().loc[(m, s)], places=12)
                self.assertAlmostEqual(row[f"{col}_sem"], g[col].sem().loc[(m, s)], places=12)
                self.assertEqual(row[f"{col}_n"], len(SEEDS))
        self.assertTrue((summary["n_seeds"] == len(SEEDS)).all())

    def test_hand_computed_cell(self):
        summary = aggregate_results(self.results)
        v = self.df[(self.df["method"] == "random") & (self.df["split"] == "test")]["balanced_accuracy"].to_numpy()
        mean = sum(v) / len(v)
        std = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1))
        row = summary[(summary["method"] == "random") & (summary["split"] == "test")].iloc[0]
        self.assertAlmostEqual(row["balanced_accuracy_mean"], mean, places=12)
        self.assertAlmostEqual(row["balanced_accuracy_std"], std, places=12)

    def test_abs_bias_is_mean_magnitude(self):
        summary = aggregate_results(self.results)
        sub = self.df[(self.df["method"] == "default") & (self.df["split"] == "val")]
        row = summary[(summary["method"] == "default") & (summary["split"] == "val")].iloc[0]
        self.assertAlmostEqual(row["abs_bias_mean"], np.abs(sub["bias"]).mean(), places=12)
        self.assertAlmostEqual(row["abs_bias_std"], np.abs(sub["bias"]).std(ddof=1), places=12)

    def test_ci_bounds_mean_and_fair_count(self):
        summary = aggregate_results(self.results)
        sub = self.df[(self.df["method"] == "pruning") & (self.df["split"] == "test")]
        row = summary[(summary["method"] == "pruning") & (summary["split"] == "test")].iloc[0]
        self.assertAlmostEqual(row["eod_ci_low_mean"], sub["eod_ci_low"].mean(), places=12)
        self.assertAlmostEqual(row["eod_ci_high_mean"], sub["eod_ci_high"].mean(), places=12)
        self.assertEqual(row["fair_count"], int((sub["bias"].abs() < 0.03).sum()))
        self.assertEqual(row["fair_n"], len(SEEDS))
        self.assertAlmostEqual(row["fair_rate"], (sub["bias"].abs() < 0.03).mean())
        self.assertNotIn("spd_ci_low_mean", summary.columns)  # no interval given for SPD

    def test_order(self):
        summary = aggregate_results(self.results, methods=["pruning", "ghost", "default"])
        # listed methods first (even one without records), unlisted ones after: nothing dropped
        self.assertEqual(list(dict.fromkeys(summary["method"])), ["pruning", "ghost", "default", "random"])
        self.assertEqual(list(summary["split"][:2]), ["val", "test"])
        ghost = summary[summary["method"] == "ghost"]
        self.assertTrue((ghost["n_seeds"] == 0).all())
        self.assertTrue(ghost["balanced_accuracy_mean"].isna().all())
        self.assertTrue((ghost["balanced_accuracy_n"] == 0).all())

    def test_nan_seed_is_counted_not_hidden(self):
        r = StudyResults(metric="eod", epsilon=0.03)
        for seed, eod in zip((1, 2, 3), (0.01, float("nan"), 0.05)):
            r.add(seed, "m", "test", balanced_accuracy=0.7, eod=eod)
        row = aggregate_results(r).iloc[0]
        self.assertEqual(row["n_seeds"], 3)
        self.assertEqual(row["eod_n"], 2)
        self.assertAlmostEqual(row["eod_mean"], 0.03)
        self.assertAlmostEqual(row["eod_std"], np.std([0.01, 0.05], ddof=1))
        self.assertEqual(row["objective_n"], 2)  # NaN bias -> NaN objective, excluded and counted
        self.assertEqual(row["fair_count"], 1)
        self.assertEqual(row["fair_n"], 2)

    def test_all_nan_and_single_seed(self):
        r = StudyResults(metric="eod")
        r.add(1, "m", "test", balanced_accuracy=0.7, eod=float("nan"))
        row = aggregate_results(r).iloc[0]
        self.assertTrue(math.isnan(row["eod_mean"]))
        self.assertEqual(row["eod_n"], 0)
        self.assertEqual(row["balanced_accuracy_mean"], 0.7)
        self.assertTrue(math.isnan(row["balanced_accuracy_std"]))  # ddof=1 with one seed: undefined, not 0
        self.assertNotIn("fair_count", aggregate_results(r).columns)  # no epsilon known

    def test_dataframe_input_and_errors(self):
        summary = aggregate_results(self.df, metrics=["balanced_accuracy"], epsilon=0.03)
        self.assertEqual(list(dict.fromkeys(summary["method"])), METHODS)
        self.assertIn("fair_count", summary.columns)
        self.assertNotIn("eod_mean", summary.columns)
        with self.assertRaisesRegex(ValueError, "unknown metric"):
            aggregate_results(self.results, metrics=["auc"])
        with self.assertRaisesRegex(ValueError, "key columns"):
            aggregate_results(self.df.drop(columns=["split"]))

    def test_seed_bootstrap_columns(self):
        summary = aggregate_results(self.results, seed_bootstrap=500)
        row = summary.iloc[0]
        self.assertLessEqual(row["balanced_accuracy_boot_low"], row["balanced_accuracy_mean"])
        self.assertGreaterEqual(row["balanced_accuracy_boot_high"], row["balanced_accuracy_mean"])
        again = aggregate_results(self.results, seed_bootstrap=500)
        pd.testing.assert_frame_equal(summary, again)  # deterministic


class TestChanceIsNeverFair(unittest.TestCase):
    def test_chance_level_seeds_are_not_counted_as_fair(self):
        # three seeds at |EOD| 0 < epsilon: one model is no better than chance (a constant predictor)
        results = StudyResults(metric="eod", epsilon=0.03)
        for seed, chance in ((0, 1.0), (1, 0.0), (2, 1.0)):
            results.add(
                seed, "pruning", "test", balanced_accuracy=0.5 + 0.2 * chance, bias=0.0, better_than_chance=chance
            )
        row = aggregate_results(results, epsilon=0.03).iloc[0]
        self.assertEqual((row["fair_count"], row["fair_n"], row["chance_count"]), (2, 3, 1))
        table = summary_display_table(aggregate_results(results, epsilon=0.03), "test", metric="eod", epsilon=0.03)
        self.assertEqual(table["|EOD| < 0.03"].iloc[0], "2/3")
        self.assertEqual(table["no better than chance"].iloc[0], "1/3")

    def test_without_the_flag_counts_as_before(self):
        results = StudyResults(metric="eod", epsilon=0.03)
        for seed, bias in enumerate((0.01, 0.2, float("nan"))):
            results.add(seed, "standard", "test", balanced_accuracy=0.8, bias=bias)
        row = aggregate_results(results, epsilon=0.03).iloc[0]
        self.assertEqual((row["fair_count"], row["fair_n"]), (1, 2))
        self.assertNotIn("chance_count", row.index)


class TestBootstrapMeanInterval(unittest.TestCase):
    def test_against_scipy_percentile_bootstrap(self):
        v = np.random.default_rng(1).normal(0.7, 0.05, size=20)
        low, high = bootstrap_mean_interval(v, n_bootstrap=20000, ci_level=0.9, seed=0)
        ref = stats.bootstrap(
            (v,),
            np.mean,
            n_resamples=20000,
            confidence_level=0.9,
            method="percentile",
            random_state=np.random.default_rng(5),
        ).confidence_interval
        tol = 0.05 * v.std(ddof=1)  # Monte-Carlo error of both estimates
        self.assertAlmostEqual(low, ref.low, delta=tol)
        self.assertAlmostEqual(high, ref.high, delta=tol)

    def test_degenerate_and_errors(self):
        self.assertEqual(bootstrap_mean_interval(np.array([0.5, 0.5, 0.5])), (0.5, 0.5))
        low, high = bootstrap_mean_interval(np.array([0.5, np.nan]))
        self.assertTrue(math.isnan(low) and math.isnan(high))
        with self.assertRaises(ValueError):
            bootstrap_mean_interval(np.ones(3), ci_level=1.0)
        with self.assertRaises(ValueError):
            bootstrap_mean_interval(np.ones(3), n_bootstrap=0)


if __name__ == "__main__":
    unittest.main()
