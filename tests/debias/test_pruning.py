# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import io
import math
import unittest

import torch
from monai.networks.nets import Classifier

from monai_fair.debias import PruningDebiaser, collect_outputs, evaluate_binary, load_unit_masked_state_dict
from monai_fair.debias.base import BinaryEvaluation
from monai_fair.debias.influence import FullSetProxyWeights, ThresholdTaskWeights
from monai_fair.debias.pruning import PruningRun
from monai_fair.debias.unit_mask import add_unit_masks, prunable_layer_names
from tests.debias.planted_bias import SPEC, TinyConvNet, biased_classifier, make_loader, make_planted_data, planted_spec


def setUpModule():
    torch.set_num_threads(1)  # tiny tensors: threads only contend on a shared CPU


def evaluate(model, loader):
    return evaluate_binary(*collect_outputs(model, loader), SPEC)


class TestPruning(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net, cls.val = biased_classifier()

    def test_planted_gap_is_reduced_under_rho(self):
        loader = make_loader(self.val, 32)
        before = evaluate(self.net, loader)
        self.assertLess(before.bias, -0.2)  # the planted shortcut favours the privileged group
        params = {k: v.clone() for k, v in self.net.state_dict().items()}
        pruner = PruningDebiaser(spec=SPEC, step_size=20, max_steps=6, rho=0.7)
        result = pruner.fit(self.net, loader)
        traj = result.trajectory
        steps = len(traj) - 1
        self.assertEqual(traj.step, list(range(steps + 1)))  # step 0 (unpruned) + one entry per pruning step
        self.assertEqual(traj.extra["n_pruned"], [20.0 * s for s in range(steps + 1)])
        self.assertAlmostEqual(traj.bias[0], before.bias)
        self.assertTrue(result.state["qualified"])
        self.assertEqual(result.state["direction"], -1.0)
        self.assertGreaterEqual(result.validation.balanced_accuracy, 0.7)
        self.assertLess(abs(result.validation.bias), abs(before.bias) - 0.1)
        # selection = min |bias| among steps with BA >= rho (step 0 included)
        ok = [i for i in range(steps + 1) if traj.balanced_accuracy[i] >= 0.7]
        best = min(ok, key=lambda i: (abs(traj.bias[i]), i))
        self.assertEqual(result.state["selected_step"], best)
        self.assertEqual(result.state["n_pruned"], 20 * best)
        # the returned model carries the selected mask
        again = evaluate(result.model, loader)
        self.assertAlmostEqual(again.bias, result.validation.bias)
        self.assertAlmostEqual(again.balanced_accuracy, result.validation.balanced_accuracy)
        self.assertEqual(result.threshold, again.threshold)
        # the input model is not modified
        for k, v in self.net.state_dict().items():
            self.assertTrue(torch.equal(v, params[k]))
        self.assertFalse(any("unit_mask" in k for k in self.net.state_dict()))
        # saved and reloaded exactly
        buf = io.BytesIO()
        torch.save(result.model.state_dict(), buf)
        buf.seek(0)
        fresh = TinyConvNet()
        load_unit_masked_state_dict(fresh, torch.load(buf, weights_only=True))
        x = self.val["image"][:16]
        with torch.no_grad():
            torch.testing.assert_close(fresh.eval()(x), result.model.eval()(x), rtol=0, atol=0)

    def test_batch_size_and_group_free_batches(self):
        # batches of 4 sorted by group lack a group almost always: same trajectory as one big batch
        order = torch.argsort(self.val["sex"], stable=True)
        pruner = PruningDebiaser(spec=SPEC, step_size=10, max_steps=3, rho=0.5, stop_early=False)
        a = pruner.fit(self.net, make_loader(self.val, 4, order))
        b = pruner.fit(self.net, make_loader(self.val, 256))
        self.assertEqual(len(a.trajectory), 4)
        for x, y in zip(a.trajectory.bias, b.trajectory.bias):
            self.assertFalse(math.isnan(x))
            self.assertAlmostEqual(x, y, places=6)

    def test_nothing_qualifies_returns_unpruned(self):
        loader = make_loader(self.val, 64)
        result = PruningDebiaser(spec=SPEC, step_size=20, max_steps=2, rho=1.01).fit(self.net, loader)
        self.assertFalse(result.state["qualified"])
        self.assertEqual(result.state["selected_step"], 0)
        self.assertEqual(result.state["n_pruned"], 0)
        self.assertIn("unpruned model is returned", result.state["message"])
        self.assertEqual(len(result.trajectory), 3)
        with torch.no_grad():
            torch.testing.assert_close(
                result.model.eval()(self.val["image"]), self.net(self.val["image"]), rtol=0, atol=0
            )
        self.assertAlmostEqual(result.validation.bias, result.trajectory.bias[0])

    def test_relative_rho(self):
        loader = make_loader(self.val, 64)
        before = evaluate(self.net, loader)
        delta = 0.05
        result = PruningDebiaser(spec=SPEC, step_size=20, max_steps=6, rho=1.01, rho_relative=delta).fit(
            self.net, loader
        )
        traj = result.trajectory
        # the absolute rho is ignored: the bound is the unpruned validation BA minus delta
        self.assertAlmostEqual(result.state["rho"], before.balanced_accuracy - delta)
        self.assertTrue(result.state["qualified"])
        ok = [i for i in range(len(traj)) if traj.balanced_accuracy[i] >= before.balanced_accuracy - delta]
        self.assertEqual(result.state["selected_step"], min(ok, key=lambda i: (abs(traj.bias[i]), i)))
        self.assertGreaterEqual(result.validation.balanced_accuracy, before.balanced_accuracy - delta)
        # a zero margin admits only steps at least as accurate as the unpruned model
        strict = PruningDebiaser(spec=SPEC, step_size=20, max_steps=6, rho=0.0, rho_relative=0.0).fit(self.net, loader)
        self.assertGreaterEqual(strict.validation.balanced_accuracy, before.balanced_accuracy)
        self.assertEqual(PruningDebiaser(spec=SPEC, rho=0.3).fit(self.net, loader).state["rho"], 0.3)
        with self.assertRaises(ValueError):
            PruningDebiaser(spec=SPEC, rho_relative=-0.1)

    def test_early_stop_and_static_influence(self):
        loader = make_loader(self.val, 64)
        result = PruningDebiaser(spec=SPEC, step_size=40, max_steps=10, rho=0.5, stop_balanced_accuracy=0.99).fit(
            self.net, loader
        )
        self.assertEqual(len(result.trajectory), 2)  # BA fell below 0.99 at the first step
        self.assertIn("balanced accuracy", result.state["message"])
        static = PruningDebiaser(spec=SPEC, step_size=30, max_steps=4, rho=0.5, dynamic=False, stop_early=False)
        calls = []
        estimate = static.influence
        static.influence = lambda run: calls.append(1) or estimate(run)
        result = static.fit(self.net, loader)
        self.assertEqual(len(calls), 1)  # one influence estimate, reused by every step
        n_pruned = result.trajectory.extra["n_pruned"]
        # full steps of 30 while enough units reduce the bias; a short last step only when they run out
        self.assertGreater(len(n_pruned), 1)
        steps = [b - a for a, b in zip(n_pruned, n_pruned[1:])]
        self.assertTrue(all(d == 30 for d in steps[:-1]) and 0 < steps[-1] <= 30, steps)
        if len(n_pruned) < 5:  # stopped before max_steps: the useful units ran out
            self.assertIn("no unpruned unit left whose influence reduces the bias", result.state["message"])

    def test_topk_never_reselects_pruned_units(self):
        net = TinyConvNet()
        masks = add_unit_masks(net, example_input=self.val["image"][:1])
        weights = FullSetProxyWeights(self.val["label"], self.val["sex"], 1)
        run = PruningRun(net, masks, [], weights, direction=1.0)
        influence = torch.linspace(-1.0, 1.0, masks.n_units)
        pruner = PruningDebiaser(spec=SPEC, step_size=50, dynamic=True)
        pruner.influence = lambda run: influence  # a fixed influence: the largest units are pruned first
        first = pruner.select_units(run, 1)
        self.assertEqual(sorted(first.tolist()), list(range(masks.n_units - 50, masks.n_units)))
        masks.prune(first)
        second = pruner.select_units(run, 2)
        self.assertEqual(sorted(second.tolist()), list(range(masks.n_units - 100, masks.n_units - 50)))
        # negative direction takes the most negative influence; only units that reduce the bias are taken
        run.direction = -1.0
        masks.reset()
        masks.prune(torch.arange(0, masks.n_units // 2 - 10))
        third = pruner.select_units(run, 3)
        self.assertEqual(sorted(third.tolist()), list(range(masks.n_units // 2 - 10, masks.n_units // 2)))

    def test_zero_influence_units_are_never_selected(self):
        # a unit with zero influence would not reduce the bias: only the strictly positive ones are taken
        net = TinyConvNet()
        masks = add_unit_masks(net, example_input=self.val["image"][:1])
        weights = FullSetProxyWeights(self.val["label"], self.val["sex"], 1)
        run = PruningRun(net, masks, [], weights, direction=1.0)
        influence = torch.zeros(masks.n_units)
        influence[[3, 7, 11]] = torch.tensor([0.5, 1e-6, 2.0])
        pruner = PruningDebiaser(spec=SPEC, step_size=10, dynamic=True)
        pruner.influence = lambda run: influence
        self.assertEqual(sorted(pruner.select_units(run, 1).tolist()), [3, 7, 11])
        masks.prune(torch.tensor([3, 7, 11]))
        self.assertEqual(pruner.select_units(run, 2).numel(), 0)  # only zero-influence units left: stop

    def test_best_step_tie_goes_to_the_earliest_step(self):
        # |bias| ties between steps 1 and 2: the earlier step (fewer units pruned) is selected
        data = make_planted_data(64, seed=3)
        loader = make_loader(data, 32)
        figures = iter([(0.9, -0.30), (0.85, -0.02), (0.84, 0.02), (0.83, -0.10)])

        def fake_evaluate(model, loader, reference=None):
            ba, bias = next(figures)
            probs = torch.full((data["label"].numel(),), 0.5)
            return BinaryEvaluation(0.5, ba, bias, 0.0), probs, data["label"].reshape(-1), data["sex"].reshape(-1)

        pruner = PruningDebiaser(spec=SPEC, step_size=2, max_steps=3, rho=0.5, stop_early=False)
        pruner._evaluate_model = fake_evaluate
        pruner.influence = lambda run: -torch.ones(run.masks.n_units)  # every unit reduces the negative bias
        result = pruner.fit(TinyConvNet(), loader)
        self.assertEqual(result.state["selected_step"], 1)
        self.assertEqual(result.validation.bias, -0.02)
        self.assertIn("selected step 1 of 3", result.state["message"])

    def test_patience_stops_after_consecutive_steps_below_rho(self):
        data = make_planted_data(64, seed=3)
        loader = make_loader(data, 32)
        # BA bound 0.8: steps 2 and 3 fall below it, step 4 would recover but is never reached with patience 2
        figures = iter([(0.9, -0.30), (0.85, -0.10), (0.79, -0.05), (0.78, -0.01), (0.86, 0.0), (0.86, 0.0)])

        def fake_evaluate(model, loader, reference=None):
            ba, bias = next(figures)
            probs = torch.full((data["label"].numel(),), 0.5)
            return BinaryEvaluation(0.5, ba, bias, 0.0), probs, data["label"].reshape(-1), data["sex"].reshape(-1)

        pruner = PruningDebiaser(spec=SPEC, step_size=2, max_steps=5, rho=0.8, stop_early=False, patience=2)
        pruner._evaluate_model = fake_evaluate
        pruner.influence = lambda run: -torch.ones(run.masks.n_units)
        result = pruner.fit(TinyConvNet(), loader)
        self.assertEqual(len(result.trajectory), 4)  # steps 0-3
        self.assertEqual(result.state["selected_step"], 1)
        self.assertIn("patience", result.state["message"])
        with self.assertRaisesRegex(ValueError, "patience"):
            PruningDebiaser(spec=SPEC, patience=0)

    def test_task_term_follows_the_threshold_with_either_proxy(self):
        data = make_planted_data(64, seed=3)
        loader = make_loader(data, 32)
        for proxy in ("probability", "threshold"):
            thresholds = iter([0.3, 0.4, 0.5, 0.6])

            def fake_evaluate(model, loader, reference=None):
                t = next(thresholds)
                probs = torch.linspace(0.05, 0.95, data["label"].numel())
                return BinaryEvaluation(t, 0.9, -0.2, 0.0), probs, data["label"].reshape(-1), data["sex"].reshape(-1)

            seen = []
            pruner = PruningDebiaser(spec=SPEC, step_size=2, max_steps=3, rho=0.5, proxy=proxy, task_weight=1.0)
            pruner._evaluate_model = fake_evaluate
            pruner.influence = lambda run: -torch.ones(run.masks.n_units)
            pruner.task_influence = lambda run: (seen.append(run.task.threshold), torch.zeros(run.masks.n_units))[1]
            pruner.fit(TinyConvNet(), loader)
            self.assertEqual(seen, [0.3, 0.4, 0.5], proxy)  # each step ranks units at the latest threshold

    def test_monai_3d_network(self):
        data = make_planted_data(48, size=8, spatial_dims=3, seed=6)
        torch.manual_seed(0)
        net = Classifier(in_shape=(2, 8, 8, 8), classes=1, channels=(4, 8), strides=(2, 2))
        loader = make_loader(data, 16)
        result = PruningDebiaser(spec=SPEC, step_size=25, max_steps=2, rho=0.0, stop_early=False).fit(net, loader)
        self.assertEqual(len(result.trajectory), 3)
        # the trajectory carries the proxy the selection lowers: at step 0, the input model's full-set EOD proxy
        probs, labels, groups = collect_outputs(net.eval(), loader, SPEC)
        pos = labels == 1
        by_hand = probs[pos & (groups == 0)].mean() - probs[pos & (groups == 1)].mean()
        self.assertEqual(len(result.trajectory.extra["proxy"]), 3)
        self.assertAlmostEqual(result.trajectory.extra["proxy"][0], float(by_hand), places=5)
        self.assertEqual(result.state["layers"], prunable_layer_names(net))  # every conv, residual ones included
        self.assertEqual(len(result.state["layers"]), 6)
        self.assertGreater(result.state["n_units"], 0)

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, "proxy metric"):
            PruningDebiaser(spec=planted_spec(metric="aod"))
        with self.assertRaises(ValueError):
            PruningDebiaser(spec=SPEC, step_size=0)
        with self.assertRaisesRegex(TypeError, "re-iterable"):
            PruningDebiaser(spec=SPEC).fit(self.net, iter(make_loader(self.val, 64)))
        only_priv = {k: v[self.val["sex"] == 1] for k, v in self.val.items()}
        with self.assertRaises(ValueError):
            PruningDebiaser(spec=SPEC).fit(self.net, make_loader(only_priv, 64))
        with self.assertRaisesRegex(ValueError, "no submodule"):
            PruningDebiaser(spec=SPEC, layers=["nope"]).fit(self.net, make_loader(self.val, 64))
        with self.assertRaisesRegex(ValueError, "proxy must be one of"):
            PruningDebiaser(spec=SPEC, proxy="logit")
        with self.assertRaisesRegex(ValueError, "temperature"):
            PruningDebiaser(spec=SPEC, temperature=0)
        with self.assertRaisesRegex(ValueError, "task_weight"):
            PruningDebiaser(spec=SPEC, task_weight=-1)

    def test_threshold_proxy_trajectory_and_direction(self):
        loader = make_loader(self.val, 32)
        before = evaluate(self.net, loader)
        pruner = PruningDebiaser(spec=SPEC, step_size=20, max_steps=4, rho=0.7, proxy="threshold", task_weight=1.0)
        result = pruner.fit(self.net, loader)
        # step 0 of the trajectory: the smoothed thresholded EOD at the standard model's threshold, by hand
        probs, labels, groups = collect_outputs(self.net.eval(), loader, SPEC)
        z = torch.logit(probs.double(), eps=1e-12)  # saturated float32 probabilities are clamped
        pos = labels == 1
        tau = 0.5 * float(z[pos].std(unbiased=False))
        s = torch.sigmoid((z - math.log(before.threshold / (1 - before.threshold))) / tau)
        by_hand = s[pos & (groups == 0)].mean() - s[pos & (groups == 1)].mean()
        self.assertAlmostEqual(result.trajectory.extra["proxy"][0], float(by_hand), places=4)
        self.assertLessEqual(abs(result.validation.bias), abs(before.bias))  # step 0 is a candidate
        self.assertGreaterEqual(result.validation.balanced_accuracy, 0.7)
        again = evaluate(result.model, loader)
        self.assertAlmostEqual(again.bias, result.validation.bias)

    def test_task_weight_spares_units_that_carry_the_task(self):
        # units 3 and 11 reduce the bias equally; pruning unit 11 would also cost TPR - FPR, so it is ranked below
        net = TinyConvNet()
        masks = add_unit_masks(net, example_input=self.val["image"][:1])
        weights = FullSetProxyWeights(self.val["label"], self.val["sex"], 1)
        task = ThresholdTaskWeights(self.val["label"], 0.5, 1.0)
        run = PruningRun(net, masks, [], weights, direction=1.0, task=task)
        bias = torch.zeros(masks.n_units)
        bias[[3, 11]] = 1.0
        harm = torch.zeros(masks.n_units)
        harm[11], harm[5] = 50.0, -50.0  # unit 5 helps the task: no bonus, only harm counts
        pruner = PruningDebiaser(spec=SPEC, step_size=1, task_weight=1.0)
        pruner.influence = lambda run: bias
        pruner.task_influence = lambda run: harm
        self.assertEqual(pruner.select_units(run, 1).tolist(), [3])
        plain = PruningDebiaser(spec=SPEC, step_size=2)
        plain.influence = lambda run: bias
        self.assertEqual(sorted(plain.select_units(run, 1).tolist()), [3, 11])  # without the task term: both


if __name__ == "__main__":
    unittest.main()
