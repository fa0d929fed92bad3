# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Gray-world white balance: removes a colour cast (checked in CIELAB), masks, dtypes and layouts."""

from __future__ import annotations

import unittest

import numpy as np
import torch
from skimage.color import rgb2lab

from monai_fair.transforms.gray_world import GrayWorld, GrayWorldd, gray_world


def _cast_scene(gains=(1.25, 1.0, 0.7)) -> tuple[np.ndarray, np.ndarray]:
    """Grey patches of different brightness (an achromatic scene) seen under a coloured light."""
    levels = np.array([60, 100, 140, 180], dtype=float)
    scene = np.repeat(np.repeat(levels.reshape(2, 2), 16, axis=0), 16, axis=1)
    neutral = np.stack([scene] * 3, axis=-1)
    return neutral, np.clip(neutral * np.array(gains), 0, 255)


class TestGrayWorld(unittest.TestCase):
    def test_neutralises_a_colour_cast(self):
        neutral, cast = _cast_scene()
        lab_cast = rgb2lab(cast / 255.0)
        self.assertGreater(np.abs(lab_cast[..., 1:]).mean(), 5.0)  # the cast is visible
        out = gray_world(cast, channel_dim=-1, max_value=255.0)
        np.testing.assert_allclose(out.reshape(-1, 3).mean(axis=0), cast.mean(), rtol=1e-9)
        lab = rgb2lab(out / 255.0)
        self.assertLess(np.abs(lab[..., 1:]).max(), 0.5)  # every grey patch is grey again
        # numpy oracle of the gains
        expected = cast * (cast.mean() / cast.reshape(-1, 3).mean(axis=0))
        np.testing.assert_allclose(out, expected, rtol=1e-9)

    def test_mask_restricts_the_means(self):
        _, cast = _cast_scene()
        img = cast.copy()
        img[:8, :8] = (200.0, 20.0, 20.0)  # a red object that would bias the means
        mask = np.ones(img.shape[:2], dtype=bool)
        mask[:8, :8] = False
        out = gray_world(img, mask=mask, channel_dim=-1, max_value=255.0)
        means = out.reshape(-1, 3)[mask.ravel()].mean(axis=0)
        np.testing.assert_allclose(means, means.mean(), rtol=1e-9)
        unmasked = gray_world(img, channel_dim=-1, max_value=255.0).reshape(-1, 3)[mask.ravel()].mean(axis=0)
        self.assertGreater(np.ptp(unmasked), 5.0)

    def test_uint8_channel_first_tensor_and_alpha(self):
        _, cast = _cast_scene()
        rgba = np.concatenate([cast, np.full(cast.shape[:2] + (1,), 77.0)], axis=-1).round().astype(np.uint8)
        t = torch.as_tensor(np.moveaxis(rgba, -1, 0))
        out = GrayWorld()(t)
        self.assertIsInstance(out, torch.Tensor)
        self.assertEqual(out.dtype, torch.uint8)
        self.assertEqual(tuple(out.shape), tuple(t.shape))
        self.assertTrue(torch.equal(out[3], t[3]))
        means = out[:3].double().reshape(3, -1).mean(dim=1)
        self.assertLess(float(means.max() - means.min()), 1.0)  # rounding only

    def test_target_and_clipping(self):
        img = np.full((4, 4, 3), 0.5, dtype=np.float32)
        img[..., 0] = 0.9
        out = gray_world(img, channel_dim=-1, target=0.8)
        self.assertEqual(out.dtype, np.float32)
        np.testing.assert_allclose(out.reshape(-1, 3).mean(axis=0), 0.8, rtol=1e-6)
        bright = gray_world(np.array([[[0.1, 0.9, 0.9]]], dtype=np.float32), channel_dim=-1, target=1.5)
        self.assertLessEqual(float(bright.max()), 1.0)

    def test_zero_channel_is_left_alone(self):
        img = np.zeros((3, 4, 4))
        img[0], img[1] = 0.4, 0.2
        out = gray_world(img)
        self.assertTrue(np.all(out[2] == 0))
        np.testing.assert_allclose(out[0].mean(), out[1].mean())

    def test_dictionary_version(self):
        _, cast = _cast_scene()
        img = torch.as_tensor(np.moveaxis(cast, -1, 0))
        mask = torch.ones((1,) + cast.shape[:2], dtype=torch.bool)
        d = GrayWorldd(keys="image", mask_key="mask", max_value=255.0)({"image": img, "mask": mask, "x": 1})
        means = d["image"].reshape(3, -1).mean(dim=1)
        self.assertLess(float(means.max() - means.min()), 1e-6)
        self.assertEqual(d["x"], 1)

    def test_bad_input(self):
        with self.assertRaises(ValueError):
            gray_world(np.zeros((2, 4, 4)))
        with self.assertRaises(ValueError):
            gray_world(np.ones((3, 4, 4)), mask=np.zeros((4, 4), dtype=bool))
        with self.assertRaises(ValueError):
            gray_world(np.ones((3, 4, 4)), mask=np.ones((3, 3), dtype=bool))


if __name__ == "__main__":
    unittest.main()
