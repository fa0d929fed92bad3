# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Counterfactual audit with an exact generator (images drawn from a known X = φ(A, U)): a classifier that reads the
attribute's pixels is rejected and flips, one that reads U's pixels is not, over several seeds; classifier loading
and scoring."""

from __future__ import annotations

import os
import tempfile
import unittest

import torch
from torch import nn

from monai_fair import FairnessSpec
from monai_fair.audit import AttributeNeutralised, CounterfactualAudit, load_classifier, score_classifier

_THREADS = torch.get_num_threads()


def setUpModule():
    torch.set_num_threads(1)


def tearDownModule():
    torch.set_num_threads(_THREADS)


class ExactGenerator(nn.Module):
    """X = φ(A, U) on 4×4 images: U (2 values) fills the left half, A the right half."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x[:, 0, :2, :2].mean((1, 2)), x[:, 0, 2:, :2].mean((1, 2))], dim=1)

    def decode(self, u: torch.Tensor, a) -> torch.Tensor:
        a = torch.as_tensor(a, dtype=u.dtype).reshape(-1).expand(u.shape[0])
        x = torch.zeros(u.shape[0], 1, 4, 4)
        x[:, 0, :2, :2] = u[:, 0, None, None]
        x[:, 0, 2:, :2] = u[:, 1, None, None]
        x[:, 0, :, 2:] = a[:, None, None]
        return x


class PixelReader(nn.Module):
    """Logit = w · (pixel features) + b, on chosen pixels."""

    def __init__(self, w_u: float, w_a: float) -> None:
        super().__init__()
        self.w_u, self.w_a = w_u, w_a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.w_u * x[:, :, :2, :2].mean((1, 2, 3)) + self.w_a * (x[:, :, :, 2:].mean((1, 2, 3)) - 0.5))[:, None]


def _data(seed: int, n: int = 300):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, 2, generator=g)
    a = torch.randint(0, 2, (n,), generator=g)
    labels = (u[:, 0] + 0.5 * torch.randn(n, generator=g) > 0).float()
    return ExactGenerator().decode(u, a), a, labels


class TestCounterfactualAudit(unittest.TestCase):
    def test_dependent_rejected_invariant_not(self):
        spec = FairnessSpec(attributes="sex", reference=1, group_names={0: "F", 1: "M"})
        audit = CounterfactualAudit(ExactGenerator(), spec, tests=("gcm", "crt"), n_draws=200, n_bootstrap=20)
        dependent, invariant = PixelReader(3.0, 2.0), PixelReader(3.0, 0.0)
        rejected = {"dependent": 0, "invariant": 0}
        for seed in range(5):
            x, a, y = _data(seed)
            audit.seed = seed
            for name, clf in (("dependent", dependent), ("invariant", invariant)):
                out = audit.audit(clf, x, a, y)
                rejected[name] += out["tests"]["gcm"].rejects(0.05)
                rec = audit.record(out)
                if name == "invariant":
                    self.assertEqual(rec["flip_rate"], 0.0)
                else:
                    self.assertGreater(rec["flip_rate"], 0.2)
                    self.assertEqual(rec["gcm_rejects"], float(out["tests"]["gcm"].p_value < 0.05))
                self.assertIn("balanced_accuracy", rec)
                self.assertIn("eo_p_value", rec)
        self.assertGreaterEqual(rejected["dependent"], 4)
        self.assertLessEqual(rejected["invariant"], 1)

    def test_attribute_neutralised_is_a_function_of_u(self):
        x, a, _ = _data(0, 50)
        wrapped = AttributeNeutralised(PixelReader(3.0, 2.0), ExactGenerator(), reference=0)
        flipped = ExactGenerator().decode(ExactGenerator().encode(x), 1 - a)
        torch.testing.assert_close(wrapped(x), wrapped(flipped))

    def test_non_binary_attribute_is_refused(self):
        x, a, _ = _data(0, 50)
        audit = CounterfactualAudit(ExactGenerator(), FairnessSpec(attributes="sex"))
        with self.assertRaisesRegex(ValueError, "binary"):
            audit.audit(PixelReader(1.0, 0.0), x, a + 1)


class TestClassifierIO(unittest.TestCase):
    def test_torchscript_round_trip_and_resizing(self):
        net = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2))
        x = torch.rand(5, 1, 8, 8)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.ts")
            torch.jit.save(torch.jit.script(net), path)
            loaded = load_classifier(path)
            p = score_classifier(loaded, x, batch_size=2, output_index=1, input_size=16, input_channels=3)
            ref = torch.sigmoid(net(nn.functional.interpolate(x, size=(16, 16), mode="bilinear").repeat(1, 3, 1, 1)))
            torch.testing.assert_close(p, ref[:, 1].detach())
            bad = os.path.join(tmp, "bad.ts")
            with open(bad, "w") as f:
                f.write("not a model")
            with self.assertRaisesRegex(ValueError, "not a TorchScript file"):
                load_classifier(bad)
        with self.assertRaisesRegex(ValueError, "not found"):
            load_classifier("/nonexistent/model.ts")


if __name__ == "__main__":
    unittest.main()
