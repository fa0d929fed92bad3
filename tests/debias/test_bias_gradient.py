# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import math
import unittest

import torch

from monai_fair.debias import BiasGradientDebiaser, collect_outputs, evaluate_binary, freeze_batchnorm_
from monai_fair.debias.base import BinaryEvaluation
from tests.debias.planted_bias import (
    SPEC,
    TinyConvNet,
    biased_classifier,
    make_loader,
    make_planted_data,
    planted_spec,
)


def setUpModule():
    torch.set_num_threads(1)  # tiny tensors: threads only contend on a shared CPU


def evaluate(model, loader):
    return evaluate_binary(*collect_outputs(model, loader), SPEC)


class TestBiasGradient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net, cls.val = biased_classifier(batchnorm=True, dropout=0.3)

    def test_planted_gap_is_reduced_under_rho(self):
        loader = make_loader(self.val, 32)
        before = evaluate(self.net, loader)
        self.assertLess(before.bias, -0.2)
        params = {k: v.clone() for k, v in self.net.state_dict().items()}
        result = BiasGradientDebiaser(spec=SPEC, lr=2e-3, epochs=4, n_evals=4, rho=0.7).fit(self.net, loader)
        traj = result.trajectory
        self.assertEqual(len(traj), 1 + 4 * 4)  # the initial model + n_evals per epoch (8 batches, every 2nd)
        self.assertEqual(traj.extra["iteration"], [0.0] + [2.0 * i for i in range(1, 17)])
        self.assertEqual(result.state["direction"], "ascent")  # negative bias: the proxy is pushed up
        self.assertTrue(result.state["qualified"])
        self.assertGreaterEqual(result.validation.balanced_accuracy, 0.7)
        self.assertLess(abs(result.validation.bias), abs(before.bias) - 0.1)
        ok = [i for i in range(len(traj)) if traj.balanced_accuracy[i] >= 0.7]
        self.assertEqual(result.state["selected_evaluation"], min(ok, key=lambda i: (abs(traj.bias[i]), i)))
        # evaluations run in eval mode (dropout 0.3 in this net): the returned model reproduces its evaluation
        again = evaluate(result.model, loader)
        self.assertAlmostEqual(again.bias, result.validation.bias)
        self.assertAlmostEqual(again.balanced_accuracy, result.validation.balanced_accuracy)
        for k, v in self.net.state_dict().items():  # the input model is untouched
            self.assertTrue(torch.equal(v, params[k]))

    def test_group_free_batches_no_nan_and_batchnorm_frozen(self):
        order = torch.argsort(self.val["sex"] * 2 + self.val["label"].long(), stable=True)
        loader = make_loader(self.val, 3, order)  # batches hold one group (and often one class) only
        frozen = BiasGradientDebiaser(spec=SPEC, lr=1e-3, epochs=1, n_evals=2, rho=0.0, freeze_batchnorm=True)
        result = frozen.fit(self.net, loader)
        self.assertTrue(all(torch.isfinite(p).all() for p in result.model.parameters()))
        self.assertFalse(any(math.isnan(b) for b in result.trajectory.bias))
        bn, bn0 = result.model.features[1], self.net.features[1]
        self.assertTrue(torch.equal(bn.running_mean, bn0.running_mean))  # frozen running statistics
        self.assertFalse(torch.equal(bn.weight, bn0.weight))  # the affine parameters are trained
        unfrozen = BiasGradientDebiaser(
            spec=SPEC, lr=1e-3, epochs=1, n_evals=1, rho=0.0
        )  # default: train mode, as the reference
        result = unfrozen.fit(self.net, make_loader(self.val, 64))
        self.assertFalse(torch.equal(result.model.features[1].running_mean, bn0.running_mean))

    def test_nothing_qualifies_returns_initial_model(self):
        result = BiasGradientDebiaser(spec=SPEC, lr=1e-3, epochs=1, n_evals=2, rho=1.01).fit(
            self.net, make_loader(self.val, 64)
        )
        self.assertFalse(result.state["qualified"])
        self.assertEqual(result.state["selected_evaluation"], 0)
        self.assertIn("initial model is returned", result.state["message"])
        for (k, v), v0 in zip(result.model.state_dict().items(), self.net.state_dict().values()):
            self.assertTrue(torch.equal(v, v0), k)

    def test_relative_rho(self):
        loader = make_loader(self.val, 32)
        before = evaluate(self.net, loader)
        delta = 0.05
        result = BiasGradientDebiaser(spec=SPEC, lr=2e-3, epochs=2, n_evals=4, rho=1.01, rho_relative=delta).fit(
            self.net, loader
        )
        traj = result.trajectory
        # the absolute rho is ignored: the bound is the initial validation BA minus delta
        self.assertAlmostEqual(result.state["rho"], before.balanced_accuracy - delta)
        self.assertTrue(result.state["qualified"])
        ok = [i for i in range(len(traj)) if traj.balanced_accuracy[i] >= before.balanced_accuracy - delta]
        self.assertEqual(result.state["selected_evaluation"], min(ok, key=lambda i: (abs(traj.bias[i]), i)))
        self.assertGreaterEqual(result.validation.balanced_accuracy, before.balanced_accuracy - delta)
        self.assertLess(abs(result.validation.bias), abs(before.bias))
        with self.assertRaises(ValueError):
            BiasGradientDebiaser(spec=SPEC, rho_relative=-0.1)

    def test_stops_when_accuracy_collapses(self):
        result = BiasGradientDebiaser(
            spec=SPEC, lr=1e-3, epochs=3, n_evals=2, rho=0.0, stop_balanced_accuracy=0.99
        ).fit(self.net, make_loader(self.val, 64))
        self.assertTrue(result.state["stopped_early"])
        self.assertEqual(len(result.trajectory), 2)

    def test_descent_when_bias_positive(self):
        # reference 0 flips the sign of the planted gap: the proxy is minimised and the bias still shrinks
        loader = make_loader(self.val, 32)
        before = evaluate_binary(*collect_outputs(self.net, loader), planted_spec(reference=0))
        self.assertGreater(before.bias, 0.2)
        result = BiasGradientDebiaser(spec=planted_spec(reference=0), lr=2e-3, epochs=3, n_evals=2, rho=0.7).fit(
            self.net, loader
        )
        self.assertEqual(result.state["direction"], "descent")
        self.assertLess(abs(result.validation.bias), abs(before.bias) - 0.1)

    def test_freeze_batchnorm_and_bad_input(self):
        net = TinyConvNet(batchnorm=True).train()
        freeze_batchnorm_(net)
        self.assertFalse(net.features[1].training)
        self.assertTrue(net.training)
        with self.assertRaisesRegex(ValueError, "proxy metric"):
            BiasGradientDebiaser(spec=planted_spec(metric="aod"))
        with self.assertRaises(ValueError):
            BiasGradientDebiaser(spec=SPEC, n_evals=0)
        frozen = TinyConvNet().requires_grad_(False)
        with self.assertRaisesRegex(ValueError, "trainable"):
            BiasGradientDebiaser(spec=SPEC).fit(frozen, make_loader(self.val, 64))
        with self.assertRaises(TypeError):
            BiasGradientDebiaser(spec=SPEC).fit(self.net, (b for b in make_loader(self.val, 64)))

    def test_best_evaluation_tie_goes_to_the_earliest(self):
        # |bias| ties between evaluations 1 and 2: the earlier one is selected
        data = make_planted_data(64, seed=3)
        figures = iter([(0.9, -0.30), (0.85, -0.02), (0.84, 0.02), (0.83, -0.10)])
        debiaser = BiasGradientDebiaser(spec=SPEC, lr=1e-3, epochs=3, n_evals=1, rho=0.5, stop_balanced_accuracy=0.0)

        def fake_evaluate(probs, labels, groups, reference=None):
            ba, bias = next(figures)
            return BinaryEvaluation(0.5, ba, bias, 0.0)

        debiaser.evaluate = fake_evaluate
        result = debiaser.fit(TinyConvNet(), make_loader(data, 64))
        self.assertEqual(result.state["selected_evaluation"], 1)
        self.assertEqual(result.validation.bias, -0.02)


if __name__ == "__main__":
    unittest.main()
