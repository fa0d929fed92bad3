# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The debiasers' shared shape: FairnessSpec-driven groups (intersectional, unknown codes) and core figures."""

from __future__ import annotations

import unittest

import numpy as np
import torch

from monai_fair.debias import (
    Debiaser,
    RandomPerturbation,
    RejectOptionClassification,
    check_binary_fit_data,
    collect_outputs,
    evaluate_binary,
)
from monai_fair.metrics import FairnessSpec, evaluate_binary_fairness
from tests.debias.planted_bias import biased_classifier

_THREADS = torch.get_num_threads()

SEX_AGE = {"sex": {0: "F", 1: "M"}, "age_group": {0: "18-39", 1: "40-59", 2: "60-79"}}


def setUpModule():  # tiny tensors: one thread avoids oversubscription on a shared machine
    torch.set_num_threads(1)


def tearDownModule():
    torch.set_num_threads(_THREADS)


def intersectional_loader(data: dict, batch_size: int = 64) -> tuple[list[dict], torch.Tensor]:
    """Batches with ``sex`` and a random ``age_group``, and the combined codes written out by hand."""
    age = torch.randint(0, 3, (len(data["label"]),), generator=torch.Generator().manual_seed(7))
    combined = data["sex"] * 1000 + age  # the spec's intersection code, computed independently
    keys = {"image": data["image"], "label": data["label"], "sex": data["sex"], "age_group": age}
    n = len(age)
    return [{k: v[i : i + batch_size] for k, v in keys.items()} for i in range(0, n, batch_size)], combined


class TestIntersectionalSpec(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net, val = biased_classifier()
        cls.loader, cls.combined = intersectional_loader(val)
        cls.labels = val["label"]
        cls.spec = FairnessSpec(["sex", "age_group"], reference="M × 60-79", group_names=SEX_AGE, min_group_size=5)

    def test_collect_outputs_gives_combined_codes(self):
        probs, labels, groups = collect_outputs(self.net, self.loader, self.spec)
        torch.testing.assert_close(groups, self.combined)
        torch.testing.assert_close(labels, self.labels)
        self.assertEqual(self.spec.reference, 1002)
        self.assertEqual(probs.shape, labels.shape)

    def test_random_perturbation_validation_is_the_core(self):
        rp = RandomPerturbation(spec=self.spec, trials=2, n_bootstrap=10, seed=1)
        res = rp.fit(self.net, self.loader)
        probs, labels, _ = collect_outputs(res.model, self.loader, self.spec)
        core = evaluate_binary_fairness(
            probs, labels, self.combined, 1002, thresholds=res.threshold, metric="eod", min_group_size=5
        )
        self.assertFalse(np.isnan(res.validation.bias))
        self.assertAlmostEqual(res.validation.bias, float(core.bias[0, 0]), places=12)
        self.assertAlmostEqual(res.validation.balanced_accuracy, float(core.balanced_accuracy[0, 0]), places=12)

    def test_reject_option_reference_vs_rest(self):
        res = RejectOptionClassification(spec=self.spec, num_class_thresh=20, num_roc_margin=10).fit(
            self.net, self.loader
        )
        self.assertEqual(res.postprocessor.reference, 1002)
        self.assertEqual(sorted(res.postprocessor.group_codes), sorted(set(self.combined.tolist())))
        self.assertEqual(sorted(res.state["group_gaps"]), sorted(set(self.combined.tolist()) - {1002}))
        probs, labels, _ = collect_outputs(self.net, self.loader, self.spec)
        y_hat = res.postprocessor.predict(probs, self.combined).double()
        core = evaluate_binary_fairness(y_hat, labels, self.combined, 1002, metric="eod", min_group_size=5)
        self.assertAlmostEqual(res.validation.bias, float(core.bias[0, 0]), places=12)
        self.assertAlmostEqual(res.validation.balanced_accuracy, float(core.balanced_accuracy[0, 0]), places=12)
        for k, code in enumerate(core.group_codes):
            if code != 1002:
                self.assertAlmostEqual(res.state["group_gaps"][code], float(core.group_gaps["eod"][0, 0, k]), 12)


class TestUnknownCodes(unittest.TestCase):
    # reference 1: positives 0.9 (hit), 0.2 (miss); group 0: positive 0.8 (hit), negative 0.3;
    # unknown (-1): positive 0.1 (miss), negative 0.6 (false positive). Threshold 0.5.
    probs = torch.tensor([0.9, 0.2, 0.8, 0.3, 0.1, 0.6], dtype=torch.float64)
    labels = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    groups = torch.tensor([1, 1, 0, 0, -1, -1])

    def spec(self, unknown: str) -> FairnessSpec:
        return FairnessSpec("sex", reference=1, unknown=unknown, min_group_size=1)

    def test_hand_computed_policies(self):
        # BA counts every sample under both policies: TPR 2/4, TNR 1/2 -> 0.5.
        # "exclude": rest = group 0, TPR 1/1 -> EOD 1 - 1/2 = 0.5, objective 0.
        # "group": rest = group 0 + unknown, TPR 1/2 -> EOD 0, objective = BA.
        want = {"exclude": (0.5, 0.5, 0.0), "group": (0.5, 0.0, 0.5)}
        for unknown, (ba, eod, objective) in want.items():
            ev = evaluate_binary(self.probs, self.labels, self.groups, self.spec(unknown), threshold=0.5)
            self.assertEqual((ev.balanced_accuracy, ev.bias, ev.objective), (ba, eod, objective), unknown)
            # a debiaser fitted on these samples reports the same figures (a 1 x 1 grid: t = 0.5, m = 0)
            roc = RejectOptionClassification(
                spec=self.spec(unknown), low_class_thresh=0.5, num_class_thresh=1, num_roc_margin=1
            )
            res = roc.fit(probs=self.probs, labels=self.labels, groups=self.groups)
            self.assertEqual((res.threshold, res.state["margin"]), (0.5, 0.0))
            v = res.validation
            self.assertEqual((v.balanced_accuracy, v.bias, v.objective), (ba, eod, objective), unknown)
            self.assertEqual(sorted(res.state["group_gaps"]), [-1, 0] if unknown == "group" else [0])

    def test_rest_must_exist_under_the_policy(self):
        only_unknown = torch.tensor([1, 1, 1, -1, -1, -1])
        with self.assertRaisesRegex(ValueError, "at least one other group"):
            check_binary_fit_data(self.labels, only_unknown, self.spec("exclude"))
        _, _, reference = check_binary_fit_data(self.labels, only_unknown, self.spec("group"))
        self.assertEqual(reference, 1)

    def test_reference_resolved_on_fitting_data(self):
        groups = torch.tensor([2, 2, 2, 0, 0, -1])
        _, _, reference = check_binary_fit_data(self.labels, groups, FairnessSpec())
        self.assertEqual(reference, 2)  # the largest known group; unknown codes never are the reference


class TestConstructor(unittest.TestCase):
    def test_spec_argument(self):
        self.assertEqual(Debiaser().spec, FairnessSpec())
        spec = FairnessSpec("race", reference=0, metric="spd", epsilon=0.1, output_index=2)
        d = Debiaser(spec, image_key="img", label_key="y", activation="softmax", device="cpu", amp=False)
        self.assertIs(d.spec, spec)
        self.assertEqual(
            (d.image_key, d.label_key, d.activation, d.device, d.amp),
            ("img", "y", "softmax", torch.device("cpu"), False),
        )
        self.assertEqual(Debiaser({"attributes": "race", "reference": 0}).spec.attributes, ("race",))
        with self.assertRaisesRegex(TypeError, "spec"):
            Debiaser("sex")
        for old in ("attribute_key", "privileged", "metric", "epsilon", "output_index"):
            with self.assertRaises(TypeError, msg=old):
                Debiaser(**{old: 1})

    def test_multilabel_label_column_follows_output_index(self):
        net = torch.nn.Linear(3, 4)
        batch = {"image": torch.randn(5, 3), "label": torch.randint(0, 2, (5, 4)).float(), "sex": torch.arange(5) % 2}
        spec = FairnessSpec(output_index=2)
        probs, labels, groups = collect_outputs(net, [batch], spec)
        torch.testing.assert_close(labels, batch["label"][:, 2])
        torch.testing.assert_close(probs, torch.sigmoid(net(batch["image"])[:, 2]).detach())
        torch.testing.assert_close(groups, batch["sex"])


if __name__ == "__main__":
    unittest.main()
