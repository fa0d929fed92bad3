# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Per-group ROC AUC against scikit-learn, with and without ties, weights and NaN policy."""

from __future__ import annotations

import math
import unittest

import numpy as np
import torch
from parameterized import parameterized
from sklearn.metrics import roc_auc_score

from monai_fair.metrics import compute_group_roc_auc


def sk_group_auc(s, y, g, codes, w=None):
    out = []
    for c in codes:
        m = g == c
        if len(np.unique(y[m])) < 2:
            out.append(np.nan)
        else:
            out.append(roc_auc_score(y[m], s[m], sample_weight=None if w is None else w[m]))
    return np.array(out)


class TestGroupAUC(unittest.TestCase):
    @parameterized.expand([("continuous", None, 2), ("ties", 10, 4), ("heavy_ties", 2, 3), ("logits", None, 4)])
    def test_vs_sklearn(self, name, rounding, n_groups):
        gen = torch.Generator().manual_seed(n_groups)
        g = torch.randint(0, n_groups, (700,), generator=gen)
        y = (torch.rand(700, 3, generator=gen) < 0.3).double()
        s = torch.rand(700, 3, generator=gen, dtype=torch.float64) + 0.3 * y
        if rounding:
            s = torch.round(s * rounding) / rounding
        if name == "logits":
            s = 5 * s - 3
        auc = compute_group_roc_auc(s, y, g, min_group_size=1)
        self.assertEqual(tuple(auc.shape), (n_groups, 3))
        for lab in range(3):
            ref = sk_group_auc(s[:, lab].numpy(), y[:, lab].numpy(), g.numpy(), range(n_groups))
            np.testing.assert_allclose(auc[:, lab].numpy(), ref, rtol=0, atol=1e-12)
        torch.testing.assert_close(compute_group_roc_auc(s[:, 1], y[:, 1], g, min_group_size=1), auc[:, 1])

    def test_hand_computed_ties(self):
        # group 0: pos {0.8, 0.5}, neg {0.5, 0.2}: pairs (0.8>0.5)=1, (0.8>0.2)=1, (0.5=0.5)=0.5, (0.5>0.2)=1 → 3.5/4
        s = torch.tensor([0.8, 0.5, 0.5, 0.2, 0.5, 0.5])
        y = torch.tensor([1, 1, 0, 0, 1, 0])
        g = torch.tensor([0, 0, 0, 0, 1, 1])  # group 1: one tie pair → 0.5
        auc = compute_group_roc_auc(s, y, g, min_group_size=1)
        self.assertEqual(auc.tolist(), [0.875, 0.5])

    def test_single_class_and_small_groups_are_nan(self):
        s = torch.tensor([0.1, 0.9, 0.3, 0.4, 0.8, 0.6])
        y = torch.tensor([0, 1, 1, 1, 0, 1])
        g = torch.tensor([0, 0, 1, 1, 2, 2])
        auc = compute_group_roc_auc(s, y, g, min_group_size=1)
        self.assertEqual(float(auc[0]), 1.0)
        self.assertTrue(math.isnan(float(auc[1])))  # only positives
        self.assertEqual(float(auc[2]), 0.0)
        self.assertTrue(torch.isnan(compute_group_roc_auc(s, y, g, min_group_size=3)).all())

    def test_weights(self):
        gen = torch.Generator().manual_seed(5)
        g = torch.randint(0, 3, (300,), generator=gen)
        y = (torch.rand(300, generator=gen) < 0.4).double()
        s = torch.round((torch.rand(300, generator=gen) + 0.4 * y) * 8) / 8
        w = torch.rand(300, generator=gen, dtype=torch.float64) * 3
        auc = compute_group_roc_auc(s, y, g, weights=w, min_group_size=1)
        np.testing.assert_allclose(
            auc.numpy(), sk_group_auc(s.numpy(), y.numpy(), g.numpy(), range(3), w.numpy()), atol=1e-12
        )
        batch = compute_group_roc_auc(
            s, y, g, weights=torch.stack([w, torch.ones(300, dtype=torch.float64)]), min_group_size=1
        )
        torch.testing.assert_close(batch[0], auc)
        torch.testing.assert_close(batch[1], compute_group_roc_auc(s, y, g, min_group_size=1))


if __name__ == "__main__":
    unittest.main()
