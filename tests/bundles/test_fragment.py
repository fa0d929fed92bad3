# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The fairness-monitoring fragment merged into a model-zoo style classification bundle written here: it appends
the fairness metric and the TensorBoard handler, and the bundle keeps everything it had."""

from __future__ import annotations

import json
import logging
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch
from monai.bundle import ConfigParser
from PIL import Image
from sklearn.metrics import recall_score, roc_auc_score
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

REPO = Path(__file__).resolve().parents[2]
FRAGMENT = str(REPO / "bundles" / "fairness_monitoring" / "configs" / "fairness_fragment.json")


def _model_zoo_train_config(data: list[dict]) -> dict:
    """A classification train.json in the model zoo's style (ids ``validate#handlers``, ``validate#evaluator``)."""
    transforms = [
        {"_target_": "LoadImaged", "keys": "image", "ensure_channel_first": True},
        {"_target_": "ScaleIntensityd", "keys": "image"},
        {"_target_": "EnsureTyped", "keys": ["image", "label"], "dtype": "$torch.float32"},
    ]
    return {
        "imports": ["$import torch", "$from monai.handlers import from_engine"],
        "bundle_root": ".",
        "output_dir": "$@bundle_root + '/eval'",
        "device": "$torch.device('cpu')",
        "network_def": {
            "_target_": "DenseNet",
            "spatial_dims": 2,
            "in_channels": 1,
            "out_channels": 1,
            "init_features": 4,
            "growth_rate": 4,
            "block_config": [1, 1],
        },
        "network": "$@network_def.to(@device)",
        "validate": {
            "preprocessing": {"_target_": "Compose", "transforms": transforms},
            "dataset": {"_target_": "Dataset", "data": data, "transform": "@validate#preprocessing"},
            "dataloader": {"_target_": "DataLoader", "dataset": "@validate#dataset", "batch_size": 8},
            "postprocessing": {"_target_": "Activationsd", "keys": "pred", "sigmoid": True},
            "handlers": [
                {"_target_": "StatsHandler", "iteration_log": False},
                {"_target_": "TensorBoardStatsHandler", "log_dir": "@output_dir", "iteration_log": False},
            ],
            "evaluator": {
                "_target_": "SupervisedEvaluator",
                "device": "@device",
                "val_data_loader": "@validate#dataloader",
                "network": "@network",
                "postprocessing": "@validate#postprocessing",
                "key_val_metric": {
                    "val_auc": {"_target_": "ROCAUC", "output_transform": "$from_engine(['pred', 'label'])"}
                },
                "additional_metrics": {
                    "val_bce": {
                        "_target_": "ignite.metrics.Loss",
                        "loss_fn": "$torch.nn.BCELoss()",
                        "output_transform": "$from_engine(['pred', 'label'])",
                    }
                },
                "val_handlers": "@validate#handlers",
            },
        },
    }


class TestFairnessFragment(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = Path(cls.tmp.name)
        (root / "images").mkdir()
        (root / "configs").mkdir()
        rng = np.random.default_rng(0)
        data = []
        for i in range(32):
            path = root / "images" / f"{i}.png"
            Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(path)
            data.append({"image": str(path), "label": [float(i % 2)], "sex": int(i < 16)})
        cls.train = root / "configs" / "train.json"
        cls.train.write_text(json.dumps(_model_zoo_train_config(data), indent=2))
        cls.root = root
        cls.parser = ConfigParser()
        cls.parser.read_config([str(cls.train), FRAGMENT])
        cls.parser["bundle_root"] = str(root)
        cls.parser["fairness#group_names"] = {0: "F", 1: "M"}
        cls.parser["fairness#reference"] = "M"
        with unittest.TestCase().assertLogs("monai.handlers.StatsHandler", logging.INFO) as logs:
            cls.evaluator = cls.parser.get_parsed_content("validate#evaluator")
            cls.evaluator.run()
        cls.console = "\n".join(logs.output)
        for handler in cls.parser.get_parsed_content("validate#handlers"):
            if hasattr(handler, "flush"):
                handler.flush()  # figures drawn in the background
        cls.tags = {}
        for event_file in sorted((root / "eval").glob("events.out.tfevents.*")):
            acc = EventAccumulator(str(event_file), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
            acc.Reload()
            for kind, names in acc.Tags().items():
                if isinstance(names, list):
                    for name in names:
                        cls.tags.setdefault(kind, []).append(name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_merge_appends(self):
        config = self.parser.get()
        self.assertEqual(list(config["validate"]["evaluator"]["additional_metrics"]), ["val_bce", "val_fairness"])
        handlers = [h["_target_"] for h in config["validate"]["handlers"]]
        self.assertEqual(
            handlers, ["StatsHandler", "TensorBoardStatsHandler", "monai_fair.handlers.FairnessTensorBoardHandler"]
        )

    def test_metrics_keep_the_bundles_own(self):
        metrics = self.evaluator.state.metrics
        self.assertIn("val_auc", metrics)
        self.assertIn("val_bce", metrics)
        fairness = sorted(k for k in metrics if k.startswith("sex/"))
        self.assertIn("sex/eod_F", fairness)
        self.assertIn("sex/tpr_M", fairness)
        # the concise selection only: tpr per group, the gaps and the AUC gap (no ECE, no counts)
        expected = ["sex/auc_gap", *(f"sex/{m}_{g}" for m in ("eod", "spd", "tpr") for g in "FM")]
        self.assertEqual(fairness, sorted(expected))
        # independent oracle: the network's scores on every image, TPR and AUC per group by sklearn
        net = self.parser.get_parsed_content("network").eval()
        transform = self.parser.get_parsed_content("validate#preprocessing")
        data = self.parser["validate#dataset#data"]
        with torch.no_grad():
            x = torch.stack([transform(dict(d))["image"] for d in data])
            scores = torch.sigmoid(net(x)).squeeze(1).numpy()
        y = np.array([d["label"][0] for d in data])
        sex = np.array([d["sex"] for d in data])
        tpr = {g: recall_score(y[sex == c], scores[sex == c] >= 0.5, zero_division=0) for g, c in (("F", 0), ("M", 1))}
        auc = {g: roc_auc_score(y[sex == c], scores[sex == c]) for g, c in (("F", 0), ("M", 1))}
        self.assertAlmostEqual(metrics["sex/tpr_F"], tpr["F"], places=6)
        self.assertAlmostEqual(metrics["sex/eod_F"], tpr["F"] - tpr["M"], places=6)
        self.assertAlmostEqual(abs(metrics["sex/auc_gap"]), abs(auc["F"] - auc["M"]), places=5)

    def test_tensorboard_tags_once(self):
        scalars = self.tags.get("scalars", [])
        self.assertEqual(len(scalars), len(set(scalars)), "a scalar was written twice")
        self.assertIn("sex/eod_F", scalars)
        self.assertFalse([t for t in scalars if t.startswith("fairness/")])
        self.assertIn("fairness/sex/table/text_summary", self.tags.get("tensors", []))
        self.assertEqual(sorted(self.tags.get("images", [])), ["fairness/sex/calibration", "fairness/sex/roc"])

    def test_console_line_is_concise(self):
        line = max(self.console.splitlines(), key=len)
        self.assertIn("sex/eod_F", line)
        self.assertLess(len(line), 1000)


if __name__ == "__main__":
    unittest.main()
