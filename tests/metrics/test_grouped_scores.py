# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Input validation, group mapping, (group, score) order and tie blocks of build_grouped_scores."""

from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

from monai_fair.metrics import build_grouped_scores
from monai_fair.metrics.grouped_scores import check_binary_labels


class TestValidation(unittest.TestCase):
    @parameterized.expand(
        [
            ("nan_score", [0.1, float("nan"), 0.3], [0, 1, 0], [0, 0, 1], "y_score contains 1 NaN"),
            ("nan_label", [0.1, 0.2, 0.3], [0, float("nan"), 0], [0, 0, 1], "y contains 1 NaN"),
            ("non_binary_label", [0.1, 0.2, 0.3], [0, 2, 0], [0, 0, 1], "binary"),
            ("label_length", [0.1, 0.2, 0.3], [0, 1], [0, 0, 1], "same shape"),
            ("group_length", [0.1, 0.2, 0.3], [0, 1, 0], [0, 0], "groups must have shape"),
            ("nan_group", [0.1, 0.2, 0.3], [0, 1, 0], [0, float("nan"), 1], "groups contains NaN"),
            ("fractional_group", [0.1, 0.2, 0.3], [0, 1, 0], [0, 0.5, 1], "integer codes"),
            ("empty", [], [], [], "no samples"),
        ]
    )
    def test_errors(self, _, s, y, g, msg):
        with self.assertRaisesRegex(ValueError, msg):
            build_grouped_scores(torch.tensor(s), torch.tensor(y, dtype=torch.float64), torch.tensor(g))

    def test_undeclared_and_duplicate_codes(self):
        s, y, g = torch.rand(6), torch.tensor([0, 1, 0, 1, 0, 1]), torch.tensor([0, 1, -1, 0, 1, 0])
        with self.assertRaisesRegex(ValueError, r"codes \[-1\] that are not in group_codes"):
            build_grouped_scores(s, y, g, group_codes=[0, 1])
        with self.assertRaisesRegex(ValueError, "unique"):
            build_grouped_scores(s, y, g, group_codes=[0, 1, 1, -1])
        gs = build_grouped_scores(s, y, g, group_codes=[1, -1, 0, 2])
        self.assertEqual(gs.group_codes, [-1, 0, 1, 2])
        self.assertEqual(gs.group_sizes.tolist(), [1, 3, 2, 0])

    def test_check_binary_labels_accepts_bool_and_int(self):
        self.assertEqual(check_binary_labels(torch.tensor([True, False])).tolist(), [1.0, 0.0])
        self.assertEqual(check_binary_labels(torch.tensor([1, 0])).dtype, torch.float64)


class TestOrder(unittest.TestCase):
    @parameterized.expand([("few_groups", 3, 0), ("many_groups", 40, 0), ("huge_code_range", 3, 10**9)])
    def test_sorted_by_group_then_score(self, _, n_groups, code_shift):
        gen = torch.Generator().manual_seed(0)
        g = torch.randint(0, n_groups, (500,), generator=gen) * 7 + code_shift
        s = torch.round(torch.rand(500, 2, generator=gen) * 20) / 20
        y = (torch.rand(500, 2, generator=gen) < 0.5).float()
        gs = build_grouped_scores(s, y, g)
        self.assertEqual(gs.group_codes, sorted(set(g.tolist())))
        codes = torch.tensor(gs.group_codes)
        self.assertTrue(torch.equal(codes[gs.group_index], g))
        for lab in range(2):
            order = gs.order[lab]
            self.assertTrue(torch.equal(torch.sort(order).values, torch.arange(500)))
            key = gs.group_index[order].double() * 10 + s[order, lab].double()
            self.assertTrue(bool((key[1:] >= key[:-1]).all()))
            torch.testing.assert_close(gs.sorted_labels[lab], y[order, lab].double())
            # tie blocks: same (group, score) inside, different at the boundaries
            bs, be = gs.tie_blocks(lab)
            for i in range(0, 500, 37):
                self.assertTrue(bool((key[bs[i] : be[i]] == key[i]).all()))
                self.assertTrue(bs[i] == 0 or key[bs[i] - 1] != key[i])
                self.assertTrue(be[i] == 500 or key[be[i]] != key[i])
        self.assertTrue(all(gs.has_ties))

    def test_no_ties_detected(self):
        gs = build_grouped_scores(
            torch.tensor([0.1, 0.2, 0.2, 0.3]), torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1])
        )
        self.assertEqual(gs.has_ties, [False])  # equal scores in different groups are not a tie
        self.assertEqual(gs.tie_blocks(0)[1].tolist(), [1, 2, 3, 4])
        self.assertEqual(gs.tied_positions[0].numel(), 0)

    def test_empty_last_group_does_not_split_a_tie(self):
        gs = build_grouped_scores(
            torch.tensor([0.1, 0.5, 0.5]), torch.tensor([0, 1, 0]), torch.zeros(3), group_codes=[0, 1]
        )
        self.assertEqual(gs.tied_positions[0].tolist(), [1, 2])
        self.assertEqual(gs.tie_blocks(0)[0].tolist(), [0, 1, 1])
        self.assertEqual(gs.tie_blocks(0)[1].tolist(), [1, 3, 3])

    def test_cut_and_bin_positions(self):
        s = torch.tensor([0.0, 0.5, 0.25, 1.0, 0.75, 0.5])
        g = torch.tensor([0, 0, 0, 1, 1, 1])
        gs = build_grouped_scores(s, torch.zeros(6), g)
        self.assertEqual(gs.cut_positions(torch.tensor([0.5])).tolist(), [[3, 4]])  # score > 0.5 is the tail
        # 4 bins [0,.25) [.25,.5) [.5,.75) [.75,1]: group 0 = {0.0 | 0.25 | 0.5 | -}, group 1 = {- | - | 0.5 | .75, 1}
        self.assertEqual(gs.bin_positions(4)[0].tolist(), [[0, 1, 2, 3, 3], [3, 3, 3, 4, 6]])


if __name__ == "__main__":
    unittest.main()
