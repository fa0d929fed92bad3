# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The documented bundle snippet: fairness pieces added to a ``validate#evaluator`` through a MONAI config."""

from __future__ import annotations

import os
import sys
import tempfile
import unittest
from pathlib import Path

import torch
from monai.bundle import ConfigParser
from monai.data import DataLoader, Dataset
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluator_fixture import MeanLogit, make_samples  # noqa: E402

# what a user adds to an existing bundle (train.json / evaluate.json), verbatim apart from the paths
SNIPPET = {
    "imports": ["$import monai_fair", "$import monai_fair.handlers"],
    "validate": {
        "key_metric": {
            "val_fair_objective": {
                "_target_": "FairnessObjectiveMetric",
                "attributes": "sex",
                "reference": 1,
                "epsilon": 0.2,
            }
        },
        "additional_metrics": {
            "sex_fairness": {
                "_target_": "GroupFairnessMetric",
                "attributes": "sex",
                "group_names": {"0": "F", "1": "M"},
                "reference": 1,
                "min_group_size": 5,
                "metrics": "all",
            },
            "val_eod_gap": {"_target_": "FairnessSummaryMetric", "attributes": "sex", "summary": "eod_max_min"},
        },
        "handlers": [
            {"_target_": "StatsHandler", "iteration_log": False},
            {"_target_": "TensorBoardStatsHandler", "log_dir": "@output_dir", "iteration_log": False},
            {"_target_": "FairnessTensorBoardHandler", "log_dir": "@output_dir"},
            {"_target_": "MetricsSaver", "save_dir": "@output_dir", "metrics": ["val_fair_objective", "sex/eod_F"]},
            {
                "_target_": "CheckpointSaver",
                "save_dir": "@ckpt_dir",
                "save_dict": {"model": "@network"},
                "save_key_metric": True,
                "key_metric_filename": "model.pt",
            },
        ],
        "evaluator": {
            "_target_": "SupervisedEvaluator",
            "device": "$torch.device('cpu')",
            "val_data_loader": "@validate#dataloader",
            "network": "@network",
            "postprocessing": {"_target_": "Activationsd", "keys": "pred", "sigmoid": True},
            "key_val_metric": "@validate#key_metric",
            "additional_metrics": "@validate#additional_metrics",
            "val_handlers": "@validate#handlers",
        },
    },
}


class TestBundleSnippet(unittest.TestCase):
    def test_config_runs_and_logs(self):
        samples = make_samples(64, seed=21)
        with tempfile.TemporaryDirectory() as tmp:
            parser = ConfigParser(SNIPPET)
            parser["output_dir"] = os.path.join(tmp, "eval")
            parser["ckpt_dir"] = os.path.join(tmp, "models")
            parser["network"] = MeanLogit()  # stands in for the bundle's "$@network_def.to(@device)"
            parser["validate"]["dataloader"] = DataLoader(Dataset(samples), batch_size=16)
            evaluator = parser.get_parsed_content("validate#evaluator")
            evaluator.run()
            for h in parser.get_parsed_content("validate#handlers"):
                if hasattr(h, "close"):
                    h.close()
            metrics = evaluator.state.metrics
            self.assertIn("sex/eod_F", metrics)
            self.assertIn("val_fair_objective/bias", metrics)
            self.assertEqual(evaluator.state.best_metric, metrics["val_fair_objective"])
            saved = torch.load(os.path.join(tmp, "models", "model.pt"), weights_only=True)
            self.assertIn("scale", saved)
            rows = Path(tmp, "eval", "metrics.csv").read_text()
            self.assertIn("sex/eod_F,", rows)
            acc = EventAccumulator(os.path.join(tmp, "eval"))
            acc.Reload()
            self.assertIn("sex/auc_gap", acc.Tags()["scalars"])  # TensorBoardStatsHandler
            # with a TensorBoardStatsHandler on the engine, FairnessTensorBoardHandler writes no second copy
            self.assertFalse([t for t in acc.Tags()["scalars"] if t.startswith("fairness/")])
            self.assertIn("fairness/sex/table/text_summary", acc.Tags()["tensors"])
            self.assertIn("fairness/sex/roc", acc.Tags()["images"])


if __name__ == "__main__":
    unittest.main()
