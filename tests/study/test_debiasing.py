# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import copy
import json
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score

from monai_fair.debias import (
    DebiasingStudy,
    PruningDebiaser,
    RejectOptionClassification,
    evaluate_hard_predictions,
    load_debiased,
    write_debiasing_report,
)
from tests.debias.planted_bias import biased_classifier, make_loader, make_planted_data


class TestEvaluateHardPredictions(unittest.TestCase):
    def test_against_hand_computation(self):
        rng = np.random.default_rng(0)
        y, g = rng.integers(0, 2, 400), rng.integers(0, 2, 400)
        y_hat = (rng.random(400) < 0.3 + 0.3 * y + 0.1 * g).astype(int)
        out = evaluate_hard_predictions(
            torch.tensor(y_hat), torch.tensor(y), torch.tensor(g), privileged=1, metric="spd", epsilon=0.05
        )
        self.assertAlmostEqual(out["balanced_accuracy"], balanced_accuracy_score(y, y_hat), places=6)
        tpr = lambda m: y_hat[m & (y == 1)].mean()  # noqa: E731
        fpr = lambda m: y_hat[m & (y == 0)].mean()  # noqa: E731
        u, p = g == 0, g == 1
        self.assertAlmostEqual(out["eod"], tpr(u) - tpr(p), places=6)
        self.assertAlmostEqual(out["spd"], y_hat[u].mean() - y_hat[p].mean(), places=6)
        self.assertAlmostEqual(out["aod"], 0.5 * (tpr(u) - tpr(p) + fpr(u) - fpr(p)), places=6)
        self.assertEqual(out["bias"], out["spd"])
        expected_obj = out["balanced_accuracy"] if abs(out["spd"]) < 0.05 else 0.0
        self.assertAlmostEqual(out["objective"], expected_obj)

    def test_bootstrap_intervals(self):
        g = torch.Generator().manual_seed(1)
        y = torch.randint(0, 2, (500,), generator=g)
        a = torch.randint(0, 2, (500,), generator=g)
        y_hat = (torch.rand(500, generator=g) < 0.2 + 0.6 * y).long()
        a1 = evaluate_hard_predictions(y_hat, y, a, n_bootstrap=200, seed=3)
        a2 = evaluate_hard_predictions(y_hat, y, a, n_bootstrap=200, seed=3)
        self.assertEqual(a1, a2)
        for k in ("balanced_accuracy", "eod", "spd"):
            self.assertLess(a1[f"{k}_ci_low"], a1[k])
            self.assertGreater(a1[f"{k}_ci_high"], a1[k])

    def test_undefined_bias_is_nan(self):
        # no privileged positive: EOD undefined -> NaN, objective NaN (never 0)
        y = torch.tensor([1, 0, 0, 1, 0])
        a = torch.tensor([0, 1, 1, 0, 1])
        out = evaluate_hard_predictions(torch.tensor([1, 0, 1, 0, 0]), y, a, metric="eod")
        self.assertTrue(np.isnan(out["eod"]) and np.isnan(out["objective"]))


class TestDebiasingStudy(unittest.TestCase):
    def test_run_save_reload_report(self):
        net, val = biased_classifier()
        test = make_planted_data(256, seed=5)
        val_loader, test_loader = make_loader(val, 64), make_loader(test, 64)
        debiasers = {
            "reject_option": RejectOptionClassification(privileged=1, epsilon=0.05),
            "pruning": PruningDebiaser(step_size=5, max_steps=3, rho=0.6, privileged=1, epsilon=0.05),
        }
        with tempfile.TemporaryDirectory() as d:
            study = DebiasingStudy(
                copy.deepcopy(net),
                val_loader,
                test_loader,
                debiasers,
                output_dir=d,
                privileged=1,
                epsilon=0.05,
                n_bootstrap=20,
                seed=7,
            )
            out = study.run()
            methods = [r["method"] for r in out["records"] if r["split"] == "test"]
            self.assertEqual(methods, ["standard", "reject_option", "pruning"])
            std = next(r for r in out["records"] if r["method"] == "standard" and r["split"] == "test")
            self.assertLess(std["eod"], -0.1)  # the planted gap
            rec = {r["method"]: r for r in out["records"] if r["split"] == "test"}
            val = {r["method"]: r for r in out["records"] if r["split"] == "val"}
            # on the data it was fitted on, reject option closes most of the gap
            self.assertLess(abs(val["reject_option"]["eod"]), 0.5 * abs(val["standard"]["eod"]))
            self.assertEqual(json.loads((Path(d) / "results.json").read_text())["seed"], 7)
            self.assertIn("pruning", out["trajectories"])
            # saved artefacts reload into the same predictions
            pp, thr = load_debiased(copy.deepcopy(net), d, "reject_option")
            probs = torch.sigmoid(net(test["image"])[:, 0]).detach()
            self.assertTrue(
                torch.equal(
                    pp.predict(probs, test["sex"]),
                    debiasers["reject_option"]
                    .fit(copy.deepcopy(net), val_loader)
                    .postprocessor.predict(probs, test["sex"]),
                )
            )
            pruned, thr = load_debiased(copy.deepcopy(net), d, "pruning")
            self.assertAlmostEqual(thr, rec["pruning"]["threshold"])
            # re-evaluation from the saved files reproduces the test figures exactly
            again = DebiasingStudy(
                copy.deepcopy(net),
                val_loader,
                test_loader,
                debiasers,
                output_dir=d,
                privileged=1,
                epsilon=0.05,
                n_bootstrap=20,
                seed=7,
            ).run(fit=False)
            for r1, r2 in zip(out["records"], again["records"]):
                if r1["split"] == "test":
                    self.assertEqual(
                        (r1["method"], r1["eod"], r1["balanced_accuracy"]),
                        (r2["method"], r2["eod"], r2["balanced_accuracy"]),
                    )
            paths = write_debiasing_report([out, None], Path(d) / "report", metric="eod", epsilon=0.05, demo=True)
            self.assertTrue(Path(paths["report_html"]).is_file())

    def test_unknown_method(self):
        net, val = biased_classifier()
        loader = make_loader(val, 64)
        with self.assertRaises(ValueError):
            DebiasingStudy(net, loader, loader, {}, methods=["pruning"])
        with self.assertRaises(ValueError):
            write_debiasing_report([None], "unused")


if __name__ == "__main__":
    unittest.main()
