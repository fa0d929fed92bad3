# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Adversarial fine-tuning: critic target on probabilities, head kept, both critics, 2D/3D, MONAI nets, direction."""

from __future__ import annotations

import io
import unittest

import numpy as np
import torch
from monai.networks.nets import Classifier
from parameterized import parameterized

from monai_fair.debias import AdversarialFineTuning, batch_bias_target, collect_outputs, evaluate_binary
from monai_fair.metrics import compute_bias_proxy
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


FAST = {"epochs": 1, "critic_steps": 4, "actor_steps": 3, "critic_lr": 1e-3, "actor_lr": 1e-3}


class TestBatchBiasTarget(unittest.TestCase):
    def test_formulas(self):
        p = torch.tensor([0.9, 0.2, 0.6, 0.7, 0.1, 0.4])
        y = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
        a = torch.tensor([0, 0, 0, 1, 1, 1])
        for metric in ("spd", "eod"):
            torch.testing.assert_close(batch_bias_target(p, y, a, 1, metric), compute_bias_proxy(p, y, a, 1, metric))
        # by hand: EOD = mean(0.9, 0.6) - 0.7 = 0.05; FPR gap = 0.2 - mean(0.1, 0.4) = -0.05; AOD = 0
        self.assertAlmostEqual(float(batch_bias_target(p, y, a, 1, "eod")), 0.05, places=6)
        self.assertAlmostEqual(float(batch_bias_target(p, y, a, 1, "aod")), 0.0, places=6)
        self.assertAlmostEqual(float(batch_bias_target(p, y, a, 1, "spd")), 0.5666667 - 0.4, places=6)

    def test_undefined_batch_gives_none(self):
        p, y = torch.rand(4), torch.tensor([1.0, 0.0, 1.0, 0.0])
        self.assertIsNone(batch_bias_target(p, y, torch.zeros(4, dtype=torch.long), 1, "spd"))
        # EOD needs positives in both groups; AOD also negatives
        self.assertIsNone(batch_bias_target(p, y, torch.tensor([0, 1, 0, 1]), 1, "eod"))
        self.assertIsNone(batch_bias_target(p, y, torch.tensor([0, 0, 1, 0]), 1, "aod"))
        self.assertIsNotNone(batch_bias_target(p, y, torch.tensor([0, 0, 1, 1]), 1, "aod"))

    def test_unknown_codes_follow_the_policy(self):
        # reference 1: 0.7 (y=1); rest 0: 0.9 (y=1); unknown: 0.3 (y=1) -> EOD 0.2 (exclude) or 0.6 - 0.7 (group)
        p = torch.tensor([0.9, 0.7, 0.3, 0.5])
        y = torch.tensor([1.0, 1.0, 1.0, 0.0])
        a = torch.tensor([0, 1, -1, -1])
        self.assertAlmostEqual(float(batch_bias_target(p, y, a, 1, "eod", "exclude")), 0.2, places=6)
        self.assertAlmostEqual(float(batch_bias_target(p, y, a, 1, "eod", "group")), -0.1, places=6)


class TestAdversarialFineTuning(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = train_classifier(tiny_vgg(2), make_planted_data(256, size=8, seed=0), steps=100)
        cls.loader = make_loader(make_planted_data(256, size=8, seed=1), 64)

    def test_planted_gap_shrinks(self):
        before = evaluate_binary(*collect_outputs(self.net, self.loader), SPEC)
        self.assertLess(before.bias, -0.1)
        adv = AdversarialFineTuning(
            spec=planted_spec(epsilon=0.05),
            epochs=3,
            critic_steps=16,
            actor_steps=12,
            lam=5.0,
            critic_lr=1e-3,
            actor_lr=1e-3,
        )
        res = adv.fit(self.net, self.loader)
        after = evaluate_binary(*collect_outputs(res.model, self.loader), SPEC)
        self.assertGreater(res.state["epoch"], 0)
        self.assertEqual(res.state["epoch"], int(np.argmax(res.trajectory.objective)))
        self.assertGreater(max(res.trajectory.objective), res.trajectory.objective[0])
        # at the balanced-accuracy-optimal threshold the fine-tuned model is fairer than the input
        self.assertLess(abs(after.bias), abs(before.bias))
        self.assertLess(abs(res.validation.bias), 0.05)
        losses = res.trajectory.extra["critic_loss"][1:]
        self.assertTrue(all(np.isfinite(losses)))
        print(
            f"\nAdversarial eod (BA-optimal t): before |bias|={abs(before.bias):.3f} "
            f"BA={before.balanced_accuracy:.3f}; "
            f"after |bias|={abs(after.bias):.3f} BA={after.balanced_accuracy:.3f}; selected (objective t="
            f"{res.threshold:.2f}) |bias|={abs(res.validation.bias):.3f} BA={res.validation.balanced_accuracy:.3f}"
        )

    def test_head_kept_and_input_untouched(self):
        state = {k: v.clone() for k, v in self.net.state_dict().items()}
        # no actor step: only the critic trains, so the returned model is the input, head included
        res = AdversarialFineTuning(spec=SPEC, **{**FAST, "actor_steps": 0}).fit(self.net, self.loader)
        self.assertEqual(res.state["epoch"], 0)
        for k, v in res.model.state_dict().items():
            torch.testing.assert_close(v, state[k], rtol=0, atol=0)
        # with actor steps, the head is fine-tuned from its trained weights (not re-initialised)
        res = AdversarialFineTuning(spec=SPEC, **{**FAST, "epochs": 1, "actor_lr": 1e-5}).fit(self.net, self.loader)
        head, ref = res.model.classifier[6].weight, state["classifier.6.weight"]
        self.assertLess(float((head - ref).abs().max()), 1e-3)
        for k, v in self.net.state_dict().items():
            torch.testing.assert_close(v, state[k], rtol=0, atol=0)

    def test_flat_critic_skips_other_batch_sizes_and_missing_groups(self):
        data = make_planted_data(60, size=8, seed=4)
        g0, g1 = torch.nonzero(data["sex"] == 0)[:, 0], torch.nonzero(data["sex"] == 1)[:, 0]
        rest = torch.cat([g0[16:], g1])
        order = torch.cat([g0[:16], rest[torch.randperm(len(rest), generator=torch.Generator().manual_seed(0))]])
        loader = make_loader(data, 16, order)
        # batch 0 lacks group 1, batches 1 and 2 hold both groups, batch 3 has 12 samples
        self.assertEqual([torch.unique(b["sex"]).numel() for b in loader], [1, 2, 2, 2])
        self.assertEqual([len(b["sex"]) for b in loader], [16, 16, 16, 12])
        flat = AdversarialFineTuning(spec=planted_spec(metric="spd"), critic="flat", **{**FAST, "critic_steps": 4})
        res = flat.fit(self.net, loader)
        self.assertEqual(res.trajectory.extra["critic_skipped"][1], 2.0)  # batch 0 (group) and batch 3 (size)
        self.assertTrue(np.isfinite(res.trajectory.extra["critic_loss"][1]))
        self.assertEqual(res.state["critic"]["net.0.weight"].shape[1], 16 * 16)
        deep = AdversarialFineTuning(spec=planted_spec(metric="spd"), **{**FAST, "critic_steps": 4}).fit(
            self.net, loader
        )
        self.assertEqual(deep.trajectory.extra["critic_skipped"][1], 1.0)  # any batch size is fine

    @parameterized.expand([["vgg3d"], ["monai_classifier"]])
    def test_other_models(self, name):
        if name == "vgg3d":
            data = make_planted_data(32, size=4, spatial_dims=3, seed=5)
            net, module = tiny_vgg(3), None
        else:
            data = make_planted_data(32, size=8, seed=5)
            torch.manual_seed(0)
            net, module = Classifier((2, 8, 8), 1, (4, 8), (2, 2)), "final.1"
        loader = make_loader(data, 8, torch.argsort(data["sex"], stable=True))
        res = AdversarialFineTuning(spec=SPEC, feature_module=module, **FAST).fit(net.eval(), loader)
        self.assertEqual(len(res.trajectory), 2)
        self.assertGreater(res.trajectory.extra["critic_skipped"][1], 0)
        self.assertTrue(np.isfinite(res.trajectory.extra["actor_loss"][1]))
        buf = io.BytesIO()
        torch.save(res.model.state_dict(), buf)
        buf.seek(0)
        fresh = tiny_vgg(3, seed=9) if name == "vgg3d" else Classifier((2, 8, 8), 1, (4, 8), (2, 2))
        fresh.load_state_dict(torch.load(buf, weights_only=True))
        x = loader[0]["image"]
        torch.testing.assert_close(fresh.eval()(x), res.model(x), rtol=0, atol=0)

    def test_seeded(self):
        a = AdversarialFineTuning(spec=SPEC, **FAST, seed=3).fit(self.net, self.loader)
        b = AdversarialFineTuning(spec=SPEC, **FAST, seed=3).fit(self.net, self.loader)
        self.assertEqual(a.trajectory.extra["critic_loss"][1:], b.trajectory.extra["critic_loss"][1:])
        for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values()):
            torch.testing.assert_close(v, w, rtol=0, atol=0, msg=k)

    def test_errors(self):
        with self.assertRaises(ValueError):
            AdversarialFineTuning(spec=SPEC, critic="lstm")
        with self.assertRaises(ValueError):
            AdversarialFineTuning(spec=SPEC, lam=-1.0)
        with self.assertRaisesRegex(ValueError, "no batch"):
            AdversarialFineTuning(spec=SPEC, **FAST).fit(self.net, [])
        one_group = [{**b, "sex": torch.ones_like(b["sex"])} for b in self.loader]
        with self.assertRaisesRegex(ValueError, "at least one other group"):
            AdversarialFineTuning(spec=SPEC, **FAST).fit(self.net, one_group)
        bad_labels = [{**b, "label": b["label"] + 1} for b in self.loader]
        with self.assertRaisesRegex(ValueError, "binary"):
            AdversarialFineTuning(spec=SPEC, **FAST).fit(self.net, bad_labels)
        with self.assertRaisesRegex(ValueError, "no submodule"):
            AdversarialFineTuning(spec=SPEC, feature_module="head", **FAST).fit(self.net, self.loader)


class TestJsonConfig(unittest.TestCase):
    def test_bundle_config_builds_it(self):
        from monai.bundle import ConfigParser

        obj = ConfigParser(
            {
                "debiaser": {
                    "_target_": "AdversarialFineTuning",
                    "spec": "@fairness",
                    **{"feature_module": "classifier.6", "critic": "flat", "lam": 0.75},
                },
                "fairness": {"_target_": "monai_fair.metrics.FairnessSpec", "reference": 1, "epsilon": 0.03},
            }
        ).get_parsed_content("debiaser")
        self.assertIsInstance(obj, AdversarialFineTuning)
        self.assertEqual((obj.feature_module, obj.critic, obj.lam), ("classifier.6", "flat", 0.75))
        self.assertEqual((obj.spec.epsilon, obj.spec.reference), (0.03, 1))


if __name__ == "__main__":
    unittest.main()
