# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Gradient reversal: identity forward, gradient times -scale backward."""

from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

from monai_fair.networks import GradientReversal, grad_reverse

_THREADS = torch.get_num_threads()


def setUpModule():  # tiny tensors: one thread avoids oversubscription on a shared machine
    torch.set_num_threads(1)


def tearDownModule():
    torch.set_num_threads(_THREADS)


class TestGradientReversal(unittest.TestCase):
    @parameterized.expand([[1.0], [0.5], [0.0], [3.0]])
    def test_forward_identity_backward_reversed(self, scale):
        x = torch.randn(4, 3, requires_grad=True)
        w = torch.randn(4, 3)
        layer = GradientReversal(scale)
        y = layer(x)
        torch.testing.assert_close(y, x)
        (y * w).sum().backward()
        torch.testing.assert_close(x.grad, -scale * w)

    def test_functional_matches_module_and_chain(self):
        x = torch.randn(5, requires_grad=True)
        # two reversals cancel: d/dx sum(x^2) = 2x
        (grad_reverse(grad_reverse(x, 2.0), 0.5) ** 2).sum().backward()
        torch.testing.assert_close(x.grad, 2 * x.detach())

    def test_adversarial_game_direction(self):
        # one SGD step on a loss behind the reversal moves the features so that the loss increases
        feats = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        head = torch.nn.Linear(2, 1)
        loss_before = head(GradientReversal(1.0)(feats)).pow(2).sum()
        loss_before.backward()
        with torch.no_grad():
            feats -= 0.01 * feats.grad
        self.assertGreater(float(head(feats).pow(2).sum().detach()), float(loss_before.detach()))

    def test_negative_scale(self):
        with self.assertRaises(ValueError):
            GradientReversal(-1.0)
        with self.assertRaises(ValueError):
            grad_reverse(torch.zeros(1), -0.1)
        self.assertEqual(GradientReversal(0.3).extra_repr(), "scale=0.3")


if __name__ == "__main__":
    unittest.main()
