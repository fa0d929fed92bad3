# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""tools/audit.py run in-process on generated predictions with a planted gap, checked against sklearn/fairlearn."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from fairlearn.metrics import MetricFrame, equalized_odds_difference, false_positive_rate, true_positive_rate
from monai.data import CSVSaver
from parameterized import parameterized
from PIL import Image
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from monai_fair.metrics.thresholds import best_balanced_accuracy_threshold

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("fair_audit_tool", REPO / "tools" / "audit.py")
audit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(audit)


def planted(n=600, seed=0):
    """Predictions where F (weaker signal) has a lower TPR/AUC than M."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n, p=[0.45, 0.55])
    y = (rng.random(n) < 0.4).astype(int)
    logit = np.where(sex == "F", 0.6, 2.0) * (2 * y - 1) + rng.normal(size=n)
    prob = 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"image": [f"case_{i:05d}.png" for i in range(n)], "prob": prob, "y": y, "sex": sex})


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = audit.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


class TestAudit(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.df = planted()
        self.csv = self.dir / "preds.csv"
        self.df.to_csv(self.csv, index=False)

    def tearDown(self):
        self.tmp.cleanup()

    def test_planted_gap_against_fairlearn(self):
        out = self.dir / "out"
        code, text, _ = run(
            [
                self.csv,
                "--score",
                "prob",
                "--label",
                "y",
                "--group",
                "sex",
                "--reference",
                "M",
                "--out",
                out,
                "--no-progress",
            ]
        )
        self.assertEqual(code, 0)
        y, s, sex = self.df["y"].to_numpy(), self.df["prob"].to_numpy(), self.df["sex"].to_numpy()
        hard = (s > 0.5).astype(int)
        mf = MetricFrame(
            metrics={"tpr": true_positive_rate, "fpr": false_positive_rate},
            y_true=y,
            y_pred=hard,
            sensitive_features=sex,
        )
        table = pd.read_csv(out / "fairness_table.csv")

        def value(metric, group="all"):
            return float(table[(table.metric == metric) & (table.group_name == group)]["value"].iloc[0])

        for grp in ("F", "M"):
            self.assertAlmostEqual(value("tpr", grp), mf.by_group.loc[grp, "tpr"], 12)
            self.assertAlmostEqual(value("fpr", grp), mf.by_group.loc[grp, "fpr"], 12)
            self.assertAlmostEqual(value("auc", grp), roc_auc_score(y[sex == grp], s[sex == grp]), 12)
            self.assertAlmostEqual(
                value("balanced_accuracy", grp), balanced_accuracy_score(y[sex == grp], hard[sex == grp]), 12
            )
        eod = mf.by_group.loc["F", "tpr"] - mf.by_group.loc["M", "tpr"]
        self.assertAlmostEqual(value("eod", "F"), eod, 12)
        self.assertLess(eod, -0.1)  # the planted gap is found
        self.assertAlmostEqual(value("equalized_odds"), equalized_odds_difference(y, hard, sensitive_features=sex), 12)
        # the printed table shows the same numbers
        self.assertIn(f"{mf.by_group.loc['F', 'tpr']:.3f}", text)
        self.assertIn(f"{eod:.3f}", text)
        self.assertIn("reference group: M", text)
        # every output is written, and no identifier leaks into any of them
        names = sorted(p.name for p in out.iterdir())
        self.assertEqual(
            names,
            [
                "calibration_by_group.png",
                "fairness_table.csv",
                "metric_bars.png",
                "per_group.csv",
                "pooled.csv",
                "report.md",
                "roc_by_group.png",
            ],
        )
        for p in out.iterdir():
            data = p.read_bytes()
            self.assertNotIn(b"case_0", data)
            if p.suffix == ".png":
                self.assertGreater(Image.open(p).width, 100)
        per_group = pd.read_csv(out / "per_group.csv")
        self.assertEqual(list(per_group["group"]), ["F", "M"])
        self.assertEqual(list(per_group["n"]), [int((sex == "F").sum()), int((sex == "M").sum())])

    def test_bootstrap_ci_against_numpy_bootstrap(self):
        out = self.dir / "out"
        code, _, err = run(
            [
                self.csv,
                "--score",
                "prob",
                "--label",
                "y",
                "--group",
                "sex",
                "--n-bootstrap",
                "400",
                "--seed",
                "1",
                "--out",
                out,
            ]
        )
        self.assertEqual(code, 0)
        self.assertIn("bootstrap", err)  # tqdm progress bar on stderr
        table = pd.read_csv(out / "fairness_table.csv")
        row = table[(table.metric == "tpr") & (table.group_name == "F")].iloc[0]
        # independent stratified percentile bootstrap of TPR_F
        rng = np.random.default_rng(5)
        f = self.df[self.df.sex == "F"]
        yy, hh = f["y"].to_numpy(), (f["prob"].to_numpy() > 0.5).astype(int)
        reps = []
        for _ in range(2000):
            i = rng.integers(0, len(f), len(f))
            reps.append(hh[i][yy[i] == 1].mean())
        lo, hi = np.percentile(reps, [2.5, 97.5])
        self.assertLess(row.ci_low, row.value)
        self.assertGreater(row.ci_high, row.value)
        self.assertAlmostEqual(row.ci_low, lo, delta=0.03)
        self.assertAlmostEqual(row.ci_high, hi, delta=0.03)
        self.assertTrue(np.isnan(table[table.metric == "n"]["ci_low"]).all())  # counts have no interval

    def test_classification_saver_with_manifest(self):
        # MONAI's own saver: no header, full paths; the manifest has relative paths, labels and groups
        saver = CSVSaver(output_dir=str(self.dir), filename="predictions.csv")
        probs = np.stack([1 - self.df["prob"].to_numpy(), self.df["prob"].to_numpy()], axis=1)
        meta = {"filename_or_obj": [f"/data/images/{name}" for name in self.df["image"]]}
        saver.save_batch(torch.as_tensor(probs), meta)
        saver.finalize()
        manifest = self.dir / "manifest.csv"
        self.df.drop(columns=["prob"]).sample(frac=1.0, random_state=0).to_csv(manifest, index=False)
        out = self.dir / "out"
        code, text, err = run(
            [
                self.dir / "predictions.csv",
                "--score",
                "pred1",
                "--label",
                "y",
                "--group",
                "sex",
                "--manifest",
                manifest,
                "--join-on",
                "image",
                "--threshold",
                "ba-optimal",
                "--out",
                out,
            ]
        )
        self.assertEqual(code, 0, err)
        s, y = self.df["prob"].to_numpy(), self.df["y"].to_numpy()
        thr, _ = best_balanced_accuracy_threshold(torch.tensor(s), torch.tensor(y))
        self.assertIn(f"threshold: {thr:.3f} (balanced-accuracy optimal)", text)
        self.assertIn("joined on file names", text)
        table = pd.read_csv(out / "fairness_table.csv")
        m = self.df["sex"].to_numpy() == "F"
        got = float(table[(table.metric == "auc") & (table.group_name == "F")]["value"].iloc[0])
        self.assertAlmostEqual(got, roc_auc_score(y[m], s[m]), 6)  # CSVSaver writes float text: 1e-6 is plenty
        got = float(table[(table.metric == "tpr") & (table.group_name == "F")]["value"].iloc[0])
        self.assertAlmostEqual(got, float(((s[m] > thr) & (y[m] == 1)).sum() / (y[m] == 1).sum()), 12)

    def test_numeric_codes_names_unknown_group_and_multilabel(self):
        df = self.df.assign(
            sex_code=(self.df["sex"] == "M").astype(float), prob2=1 - self.df["prob"], y2=1 - self.df["y"]
        )
        df.loc[:4, "sex_code"] = np.nan  # missing attribute: kept as "unknown", never dropped
        path = self.dir / "codes.csv"
        df.to_csv(path, index=False)
        out = self.dir / "out"
        code, text, err = run(
            [
                path,
                "--score",
                "prob",
                "prob2",
                "--label",
                "y",
                "y2",
                "--group",
                "sex_code",
                "--group-names",
                "0=F,1=M",
                "--reference",
                "1",
                "--label-names",
                "a",
                "b",
                "--min-group-size",
                "3",
                "--unknown",
                "group",
                "--out",
                out,
            ]
        )
        self.assertEqual(code, 0, err)
        table = pd.read_csv(out / "fairness_table.csv")
        self.assertEqual(sorted(table.group_name.dropna().unique()), ["F", "M", "all", "unknown"])
        self.assertEqual(int(table[(table.metric == "n") & (table.group_name == "unknown")]["value"].iloc[0]), 5)
        self.assertIn("label b", text)
        sub = df[df.sex_code == 0]
        got = float(table[(table.metric == "auc") & (table.group_name == "F") & (table.label == "b")]["value"].iloc[0])
        self.assertAlmostEqual(got, roc_auc_score(sub["y2"], sub["prob2"]), 12)

    @parameterized.expand(
        [
            ["missing_column", {}, ["--score", "p"], "not found"],
            ["non_binary", {"y": 2}, [], "binary"],
            ["score_range", {"prob": 1.5}, [], r"\[0, 1\]"],
            ["nan_score", {"prob": np.nan}, [], "missing \\(NaN\\) score"],
            ["nan_label", {"y": np.nan}, [], "missing \\(NaN\\)"],
            ["bad_reference", {}, ["--reference", "X"], "not a group name"],
            ["bad_threshold", {}, ["--threshold", "best"], "ba-optimal"],
        ]
    )
    def test_errors(self, _, corrupt, extra, message):
        df = self.df.copy()
        for col, val in corrupt.items():
            df[col] = df[col].astype(float)
            df.loc[3, col] = val
        path = self.dir / "bad.csv"
        df.to_csv(path, index=False)
        args = [path, "--score", "prob", "--label", "y", "--group", "sex", "--no-progress"]
        if "--score" in extra:
            args[2] = extra[1]
            extra = []
        code, _, err = run(args + extra)
        self.assertEqual(code, 2)
        self.assertRegex(err, message)
        self.assertNotIn("case_", err)

    @parameterized.expand(
        [
            ["header_only", b"prob,y,sex\n", "has a header \\(prob, y, sex\\) but no prediction rows"],
            ["empty_file", b"", "is empty \\(no header, no rows\\)"],
            ["binary_file", b"\x89PNG\x00\x01\xff\xfe", "cannot be parsed as CSV"],
        ]
    )
    def test_unreadable_files_are_named(self, name, content, message):
        path = self.dir / f"{name}.csv"
        path.write_bytes(content)
        code, _, err = run([path, "--score", "prob", "--label", "y", "--group", "sex", "--no-progress"])
        self.assertEqual(code, 2)
        self.assertRegex(err, message)
        self.assertIn(f"{name}.csv", err.strip().splitlines()[-1])

    def test_unmatched_manifest_rows_are_an_error(self):
        manifest = self.dir / "manifest.csv"
        self.df.drop(columns=["prob"]).iloc[10:].to_csv(manifest, index=False)
        preds = self.dir / "p.csv"
        self.df[["image", "prob"]].to_csv(preds, index=False)
        code, _, err = run(
            [preds, "--score", "prob", "--label", "y", "--group", "sex", "--manifest", manifest, "--join-on", "image"]
        )
        self.assertEqual(code, 2)
        self.assertIn("10 of 600 prediction rows have no manifest row", err)

    def test_two_group_columns_intersectional(self):
        df = self.df.assign(age_group=np.where(np.arange(len(self.df)) % 3 == 0, "80+", "60-79"))
        df.loc[:2, "sex"] = np.nan
        path = self.dir / "two.csv"
        df.to_csv(path, index=False)
        out = self.dir / "out"
        args = [path, "--score", "prob", "--label", "y", "--group", "sex", "age_group", "--reference", "M × 60-79"]
        code, text, err = run(args + ["--unknown", "exclude", "--out", out, "--no-progress"])
        self.assertEqual(code, 0, err)
        known = df.dropna(subset=["sex"])
        hard = (known["prob"].to_numpy() > 0.5).astype(int)
        mf = MetricFrame(
            metrics={"tpr": true_positive_rate, "fpr": false_positive_rate},
            y_true=known["y"].to_numpy(),
            y_pred=hard,
            sensitive_features=known[["sex", "age_group"]],
        )
        table = pd.read_csv(out / "fairness_table.csv")
        for (sx, ag), row in mf.by_group.iterrows():
            got = table[(table.metric == "tpr") & (table.group_name == f"{sx} × {ag}")]["value"].iloc[0]
            self.assertAlmostEqual(got, row["tpr"], 12)
        eod = table[(table.metric == "eod") & (table.group_name == "F × 80+")]["value"].iloc[0]
        self.assertAlmostEqual(eod, mf.by_group.loc[("F", "80+"), "tpr"] - mf.by_group.loc[("M", "60-79"), "tpr"], 12)
        self.assertEqual(float(table[table.metric == "n_unknown"]["value"].iloc[0]), 3.0)
        self.assertIn("reference group: M × 60-79", text)
        pooled = pd.read_csv(out / "pooled.csv").set_index("metric")
        ref = (known["sex"] == "M").to_numpy() & (known["age_group"] == "60-79").to_numpy()
        y = known["y"].to_numpy() == 1
        self.assertAlmostEqual(pooled.loc["eod", "value"], hard[~ref & y].mean() - hard[ref & y].mean(), 12)
        # --unknown group: the missing rows are the group "unknown", pooled with the rest
        code, _, err = run(args + ["--unknown", "group", "--out", self.dir / "g", "--no-progress"])
        self.assertEqual(code, 0, err)
        table = pd.read_csv(self.dir / "g" / "fairness_table.csv")
        self.assertEqual(int(table[(table.metric == "n") & (table.group_name == "unknown")]["value"].iloc[0]), 3)


if __name__ == "__main__":
    unittest.main()
