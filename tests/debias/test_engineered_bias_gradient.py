# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import unittest

import numpy as np
import torch
from parameterized import parameterized
from sklearn.metrics import log_loss

from monai_fair.debias import (
    BiasGradientDebiaser,
    EngineeredBiasGradientDebiaser,
    binary_task_loss,
    collect_outputs,
    evaluate_binary,
)
from monai_fair.metrics import compute_bias_proxy
from tests.debias.planted_bias import SPEC, biased_classifier, make_loader, planted_spec


def setUpModule():
    torch.set_num_threads(1)  # tiny tensors: threads only contend on a shared CPU


class TestTaskLoss(unittest.TestCase):
    def setUp(self):
        g = torch.Generator().manual_seed(0)
        self.logit = 3 * torch.randn(20, generator=g)
        self.y = torch.randint(0, 2, (20,), generator=g).float()
        self.y[:2] = torch.tensor([0.0, 1.0])
        self.expected = log_loss(self.y.numpy(), torch.sigmoid(self.logit).double().numpy())

    def test_sigmoid_on_logits(self):
        out = torch.stack([torch.zeros(20), self.logit], 1)
        self.assertAlmostEqual(float(binary_task_loss(out, self.y, "sigmoid", 1)), self.expected, places=5)
        self.assertAlmostEqual(float(binary_task_loss(self.logit, self.y)), self.expected, places=5)

    def test_softmax_and_probability_outputs(self):
        two = torch.stack([torch.zeros(20), self.logit], 1)  # softmax column 1 = sigmoid(logit)
        self.assertAlmostEqual(float(binary_task_loss(two, self.y, "softmax", 1)), self.expected, places=5)
        swapped = two.flip(1)
        self.assertAlmostEqual(float(binary_task_loss(swapped, self.y, "softmax", 0)), self.expected, places=5)
        prob = torch.sigmoid(self.logit)[:, None]
        self.assertAlmostEqual(float(binary_task_loss(prob, self.y, "none")), self.expected, places=4)
        with self.assertRaises(ValueError):
            binary_task_loss(torch.zeros(4, 3), torch.zeros(4), "softmax")
        with self.assertRaises(ValueError):
            binary_task_loss(torch.zeros(4, 1), torch.zeros(4), "relu")

    @parameterized.expand([("descent", 1.0), ("ascent", -1.0)])
    def test_loss_is_bce_plus_signed_scaled_proxy(self, _, sign):
        g = torch.Generator().manual_seed(1)
        groups = torch.randint(0, 2, (20,), generator=g)
        groups[:2] = torch.tensor([0, 1])
        weights = 2 * torch.rand(20, generator=g) - 1
        method = EngineeredBiasGradientDebiaser(spec=SPEC, lambda_fair=0.7)
        out = self.logit[:, None]
        got = method.loss(out, self.y, weights, 5.0, sign)
        proxy = compute_bias_proxy(torch.sigmoid(self.logit), weights=weights)
        self.assertAlmostEqual(float(got), self.expected + 0.7 * sign * 5.0 * float(proxy), places=5)
        pure = BiasGradientDebiaser(spec=SPEC).loss(out, self.y, weights, 5.0, sign)
        self.assertAlmostEqual(float(pure), sign * 5.0 * float(proxy), places=5)


class TestEngineeredBiasGradient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net, cls.val = biased_classifier()

    def test_planted_gap_is_reduced_under_rho(self):
        loader = make_loader(self.val, 32)
        before = evaluate_binary(*collect_outputs(self.net, loader), SPEC)
        self.assertLess(before.bias, -0.2)
        result = EngineeredBiasGradientDebiaser(spec=SPEC, lr=2e-3, epochs=4, n_evals=4, rho=0.7, lambda_fair=1.0).fit(
            self.net, loader
        )
        self.assertEqual(result.method, "engineered_bias_gradient")
        self.assertEqual(len(result.trajectory), 17)
        self.assertTrue(result.state["qualified"])
        self.assertGreaterEqual(result.validation.balanced_accuracy, 0.7)
        self.assertLess(abs(result.validation.bias), abs(before.bias) - 0.1)
        again = evaluate_binary(*collect_outputs(result.model, loader), SPEC)
        self.assertAlmostEqual(again.bias, result.validation.bias)

    def test_gradient_on_logits(self):
        # d loss / d z = (sigmoid(z) - y) / B + lambda * s * scale * w * sigmoid'(z): BCE on logits, proxy on sigmoid
        g = torch.Generator().manual_seed(2)
        z = torch.randn(8, 1, generator=g, requires_grad=True)
        y = torch.tensor([0.0, 1.0] * 4)
        w = torch.randn(8, generator=g)
        EngineeredBiasGradientDebiaser(spec=SPEC, lambda_fair=2.0).loss(z, y, w, 3.0, -1.0).backward()
        p = torch.sigmoid(z.detach()[:, 0])
        expected = (p - y) / 8 + 2.0 * -1.0 * 3.0 * w * p * (1 - p)
        torch.testing.assert_close(z.grad[:, 0], expected)

    def test_bad_input(self):
        with self.assertRaises(ValueError):
            EngineeredBiasGradientDebiaser(spec=SPEC, lambda_fair=-1.0)
        with self.assertRaisesRegex(ValueError, "proxy metric"):
            EngineeredBiasGradientDebiaser(spec=planted_spec(metric="aod"))
        np.testing.assert_equal(EngineeredBiasGradientDebiaser(spec=SPEC).lambda_fair, 1.0)


if __name__ == "__main__":
    unittest.main()
