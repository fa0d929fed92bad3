# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the study results record format and :class:`StudyResults`."""

from __future__ import annotations

import json
import math
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from parameterized import parameterized

from monai_fair.debias.base import BinaryEvaluation, Trajectory
from monai_fair.report import RECORD_METRICS, StudyResults


def _reject_nan_literal(token: str) -> float:
    raise AssertionError(f"non-strict JSON literal {token!r} written")


class TestStudyResultsAdd(unittest.TestCase):
    def test_bias_and_objective_filled_from_metric(self):
        r = StudyResults(metric="eod", epsilon=0.03)
        rec = r.add(42, "default", "test", balanced_accuracy=0.7, eod=0.05, spd=-0.01, threshold=0.4)
        self.assertEqual(rec["bias"], 0.05)
        self.assertEqual(rec["objective"], 0.0)  # |0.05| >= 0.03
        rec = r.add(42, "pruning", "test", balanced_accuracy=0.68, eod=-0.02, spd=0.0, threshold=0.5)
        self.assertEqual(rec["bias"], -0.02)
        self.assertAlmostEqual(rec["objective"], 0.68)
        self.assertTrue(math.isnan(rec["aod"]))  # absent optional metric is explicit NaN

    def test_metric_filled_from_bias_of_evaluation(self):
        r = StudyResults(metric="spd", epsilon=0.05)
        ev = BinaryEvaluation(threshold=0.31, balanced_accuracy=0.81, bias=0.02, objective=0.81)
        rec = r.add(7, "reject_option", "val", **ev.as_dict())
        self.assertEqual(rec["spd"], 0.02)
        self.assertTrue(math.isnan(rec["eod"]))
        self.assertEqual(rec["objective"], 0.81)  # a given objective is kept, not recomputed

    def test_no_epsilon_leaves_objective_nan(self):
        r = StudyResults(metric="eod")
        rec = r.add(1, "default", "test", balanced_accuracy=0.7, eod=0.0)
        self.assertTrue(math.isnan(rec["objective"]))

    def test_tensor_and_numpy_scalars(self):
        r = StudyResults()
        rec = r.add(np.int64(3), "m", "test", balanced_accuracy=torch.tensor(0.5), eod=np.float32(0.25), spd=None)
        self.assertEqual(rec["seed"], 3)
        self.assertEqual(rec["balanced_accuracy"], 0.5)
        self.assertEqual(rec["eod"], 0.25)
        self.assertTrue(math.isnan(rec["spd"]))

    @parameterized.expand(
        [
            ("bad_split", dict(split="train"), ValueError),
            ("string_value", dict(eod="0.1"), TypeError),
            ("bool_value", dict(eod=True), TypeError),
        ]
    )
    def test_bad_input(self, _, kwargs, error):
        r = StudyResults()
        args = {"seed": 1, "method": "m", "split": "test", "eod": 0.1, **kwargs}
        with self.assertRaises(error):
            r.add(args.pop("seed"), args.pop("method"), args.pop("split"), **args)

    def test_duplicate_record_rejected(self):
        r = StudyResults()
        r.add(1, "m", "test", eod=0.1)
        with self.assertRaisesRegex(ValueError, "already exists"):
            r.add(1, "m", "test", eod=0.2)
        r.add(1, "m", "val", eod=0.2)  # another split is fine
        self.assertEqual(len(r), 2)

    def test_bad_metric(self):
        with self.assertRaises(ValueError):
            StudyResults(metric="auc")

    def test_trajectory_validation(self):
        r = StudyResults()
        with self.assertRaisesRegex(ValueError, "has 1 values"):
            r.add_trajectory(1, "pruning", {"step": [0, 1], "bias": [0.1]})
        with self.assertRaisesRegex(ValueError, "step"):
            r.add_trajectory(1, "pruning", {"bias": [0.1]})
        r.add_trajectory(1, "pruning", {"step": [0], "bias": [0.1]})
        with self.assertRaisesRegex(ValueError, "already exists"):
            r.add_trajectory(1, "pruning", {"step": [0], "bias": [0.1]})

    def test_method_order_and_dataframe(self):
        r = StudyResults(methods=["default", "pruning"])
        r.add(2, "bias_gda", "test", eod=0.3)
        r.add(2, "pruning", "test", eod=0.2)
        r.add(1, "pruning", "val", eod=0.1)
        r.add(1, "default", "test", eod=0.0, auc=0.9)
        self.assertEqual(r.methods, ["default", "pruning", "bias_gda"])
        df = r.to_dataframe()
        self.assertEqual(list(df.columns[:3]), ["seed", "method", "split"])
        self.assertEqual(list(df.columns[3 : 3 + len(RECORD_METRICS)]), list(RECORD_METRICS))
        self.assertEqual(df.columns[-1], "auc")
        self.assertEqual(
            list(zip(df["method"], df["split"], df["seed"])),
            [("default", "test", 1), ("pruning", "val", 1), ("pruning", "test", 2), ("bias_gda", "test", 2)],
        )
        self.assertTrue(np.isnan(df.loc[df["method"] == "pruning", "auc"]).all())

    def test_empty_dataframe_has_columns(self):
        df = StudyResults().to_dataframe()
        self.assertEqual(len(df), 0)
        self.assertIn("balanced_accuracy", df.columns)


class TestStudyResultsJson(unittest.TestCase):
    def _results(self) -> StudyResults:
        r = StudyResults(metric="eod", epsilon=0.03, methods=["default", "pruning", "never_ran"])
        r.add(
            42,
            "default",
            "val",
            balanced_accuracy=0.7,
            eod=0.06,
            spd=0.02,
            threshold=0.4,
            eod_ci_low=0.03,
            eod_ci_high=0.09,
        )
        r.add(42, "pruning", "test", balanced_accuracy=0.66, eod=float("nan"), spd=0.01, threshold=0.45, n_pruned=3000)
        t = Trajectory()
        t.append(0, BinaryEvaluation(0.4, 0.7, 0.06, 0.0), n_pruned=0)
        t.append(1, BinaryEvaluation(0.4, 0.69, float("nan"), float("nan")), n_pruned=1500)
        r.add_trajectory(42, "pruning", t)
        return r

    def test_round_trip(self):
        r = self._results()
        text = r.to_json()
        doc = json.loads(text, parse_constant=_reject_nan_literal)  # strict JSON: NaN written as null
        self.assertIsNone(doc["records"][1]["eod"])
        self.assertEqual(doc["trajectories"]["42"]["pruning"]["n_pruned"], [0.0, 1500.0])
        back = StudyResults.from_json(text)
        self.assertEqual(back.metric, "eod")
        self.assertEqual(back.epsilon, 0.03)
        self.assertEqual(back.methods, ["default", "pruning", "never_ran"])
        self.assertEqual(back.seeds, [42])
        pd.testing.assert_frame_equal(back.to_dataframe(), r.to_dataframe())
        traj = back.method_trajectories("pruning")[42]
        self.assertEqual(traj["step"], [0.0, 1.0])
        self.assertTrue(math.isnan(traj["bias"][1]))
        self.assertTrue(math.isnan(back.records[1]["objective"]))  # NaN bias stays NaN objective, not recomputed

    def test_round_trip_through_file(self):
        r = self._results()
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "results.json"
            r.to_json(path)
            back = StudyResults.from_json(path)
        pd.testing.assert_frame_equal(back.to_dataframe(), r.to_dataframe())

    def test_wrong_document(self):
        with self.assertRaisesRegex(ValueError, "monai_fair.study_results"):
            StudyResults.from_dict({"records": []})


if __name__ == "__main__":
    unittest.main()
