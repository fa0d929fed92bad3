# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""EmbeddingDebiasStudy on a small planted table: records per representation, LEACE against the original, the
poisoning flips, reloading (fit=False) reproduces the records, publishing and inference on a new table."""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch

from monai_fair.data.embeddings import EmbeddingTable, load_embedding_table, write_embedding_table
from monai_fair.data.poisoning import flip_count
from monai_fair.debias import LeaceEraser, VAEDebiaser
from monai_fair.metrics import FairnessSpec
from monai_fair.metrics.probes import probe_split
from monai_fair.study import (
    EmbeddingDebiasStudy,
    debias_embedding_table,
    embedding_inference,
    gather_seed_results,
    load_embedding_splits,
    publish_debiasers,
)

_THREADS = torch.get_num_threads()


def setUpModule():
    torch.set_num_threads(1)


def tearDownModule():
    torch.set_num_threads(_THREADS)


def planted_table(seed: int, n: int = 240, d: int = 12) -> EmbeddingTable:
    """Noise plus a sex direction (strong), an age direction and a task direction; sex codes F=0, M=1."""
    rng = np.random.default_rng(seed)
    sex = rng.integers(0, 2, n)
    age = rng.integers(55, 75, n).astype(np.float32)
    y = (rng.random(n) < 0.4).astype(np.float32)
    basis, _ = np.linalg.qr(np.random.default_rng(123).normal(size=(d, 3)))  # the same directions in every table
    x = rng.normal(size=(n, d)) + np.outer(3.0 * (2 * sex - 1), basis[:, 0])
    x += np.outer((age - 65) / 6, basis[:, 1]) + np.outer(2.0 * y, basis[:, 2])
    return EmbeddingTable(
        x.astype(np.float32),
        y[:, None],
        ["cancer_in_1"],
        sex.astype(np.int64),
        age,
        np.zeros(n, dtype=np.int64),
        np.asarray([f"h{i}" for i in range(n)]),
        {"sex": {0: "F", 1: "M"}},
    )


def make_study(tmp: str, fractions=(0.0, 0.5)) -> EmbeddingDebiasStudy:
    tables = {"train": planted_table(0), "eval": planted_table(1)}
    debiasers = {
        "vae": VAEDebiaser(latent_size=4, epochs=2, seed=0, scheme="alternating", adversarial_weight=1.0),
        "leace": LeaceEraser(),
    }
    spec = FairnessSpec(attributes="sex", reference=1, group_names={"sex": {0: "F", 1: "M"}})
    return EmbeddingDebiasStudy(
        tables,
        debiasers,
        ["vae", "leace"],
        spec,
        Path(tmp) / "out",
        Path(tmp) / "ckpt",
        probes=("linear",),
        poison_group=0,
        poison_fractions=fractions,
        n_bootstrap=20,
        seed=3,
    )


class TestEmbeddingDebiasStudy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.study = make_study(cls.tmp.name)
        cls.result = cls.study.run()
        cls.records = {r["method"]: r for r in cls.result["records"]}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_records_per_representation(self):
        for name in ("original", "vae", "leace"):
            rec = self.records[name]
            self.assertEqual(rec["split"], "test")
            for key in ("linear_sex_auc", "linear_sex_auc_ci_low", "linear_age_mae", "task_auc", "task_eod"):
                self.assertIn(key, rec)
            self.assertLessEqual(rec["linear_sex_auc_ci_low"], rec["linear_sex_auc"])
        self.assertIn("vae", self.result["trajectories"])
        self.assertEqual(len(self.result["trajectories"]["vae"]["step"]), 2)

    def test_leace_against_original(self):
        # the planted sex direction is found by a fresh linear probe; LEACE (fitted on train) removes it on eval
        self.assertGreater(self.records["original"]["linear_sex_auc"], 0.95)
        self.assertLess(self.records["leace"]["linear_sex_auc"], 0.75)
        self.assertGreater(self.records["leace"]["task_auc"], self.records["original"]["task_auc"] - 0.1)

    def test_poisoning_flips_the_stated_count(self):
        ev = self.study.eval
        train_idx, _ = probe_split(np.stack([ev.sex, ev.labels[:, 0]], 1), 0.5, seed=3)
        n_group = int((ev.sex[train_idx] == 0).sum())
        for rep in ("original", "vae", "leace"):
            self.assertEqual(self.records[f"poisoned_{rep}_0"]["n_flipped"], 0)
            self.assertEqual(self.records[f"poisoned_{rep}_50"]["n_flipped"], flip_count(0.5, n_group))
        # no flips: the same probe as the clean record
        self.assertEqual(self.records["poisoned_original_0"]["task_auc"], self.records["original"]["task_auc"])

    def test_reload_reproduces(self):
        again = make_study(self.tmp.name).run(fit=False)
        reloaded = {r["method"]: r for r in again["records"]}
        for name in ("original", "vae", "leace"):
            self.assertAlmostEqual(reloaded[name]["linear_sex_auc"], self.records[name]["linear_sex_auc"], places=6)
            self.assertAlmostEqual(reloaded[name]["task_eod"], self.records[name]["task_eod"], places=6)
        saved = json.loads((Path(self.tmp.name) / "out" / "results.json").read_text())
        self.assertEqual(saved["seed"], 3)

    def test_publish_and_debias_new_table(self):
        ckpt = Path(self.tmp.name) / "ckpt_root"
        (ckpt / "seed_3").mkdir(parents=True)
        for m in ("vae", "leace"):
            (ckpt / "seed_3" / f"{m}.pt").write_bytes((Path(self.tmp.name) / "ckpt" / f"{m}.pt").read_bytes())
        publish_debiasers(ckpt, 3, ["vae", "leace"], demo=True)
        self.assertTrue(json.loads((ckpt / "debiasers.json").read_text())["demo"])
        new = planted_table(5, n=30)
        src = Path(self.tmp.name) / "new.csv"
        write_embedding_table(
            src, new.embeddings, {"pid": np.arange(900100, 900130), "sex": ["F", "M"] * 15, "age": new.age}
        )
        out = debias_embedding_table(
            src, ckpt / "leace.pt", Path(self.tmp.name) / "inf" / "deb.npz", method="leace", id_column="pid", demo=True
        )
        table = load_embedding_table(out["table"], label_columns=())
        expected = self.study.debiasers["leace"].transform(new.embeddings)
        np.testing.assert_allclose(table.embeddings, expected, rtol=1e-5, atol=1e-5)
        self.assertEqual(table.sex.tolist(), [0, 1] * 15)
        with np.load(out["table"]) as npz:  # hashed ids only
            self.assertNotIn("pid", npz.files)
            self.assertFalse(any("900100" in str(v) for v in npz["patient_hash"]))
        self.assertIn("DEMO", Path(out["report_html"]).read_text())

    def test_invalid(self):
        tables = {"train": planted_table(0), "eval": planted_table(1)}
        spec = FairnessSpec(attributes="sex", reference=1)
        with self.assertRaisesRegex(ValueError, "no debiaser"):
            EmbeddingDebiasStudy(tables, {}, ["vae"], spec, "o", "c")
        with self.assertRaisesRegex(ValueError, "'train' and 'eval'"):
            EmbeddingDebiasStudy({"train": tables["train"]}, {}, [], spec, "o", "c")
        for bad, pattern in (
            ({"poison_fractions": [1.5]}, "flip rates"),
            ({"probes": ["svm"]}, "probe kind"),
            ({"output": "mean"}, "output"),
        ):
            with self.assertRaisesRegex(ValueError, pattern):
                EmbeddingDebiasStudy(tables, {}, [], spec, "o", "c", **bad)
        with self.assertRaisesRegex(ValueError, "label"):
            EmbeddingDebiasStudy(tables, {}, [], spec, "o", "c", label="cancer_in_9")
        with self.assertRaisesRegex(FileNotFoundError, "train.json"):
            make_study(tempfile.mkdtemp()).run(fit=False)
        with self.assertRaisesRegex(FileNotFoundError, "nlst_train_with_labels.npz"):
            load_embedding_splits(tempfile.mkdtemp())
        with self.assertRaisesRegex(ValueError, "exactly one"):
            embedding_inference("models", "out")
        with self.assertRaisesRegex(FileNotFoundError, "train.json first"):
            embedding_inference(tempfile.mkdtemp(), "out", input_table="t.npz")
        self.assertEqual(gather_seed_results([{"seed": 1}]), [{"seed": 1}])  # no process group: as is


if __name__ == "__main__":
    unittest.main()
