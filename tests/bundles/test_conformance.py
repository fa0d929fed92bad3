# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""MONAI bundle conformance of ``mimic_vgg_pruning``: ``verify_metadata`` against the stored model-zoo schema,
``verify_net_in_out``, ``ckpt_export`` at both scales from ``models/model.pt`` and ``inference.json`` (untrained
networks: nothing here trains)."""

from __future__ import annotations

import json
import os
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from monai.bundle import ConfigParser, ckpt_export
from monai.bundle import run as bundle_run
from monai.bundle import verify_metadata, verify_net_in_out
from PIL import Image
from sklearn.metrics import roc_auc_score

from monai_fair.study import publish_model
from tests.bundles.bundle_runner import REPO, SCHEMA, bundle_configs

BUNDLE = REPO / "bundles" / "mimic_vgg_pruning"
TRAIN, SCALE_PAPER, INFERENCE, EVALUATE, META = bundle_configs(
    "mimic_vgg_pruning", "train", "scale_paper", "inference", "evaluate", "metadata"
)


def _network(config_files: list[str]) -> tuple[ConfigParser, torch.nn.Module]:
    parser = ConfigParser()
    parser.read_config(config_files)
    return parser, parser.get_parsed_content("network_def")


def _fake_training(ckpt_dir: Path, config_files: list[str], seed: int = 42) -> torch.nn.Module:
    """What a training run leaves: ``seed_<s>/model.pt`` (an untrained network), published as ``model.pt``."""
    parser, net = _network(config_files)
    (ckpt_dir / f"seed_{seed}").mkdir(parents=True)
    torch.save(net.state_dict(), ckpt_dir / f"seed_{seed}" / "model.pt")
    keys = ("scale", "stored_size", "input_size", "width", "fc_channels", "pool_size", "batch_norm")
    publish_model(ckpt_dir, seed, {**{k: parser[k] for k in keys}, "model_demo": True})
    return net


class TestMetadata(unittest.TestCase):
    def test_verify_metadata_offline(self):
        # the stored schema exists, so MONAI skips the download
        verify_metadata(meta_file=META, filepath=SCHEMA)

    def test_schema_rejects_output_without_value_range(self):
        meta = json.loads(Path(META).read_text())
        del meta["network_data_format"]["outputs"]["pred"]["value_range"]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "metadata.json")
            Path(path).write_text(json.dumps(meta))
            with self.assertRaisesRegex(ValueError, "value_range"):
                verify_metadata(meta_file=path, filepath=SCHEMA)

    def test_verify_net_in_out(self):
        verify_net_in_out(net_id="network_def", meta_file=META, config_file=TRAIN, device="cpu")


class TestPublishStep(unittest.TestCase):
    def test_train_run_publishes_first_seed(self):
        with tempfile.TemporaryDirectory() as tmp:
            parser = ConfigParser()
            parser.read_config(TRAIN)
            parser["ckpt_dir"], parser["seeds"] = tmp, [73, 42]
            os.makedirs(os.path.join(tmp, "seed_73"))
            torch.save({"w": torch.ones(1)}, os.path.join(tmp, "seed_73", "model.pt"))
            self.assertIn("publish_model", parser["run"][-1])
            path = parser.get_parsed_content(f"run#{len(parser['run']) - 1}")
            self.assertEqual(path, os.path.join(tmp, "model.pt"))
            network = json.loads(Path(tmp, "network.json").read_text())
            self.assertEqual((network["scale"], network["width"], network["model_demo"]), ("demo", 0.125, True))


class TestTrajectoriesToTensorBoard(unittest.TestCase):
    def test_study_writes_trajectories(self):
        from torch.utils.tensorboard import SummaryWriter

        with tempfile.TemporaryDirectory() as tmp:
            parser = ConfigParser()
            parser.read_config(TRAIN)
            parser["output_dir"] = tmp
            writer = parser.get_parsed_content("study#summary_writer")
            self.assertIsInstance(writer, SummaryWriter)
            self.assertEqual(writer.log_dir, os.path.join(tmp, "seed_42"))  # next to the validation scalars
            writer.close()


class TestCkptExport(unittest.TestCase):
    """One command, ``--config_file "['configs/train.json','models/network.json']" --ckpt_file models/model.pt``,
    exports the model of either scale."""

    def _export_and_compare(self, config_files: list[str], size: int):
        with tempfile.TemporaryDirectory() as tmp:
            models = Path(tmp) / "models"
            net = _fake_training(models, config_files)
            self.assertTrue((models / "model.pt").is_file())
            config = [TRAIN, str(models / "network.json")]  # the documented command's configs
            ts = str(models / "model.ts")
            ckpt_export(
                net_id="network_def",
                filepath=ts,
                ckpt_file=str(models / "model.pt"),
                meta_file=META,
                config_file=config,
                bundle_root=str(BUNDLE),
            )
            del config_files  # the export must not depend on them: network.json holds the scale
            loaded = torch.jit.load(ts, map_location="cpu")
            x = torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(0))
            net.eval()
            with torch.no_grad():
                expected, got = net(x), loaded(x)
            self.assertEqual(tuple(got.shape), (2, 1))
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)

    def test_demo_scale(self):
        self._export_and_compare([TRAIN], 64)

    def test_paper_scale(self):
        _, paper = _network([TRAIN, SCALE_PAPER])
        # the paper's full VGG-16 (4096-wide head), not the demo's 1/8 width
        self.assertGreater(sum(p.numel() for p in paper.parameters()), 1e8)
        del paper
        self._export_and_compare([TRAIN, SCALE_PAPER], 224)


class TestInference(unittest.TestCase):
    """``inference.json`` writes the model's probabilities, and the fairness table when the manifest has groups."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = Path(cls.tmp.name)
        cls.models = root / "models"
        cls.net = _fake_training(cls.models, [TRAIN])
        images = root / "data" / "images"
        images.mkdir(parents=True)
        rng = np.random.default_rng(0)
        rows = []
        for i in range(24):
            name = f"p{i:02d}.png"
            Image.fromarray(rng.integers(0, 256, (96, 128), dtype=np.uint8)).save(images / name)
            rows.append({"image": f"images/{name}", "Enlarged Cardiomediastinum": i % 2, "sex": "FM"[i // 12]})
        cls.manifest = root / "data" / "manifest.csv"
        pd.DataFrame(rows).to_csv(cls.manifest, index=False)
        cls.images = images
        cls.root = root

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def _run(self, out: str, **overrides):
        config = [TRAIN, INFERENCE, str(self.models / "network.json")]
        bundle_run(
            config_file=config,
            ckpt_dir=str(self.models),
            output_dir=str(self.root / out),
            device="cpu",
            **overrides,
        )
        return self.root / out / "inference"

    def _expected(self, files: list[Path]) -> np.ndarray:
        parser = ConfigParser()
        parser.read_config([TRAIN, str(self.models / "network.json")])
        transform = parser.get_parsed_content("validate#image_transforms")
        from monai.transforms import Compose

        chain = Compose(transform)
        x = torch.stack([chain({"image": str(f)})["image"] for f in files]).float()
        self.net.eval()
        with torch.no_grad():
            return torch.sigmoid(self.net(torch.as_tensor(x))).squeeze(1).numpy()

    def test_manifest_with_fairness_table(self):
        out = self._run("eval_manifest", manifest_file=str(self.manifest))
        preds = pd.read_csv(out / "predictions.csv", header=None, names=["filename", "pred0"])
        self.assertEqual(preds["filename"].tolist(), [f"images/p{i:02d}.png" for i in range(24)])
        expected = self._expected([self.images / f"p{i:02d}.png" for i in range(3)])
        np.testing.assert_allclose(preds["pred0"].to_numpy()[:3], expected, rtol=1e-4, atol=1e-5)
        table = pd.read_csv(out / "per_group.csv")
        self.assertEqual(sorted(table["group"].astype(str)), ["F", "M"])
        self.assertEqual(sorted(table["n"].tolist()), [12, 12])
        self.assertIn("DEMO DATA", (out / "report.md").read_text())

    def test_folder_predictions_only(self):
        out = self._run("eval_folder", input_dir=str(self.images))
        preds = pd.read_csv(out / "predictions.csv", header=None, names=["filename", "pred0"])
        self.assertEqual(len(preds), 24)
        self.assertTrue(((preds["pred0"] > 0) & (preds["pred0"] < 1)).all())
        self.assertFalse((out / "fairness_table.csv").exists())


class TestEvaluateConfig(unittest.TestCase):
    """``evaluate.json``: the standard model comes back through ``CheckpointLoader`` into a ``SupervisedEvaluator``."""

    def test_checkpoint_loader_evaluator(self):
        with tempfile.TemporaryDirectory() as tmp:
            parser = ConfigParser()
            parser.read_config([TRAIN, EVALUATE])
            self.assertEqual(parser["seed_run"], ["$@test#evaluator.run()"])
            self.assertEqual(parser["seed_result"], "$@study.run(fit=False)")
            parser["ckpt_dir"], parser["output_dir"], parser["device"] = tmp, tmp, "cpu"
            parser["fairness#group_names"] = {0: "F", 1: "M"}  # what seed_data.code_maps gives for sex
            torch.manual_seed(1)
            trained = parser.get_parsed_content("network_def", lazy=False)
            os.makedirs(os.path.join(tmp, "seed_42"))
            torch.save(trained.state_dict(), os.path.join(tmp, "seed_42", "model.pt"))
            gen = torch.Generator().manual_seed(0)
            data = [
                {"image": torch.rand(1, 64, 64, generator=gen), "label": torch.tensor([float(i % 2)]), "sex": i % 3 % 2}
                for i in range(24)
            ]
            parser["test#evaluator#val_data_loader"] = torch.utils.data.DataLoader(data, batch_size=8)
            evaluator = parser.get_parsed_content("test#evaluator")
            evaluator.run()
            for key, value in trained.state_dict().items():  # the evaluator's network holds the checkpoint
                torch.testing.assert_close(evaluator.network.state_dict()[key], value, msg=key)
            trained.eval()
            with torch.no_grad():
                scores = torch.sigmoid(trained(torch.stack([d["image"] for d in data]))).squeeze(1).numpy()
            y = np.array([i % 2 for i in range(24)])
            sex = np.array([i % 3 % 2 for i in range(24)])
            metrics = evaluator.state.metrics
            self.assertAlmostEqual(metrics["test_auc"], roc_auc_score(y, scores), places=5)
            self.assertAlmostEqual(metrics["sex/auc_F"], roc_auc_score(y[sex == 0], scores[sex == 0]), places=5)
            self.assertEqual(
                sorted(k for k in metrics if k.startswith("sex/")), ["sex/auc_F", "sex/auc_M", "sex/auc_gap"]
            )
            self.assertIn("test_bce", metrics)


class TestChexpertResnetRaceConformance(unittest.TestCase):
    """``chexpert_resnet_race``: metadata against the stored schema, network in/out, TorchScript export of a published
    model (models/<model>/model.pt + network.json) at the demo scale."""

    CONFIGS = REPO / "bundles" / "chexpert_resnet_race" / "configs"

    def test_metadata_and_net_in_out(self):
        meta = str(self.CONFIGS / "metadata.json")
        verify_metadata(meta_file=meta, filepath=SCHEMA)
        verify_net_in_out(
            net_id="network_def", meta_file=meta, config_file=str(self.CONFIGS / "train.json"), device="cpu"
        )

    def test_ckpt_export_of_published_model(self):
        train = str(self.CONFIGS / "train.json")
        parser, net = _network([train])
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = Path(tmp) / "mixed"
            (model_dir / "seed_0").mkdir(parents=True)
            torch.save(net.state_dict(), model_dir / "seed_0" / "model.pt")
            publish_model(model_dir, 0, {k: parser[k] for k in ("input_size", "widen_factor", "conv1_stride")})
            ts = str(Path(tmp) / "model.ts")
            ckpt_export(
                net_id="network_def",
                filepath=ts,
                ckpt_file=str(model_dir / "model.pt"),
                meta_file=str(self.CONFIGS / "metadata.json"),
                config_file=[train, str(model_dir / "network.json")],
                bundle_root=str(REPO / "bundles" / "chexpert_resnet_race"),
            )
            x = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(0))
            net.eval()
            with torch.no_grad():
                torch.testing.assert_close(torch.jit.load(ts, map_location="cpu")(x), net(x), rtol=1e-4, atol=1e-5)


ISIC_ADV_CONFIGS = REPO / "bundles" / "isic_adversarial_fairness" / "configs"


class TestIsicAdversarialFairnessMetadata(unittest.TestCase):
    """The isic_adversarial_fairness bundle against the same schema and network checks."""

    def test_verify_metadata_offline(self):
        verify_metadata(meta_file=str(ISIC_ADV_CONFIGS / "metadata.json"), filepath=SCHEMA)

    def test_verify_net_in_out(self):
        verify_net_in_out(
            net_id="network_def",
            meta_file=str(ISIC_ADV_CONFIGS / "metadata.json"),
            config_file=str(ISIC_ADV_CONFIGS / "train.json"),
            device="cpu",
        )


class TestCounterfactualAuditConformance(unittest.TestCase):
    """cxr_counterfactual_audit: metadata against the stored schema and the demo classifier against its format."""

    META = str(REPO / "bundles" / "cxr_counterfactual_audit" / "configs" / "metadata.json")
    TRAIN = str(REPO / "bundles" / "cxr_counterfactual_audit" / "configs" / "train.json")

    def test_verify_metadata_offline(self):
        verify_metadata(meta_file=self.META, filepath=SCHEMA)

    def test_verify_net_in_out(self):
        verify_net_in_out(net_id="network_def", meta_file=self.META, config_file=self.TRAIN, device="cpu")


if __name__ == "__main__":
    unittest.main()
