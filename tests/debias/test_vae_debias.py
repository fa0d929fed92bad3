# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""VAEDebiaser: the adversarial gradient reaches the encoder in both schemes, determinism, persistence, and a tiny
end-to-end removal check judged by fresh probes."""

from __future__ import annotations

import tempfile
import unittest

import numpy as np
import torch
from parameterized import parameterized
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from monai_fair.debias.vae_debias import VAEDebiaser, ganin_lambda

_THREADS = torch.get_num_threads()


def setUpModule():
    torch.set_num_threads(1)


def tearDownModule():
    torch.set_num_threads(_THREADS)


def planted(seed, n=600, d=64, sex_strength=3.0, task_strength=2.0):
    """Isotropic noise plus orthonormal sex, task and age directions."""
    rng = np.random.default_rng(seed)
    sex = rng.integers(0, 2, size=n)
    y = (rng.random(n) < 0.4).astype(int)
    age = rng.normal(65.0, 5.0, size=n)
    basis, _ = np.linalg.qr(rng.normal(size=(d, 3)))
    x = (
        rng.normal(size=(n, d))
        + np.outer((2 * sex - 1) * sex_strength, basis[:, 0])
        + np.outer(y * task_strength, basis[:, 1])
        + np.outer((age - 65.0) / 5.0, basis[:, 2])
    )
    return x.astype(np.float32), sex, y, age


class TestVAEDebiaserGradients(unittest.TestCase):
    def setUp(self):
        x, sex, _, age = planted(0, n=40, d=8)
        self.x, self.sex, self.age = torch.as_tensor(x), torch.as_tensor(sex), torch.as_tensor(age)

    def encoder_grad_of_step(self, scheme, weight):
        """Encoder weight change caused by the adversarial term in one training step (same noise, same batch)."""
        changes = []
        for w in (0.0, weight):
            deb = VAEDebiaser(latent_size=4, scheme=scheme, adversarial_weight=w, schedule="constant", epochs=0, seed=1)
            deb.fit(self.x, self.sex, self.age)  # scalers only (no epochs)
            deb.build(self.x.shape[1])
            s, a = deb._targets(len(self.x), self.sex, self.age)
            before = deb.model.encoder[0].weight.detach().clone()
            deb.vae_optimizer = torch.optim.SGD(deb.vae_optimizer.param_groups[0]["params"], lr=1.0)
            deb.train_step(deb._scale(self.x), s, a, w, torch.Generator().manual_seed(0))
            changes.append(deb.model.encoder[0].weight.detach() - before)
        return changes[1] - changes[0]

    @parameterized.expand([["grl"], ["alternating"]])
    def test_adversary_gradient_reaches_encoder(self, scheme):
        diff = self.encoder_grad_of_step(scheme, 0.5)
        self.assertGreater(float(diff.abs().max()), 1e-6)

    def test_zero_weight_blocks_the_gradient(self):
        # the check above can fail: with no adversarial weight nothing of the adversary reaches the encoder
        self.assertEqual(float(self.encoder_grad_of_step("grl", 0.0).abs().max()), 0.0)

    def test_schemes_push_the_same_way(self):
        # GRL (+L_adv behind a reversal) and alternating (-lambda * L_adv) give the encoder the same adversarial step
        # when the adversaries are identical (the alternating adversary step runs on z.detach() first, so compare
        # with an adversary learning rate of 0)
        diffs = []
        for scheme in ("grl", "alternating"):
            deb = VAEDebiaser(
                latent_size=4, scheme=scheme, adversarial_weight=0.5, schedule="constant", epochs=0, seed=1
            )
            deb.fit(self.x, self.sex, self.age)
            deb.build(self.x.shape[1])
            for g in deb.adversary_optimizer.param_groups:
                g["lr"] = 0.0
            s, a = deb._targets(len(self.x), self.sex, self.age)
            deb.vae_optimizer = torch.optim.SGD(deb.vae_optimizer.param_groups[0]["params"], lr=1.0)
            before = deb.model.encoder[0].weight.detach().clone()
            deb.train_step(deb._scale(self.x), s, a, 0.5, torch.Generator().manual_seed(0))
            diffs.append(deb.model.encoder[0].weight.detach() - before)
        torch.testing.assert_close(diffs[0], diffs[1], rtol=1e-4, atol=1e-6)

    @parameterized.expand([["decorrelation_weight"], ["mmd_weight"]])
    def test_matching_penalty_reaches_encoder(self, weight):
        # with the adversaries off, the matching penalty alone moves the encoder, and only when its weight is on
        changes = []
        for w in (0.0, 5.0):
            deb = VAEDebiaser(latent_size=4, adversarial_weight=0.0, epochs=0, seed=1, **{weight: w})
            deb.fit(self.x, self.sex, self.age)
            deb.build(self.x.shape[1])
            s, a = deb._targets(len(self.x), self.sex, self.age)
            deb.vae_optimizer = torch.optim.SGD(deb.vae_optimizer.param_groups[0]["params"], lr=1.0)
            before = deb.model.encoder[0].weight.detach().clone()
            deb.train_step(deb._scale(self.x), s, a, 0.0, torch.Generator().manual_seed(0))
            changes.append(deb.model.encoder[0].weight.detach() - before)
        self.assertGreater(float((changes[1] - changes[0]).abs().max()), 1e-6)

    def test_ganin_schedule(self):
        self.assertEqual(ganin_lambda(0.0, 0.1), 0.0)
        self.assertAlmostEqual(ganin_lambda(1.0, 0.1), 0.1 * (2 / (1 + np.exp(-10)) - 1))
        self.assertLess(ganin_lambda(0.1, 1.0), ganin_lambda(0.5, 1.0))


class TestVAEDebiaserFit(unittest.TestCase):
    def test_deterministic_unknowns_and_persistence(self):
        x, sex, _, age = planted(1, n=64, d=8)
        sex[:5] = -1
        age[5:10] = np.nan
        kw = dict(latent_size=4, epochs=2, seed=3)
        a = VAEDebiaser(**kw).fit(x, sex, age)
        b = VAEDebiaser(**kw).fit(x, sex, age)
        self.assertTrue(all(np.isfinite(list(h.values())).all() for h in a.history))
        self.assertEqual(len(a.history), 2)
        for output in ("recon_mean", "recon_sample", "latent_mu"):
            torch.testing.assert_close(a.transform(x, output), b.transform(x, output))
        self.assertEqual(tuple(a.transform(x, "latent_mu").shape), (64, 4))
        self.assertEqual(tuple(a.transform(x).shape), (64, 8))
        with tempfile.TemporaryDirectory() as tmp:
            c = VAEDebiaser.load(a.save(f"{tmp}/vae.pt"))
        torch.testing.assert_close(c.transform(x), a.transform(x))
        self.assertEqual(c.config, a.config)

    def test_task_head_needs_labels_and_persists(self):
        x, sex, y, age = planted(2, n=64, d=8)
        kw = dict(latent_size=4, epochs=2, seed=3, task_weight=1.0, decorrelation_weight=1.0, penalty_batch_size=32)
        with self.assertRaisesRegex(ValueError, "labels"):
            VAEDebiaser(**kw).fit(x, sex, age)
        with self.assertRaisesRegex(ValueError, "labels has 3 entries"):
            VAEDebiaser(**kw).fit(x, sex, age, labels=[0, 1, 0])
        a = VAEDebiaser(**kw).fit(x, sex, age, labels=y)
        self.assertTrue(all(h["task_loss"] > 0 and h["decorrelation"] > 0 for h in a.history))
        # the paper's VAE ignores labels: the same fit with or without them
        plain = dict(latent_size=4, epochs=1, seed=3)
        torch.testing.assert_close(
            VAEDebiaser(**plain).fit(x, sex, age, labels=y).transform(x),
            VAEDebiaser(**plain).fit(x, sex, age).transform(x),
        )
        with tempfile.TemporaryDirectory() as tmp:
            c = VAEDebiaser.load(a.save(f"{tmp}/vae.pt"))
        torch.testing.assert_close(c.task_head.weight, a.task_head.weight)
        torch.testing.assert_close(c.transform(x), a.transform(x))
        self.assertEqual(c.config, a.config)

    def test_invalid(self):
        with self.assertRaises(ValueError):
            VAEDebiaser(scheme="ascent")
        with self.assertRaises(ValueError):
            VAEDebiaser(kl_weight=-1.0)
        with self.assertRaisesRegex(ValueError, "decorrelation_weight"):
            VAEDebiaser(decorrelation_weight=-1.0)
        with self.assertRaisesRegex(ValueError, "penalty_batch_size"):
            VAEDebiaser(penalty_batch_size=1)
        with self.assertRaises(RuntimeError):
            VAEDebiaser().transform(np.zeros((2, 3)))
        with self.assertRaises(ValueError):
            VAEDebiaser(epochs=1).fit(np.full((4, 3), np.nan))
        with self.assertRaises(ValueError):
            VAEDebiaser(epochs=1).fit(np.zeros((4, 3)), sex=[0, 1])


class TestVAEDebiaserEndToEnd(unittest.TestCase):
    def test_fresh_probe_loses_sex_keeps_task(self):
        x, sex, y, age = planted(0)
        deb = VAEDebiaser(
            latent_size=32, epochs=30, scheme="alternating", adversarial_weight=3.0, adversary_steps=5, seed=0
        )
        z = deb.fit(x, sex, age).transform(x).numpy()
        rng = np.random.default_rng(0)
        perm = rng.permutation(len(x))
        tr, te = perm[:300], perm[300:]

        def judge(e):
            hgb = HistGradientBoostingClassifier(random_state=0).fit(e[tr], sex[tr])
            sex_auc = roc_auc_score(sex[te], hgb.predict_proba(e[te])[:, 1])
            task = LogisticRegression(max_iter=1000).fit(e[tr], y[tr])
            return sex_auc, roc_auc_score(y[te], task.decision_function(e[te]))

        (sex_before, task_before), (sex_after, task_after) = judge(x), judge(z)
        self.assertGreater(sex_before, 0.95)
        self.assertLess(sex_after, sex_before - 0.05)
        self.assertGreater(task_after, task_before - 0.12)

    def test_decorrelation_leaves_fresh_linear_probes_near_chance(self):
        # adversaries alone fool themselves (fresh probes still find sex); the table-wide decorrelation penalty
        # does not have that loophole: on held-out rows a fresh linear probe drops towards chance, the task stays
        drops, task_changes = [], []
        for seed in range(3):
            x, sex, y, age = planted(seed, n=400, d=32)
            fit, probe_train, probe_test = slice(0, 200), slice(200, 300), slice(300, 400)
            aucs = []
            for weight in (0.0, 10.0):
                deb = VAEDebiaser(
                    latent_size=8,
                    epochs=20,
                    scheme="alternating",
                    adversarial_weight=3.0,
                    adversary_steps=2,
                    decorrelation_weight=weight,
                    penalty_batch_size=1024,
                    seed=seed,
                )
                z = deb.fit(x[fit], sex[fit], age[fit]).transform(x).numpy()
                aucs.append(
                    [
                        roc_auc_score(
                            t[probe_test],
                            LogisticRegression(max_iter=1000)
                            .fit(z[probe_train], t[probe_train])
                            .decision_function(z[probe_test]),
                        )
                        for t in (sex, y)
                    ]
                )
            (sex_adv, task_adv), (sex_dec, task_dec) = aucs
            drops.append(sex_adv - sex_dec)
            task_changes.append(task_dec - task_adv)
        self.assertGreaterEqual(sum(d > 0.2 for d in drops), 2, drops)
        self.assertGreater(float(np.mean(task_changes)), -0.08, task_changes)


if __name__ == "__main__":
    unittest.main()
