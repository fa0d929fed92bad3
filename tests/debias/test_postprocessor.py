# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The post-processors' shared base: state dicts, reload, repr, unseen and unknown codes."""

from __future__ import annotations

import io
import unittest

import torch
from parameterized import parameterized

from monai_fair.debias import EqualizedOddsPostprocessor, Postprocessor, RejectOptionPostprocessor

POSTPROCESSORS = [
    [RejectOptionPostprocessor(0.4, 0.1, 2, [2, 0, 1], unseen_groups="threshold")],
    [EqualizedOddsPostprocessor(0.3, [2, 0, 1], [1.0, 0.7, 0.9], [0.0, 0.2, 0.1], "bernoulli", None, "keep")],
]


class TestPostprocessorBase(unittest.TestCase):
    @parameterized.expand(POSTPROCESSORS)
    def test_state_dict_round_trip(self, post):
        self.assertIsInstance(post, Postprocessor)
        buf = io.BytesIO()
        torch.save(post.state_dict(), buf)
        buf.seek(0)
        loaded = type(post).from_state_dict(torch.load(buf, weights_only=True))
        self.assertIs(type(loaded), type(post))
        self.assertEqual(repr(loaded), repr(post))
        self.assertEqual(loaded.group_codes, [2, 0, 1])
        self.assertEqual(loaded.unseen_groups, post.unseen_groups)
        probs, groups = torch.rand(50, generator=torch.Generator().manual_seed(0)), torch.arange(50) % 3
        if isinstance(post, EqualizedOddsPostprocessor):  # random flips: compare the flip probabilities
            torch.testing.assert_close(loaded.predict_proba(probs, groups), post.predict_proba(probs, groups))
            self.assertIsNone(loaded.seed)
        else:
            torch.testing.assert_close(loaded.predict(probs, groups), post.predict(probs, groups))

    def test_repr_names_the_settings(self):
        text = repr(RejectOptionPostprocessor(0.5, 0.125, 1, [1, 0]))
        self.assertEqual(
            text,
            "RejectOptionPostprocessor(threshold=0.5000, margin=0.1250, reference=1, group_codes=[1, 0], "
            "unseen_groups='error')",
        )

    def test_unseen_known_code_raises_unknown_code_falls_back(self):
        ro = RejectOptionPostprocessor(0.5, 0.2, 1, [1, 0])
        with self.assertRaisesRegex(ValueError, r"group codes \[3\] were not seen"):
            ro.predict(torch.tensor([0.4, 0.4]), torch.tensor([0, 3]))
        # an unknown code not seen when fitting is not a group: plain threshold, no band
        torch.testing.assert_close(ro.predict(torch.tensor([0.4, 0.6]), torch.tensor([-1, -1])), torch.tensor([0, 1]))
        eo = EqualizedOddsPostprocessor(0.5, [1, 0], [1.0, 0.0], [0.0, 1.0])
        with self.assertRaisesRegex(ValueError, "not seen"):
            eo.predict(torch.tensor([0.9]), torch.tensor([5]))
        # unknown samples keep their prediction; group 0 is flipped (p_pos = 0, p_neg = 1)
        out = eo.predict(torch.tensor([0.9, 0.1, 0.9, 0.1]), torch.tensor([-1, -1, 0, 0]))
        torch.testing.assert_close(out, torch.tensor([1, 0, 0, 1]))

    def test_bad_fallback(self):
        with self.assertRaisesRegex(ValueError, "unseen_groups"):
            RejectOptionPostprocessor(unseen_groups="keep")
        with self.assertRaisesRegex(ValueError, "unseen_groups"):
            EqualizedOddsPostprocessor(unseen_groups="threshold")


if __name__ == "__main__":
    unittest.main()
