# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Random perturbation and the vectorised bootstrap: oracle checks, candidate 0, direction, 2D/3D, save/reload."""

from __future__ import annotations

import io
import unittest

import numpy as np
import torch
from parameterized import parameterized

from monai_fair.debias import (
    RandomPerturbation,
    bootstrap_objective,
    bootstrap_weights,
    collect_outputs,
    evaluate_binary,
)
from monai_fair.metrics import compute_binary_bias, constrained_objective
from monai_fair.networks import FairVGG
from tests.debias.planted_bias import make_loader, make_planted_data, train_classifier

_THREADS = torch.get_num_threads()


def setUpModule():  # tiny tensors: one thread avoids oversubscription on a shared machine
    torch.set_num_threads(1)


def tearDownModule():
    torch.set_num_threads(_THREADS)


def tiny_vgg(spatial_dims: int = 2, seed: int = 0) -> FairVGG:
    torch.manual_seed(seed)
    return FairVGG(spatial_dims, 2, 1, channels=[4, "M", 8], fc_channels=16, pool_size=1, dropout=0.0)


class TestBootstrap(unittest.TestCase):
    def test_weights(self):
        w = bootstrap_weights(50, 7, seed=3)
        self.assertEqual(tuple(w.shape), (7, 50))
        torch.testing.assert_close(w.sum(1), torch.full((7,), 50.0, dtype=torch.float64))
        torch.testing.assert_close(bootstrap_weights(50, 7, seed=3), w)
        with self.assertRaises(ValueError):
            bootstrap_weights(0, 3)

    @parameterized.expand([["eod"], ["spd"], ["aod"]])
    def test_matches_explicit_resampling(self, kind):
        g = torch.Generator().manual_seed(0)
        n, b = 60, 9
        probs, y, groups = (
            torch.rand(n, generator=g),
            torch.randint(0, 2, (n,), generator=g),
            torch.randint(0, 3, (n,), generator=g),
        )
        idx = torch.randint(0, n, (b, n), generator=g)
        w = torch.zeros(b, n, dtype=torch.float64).scatter_add_(1, idx, torch.ones(b, n, dtype=torch.float64))
        thresholds = torch.tensor([0.2, 0.5, 0.8])
        out = bootstrap_objective(probs, y, groups, thresholds, w, privileged=1, kind=kind, epsilon=0.1)
        for ti, t in enumerate(thresholds):
            for r in range(b):
                pr, yr, gr = (probs[idx[r]] > t).long(), y[idx[r]], groups[idx[r]]
                ba = 0.5 * (pr[yr == 1].float().mean() + (1 - pr[yr == 0]).float().mean())
                bias = compute_binary_bias(pr, yr, gr, 1, kind)
                self.assertAlmostEqual(float(out["balanced_accuracy"][ti, r]), float(ba), places=6)
                self.assertAlmostEqual(float(out["bias"][ti, r]), float(bias), places=10)
                self.assertAlmostEqual(
                    float(out["objective"][ti, r]), float(constrained_objective(ba, bias, 0.1)), places=6
                )

    def test_nan_when_resample_lacks_group(self):
        probs, y, groups = torch.tensor([0.9, 0.1, 0.8, 0.2]), torch.tensor([1, 0, 1, 0]), torch.tensor([0, 0, 1, 1])
        w = torch.tensor([[2.0, 2.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
        out = bootstrap_objective(probs, y, groups, 0.5, w)
        self.assertTrue(torch.isnan(out["bias"][0, 0]) and torch.isnan(out["objective"][0, 0]))
        self.assertEqual(float(out["bias"][0, 1]), 0.0)


class TestRandomPerturbation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = train_classifier(tiny_vgg(2), make_planted_data(256, size=8, seed=0), steps=100)
        cls.loader = make_loader(make_planted_data(256, size=8, seed=1), 64)

    def test_planted_gap_shrinks(self):
        before = evaluate_binary(*collect_outputs(self.net, self.loader), privileged=1, kind="eod", epsilon=0.05)
        self.assertLess(before.bias, -0.1)  # the shortcut favours the privileged group
        res = RandomPerturbation(trials=20, epsilon=0.05, num_bootstrap=50, seed=0).fit(self.net, self.loader)
        self.assertGreater(res.state["trial"], 0)
        self.assertLess(abs(res.validation.bias), abs(before.bias))
        self.assertGreaterEqual(res.trajectory.objective[res.state["trial"]], res.trajectory.objective[0])
        self.assertEqual(res.trajectory.step, list(range(21)))
        # the selection is the argmax (first on ties) of the bootstrapped objective
        self.assertEqual(res.state["trial"], int(np.argmax(res.trajectory.objective)))
        print(
            f"\nRandomPerturbation eod: before |bias|={abs(before.bias):.3f} BA={before.balanced_accuracy:.3f}; "
            f"after |bias|={abs(res.validation.bias):.3f} BA={res.validation.balanced_accuracy:.3f} "
            f"(trial {res.state['trial']})"
        )

    def test_candidate_zero_and_input_untouched(self):
        state = {k: v.clone() for k, v in self.net.state_dict().items()}
        res = RandomPerturbation(trials=3, sigma=0.0, num_bootstrap=10).fit(self.net, self.loader)
        self.assertEqual(res.state["trial"], 0)  # all candidates equal: ties go to the unperturbed model
        for k, v in res.model.state_dict().items():
            torch.testing.assert_close(v, state[k])
        for k, v in self.net.state_dict().items():
            torch.testing.assert_close(v, state[k])
        self.assertIsNot(res.model, self.net)
        ref = RandomPerturbation(trials=3, sigma=0.0, include_unperturbed=False, num_bootstrap=10)
        self.assertEqual(ref.fit(self.net, self.loader).trajectory.step, [1, 2, 3])

    def test_seeded_and_save_reload(self):
        a = RandomPerturbation(trials=4, seed=5, num_bootstrap=10).fit(self.net, self.loader)
        b = RandomPerturbation(trials=4, seed=5, num_bootstrap=10).fit(self.net, self.loader)
        self.assertEqual(a.trajectory.objective, b.trajectory.objective)
        buf = io.BytesIO()
        torch.save(a.model.state_dict(), buf)
        buf.seek(0)
        fresh = tiny_vgg(2, seed=123)
        fresh.load_state_dict(torch.load(buf, weights_only=True))
        fresh.eval()
        x = self.loader[0]["image"]
        torch.testing.assert_close(fresh(x), a.model(x), rtol=0, atol=0)
        c = RandomPerturbation(trials=4, seed=6, num_bootstrap=10).fit(self.net, self.loader)
        self.assertNotEqual(a.trajectory.extra["point_bias"][1:], c.trajectory.extra["point_bias"][1:])

    def test_3d_with_single_group_batch(self):
        data = make_planted_data(48, size=4, spatial_dims=3, seed=2)
        loader = make_loader(data, 12, torch.argsort(data["sex"], stable=True))
        self.assertEqual(torch.unique(loader[0]["sex"]).tolist(), [0])
        net = tiny_vgg(3).eval()
        res = RandomPerturbation(trials=3, num_bootstrap=20).fit(net, loader)
        self.assertEqual(len(res.trajectory), 4)
        self.assertTrue(all(np.isfinite(res.trajectory.extra["point_bias"])))
        self.assertEqual(res.model.features[0].weight.ndim, 5)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "no batch"):
            RandomPerturbation(trials=1).fit(self.net, [])
        one_group = [{**b, "sex": torch.zeros_like(b["sex"])} for b in self.loader]
        with self.assertRaisesRegex(ValueError, "at least one other group"):
            RandomPerturbation(trials=1).fit(self.net, one_group)
        bad_labels = [{**b, "label": b["label"] * 3} for b in self.loader]
        with self.assertRaisesRegex(ValueError, "binary"):
            RandomPerturbation(trials=1).fit(self.net, bad_labels)
        with self.assertRaises(ValueError):
            RandomPerturbation(trials=0, include_unperturbed=False)
        with self.assertRaises(ValueError):
            RandomPerturbation(sigma=-1.0)


class TestJsonConfig(unittest.TestCase):
    def test_bundle_config_builds_it(self):
        from monai.bundle import ConfigParser

        obj = ConfigParser(
            {
                "debiaser": {
                    "_target_": "RandomPerturbation",
                    **{"trials": 11, "sigma": 0.05, "attribute_key": "age_group"},
                }
            }
        ).get_parsed_content("debiaser")
        self.assertIsInstance(obj, RandomPerturbation)
        self.assertEqual((obj.trials, obj.sigma, obj.attribute_key), (11, 0.05, "age_group"))


if __name__ == "__main__":
    unittest.main()
