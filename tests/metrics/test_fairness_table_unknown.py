# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The fairness table follows the evaluation core: unknown-code policy, empty and tiny groups, the same rates/gaps."""

from __future__ import annotations

import math
import unittest

import numpy as np
import torch
from parameterized import parameterized

from monai_fair.data.codes import UNKNOWN
from monai_fair.metrics import compute_fairness_table, evaluate_binary_fairness


def unknown_fixture():
    """Codes 0 (large), 1 (reference), 2 (tiny: 3 samples), 3 declared but empty, and 7 unknown samples."""
    gen = torch.Generator().manual_seed(11)
    g = torch.cat([torch.zeros(60), torch.ones(50), torch.full((3,), 2.0), torch.full((7,), float(UNKNOWN))]).long()
    y = (torch.rand(g.numel(), generator=gen) < 0.45).double()
    y[:2], y[60:62], y[110], y[113:115] = 1, 1, 1, 1  # positives in every group
    s = (0.5 * torch.rand(g.numel(), generator=gen, dtype=torch.float64) + 0.4 * y).clamp(0, 1)
    return s, y, g


class TestTableMatchesCore(unittest.TestCase):
    @parameterized.expand([("exclude",), ("group",)])
    def test_rates_and_gaps_equal_core(self, unknown):
        s, y, g = unknown_fixture()
        for thr in (0.3, 0.5):
            table = compute_fairness_table(
                s, y, g, threshold=thr, reference=1, group_codes=[0, 1, 2, 3], min_group_size=5, unknown=unknown
            )
            core = evaluate_binary_fairness(
                s, y, g, 1, thresholds=thr, unknown=unknown, min_group_size=5, group_codes=[0, 1, 2, 3]
            )
            self.assertEqual(table.group_codes, core.group_codes)
            self.assertEqual(table.n_unknown, int(core.n_unknown[0]))
            np.testing.assert_array_equal(table.per_group["n"].numpy(), core.n[0].numpy())
            for k in ("selection_rate", "tpr", "fpr"):
                np.testing.assert_allclose(
                    table.per_group[k].numpy(), getattr(core, k)[0, 0].numpy(), rtol=0, atol=1e-12, err_msg=k
                )
            for k in ("spd", "eod", "aod"):
                np.testing.assert_allclose(
                    table.gaps[k].numpy(), core.group_gaps[k][0, 0].numpy(), rtol=0, atol=1e-12, err_msg=k
                )
            # the tiny group (3 < 5) and the empty declared group are NaN in both, with the same reason
            i2, i3 = table.group_codes.index(2), table.group_codes.index(3)
            self.assertTrue(math.isnan(float(table.per_group["tpr"][i2])))
            self.assertTrue(math.isnan(float(table.gaps["eod"][i3])))
            self.assertIn("min_group_size", table.flags[2])
            self.assertIn("empty group", table.flags[3])

    def test_exclude_counts_and_names(self):
        s, y, g = unknown_fixture()
        table = compute_fairness_table(s, y, g, group_names={0: "F", 1: "M"}, min_group_size=5)
        self.assertEqual(table.group_codes, [0, 1, 2])
        self.assertEqual(table.n_unknown, 7)
        self.assertEqual(table.reference, 0)  # largest known group
        flat = table.as_flat_dict("sex/")
        self.assertEqual(flat["sex/n_unknown"], 7.0)
        df = table.to_dataframe()
        self.assertEqual(float(df[df.metric == "n_unknown"].value.iloc[0]), 7.0)

    def test_group_policy_names_unknown_and_never_reference(self):
        s, y, g = unknown_fixture()
        g = torch.where(g == 0, torch.full_like(g, UNKNOWN), g)  # the unknown group becomes the largest
        table = compute_fairness_table(s, y, g, group_names={1: "M"}, unknown="group", min_group_size=5)
        self.assertEqual(table.group_codes, [UNKNOWN, 1, 2])
        self.assertEqual(table.group_names[0], "unknown")
        self.assertEqual(table.reference, 1)
        self.assertEqual(table.as_flat_dict()["n_unknown"], 67.0)
        with self.assertRaisesRegex(ValueError, "known code"):
            compute_fairness_table(s, y, g, reference=UNKNOWN, unknown="group")
        with self.assertRaisesRegex(ValueError, "unknown must be one of"):
            compute_fairness_table(s, y, g, unknown="drop")


if __name__ == "__main__":
    unittest.main()
