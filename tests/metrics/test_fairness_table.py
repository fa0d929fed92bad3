# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""compute_fairness_table against fairlearn MetricFrame + scikit-learn, and its contract (flags, keys, frames)."""

from __future__ import annotations

import math
import unittest

import numpy as np
import torch
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from parameterized import parameterized
from sklearn.metrics import balanced_accuracy_score, precision_score, roc_auc_score

from monai_fair.metrics import (
    GAP_KEYS,
    PER_GROUP_KEYS,
    SUMMARY_KEYS,
    FairnessSpec,
    FairnessTable,
    compute_fairness_table,
)


def make_data(n: int, n_groups: int, n_labels: int | None, seed: int, ties: bool = False):
    """Scores whose quality and base rate depend on the group, so gaps are non-trivial."""
    gen = torch.Generator().manual_seed(seed)
    groups = torch.randint(0, n_groups, (n,), generator=gen)
    shape = (n,) if n_labels is None else (n, n_labels)
    g = groups.reshape(-1, *([1] * (len(shape) - 1))).to(torch.float64)
    y = (torch.rand(shape, generator=gen, dtype=torch.float64) < 0.25 + 0.1 * g).to(torch.float64)
    s = torch.sigmoid((2.0 - 0.3 * g) * (2 * y - 1) + torch.randn(shape, generator=gen, dtype=torch.float64))
    if ties:
        s = torch.round(s * 10) / 10
    return s, y, groups


def fairlearn_reference(s: np.ndarray, y: np.ndarray, g: np.ndarray, threshold: float) -> dict:
    """Per-group metrics and summaries of one label from fairlearn + scikit-learn."""
    pred = (s > threshold).astype(int)
    hard = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "fnr": false_negative_rate,
            "ppv": lambda yt, yp: precision_score(yt, yp, zero_division=np.nan),
            "balanced_accuracy": balanced_accuracy_score,
        },
        y_true=y,
        y_pred=pred,
        sensitive_features=g,
    )
    soft = MetricFrame(metrics={"auc": roc_auc_score}, y_true=y, y_pred=s, sensitive_features=g)
    out = {k: hard.by_group[k].to_numpy(dtype=float) for k in hard.by_group.columns}
    out["auc"] = soft.by_group["auc"].to_numpy(dtype=float)
    out["spd_max_min"] = demographic_parity_difference(y, pred, sensitive_features=g)
    out["equalized_odds"] = equalized_odds_difference(y, pred, sensitive_features=g)
    out["eod_max_min"] = equal_opportunity_difference(y, pred, sensitive_features=g)
    out["auc_gap"] = soft.difference()["auc"]
    out["worst_group_auc"] = soft.group_min()["auc"]
    out["worst_group_ba"] = hard.group_min()["balanced_accuracy"]
    return out


class TestAgainstFairlearn(unittest.TestCase):
    @parameterized.expand(
        [
            ("2_groups_binary", 2, None),
            ("4_groups_binary", 4, None),
            ("4_groups_multilabel", 4, 3),
            ("2_groups_multilabel", 2, 2),
        ]
    )
    def test_every_metric(self, _, n_groups, n_labels):
        s, y, g = make_data(2000, n_groups, n_labels, seed=n_groups)
        thr = 0.5 if n_labels is None else torch.tensor([0.4, 0.5, 0.6][:n_labels])
        table = compute_fairness_table(s, y, g, threshold=thr, min_group_size=1)
        labels = [None] if n_labels is None else range(n_labels)
        for li, lab in enumerate(labels):
            col = (lambda t: t) if lab is None else (lambda t, lab=lab: t[..., lab])
            t_l = float(thr) if lab is None else float(thr[lab])
            ref = fairlearn_reference(col(s).numpy(), col(y).numpy(), g.numpy(), t_l)
            for k in ("selection_rate", "tpr", "fpr", "fnr", "ppv", "balanced_accuracy", "auc"):
                np.testing.assert_allclose(col(table.per_group[k]).numpy(), ref[k], rtol=0, atol=1e-12, err_msg=k)
            for k in ("spd_max_min", "equalized_odds", "eod_max_min", "auc_gap", "worst_group_auc", "worst_group_ba"):
                self.assertAlmostEqual(float(col(table.summary[k])), float(ref[k]), places=12, msg=k)
            counts = np.bincount(g.numpy(), minlength=n_groups)
            np.testing.assert_array_equal(col(table.per_group["n"]).numpy(), counts)
            np.testing.assert_array_equal(
                col(table.per_group["positives"]).numpy(), np.bincount(g.numpy(), weights=col(y).numpy())
            )

    def test_signed_gaps_and_summaries_by_hand(self):
        s, y, g = make_data(2000, 3, None, seed=7)
        table = compute_fairness_table(s, y, g, reference=1)
        pg = table.per_group
        for key, metric in (
            ("spd", "selection_rate"),
            ("eod", "tpr"),
            ("fpr_diff", "fpr"),
            ("auc_diff", "auc"),
            ("ba_diff", "balanced_accuracy"),
        ):
            torch.testing.assert_close(table.gaps[key], pg[metric] - pg[metric][1])
        torch.testing.assert_close(table.gaps["aod"], 0.5 * (table.gaps["eod"] + table.gaps["fpr_diff"]))
        self.assertEqual(float(table.gaps["eod"][1]), 0.0)
        mid = 0.5 * (pg["tpr"] + pg["fpr"])
        self.assertAlmostEqual(float(table.summary["aod_max_min"]), float(mid.max() - mid.min()), places=12)
        self.assertAlmostEqual(float(table.summary["fpr_max_min"]), float(pg["fpr"].max() - pg["fpr"].min()), 12)
        self.assertAlmostEqual(float(table.summary["ece_gap"]), float(pg["ece"].max() - pg["ece"].min()), 12)

    def test_ties_in_scores(self):
        s, y, g = make_data(1500, 4, None, seed=3, ties=True)
        table = compute_fairness_table(s, y, g)
        for gi in range(4):
            m = (g == gi).numpy()
            self.assertAlmostEqual(float(table.per_group["auc"][gi]), roc_auc_score(y.numpy()[m], s.numpy()[m]), 12)


class TestContract(unittest.TestCase):
    def test_fields_shapes_and_default_reference(self):
        s, y, g = make_data(600, 3, 4, seed=1)
        g[g == 2] = 5  # non-contiguous codes
        table = compute_fairness_table(s, y, g, label_names=["a", "b", "c", "d"], group_names={"0": "F", 1: "M"})
        self.assertIsInstance(table, FairnessTable)
        self.assertEqual(table.group_codes, [0, 1, 5])
        self.assertEqual(table.group_names, ["F", "M", "5"])
        self.assertEqual(set(table.per_group), set(PER_GROUP_KEYS))
        self.assertEqual(set(table.gaps), set(GAP_KEYS))
        self.assertEqual(set(table.summary), set(SUMMARY_KEYS))
        for v in list(table.per_group.values()) + list(table.gaps.values()):
            self.assertEqual(tuple(v.shape), (3, 4))
        for v in table.summary.values():
            self.assertEqual(tuple(v.shape), (4,))
        counts = torch.bincount(torch.searchsorted(torch.tensor([0, 1, 5]), g))
        self.assertEqual(table.reference, [0, 1, 5][int(torch.argmax(counts))])
        self.assertEqual(table.ci, {})
        self.assertEqual(table.flags, {0: "", 1: "", 5: ""})

    def test_binary_shapes(self):
        s, y, g = make_data(300, 2, None, seed=2)
        table = compute_fairness_table(s, y, g, min_group_size=1)
        self.assertEqual(tuple(table.per_group["tpr"].shape), (2,))
        self.assertEqual(tuple(table.summary["auc_gap"].shape), ())
        self.assertIsNone(table.label_names)

    def test_flat_dict_keys(self):
        s, y, g = make_data(400, 2, None, seed=4)
        table = compute_fairness_table(s, y, g, group_names={0: "F", 1: "M"})
        flat = table.as_flat_dict("fair/")
        self.assertEqual(flat["fair/tpr_F"], float(table.per_group["tpr"][0]))
        self.assertEqual(flat["fair/eod_M"], float(table.gaps["eod"][1]))
        self.assertEqual(flat["fair/auc_gap"], float(table.summary["auc_gap"]))
        self.assertEqual(len(flat), 2 * (len(PER_GROUP_KEYS) + len(GAP_KEYS)) + len(SUMMARY_KEYS) + 1)  # + n_unknown
        self.assertEqual(flat["fair/n_unknown"], 0.0)
        self.assertTrue(all(isinstance(v, float) for v in flat.values()))

        s, y, g = make_data(400, 2, 2, seed=4)
        table = compute_fairness_table(s, y, g, group_names={0: "F", 1: "M"}, label_names=["Edema", "Mass"])
        flat = table.as_flat_dict()
        self.assertEqual(flat["tpr_Mass_F"], float(table.per_group["tpr"][0, 1]))
        self.assertEqual(flat["auc_gap_Edema"], float(table.summary["auc_gap"][0]))
        self.assertEqual(len(flat), 2 * (2 * (len(PER_GROUP_KEYS) + len(GAP_KEYS)) + len(SUMMARY_KEYS)) + 1)

    def test_dataframe(self):
        s, y, g = make_data(500, 2, 2, seed=5)
        table = compute_fairness_table(s, y, g, group_codes=[0, 1, 2], n_bootstrap=20, seed=0, label_names=["a", "b"])
        df = table.to_dataframe()
        self.assertEqual(
            list(df.columns), ["label", "group", "group_name", "metric", "value", "ci_low", "ci_high", "n", "flag"]
        )
        self.assertEqual(
            len(df), 2 * (3 * (len(PER_GROUP_KEYS) + len(GAP_KEYS)) + len(SUMMARY_KEYS) + 1)
        )  # + n_unknown
        row = df[(df.label == "b") & (df.group == 1) & (df.metric == "tpr")].iloc[0]
        self.assertEqual(row.value, float(table.per_group["tpr"][1, 1]))
        self.assertEqual(row.ci_low, float(table.ci["per_group/tpr"][0][1, 1]))
        empty = df[(df.group == 2) & (df.metric == "auc")]
        self.assertTrue(empty.value.isna().all())
        self.assertTrue(all("empty group" in f for f in empty.flag))
        summary = df[(df.metric == "auc_gap") & (df.label == "a")].iloc[0]
        self.assertEqual(summary.group_name, "all")
        self.assertIn("excludes non-estimable groups: 2", summary.flag)
        self.assertEqual(summary.n, 500)


class TestNonEstimableGroups(unittest.TestCase):
    def test_empty_declared_group(self):
        s, y, g = make_data(300, 2, None, seed=6)
        table = compute_fairness_table(s, y, g, group_codes=[0, 1, 2], group_names={2: "O"})
        self.assertEqual(table.group_codes, [0, 1, 2])
        self.assertEqual(float(table.per_group["n"][2]), 0.0)
        for k in ("selection_rate", "tpr", "fpr", "fnr", "ppv", "balanced_accuracy", "auc", "ece"):
            self.assertTrue(math.isnan(float(table.per_group[k][2])), k)
        self.assertTrue(math.isnan(float(table.gaps["eod"][2])))
        self.assertIn("empty group (n=0)", table.flags[2])
        self.assertFalse(math.isnan(float(table.summary["auc_gap"])))  # computed over the estimable groups

    def test_single_class_group(self):
        s = torch.tensor([0.9, 0.2, 0.7, 0.4, 0.6, 0.1, 0.8, 0.3, 0.65, 0.35, 0.75, 0.85])
        y = torch.tensor([1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1])
        g = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])  # group 1 has only positives
        table = compute_fairness_table(s, y, g, min_group_size=1, reference=0)
        pg = table.per_group
        self.assertEqual(pg["negatives"].tolist(), [3.0, 0.0])
        self.assertEqual(float(pg["tpr"][1]), 4 / 6)  # 0.8, 0.65, 0.75, 0.85 > 0.5
        for k in ("fpr", "auc", "balanced_accuracy"):
            self.assertTrue(math.isnan(float(pg[k][1])), k)
        self.assertEqual(float(pg["auc"][0]), 1.0)
        self.assertIn("no negatives", table.flags[1])
        self.assertEqual(table.flags[0], "")
        self.assertTrue(math.isnan(float(table.gaps["fpr_diff"][1])))
        self.assertTrue(math.isnan(float(table.gaps["aod"][1])))
        self.assertAlmostEqual(float(table.gaps["eod"][1]), 4 / 6 - 1.0)
        self.assertTrue(math.isnan(float(table.summary["auc_gap"])))  # only one estimable group
        self.assertEqual(float(table.summary["worst_group_auc"]), 1.0)

    def test_group_below_min_size(self):
        s, y, g = make_data(400, 2, None, seed=8)
        s, y, g = (
            torch.cat([s, torch.tensor([0.9, 0.1, 0.8])]),
            torch.cat([y, torch.tensor([1.0, 0, 0])]),
            torch.cat([g, torch.tensor([7, 7, 7])]),
        )
        table = compute_fairness_table(s, y, g, min_group_size=5)
        self.assertEqual(float(table.per_group["n"][2]), 3.0)
        self.assertEqual(float(table.per_group["positives"][2]), 1.0)
        self.assertTrue(torch.isnan(table.per_group["selection_rate"][2]))
        self.assertEqual(table.flags[7], "n=3 < min_group_size=5: all metrics undefined")
        self.assertEqual(table.flags[0], "")

    def test_reference_flagged_gives_nan_gaps(self):
        s, y, g = make_data(300, 2, None, seed=9)
        s, y, g = (
            torch.cat([s, torch.tensor([0.9, 0.1])]),
            torch.cat([y, torch.tensor([1.0, 0])]),
            torch.cat([g, torch.tensor([3, 3])]),
        )
        table = compute_fairness_table(s, y, g, reference=3)
        for key in GAP_KEYS:
            self.assertTrue(torch.isnan(table.gaps[key]).all(), key)
        df = table.to_dataframe()
        flag = df[(df.metric == "eod") & (df.group == 0)].flag.iloc[0]
        self.assertIn("reference 3:", flag)

    def test_default_reference_on_tied_group_sizes(self):
        # two groups of 20 and one of 10: the tie goes to the smaller code, wherever the samples sit in the data;
        # the unknown group (the largest here) is never the reference
        gen = torch.Generator().manual_seed(4)
        g = torch.tensor([7] * 20 + [2] * 10 + [4] * 20 + [-1] * 30)
        y = (torch.rand(80, generator=gen) < 0.5).double()
        s = torch.rand(80, generator=gen, dtype=torch.float64)
        self.assertEqual(compute_fairness_table(s, y, g).reference, 4)
        self.assertEqual(compute_fairness_table(s, y, g, unknown="group").reference, 4)
        self.assertEqual(compute_fairness_table(s.flip(0), y.flip(0), g.flip(0)).reference, 4)
        self.assertEqual(FairnessSpec("sex").resolve_reference(g), 4)
        self.assertEqual(FairnessSpec("sex").resolve_reference(g.flip(0)), 4)

    def test_absent_reference_is_an_empty_flagged_group(self):
        # a validation epoch without the reference group: NaN gaps and a flag, never an error
        s, y, g = make_data(200, 2, None, seed=8)
        table = compute_fairness_table(s, y, g, reference=2, group_names={2: "R"})
        self.assertEqual(table.group_codes, [0, 1, 2])
        self.assertEqual(table.reference_name, "R")
        self.assertIn("empty group (n=0)", table.flags[2])
        for k in ("spd", "eod", "aod", "auc_diff"):
            self.assertTrue(torch.isnan(table.gaps[k]).all(), k)
        self.assertFalse(math.isnan(float(table.per_group["tpr"][0])))  # the present groups keep their figures


class TestErrors(unittest.TestCase):
    def test_bad_inputs(self):
        s, y, g = make_data(50, 2, None, seed=0)
        s_nan = s.clone()
        s_nan[3] = float("nan")
        with self.assertRaisesRegex(ValueError, "NaN"):
            compute_fairness_table(s_nan, y, g)
        y_nan = y.clone()
        y_nan[0] = float("nan")
        with self.assertRaisesRegex(ValueError, "NaN"):
            compute_fairness_table(s, y_nan, g)
        with self.assertRaisesRegex(ValueError, "same shape"):
            compute_fairness_table(s, y[:-1], g)
        with self.assertRaisesRegex(ValueError, "groups must have shape"):
            compute_fairness_table(s, y, g[:-1])
        with self.assertRaisesRegex(ValueError, r"\[0, 1\]"):
            compute_fairness_table(s * 3 - 1, y, g)
        with self.assertRaisesRegex(ValueError, "reference"):
            compute_fairness_table(s, y, g, reference=4, group_codes=[0, 1, 2])
        with self.assertRaisesRegex(ValueError, "not in group_codes"):
            compute_fairness_table(s, y, g, group_codes=[0])
        with self.assertRaisesRegex(ValueError, "label_names"):
            compute_fairness_table(s, y, g, label_names=["a", "b"])
        with self.assertRaisesRegex(ValueError, "unique"):
            compute_fairness_table(s, y, g, group_names={0: "A", 1: "A"})
        with self.assertRaisesRegex(ValueError, "threshold"):
            compute_fairness_table(
                s.reshape(-1, 1).expand(-1, 2), y.reshape(-1, 1).expand(-1, 2), g, threshold=[0.1, 0.2, 0.3]
            )


class TestBootstrapTable(unittest.TestCase):
    def test_ci_contains_point_and_is_reproducible(self):
        s, y, g = make_data(2000, 3, None, seed=11)
        t1 = compute_fairness_table(s, y, g, n_bootstrap=200, seed=123)
        t2 = compute_fairness_table(s, y, g, n_bootstrap=200, seed=123)
        self.assertEqual(t1.n_bootstrap, 200)
        for key, (lo, hi) in t1.ci.items():
            kind, name = key.split("/")
            point = getattr(t1, kind)[name]
            torch.testing.assert_close(lo, t2.ci[key][0], equal_nan=True)
            torch.testing.assert_close(hi, t2.ci[key][1], equal_nan=True)
            finite = ~torch.isnan(point)
            if kind == "gaps":  # the reference row is exactly 0 in every replicate
                finite &= point != 0
            self.assertTrue(bool((lo[finite] <= point[finite]).all() and (point[finite] <= hi[finite]).all()), key)
        self.assertNotIn("per_group/n", t1.ci)
        self.assertIn("summary/auc_gap", t1.ci)
        self.assertIn("gaps/eod", t1.ci)

    def test_ci_narrows_with_n(self):
        widths = []
        for n in (500, 8000):
            s, y, g = make_data(n, 2, None, seed=12)
            t = compute_fairness_table(s, y, g, n_bootstrap=200, seed=0)
            lo, hi = t.ci["per_group/auc"]
            widths.append(float((hi - lo).mean()))
        self.assertLess(widths[1], widths[0] / 2)


if __name__ == "__main__":
    unittest.main()
