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

from monai_fair.debias import BiasGradientDebiaser, PruningDebiaser, RejectOptionClassification
from monai_fair.metrics import FairnessSpec, best_balanced_accuracy_threshold
from monai_fair.study import DebiasingStudy, load_debiased, write_debiasing_report
from tests.debias.planted_bias import biased_classifier, make_loader, make_planted_data

SPEC = FairnessSpec("sex", reference=1, group_names={0: "F", 1: "M"}, metric="eod", epsilon=0.05)


class TwoColumns(torch.nn.Module):
    """The planted classifier's logit in column 1 and a constant, uninformative column 0."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return torch.cat([torch.zeros_like(out), out], dim=1)


def _oracle(probs: np.ndarray, y: np.ndarray, a: np.ndarray, threshold: float) -> dict[str, float]:
    y_hat = (probs > threshold).astype(int)
    tpr = lambda m: y_hat[m & (y == 1)].mean()  # noqa: E731
    return {"balanced_accuracy": balanced_accuracy_score(y, y_hat), "eod": tpr(a == 0) - tpr(a == 1)}


class TestDebiasingStudy(unittest.TestCase):
    def test_run_save_reload_report(self):
        net, val = biased_classifier()
        test = make_planted_data(256, seed=5)
        val_loader, test_loader = make_loader(val, 64), make_loader(test, 64)
        debiasers = {
            "reject_option": RejectOptionClassification(spec=SPEC),
            "pruning": PruningDebiaser(spec=SPEC, step_size=5, max_steps=3, rho=0.6),
        }
        with tempfile.TemporaryDirectory() as d:
            study = DebiasingStudy(
                copy.deepcopy(net), val_loader, test_loader, debiasers, spec=SPEC, output_dir=d, n_bootstrap=20, seed=7
            )
            out = study.run()
            methods = [r["method"] for r in out["records"] if r["split"] == "test"]
            self.assertEqual(methods, ["standard", "reject_option", "pruning"])
            rec = {r["method"]: r for r in out["records"] if r["split"] == "test"}
            val_rec = {r["method"]: r for r in out["records"] if r["split"] == "val"}
            # the standard model's test figures against sklearn / hand computation at the validation threshold
            with torch.no_grad():
                p_val = torch.sigmoid(net(val["image"])[:, 0])
                p_test = torch.sigmoid(net(test["image"])[:, 0])
            thr, _ = best_balanced_accuracy_threshold(p_val, val["label"])
            # the validation threshold is the observed score with the best balanced accuracy (sklearn, brute force)
            y_val = val["label"].numpy().astype(int)
            ba_all = [balanced_accuracy_score(y_val, (p_val.numpy() > s).astype(int)) for s in p_val.numpy()]
            self.assertAlmostEqual(balanced_accuracy_score(y_val, (p_val.numpy() > thr).astype(int)), max(ba_all))
            expected = _oracle(p_test.numpy(), test["label"].numpy().astype(int), test["sex"].numpy(), thr)
            self.assertAlmostEqual(rec["standard"]["threshold"], thr)
            self.assertAlmostEqual(rec["standard"]["balanced_accuracy"], expected["balanced_accuracy"], places=6)
            self.assertAlmostEqual(rec["standard"]["eod"], expected["eod"], places=6)
            self.assertLess(rec["standard"]["eod"], -0.1)  # the planted gap
            self.assertLess(rec["standard"]["eod_ci_low"], rec["standard"]["eod"])
            # on the data it was fitted on, reject option closes most of the gap
            self.assertLess(abs(val_rec["reject_option"]["eod"]), 0.5 * abs(val_rec["standard"]["eod"]))
            saved = json.loads((Path(d) / "results.json").read_text())
            self.assertEqual((saved["seed"], saved["spec"]["reference"]), (7, "M"))
            self.assertIn("pruning", out["trajectories"])
            self.assertEqual(out["rho"], {"pruning": 0.6})
            pruned, thr = load_debiased(copy.deepcopy(net), d, "pruning")
            self.assertAlmostEqual(thr, rec["pruning"]["threshold"])
            # re-evaluation from the saved files reproduces the test figures exactly
            again = DebiasingStudy(
                copy.deepcopy(net), val_loader, test_loader, debiasers, spec=SPEC, output_dir=d, n_bootstrap=20, seed=7
            ).run(fit=False)
            self.assertTrue((Path(d) / "results_reloaded.json").is_file())
            for r1, r2 in zip(out["records"], again["records"]):
                if r1["split"] == "test":
                    self.assertEqual(
                        (r1["method"], r1["eod"], r1["balanced_accuracy"]),
                        (r2["method"], r2["eod"], r2["balanced_accuracy"]),
                    )
            paths = write_debiasing_report([out, None], Path(d) / "report", metric="eod", epsilon=0.05, demo=True)
            self.assertTrue(Path(paths["report_html"]).is_file())

    def test_output_index(self):
        # the study evaluates the spec's output column, not column 0
        net, val = biased_classifier()
        test = make_planted_data(128, seed=5)
        spec = FairnessSpec("sex", reference=1, metric="eod", epsilon=0.05, output_index=1)
        with tempfile.TemporaryDirectory() as d:
            two = DebiasingStudy(
                TwoColumns(copy.deepcopy(net)), make_loader(val, 64), make_loader(test, 64), spec=spec, output_dir=d,
                n_bootstrap=0,
            ).run()  # fmt: skip
            one = DebiasingStudy(
                copy.deepcopy(net), make_loader(val, 64), make_loader(test, 64), spec=SPEC, output_dir=d, n_bootstrap=0
            ).run()
        for r1, r2 in zip(one["records"], two["records"]):
            self.assertAlmostEqual(r1["balanced_accuracy"], r2["balanced_accuracy"])
            self.assertAlmostEqual(r1["eod"], r2["eod"])
        self.assertGreater(two["records"][1]["balanced_accuracy"], 0.6)

    def test_a_method_does_not_depend_on_the_methods_before_it(self):
        # bias GD/A trains with dropout on, which draws from the global generator: alone or after pruning, whose
        # loader passes also draw from it, it gives the same figures
        net, val = biased_classifier(dropout=0.5)
        test = make_planted_data(128, seed=5)
        debiasers = {
            "pruning": PruningDebiaser(spec=SPEC, step_size=5, max_steps=2, rho=0.0),
            "bias_gda": BiasGradientDebiaser(lr=1e-2, epochs=1, n_evals=2, rho=0.0, spec=SPEC),
        }
        runs = []
        with tempfile.TemporaryDirectory() as d:
            for methods in (["bias_gda"], ["pruning", "bias_gda"]):
                # a DataLoader, as in the bundles: every pass over it draws its base seed from the global generator
                val_loader = torch.utils.data.DataLoader(make_loader(val, 64), batch_size=None)
                study = DebiasingStudy(
                    copy.deepcopy(net), val_loader, make_loader(test, 64), debiasers, methods=methods,
                    spec=SPEC, output_dir=d, n_bootstrap=0, seed=3,
                )  # fmt: skip
                out = study.run()
                records = [r for r in out["records"] if r["method"] == "bias_gda"]
                runs.append((out["trajectories"]["bias_gda"], [{**r, "seconds": 0} for r in records]))
        self.assertEqual(runs[0], runs[1])

    def test_unknown_method(self):
        net, val = biased_classifier()
        loader = make_loader(val, 64)
        with self.assertRaisesRegex(ValueError, "unknown debiasing methods"):
            DebiasingStudy(net, loader, loader, {}, methods=["pruning"])
        with self.assertRaisesRegex(ValueError, "no seed produced results"):
            write_debiasing_report([None], "unused")


if __name__ == "__main__":
    unittest.main()
