# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import math
import unittest

import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.engines import SupervisedTrainer

from monai_fair.transforms import BatchRandAffine, random_affine_matrices

STILL = {"rotate_deg": 0.0, "translate": 0.0, "shear_deg": 0.0, "flip_prob": 0.0}


class TestRandomAffineMatrices(unittest.TestCase):
    def test_ranges(self):
        gen = torch.Generator().manual_seed(0)
        theta = random_affine_matrices(4000, 5.0, 0.05, 5.0, 0.5, generator=gen).double()
        linear, shift = theta[:, :, :2], theta[:, :, 2]
        # rotation x shear has determinant 1, the flip -1
        det = torch.linalg.det(linear)
        torch.testing.assert_close(det.abs(), torch.ones(4000, dtype=torch.float64), atol=1e-6, rtol=0)
        self.assertAlmostEqual(float((det < 0).double().mean()), 0.5, delta=0.04)
        self.assertLessEqual(float(shift.abs().max()), 0.1 + 1e-7)  # 5 % of a side spanning 2 normalised units
        self.assertGreater(float(shift.abs().max()), 0.09)
        # without flip and shear, the angle is the rotation's and stays within 5 degrees
        theta = random_affine_matrices(2000, 5.0, 0.0, 0.0, 0.0, generator=gen).double()
        angle = torch.atan2(theta[:, 1, 0], theta[:, 0, 0])
        self.assertLessEqual(float(angle.abs().max()), math.radians(5.0) + 1e-7)
        self.assertGreater(float(angle.abs().max()), math.radians(4.5))

    def test_bad_ranges(self):
        with self.assertRaisesRegex(ValueError, "flip_prob"):
            random_affine_matrices(2, flip_prob=1.5)
        with self.assertRaisesRegex(ValueError, "rotate_deg"):
            BatchRandAffine(rotate_deg=-1.0)
        with self.assertRaisesRegex(ValueError, "input_size"):
            BatchRandAffine(input_size=0)


class TestBatchRandAffine(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.x = torch.rand(3, 1, 16, 16)

    def test_identity_flip_and_resize(self):
        torch.testing.assert_close(BatchRandAffine(**STILL).augment(self.x), self.x, atol=1e-6, rtol=0)
        flipped = BatchRandAffine(**{**STILL, "flip_prob": 1.0}).augment(self.x)
        torch.testing.assert_close(flipped, torch.flip(self.x, dims=[-1]), atol=1e-6, rtol=0)
        # halving the size samples between every 2x2 block: its mean
        half = BatchRandAffine(input_size=8, **STILL).augment(self.x)
        torch.testing.assert_close(half, F.avg_pool2d(self.x, 2), atol=1e-6, rtol=0)

    def test_translation_moves_content(self):
        image = torch.zeros(1, 1, 32, 32)
        image[..., 14:18, 14:18] = 1.0
        aug = BatchRandAffine(**{**STILL, "translate": 0.25})
        torch.manual_seed(3)
        state = torch.get_rng_state()
        theta = random_affine_matrices(1, 0.0, 0.25, 0.0, 0.0)
        torch.set_rng_state(state)
        out = aug.augment(image)[0, 0]
        ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
        cx, cy = float((out * xs).sum() / out.sum()), float((out * ys).sum() / out.sum())
        # output pixel x samples input x + t * size / 2: the content moves by -t * size / 2
        self.assertAlmostEqual(cx, 15.5 - float(theta[0, 0, 2]) * 16, delta=0.05)
        self.assertAlmostEqual(cy, 15.5 - float(theta[0, 1, 2]) * 16, delta=0.05)

    def test_prepare_batch_in_a_trainer(self):
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 2, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(2, 1)
        )
        data = [{"image": MetaTensor(torch.rand(2, 1, 24, 24)), "label": torch.ones(2, 1)} for _ in range(3)]
        seen = []
        prepare = BatchRandAffine(input_size=12, channels_last=True)
        net.register_forward_pre_hook(lambda m, inp: seen.append(inp[0]))
        trainer = SupervisedTrainer(
            device=torch.device("cpu"),
            max_epochs=1,
            train_data_loader=data,
            network=net,
            optimizer=torch.optim.SGD(net.parameters(), 0.1),
            loss_function=torch.nn.BCEWithLogitsLoss(),
            prepare_batch=prepare,
        )
        trainer.run()
        self.assertEqual(len(seen), 3)
        for x in seen:
            self.assertEqual(tuple(x.shape), (2, 1, 12, 12))
            self.assertNotIsInstance(x, MetaTensor)
            self.assertTrue(x.is_contiguous(memory_format=torch.channels_last))
        with self.assertRaisesRegex(KeyError, "'label'"):
            prepare({"image": torch.rand(1, 1, 8, 8)})
        with self.assertRaisesRegex(ValueError, r"\(B, C, H, W\)"):
            prepare.augment(torch.rand(1, 8, 8))

    def test_reproducible_with_the_global_seed(self):
        aug = BatchRandAffine(input_size=8)
        torch.manual_seed(5)
        a = aug.augment(self.x)
        torch.manual_seed(5)
        torch.testing.assert_close(aug.augment(self.x), a)


if __name__ == "__main__":
    unittest.main()
