# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The CheXpert demo's planted group-dependent appearance: a pixel-level linear model trained on White patients only
transfers worse to the other groups than one trained on a mixed set of the same size (the mechanism the
chexpert_resnet_race bundle's demo relies on), and ``appearance_shift=0`` keeps the earlier draws."""

from __future__ import annotations

import tempfile
import unittest

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from monai_fair.data import cross_group_splits
from monai_fair.data.chexpert import build_chexpert_manifest
from monai_fair.data.demo.chexpert import _shift_appearance, make_chexpert_demo
from monai_fair.transforms.cxr_io import LoadCXRImaged


class TestShiftAppearance(unittest.TestCase):
    def test_only_other_groups_local_findings(self):
        rng = np.random.default_rng(0)
        p = {"appearance_shift": 1.0}
        strength = {"Edema": 0.8, "Cardiomegaly": 1.0}
        _shift_appearance(rng, p, "White", strength)
        self.assertEqual(strength, {"Edema": 0.8, "Cardiomegaly": 1.0})
        _shift_appearance(rng, p, "Black", strength)
        self.assertEqual(strength, {"Edema": -0.8, "Cardiomegaly": 1.0})

    def test_off_draws_no_random_number(self):
        rng = np.random.default_rng(0)
        state = rng.bit_generator.state
        _shift_appearance(rng, {"appearance_shift": 0.0}, "Asian", {"Edema": 0.8})
        self.assertEqual(rng.bit_generator.state, state)


class TestPlantedTransfer(unittest.TestCase):
    def test_single_group_model_transfers_worse(self):
        label = "Pleural Effusion"
        with tempfile.TemporaryDirectory() as tmp:
            root = make_chexpert_demo(
                tmp,
                seed=0,
                n_patients=360,
                n_valid_patients=2,
                image_size=24,
                lateral_fraction=0.0,
                race_shift=0.0,
                appearance_shift=1.0,
            )
            table, maps, _ = build_chexpert_manifest(root, uncertain="zeros")
            loader = LoadCXRImaged("image")
            x = np.stack([loader({"image": p})["image"].reshape(-1) for p in table["image"]]).astype(np.float64)
        # pixels and squared deviations from the mean image: a linear model on these can learn "a change in either
        # direction", as a CNN can, but only from training data that show both directions
        x = x / 255.0
        x = np.concatenate([x, (x - x.mean(0)) ** 2], axis=1)
        table = table.assign(row=np.arange(len(table)))
        white = [c for c, n in maps["race"].items() if n == "White"][0]
        s = cross_group_splits(table, "race", white, seed=0)
        test = s["test"]
        other = test[test["race"] != white]
        auc = {}
        for name in ("single", "mixed"):
            train = s[f"train_{name}"]
            model = LogisticRegression(C=1.0, max_iter=3000).fit(x[train["row"]], train[label])
            auc[name] = roc_auc_score(other[label], model.predict_proba(x[other["row"]])[:, 1])
        self.assertGreater(auc["mixed"] - auc["single"], 0.1, auc)


if __name__ == "__main__":
    unittest.main()
