# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""FairnessSpec: reference resolution, intersectional codes and names, validation."""

from __future__ import annotations

import unittest

import numpy as np
import pandas as pd
import torch
from fairlearn.metrics import MetricFrame, true_positive_rate

from monai_fair.metrics import FairnessSpec, combine_group_codes

SEX = {0: "F", 1: "M"}
AGE = {0: "18-39", 1: "40-59", 2: "60-79", 3: "80+"}


class TestSpec(unittest.TestCase):
    def test_single_attribute_reference(self):
        self.assertEqual(FairnessSpec("sex", reference="M", group_names=SEX).reference, 1)
        self.assertEqual(FairnessSpec("sex", reference="m", group_names={"0": "F", "1": "M"}).reference, 1)
        self.assertEqual(FairnessSpec("sex", reference=0, group_names=SEX).reference, 0)
        self.assertEqual(FairnessSpec("sex", reference="1").reference, 1)
        self.assertIsNone(FairnessSpec("sex").reference)
        with self.assertRaisesRegex(ValueError, "not a code or a name.*0=F, 1=M"):
            FairnessSpec("sex", reference="male", group_names=SEX)
        with self.assertRaisesRegex(ValueError, "not declared"):
            FairnessSpec("sex", reference=5, group_names=SEX)

    def test_intersectional_codes_and_names(self):
        spec = FairnessSpec(["sex", "age_group"], reference="M × 60-79", group_names={"sex": SEX, "age_group": AGE})
        self.assertEqual(spec.reference, 1002)
        self.assertEqual(
            FairnessSpec(["sex", "age_group"], ["M", "60-79"], {"sex": SEX, "age_group": AGE}).reference, 1002
        )
        self.assertEqual(spec.names()[2], "F × 60-79")
        self.assertEqual(spec.names([-1])[-1], "unknown")
        codes = spec.group_codes({"sex": torch.tensor([0, 1, -1, 1]), "age_group": torch.tensor([2, 3, 0, -1])})
        self.assertEqual(codes.tolist(), [2, 1003, -1, -1])
        self.assertEqual(spec.name, "sex × age_group")
        self.assertEqual(spec.as_dict()["reference"], "M × 60-79")

    def test_intersectional_figures_equal_fairlearn(self):
        gen = np.random.default_rng(0)
        n = 800
        df = pd.DataFrame({"sex": gen.integers(0, 2, n), "age_group": gen.integers(0, 4, n)})
        y = (gen.random(n) < 0.3 + 0.1 * df["age_group"]).astype(int)
        s = np.clip(0.5 * y + 0.15 * df["sex"] + gen.random(n) * 0.5, 0, 1)
        spec = FairnessSpec(["sex", "age_group"], "M × 40-59", {"sex": SEX, "age_group": AGE}, min_group_size=1)
        g = spec.group_codes({k: torch.as_tensor(df[k].to_numpy().copy()) for k in ("sex", "age_group")})
        ev = spec.evaluate(torch.as_tensor(s), torch.as_tensor(y), g, thresholds=0.5)
        mf = MetricFrame(
            metrics=true_positive_rate,
            y_true=y,
            y_pred=(s > 0.5).astype(int),
            sensitive_features=df[["sex", "age_group"]],
        )
        names = spec.names(ev.group_codes)
        for gi, code in enumerate(ev.group_codes):
            sex, age = divmod(code, 1000)
            self.assertEqual(names[code], f"{SEX[sex]} × {AGE[age]}")
            self.assertAlmostEqual(float(ev.tpr[0, 0, gi]), mf.by_group.loc[(sex, age)], places=14)
        self.assertAlmostEqual(
            float(ev.group_gaps["eod"][0, 0].max() - ev.group_gaps["eod"][0, 0].min()), mf.difference(), places=14
        )

    def test_validation(self):
        with self.assertRaisesRegex(ValueError, "metric"):
            FairnessSpec(metric="eodd")
        with self.assertRaisesRegex(ValueError, "unknown"):
            FairnessSpec(unknown="drop")
        with self.assertRaisesRegex(ValueError, "each of"):
            FairnessSpec(["sex", "age_group"], group_names=SEX)
        with self.assertRaisesRegex(KeyError, "no attribute 'race'"):
            FairnessSpec("race").group_codes({"sex": torch.tensor([0])})
        with self.assertRaisesRegex(ValueError, "below"):
            combine_group_codes([torch.tensor([1000]), torch.tensor([0])])

    def test_default_reference_is_largest_group(self):
        spec = FairnessSpec("sex")
        self.assertEqual(spec.resolve_reference(torch.tensor([0, 0, 1, 1, -1, -1, -1])), 0)  # tie → smaller code
        self.assertEqual(spec.resolve_reference(torch.tensor([0, 1, 1])), 1)


if __name__ == "__main__":
    unittest.main()
