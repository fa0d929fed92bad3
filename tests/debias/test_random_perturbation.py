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
    bootstrap_evaluation,
    collect_outputs,
    evaluate_binary,
    resample_weights,
)
from monai_fair.networks import FairVGG
from tests.debias.planted_bias import SPEC, make_loader, make_planted_data, planted_spec, train_classifier

_THREADS = torch.get_num_threads()


def setUpModule():  # tiny tensors: one thread avoids oversubscription on a shared machine
    torch.set_num_threads(1)


def tearDownModule():
    torch.set_num_threads(_THREADS)


def tiny_vgg(spatial_dims: int = 2, seed: int = 0) -> FairVGG:
    torch.manual_seed(seed)
    return FairVGG(spatial_dims, 2, 1, channels=[4, "M", 8], fc_channels=16, pool_size=1, dropout=0.0)


def numpy_figures(probs, y, groups, reference, metric, epsilon, t):
    """Plain numpy balanced accuracy, rest-minus-reference bias and objective of ``probs > t`` (NaN if undefined)."""
    probs, y, groups = (np.asarray(v, dtype=np.float64) for v in (probs, y, groups))
    pred = probs > t
    with np.errstate(invalid="ignore"):
        ba = 0.5 * (pred[y == 1].mean() + (~pred[y == 0]).mean())
    ref, rest = groups == reference, (groups != reference) & (groups >= 0)

    def rate(mask):
        return pred[mask].mean() if mask.any() else np.nan

    spd = rate(rest) - rate(ref)
    eod = rate(rest & (y == 1)) - rate(ref & (y == 1))
    bias = {"spd": spd, "eod": eod, "aod": 0.5 * (eod + rate(rest & (y == 0)) - rate(ref & (y == 0)))}[metric]
    objective = np.nan if np.isnan(bias) else (ba if abs(bias) < epsilon else 0.0)
    return ba, bias, objective


def random_case(n=60, seed=0, n_groups=3, unknown=0.0):
    g = torch.Generator().manual_seed(seed)
    probs = torch.rand(n, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (n,), generator=g)
    groups = torch.randint(0, n_groups, (n,), generator=g)
    groups[torch.rand(n, generator=g) < unknown] = -1
    return probs, y, groups


class TestBootstrap(unittest.TestCase):
    def test_resample_weights_are_the_core_draws(self):
        w = resample_weights(50, 7, seed=3, device=torch.device("cpu"))
        self.assertEqual(tuple(w.shape), (7, 50))
        # the same multinomial counts as drawing the indices explicitly with a seeded CPU generator
        idx = torch.randint(0, 50, (7, 50), generator=torch.Generator().manual_seed(3))
        counts = np.stack([np.bincount(row, minlength=50) for row in idx.numpy()])
        np.testing.assert_array_equal(w.numpy(), counts)

    @parameterized.expand([["eod"], ["spd"], ["aod"]])
    def test_matches_explicit_resampling(self, metric):
        probs, y, groups = random_case(60, seed=0, unknown=0.1)
        b = 9
        idx = torch.randint(0, 60, (b, 60), generator=torch.Generator().manual_seed(1))
        w = torch.zeros(b, 60, dtype=torch.float64).scatter_add_(1, idx, torch.ones(b, 60, dtype=torch.float64))
        thresholds = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)
        spec = planted_spec(metric=metric, min_group_size=1)
        out = bootstrap_evaluation(probs, y, groups, 1, spec, thresholds, w, 0.1)
        for ti, t in enumerate(thresholds.tolist()):
            rows = np.array([numpy_figures(probs[i], y[i], groups[i], 1, metric, 0.1, t) for i in idx])
            want = np.nanmean(rows, axis=0)
            for k, key in enumerate(("balanced_accuracy", "bias", "objective")):
                self.assertAlmostEqual(float(out[key][ti]), float(want[k]), places=10, msg=f"{key} at {t}")

    def test_nan_resample_is_ignored(self):
        probs, y, groups = torch.tensor([0.9, 0.1, 0.8, 0.2]), torch.tensor([1, 0, 1, 0]), torch.tensor([0, 0, 1, 1])
        w = torch.tensor([[2.0, 2.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
        out = bootstrap_evaluation(probs, y, groups, 1, planted_spec(min_group_size=1), 0.5, w, 0.05)
        # resample 0 has no reference sample: its bias is NaN and left out of the mean
        self.assertEqual(float(out["bias"][0]), 0.0)
        self.assertEqual(float(out["balanced_accuracy"][0]), 1.0)

    @parameterized.expand([["eod", "exclude"], ["spd", "exclude"], ["aod", "exclude"]])
    def test_score_equals_numpy(self, metric, unknown):
        probs, y, groups = random_case(80, seed=4, unknown=0.1)
        rp = RandomPerturbation(spec=planted_spec(metric=metric, unknown=unknown, min_group_size=1), margin=0.01)
        w = resample_weights(80, 20, seed=0, device=torch.device("cpu"))
        point, boot = rp.score(probs, y, groups, w)
        self.assertEqual(point.threshold, boot.threshold)
        want = numpy_figures(probs, y, groups, 1, metric, 0.05, point.threshold)
        np.testing.assert_allclose(
            [point.balanced_accuracy, point.bias, point.objective], want, rtol=0, atol=1e-12, equal_nan=True
        )
        idx = [np.repeat(np.arange(80), row.astype(int)) for row in w.numpy()]
        rows = np.array([numpy_figures(probs[i], y[i], groups[i], 1, metric, 0.04, point.threshold) for i in idx])
        np.testing.assert_allclose(
            [boot.balanced_accuracy, boot.bias, boot.objective], np.nanmean(rows, 0), rtol=0, atol=1e-12
        )


class TestRandomPerturbation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = train_classifier(tiny_vgg(2), make_planted_data(256, size=8, seed=0), steps=100)
        cls.loader = make_loader(make_planted_data(256, size=8, seed=1), 64)

    def test_planted_gap_shrinks(self):
        before = evaluate_binary(*collect_outputs(self.net, self.loader), SPEC)
        self.assertLess(before.bias, -0.1)  # the shortcut favours the privileged group
        res = RandomPerturbation(spec=planted_spec(epsilon=0.05), trials=20, n_bootstrap=50, seed=0).fit(
            self.net, self.loader
        )
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
        res = RandomPerturbation(spec=SPEC, trials=3, sigma=0.0, n_bootstrap=10).fit(self.net, self.loader)
        self.assertEqual(res.state["trial"], 0)  # all candidates equal: ties go to the unperturbed model
        for k, v in res.model.state_dict().items():
            torch.testing.assert_close(v, state[k])
        for k, v in self.net.state_dict().items():
            torch.testing.assert_close(v, state[k])
        self.assertIsNot(res.model, self.net)
        ref = RandomPerturbation(spec=SPEC, trials=3, sigma=0.0, include_unperturbed=False, n_bootstrap=10)
        self.assertEqual(ref.fit(self.net, self.loader).trajectory.step, [1, 2, 3])

    def test_seeded_and_save_reload(self):
        a = RandomPerturbation(spec=SPEC, trials=4, seed=5, n_bootstrap=10).fit(self.net, self.loader)
        b = RandomPerturbation(spec=SPEC, trials=4, seed=5, n_bootstrap=10).fit(self.net, self.loader)
        self.assertEqual(a.trajectory.objective, b.trajectory.objective)
        buf = io.BytesIO()
        torch.save(a.model.state_dict(), buf)
        buf.seek(0)
        fresh = tiny_vgg(2, seed=123)
        fresh.load_state_dict(torch.load(buf, weights_only=True))
        fresh.eval()
        x = self.loader[0]["image"]
        torch.testing.assert_close(fresh(x), a.model(x), rtol=0, atol=0)
        c = RandomPerturbation(spec=SPEC, trials=4, seed=6, n_bootstrap=10).fit(self.net, self.loader)
        self.assertNotEqual(a.trajectory.extra["point_bias"][1:], c.trajectory.extra["point_bias"][1:])

    def test_3d_with_single_group_batch(self):
        data = make_planted_data(48, size=4, spatial_dims=3, seed=2)
        loader = make_loader(data, 12, torch.argsort(data["sex"], stable=True))
        self.assertEqual(torch.unique(loader[0]["sex"]).tolist(), [0])
        net = tiny_vgg(3).eval()
        res = RandomPerturbation(spec=SPEC, trials=3, n_bootstrap=20).fit(net, loader)
        self.assertEqual(len(res.trajectory), 4)
        self.assertTrue(all(np.isfinite(res.trajectory.extra["point_bias"])))
        self.assertEqual(res.model.features[0].weight.ndim, 5)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "no batch"):
            RandomPerturbation(spec=SPEC, trials=1).fit(self.net, [])
        one_group = [{**b, "sex": torch.zeros_like(b["sex"])} for b in self.loader]
        with self.assertRaisesRegex(ValueError, "at least one other group"):
            RandomPerturbation(spec=SPEC, trials=1).fit(self.net, one_group)
        bad_labels = [{**b, "label": b["label"] * 3} for b in self.loader]
        with self.assertRaisesRegex(ValueError, "binary"):
            RandomPerturbation(spec=SPEC, trials=1).fit(self.net, bad_labels)
        with self.assertRaises(ValueError):
            RandomPerturbation(spec=SPEC, trials=0, include_unperturbed=False)
        with self.assertRaises(ValueError):
            RandomPerturbation(spec=SPEC, sigma=-1.0)


class TestJsonConfig(unittest.TestCase):
    def test_bundle_config_builds_it(self):
        from monai.bundle import ConfigParser

        obj = ConfigParser(
            {
                "debiaser": {
                    "_target_": "RandomPerturbation",
                    "spec": {"_target_": "monai_fair.metrics.FairnessSpec", "attributes": "age_group"},
                    **{"trials": 11, "sigma": 0.05},
                }
            }
        ).get_parsed_content("debiaser")
        self.assertIsInstance(obj, RandomPerturbation)
        self.assertEqual((obj.trials, obj.sigma, obj.spec.attributes), (11, 0.05, ("age_group",)))


if __name__ == "__main__":
    unittest.main()
