# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Adversarial multi-task training (Li et al. 2021): the orthogonality loss, the critic's label and Algorithm 1's
three updates, each of which must change only its own parameters."""

from __future__ import annotations

import math
import unittest

import torch
from torch.utils.data import DataLoader

from monai_fair import FairnessSpec
from monai_fair.debias.adversarial_multitask import (
    AdversarialMultitaskTrainer,
    EpochScoreMemory,
    batch_spd_label,
    calibrate_critic,
    composition_batches,
    orthogonality_loss,
    positive_scores,
)
from monai_fair.networks import BiasCriticHeads, fair_vgg11, split_vgg


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> set[str]:
    return {k for k, v in module.named_parameters() if not torch.equal(before[k], v.detach())}


class TestOrthogonalityLoss(unittest.TestCase):
    def test_zero_for_orthogonal_gradients(self):
        gd = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.6, 0.8]])
        gp = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.8, -0.6]])
        self.assertAlmostEqual(float(orthogonality_loss(gd, gp, "paper")), 0.0, places=12)  # orthonormal
        self.assertAlmostEqual(float(orthogonality_loss(3 * gd, 0.1 * gp, "cosine")), 0.0, places=12)

    def test_positive_otherwise_and_hand_value(self):
        gd = torch.tensor([[1.0, 0.0]])
        gp = torch.tensor([[1.0, 1.0]]) / math.sqrt(2.0)
        # Gram [[1, 1/sqrt2], [1/sqrt2, 1]] - I: off-diagonals 1/sqrt2 -> ||.||_F^2 = 2 * 1/2 = 1
        self.assertAlmostEqual(float(orthogonality_loss(gd, gp, "paper")), 1.0, places=6)
        self.assertAlmostEqual(float(orthogonality_loss(gd, gp, "cosine")), 0.5, places=6)
        # orthogonal but not unit norm: the paper's form still penalises the collapse of the tangent space
        self.assertGreater(float(orthogonality_loss(torch.tensor([[0.1, 0.0]]), torch.tensor([[0.0, 0.1]]))), 1.0)

    def test_gradient_reaches_inputs_and_validation(self):
        gd = torch.randn(4, 6, requires_grad=True)
        gp = torch.randn(4, 6)
        orthogonality_loss(gd, gp).backward()
        self.assertTrue(torch.isfinite(gd.grad).all() and gd.grad.abs().sum() > 0)
        with self.assertRaisesRegex(ValueError, "form"):
            orthogonality_loss(gd, gp, "sine")
        with self.assertRaisesRegex(ValueError, "shape"):
            orthogonality_loss(gd, gp[:, :3])


class TestCriticLabel(unittest.TestCase):
    def test_batch_spd_by_hand(self):
        scores = torch.tensor([0.9, 0.7, 0.2, 0.4, 0.1, 0.5])
        groups = torch.tensor([0, 0, 1, 1, 1, -1])  # reference 0 = privileged; -1 unknown, excluded
        # rest mean (0.2 + 0.4 + 0.1) / 3 = 0.2333..., reference mean 0.8 -> -0.5667
        self.assertAlmostEqual(batch_spd_label(scores, groups, reference=0), 0.7 / 3 - 0.8, places=6)
        self.assertTrue(math.isnan(batch_spd_label(scores[:2], groups[:2], reference=0)))

    def test_previous_epoch_memory(self):
        mem = EpochScoreMemory(4)
        mem.record(torch.tensor([0, 1, 2, 3]), torch.tensor([0.1, 0.2, 0.3, 0.4]))
        self.assertIsNone(mem.lookup(torch.tensor([0, 1])))  # first epoch: nothing from a previous one
        mem.end_epoch()
        mem.record(torch.tensor([0, 1]), torch.tensor([0.9, 0.9]))
        self.assertTrue(torch.allclose(mem.lookup(torch.tensor([1, 0])), torch.tensor([0.2, 0.1])))
        with self.assertRaises(IndexError):
            mem.lookup(torch.tensor([4]))

    def test_positive_scores(self):
        logits = torch.tensor([[0.0, 1.0, 2.0]])
        p = torch.softmax(logits, 1)
        self.assertAlmostEqual(float(positive_scores(logits, [1, 2])), float(p[0, 1] + p[0, 2]), places=6)
        self.assertAlmostEqual(float(positive_scores(torch.tensor([[0.0]]))), 0.5)
        with self.assertRaisesRegex(ValueError, "positive_classes"):
            positive_scores(logits)


def _setup(variant: str = "adversarial", orth: float = 1.0, n: int = 8, readout: str = "mean"):
    torch.manual_seed(0)
    net = fair_vgg11(spatial_dims=2, in_channels=3, out_channels=1, width=0.0625, fc_channels=16, pool_size=1)
    heads = BiasCriticHeads(in_channels=32, spatial_size=1, readout=readout)
    gen, clf = split_vgg(net)
    data = [
        {"image": torch.rand(3, 32, 32), "label": torch.tensor([float(i % 2)]), "sex": i % 3 != 0, "index": i}
        for i in range(n)
    ]
    for d in data:
        d["sex"] = int(d["sex"])
    spec = FairnessSpec(attributes="sex", reference=1, metric="spd")
    trainer = AdversarialMultitaskTrainer(
        device="cpu",
        max_epochs=2,
        train_data_loader=DataLoader(data, batch_size=4, shuffle=False),
        network=net,
        generator=gen,
        classifier=clf,
        bias_heads=heads,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.1),
        bias_optimizer=torch.optim.SGD(heads.parameters(), lr=0.1),
        generator_optimizer=torch.optim.SGD(gen.parameters(), lr=0.1),
        loss_function=torch.nn.BCEWithLogitsLoss(),
        spec=spec,
        variant=variant,
        orthogonality_weight=orth,
    )
    return trainer, net, heads, gen, clf, data


class TestAlgorithmSteps(unittest.TestCase):
    def setUp(self):
        self.trainer, self.net, self.heads, self.gen, self.clf, data = _setup()
        self.x = torch.stack([d["image"] for d in data[:4]])
        self.y = torch.stack([d["label"] for d in data[:4]])
        self.g = torch.tensor([d["sex"] for d in data[:4]])
        self.c_only = {k for k, _ in self.net.named_parameters() if k.startswith("classifier")}
        self.g_only = {k for k, _ in self.net.named_parameters() if k.startswith("features")}

    def test_classification_step_changes_g_and_c_only(self):
        net0, heads0 = _snapshot(self.net), _snapshot(self.heads)
        self.trainer.classification_step(self.x, self.y)
        changed = _changed(net0, self.net)
        self.assertTrue(changed & self.c_only and changed & self.g_only)
        self.assertEqual(_changed(heads0, self.heads), set())

    def test_bias_step_changes_d_and_p_only(self):
        h = self.gen(self.x).detach()
        net0, heads0 = _snapshot(self.net), _snapshot(self.heads)
        out = self.trainer.bias_step(h, self.g, spd_label=0.3)
        self.assertEqual(_changed(net0, self.net), set())
        changed = _changed(heads0, self.heads)
        for part in ("shared.", "discriminator.", "critic."):
            self.assertTrue(any(k.startswith(part) for k in changed), part)
        self.assertGreater(out["loss_orth"], 0.0)

    def test_generator_step_changes_g_only(self):
        net0, heads0 = _snapshot(self.net), _snapshot(self.heads)
        self.trainer.generator_step(self.x)
        changed = _changed(net0, self.net)
        self.assertTrue(changed and changed <= self.g_only)
        self.assertEqual(_changed(heads0, self.heads), set())
        self.assertTrue(all(p.grad is None for p in self.heads.parameters()))

    def test_group_ratio_bias_step_changes_d_and_p_only(self):
        trainer, net, heads, gen, _, _ = _setup(readout="group_ratio")
        h = gen(self.x).detach()
        net0, heads0 = _snapshot(net), _snapshot(heads)
        out = trainer.bias_step(h, self.g, spd_label=0.3, scores=torch.tensor([0.2, 0.9, 0.4, 0.6]))
        self.assertEqual(_changed(net0, net), set())
        changed = _changed(heads0, heads)
        for part in ("shared.", "discriminator.", "critic."):
            self.assertTrue(any(k.startswith(part) for k in changed), part)
        self.assertGreater(out["loss_orth"], 0.0)
        self.assertGreater(out["loss_p_aux"], 0.0)

    def test_without_orthogonality_the_critic_head_learns_only_from_its_label(self):
        trainer, net, heads, gen, _, data = _setup(orth=0.0)
        h = gen(self.x).detach()
        heads0 = _snapshot(heads)
        out = trainer.bias_step(h, self.g, spd_label=float("nan"))  # no label: only D's loss
        self.assertEqual(out["loss_orth"], 0.0)
        self.assertFalse(any(k.startswith("critic.") for k in _changed(heads0, heads)))


class TestCriticCalibration(unittest.TestCase):
    def test_composition_batches_vary_the_spd(self):
        g = torch.tensor([0] * 30 + [1] * 20 + [-1] * 5)
        y = torch.tensor(([1.0] * 10 + [0.0] * 20) + ([1.0] * 5 + [0.0] * 15) + [1.0] * 5)
        batches = composition_batches(g, y, reference=0, batch_size=12, n_batches=40, seed=0)
        self.assertEqual(len(batches), 40)
        spd_of_labels = []
        for b in batches:
            self.assertEqual(len(set(b.tolist())), len(b))  # without replacement
            self.assertTrue(len(b) <= 12 and set(g[b].tolist()) == {0, 1})  # both groups, no unknown
            spd_of_labels.append(batch_spd_label(y[b], g[b], reference=0))
        spread = torch.tensor(spd_of_labels)
        self.assertGreater(float(spread.max()), 0.3)
        self.assertLess(float(spread.min()), -0.3)
        self.assertEqual(composition_batches(torch.zeros(6), torch.ones(6), 0, 4, 3), [])
        with self.assertRaisesRegex(ValueError, "length"):
            composition_batches(g, y[:3], 0, 4, 3)

    def test_calibration_fits_p_only_and_tracks_the_spd(self):
        torch.manual_seed(0)
        n = 160
        g = (torch.arange(n) % 2).long()
        y = (torch.rand(n) < 0.4).float()
        scores = (0.15 + 0.7 * y + 0.1 * torch.rand(n)).clamp(0, 1)
        # features that carry the group and the score (what G's output carries on the demo)
        h = torch.randn(n, 8, 1, 1) * 0.1
        h[:, 0, 0, 0] += 2.0 * g.float() - 1.0
        h[:, 1, 0, 0] += 4.0 * scores - 2.0
        heads = BiasCriticHeads(in_channels=8, spatial_size=1, readout="group_ratio")
        before = _snapshot(heads)
        train, test = slice(0, 120), slice(120, n)
        out = calibrate_critic(heads, h[train], scores[train], g[train], y[train], 0, steps=300, batch_size=16)
        changed = _changed(before, heads)
        self.assertTrue(changed and all(k.startswith("critic.") for k in changed))
        self.assertEqual(out["steps"], 300.0)
        batches = composition_batches(g[test], y[test], 0, 16, 30, seed=5)
        true = [batch_spd_label(scores[test][b], g[test][b], 0) for b in batches]
        with torch.no_grad():
            pred = [float(heads.predict_spd(h[test][b])) for b in batches]
        self.assertGreater(float(torch.corrcoef(torch.tensor([pred, true]))[0, 1]), 0.5)
        self.assertEqual(calibrate_critic(heads, h, scores, g, y, 0, steps=0, batch_size=16)["steps"], 0.0)


class TestTrainerRun(unittest.TestCase):
    def test_two_epochs_label_from_previous_epoch(self):
        trainer, net, heads, gen, clf, data = _setup()
        labels = []
        scores_epoch1 = {}

        from ignite.engine import Events

        @trainer.on(Events.ITERATION_COMPLETED)
        def keep(engine):
            labels.append((engine.state.epoch, engine.state.output["critic_label"]))
            if engine.state.epoch == 1:
                idx = [d["index"] for d in data][(engine.state.iteration - 1) * 4 : engine.state.iteration * 4]
                s = positive_scores(engine.state.output["pred"])
                scores_epoch1.update(dict(zip(idx, s.tolist())))

        trainer.run()
        self.assertEqual(len(labels), 4)
        # epoch 2, first batch: the SPD of epoch 1's predictions of samples 0..3 (sex 0,1,1,0; reference 1)
        s = scores_epoch1
        expected = (s[0] + s[3]) / 2 - (s[1] + s[2]) / 2
        self.assertAlmostEqual(labels[2][1], expected, places=5)
        self.assertTrue(all(math.isfinite(v) for _, v in labels))

    def test_vanilla_runs_the_classification_step_only(self):
        trainer, net, heads, *_ = _setup(variant="vanilla")
        heads0 = _snapshot(heads)
        trainer.run()
        self.assertEqual(_changed(heads0, heads), set())
        self.assertNotIn("critic_label", trainer.state.output)

    def test_seven_class_task_with_a_positive_class_set(self):
        torch.manual_seed(0)
        net = fair_vgg11(spatial_dims=2, in_channels=3, out_channels=7, width=0.0625, fc_channels=16, pool_size=1)
        heads = BiasCriticHeads(in_channels=32, spatial_size=1)
        gen, clf = split_vgg(net)
        data = [{"image": torch.rand(3, 32, 32), "label": i % 7, "sex": i % 2, "index": i} for i in range(8)]
        trainer = AdversarialMultitaskTrainer(
            device="cpu",
            max_epochs=1,
            train_data_loader=DataLoader(data, batch_size=4),
            network=net,
            generator=gen,
            classifier=clf,
            bias_heads=heads,
            optimizer=torch.optim.SGD(net.parameters(), lr=0.01),
            bias_optimizer=torch.optim.SGD(heads.parameters(), lr=0.01),
            generator_optimizer=torch.optim.SGD(gen.parameters(), lr=0.01),
            loss_function=torch.nn.CrossEntropyLoss(),
            spec=FairnessSpec(attributes="sex", reference=0, metric="spd"),
            positive_classes=[0, 2, 3],  # e.g. mel, bcc, akiec
            label_dtype="long",
        )
        trainer.run()
        out = trainer.state.output
        probs = torch.softmax(out["pred"], 1)[:, [0, 2, 3]].sum(1)
        g = torch.tensor([d["sex"] for d in data[4:]])
        self.assertTrue(torch.allclose(positive_scores(out["pred"], [0, 2, 3]), probs))
        # first epoch: the label is the SPD of this step's predictions (positive set), rest (1) minus reference (0)
        expected = float(probs[g == 1].mean() - probs[g == 0].mean())
        self.assertAlmostEqual(out["critic_label"], expected, places=5)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "variant"):
            _setup(variant="fair")
        with self.assertRaisesRegex(ValueError, "orthogonality_weight"):
            _setup(orth=-1.0)


if __name__ == "__main__":
    unittest.main()
