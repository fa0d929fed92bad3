# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Bad bundle settings and overrides end in one clear error naming the override, before anything is trained."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import torch
from PIL import Image

from monai_fair.data.codes import SEX_NAMES
from monai_fair.data.sampling import marcinkevics_study_data
from monai_fair.study import (
    BundleConfigError,
    SeedLoop,
    StudyRunError,
    StudySplits,
    accepted_arguments,
    cause_line,
    install_cause_hook,
    root_cause,
    validate_study_config,
)

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / "mimic_vgg_pruning" / "configs"
TRAIN = str(CONFIGS / "train.json")
ALL_METHODS = (
    "reject_option, equalized_odds, random_perturbation, adversarial, pruning, bias_gda, adaptive_pruning, "
    "engineered_bias_gradient"
)


def _manifest(folder: str, columns: dict) -> str:
    path = os.path.join(folder, "manifest.csv")
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


class TestOverrides(unittest.TestCase):
    """Each case: overrides → the exact message, naming the override and what it accepts."""

    def assert_rejected(self, overrides: dict, *parts: str) -> str:
        with self.assertRaises(BundleConfigError) as cm:
            validate_study_config(TRAIN, overrides)
        message = str(cm.exception)
        for part in parts:
            self.assertIn(part, message)
        self.assertNotIn("\n", message)
        return message

    def test_defaults_and_good_overrides_pass(self):
        for overrides in (
            {},
            {"seeds": [1, 2, 3], "epochs": 1},
            {"seeds": 7},
            {"methods": "pruning"},
            {"privileged": "male", "unprivileged": "female"},
            {"metric": "aod", "methods": ["reject_option", "equalized_odds"]},
            {"bits": 16, "verify_images": True, "missing_patient": "image"},
            {"debiasers#pruning#step_size": 5, "demo_params#n_subjects": 100},
        ):
            with self.subTest(overrides=overrides):
                validate_study_config(TRAIN, overrides)

    def test_bundle_configs_pass(self):
        for files in (
            [TRAIN],
            [TRAIN, str(CONFIGS / "evaluate.json")],
            [TRAIN, str(CONFIGS / "scale_paper.json")],
            [TRAIN, str(CONFIGS / "multi_gpu_train.json")],
        ):
            with self.subTest(files=[Path(f).name for f in files]):
                validate_study_config(files, {"device": "cpu"})

    def test_seeds(self):
        self.assert_rejected({"seeds": "abc"}, "--seeds 'abc'", "list of integer seeds", '--seeds "[42, 43]"')
        self.assert_rejected({"seeds": [42, 4.5]}, "--seeds", "integer")
        self.assert_rejected({"seeds": []}, "--seeds []")
        self.assert_rejected({"seeds": [1, 1]}, "--seeds [1, 1]", "[1] repeat")

    def test_dataset(self):
        self.assert_rejected({"dataset": "foo"}, "--dataset 'foo'", "allowed: demo, manifest, mimic")
        self.assert_rejected({"dataset": "manifest"}, "--dataset 'manifest'", "--manifest_file")
        self.assert_rejected({"dataset": "mimic"}, "--dataset 'mimic'", "--dataset_dir")
        self.assert_rejected({"manifest_file": "/no/such/manifest.csv"}, "--manifest_file", "no such file")
        self.assert_rejected({"dataset_dir": "/no/such/mimic"}, "--dataset_dir", "no such folder")

    def test_methods(self):
        message = self.assert_rejected({"methods": ["prunning"]}, "--methods", "['prunning']", "did you mean 'pruning'")
        self.assertIn(f"configured: {ALL_METHODS}", message)
        self.assert_rejected({"methods": [1]}, "--methods [1]", "list of method names")

    def test_metric(self):
        self.assert_rejected({"metric": "eodd"}, "--metric 'eodd'", "allowed: spd, eod, aod", "did you mean 'eod'")
        # pruning needs a differentiable proxy: named before training, with the way out
        self.assert_rejected(
            {"metric": "aod"}, "--debiasers#pruning", "proxy metric", "leave 'pruning' out of --methods"
        )

    def test_epsilon(self):
        for value in (0, -0.1, "abc", float("nan"), True):
            with self.subTest(epsilon=value):
                self.assert_rejected({"epsilon": value}, "--epsilon", "positive number")

    def test_misspelled_debiaser_argument(self):
        message = self.assert_rejected(
            {"debiasers#pruning#step_sise": 5},
            "--debiasers#pruning#step_sise",
            "not an argument of monai_fair.debias.PruningDebiaser",
            "did you mean 'step_size'",
        )
        self.assertIn("step_size", message.split("accepted:")[1])

    def test_bad_debiaser_value(self):
        self.assert_rejected({"debiasers#pruning#step_size": 0}, "--debiasers#pruning", "step_size must be >= 1")

    def test_unknown_ids(self):
        self.assert_rejected({"epoch": 1}, "--epoch:", "not a setting of this bundle", "did you mean 'epochs'")
        self.assert_rejected(
            {"debiasers#prunning#step_size": 5}, "'debiasers' has no entry 'prunning'", "did you mean 'pruning'"
        )
        self.assert_rejected({"train#trainr#max_epochs": 1}, "'train' has no entry 'trainr'", "'trainer'")

    def test_groups(self):
        self.assert_rejected({"privileged": "blue"}, "--privileged 'blue'", "not a sex group", "Male")
        self.assert_rejected({"privileged": "F"}, "--unprivileged 'F'", "same group as --privileged")
        self.assert_rejected({"attribute": ""}, "--attribute ''", "attribute column name")

    def test_options(self):
        cases = {
            "bits": ("sixteen", "bit depth"),
            "verify_images": ("yes", "true or false"),
            "missing_patient": ("row", "allowed: error, image"),
            "patient_column": ("", "column name"),
            "split_fractions": ([0.5, 0.5], "three positive train/val/test fractions"),
            "epochs": (0, "integer >= 1"),
            "batch_size": (2.5, "integer >= 1"),
            "n_bootstrap": (0, "integer >= 1"),
            "seed_workers": ("many", "processes running seeds side by side"),
            "lr": (-1, "positive learning rate"),
            "amp": ("no", "true or false"),
            "device": ("gpu0", "allowed: auto, cpu, cuda"),
        }
        for key, (value, expected) in cases.items():
            with self.subTest(key=key):
                self.assert_rejected({key: value}, f"--{key} {value!r}", expected)

    @unittest.skipIf(torch.cuda.is_available(), "a CUDA device is available")
    def test_unavailable_cuda(self):
        self.assert_rejected({"device": "cuda"}, "--device 'cuda'", "not available here", "auto or cpu")

    def test_accepted_arguments_follow_kwargs_to_the_base(self):
        from monai_fair.debias import PruningDebiaser

        accepted = accepted_arguments(PruningDebiaser)
        self.assertTrue({"step_size", "max_steps", "spec", "amp", "device"} <= accepted)
        self.assertNotIn("kwargs", accepted)
        self.assertIsNone(accepted_arguments(lambda **kw: None))


class TestManifestOverrides(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def assert_rejected(self, overrides: dict, *parts: str) -> None:
        with self.assertRaises(BundleConfigError) as cm:
            validate_study_config(TRAIN, overrides)
        for part in parts:
            self.assertIn(part, str(cm.exception))

    def test_missing_attribute_label_and_patient_columns(self):
        path = _manifest(self.tmp.name, {"image": ["a.png"], "label": [1], "gender": ["M"]})
        base = {"manifest_file": path}
        self.assert_rejected(
            {**base, "label": "label"}, "--attribute 'sex'", "no such column", "columns: image, label, gender"
        )
        self.assert_rejected(
            {**base, "attribute": "gender", "label": "Effusion"}, "--label 'Effusion'", "no such column"
        )
        self.assert_rejected(
            {**base, "attribute": "gender", "label": "label"},
            "--patient_column 'patient_id'",
            "--missing_patient image",
        )

    def test_split_by_image_is_allowed_with_a_warning(self):
        path = _manifest(self.tmp.name, {"image": ["a.png"], "label": [1], "sex": ["male"]})
        with self.assertLogs("monai_fair.study.validation", logging.WARNING) as logs:
            validate_study_config(
                TRAIN, {"manifest_file": path, "label": "label", "missing_patient": "image", "privileged": "male"}
            )
        self.assertIn("patient leakage cannot be ruled out", "\n".join(logs.output))

    def test_named_patient_column(self):
        path = _manifest(self.tmp.name, {"image": ["a.png"], "label": [1], "sex": ["M"], "subject": ["s1"]})
        validate_study_config(TRAIN, {"manifest_file": path, "label": "label", "patient_column": "subject"})


class TestBundleDataOptions(unittest.TestCase):
    """The bundle's split component with the options the bundle exposes (``patient_column``, ``missing_patient``,
    ``verify_images``) and the spec's reference from the manifest's own spellings."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        rng = np.random.default_rng(0)
        rows = []
        for i in range(80):
            name = f"img{i:03d}.png"
            Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(os.path.join(cls.tmp.name, name))
            rows.append({"image": name, "label": i % 2, "sex": "male" if i % 4 < 2 else "female", "subject": f"p{i}"})
        Path(cls.tmp.name, "broken.png").write_bytes(b"not a png")
        rows.append({"image": "broken.png", "label": 1, "sex": "female", "subject": "p999"})
        frame = pd.DataFrame(rows)
        cls.with_subject = os.path.join(cls.tmp.name, "with_subject.csv")
        frame.to_csv(cls.with_subject, index=False)
        cls.no_patient = os.path.join(cls.tmp.name, "no_patient.csv")
        frame.drop(columns=["subject"]).to_csv(cls.no_patient, index=False)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def _split(self, manifest: str, **kwargs):
        return marcinkevics_study_data(
            manifest=manifest, label_column="label", privileged="male", unprivileged="female", seed=1, **kwargs
        )

    def test_no_patient_column(self):
        with self.assertRaisesRegex(KeyError, "missing_patient='image'"):
            self._split(self.no_patient)
        with self.assertLogs("monai_fair.data", logging.WARNING) as logs:
            data, _ = self._split(self.no_patient, missing_patient="image")
        self.assertIn("patient leakage", "\n".join(logs.output))
        self.assertEqual(sorted(data), ["test", "train", "val"])

    def test_named_patient_column_and_verified_images(self):
        data, code_maps = self._split(self.with_subject, patient_column="subject", verify_images=True)
        images = [Path(d["image"]).name for split in data.values() for d in split]
        self.assertNotIn("broken.png", images)
        self.assertEqual(dict(code_maps["sex"]), dict(SEX_NAMES))

    def test_reference_from_manifest_spellings(self):
        splits = StudySplits(lambda **kw: ({"train": []}, {"sex": dict(SEX_NAMES)}), _Source(), "label", 0)
        male = [k for k, v in SEX_NAMES.items() if v == "M"][0]
        self.assertEqual(splits.group_code("sex", "male"), male)
        self.assertEqual(splits.group_code("sex", "M"), male)
        with self.assertRaisesRegex(ValueError, "accepted names"):
            splits.group_code("sex", "blue")


class _Source:
    dataset_dir = None
    manifest_file = "m.csv"

    def label_column(self, label):
        return label


class TestCauseLine(unittest.TestCase):
    def test_root_cause_past_monai_config_wrappers(self):
        from monai.bundle import ConfigParser

        parser = ConfigParser({"x": "$int('abc')", "y": "$@x + 1"})
        with self.assertRaises(RuntimeError) as cm:
            parser.get_parsed_content("y")
        self.assertIsInstance(root_cause(cm.exception), ValueError)
        self.assertEqual(cause_line(cm.exception), "ValueError: invalid literal for int() with base 10: 'abc'")

    def test_root_cause_past_compose(self):
        from monai.transforms import Compose, Lambda

        def fail(_):
            raise OSError("image.png: cannot identify image file")

        with self.assertRaises(RuntimeError) as cm:
            Compose([Lambda(fail)])(np.zeros(2))
        self.assertEqual(cause_line(cm.exception), "OSError: image.png: cannot identify image file")

    def test_a_clear_error_is_kept_even_with_a_cause(self):
        try:
            try:
                {}["patient_id"]
            except KeyError as e:
                raise ValueError("manifest m.csv:\n no patient column") from e
        except ValueError as e:
            self.assertEqual(cause_line(e), "ValueError: manifest m.csv: no patient column")

    def test_hook_prints_the_cause_last(self):
        saved = sys.excepthook
        self.addCleanup(setattr, sys, "excepthook", saved)
        sys.excepthook = lambda *a: sys.stderr.write("Traceback ... RuntimeError: Failed to evaluate $@run\n")
        install_cause_hook()
        install_cause_hook()  # idempotent: the cause is printed once
        try:
            try:
                raise BundleConfigError("--metric 'eodd': allowed: spd, eod, aod.")
            except BundleConfigError as e:
                raise RuntimeError("Failed to evaluate ConfigExpression: $@run") from e
        except RuntimeError as e:
            stderr = io.StringIO()
            with mock.patch.object(sys, "stderr", stderr):
                sys.excepthook(type(e), e, e.__traceback__)
        lines = [line for line in stderr.getvalue().splitlines() if line.strip()]
        self.assertEqual(lines[-1], "error: BundleConfigError: --metric 'eodd': allowed: spd, eod, aod.")
        self.assertEqual(sum(line.startswith("error:") for line in lines), 1)

    def test_seed_loop_names_the_failed_seed(self):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d, "train.json")
            path.write_text(json.dumps({"seed": 0, "seed_result": "$1 // (@seed - 5)"}))
            loop = SeedLoop([3, 5], config_file=str(path), overrides={})
            with self.assertRaises(StudyRunError) as cm:
                loop.run()
        self.assertEqual(
            str(cm.exception), "seed 5 (2 of 2) failed: ZeroDivisionError: integer division or modulo by zero"
        )

    def test_seed_loop_seeds(self):
        self.assertEqual(SeedLoop(42, config_file="x.json").seeds, [42])
        with self.assertRaisesRegex(ValueError, r'seeds must be integers, e.g. --seeds "\[42, 43\]", got \'abc\''):
            SeedLoop("abc", config_file="x.json")


class TestBundleCommandLine(unittest.TestCase):
    """``python -m monai.bundle run`` with a bad override exits non-zero before any data or training, and the last
    line of stderr states the cause."""

    def _run(self, *overrides: str) -> tuple[subprocess.CompletedProcess, str]:
        with tempfile.TemporaryDirectory() as d:
            env = {**os.environ, "PYTHONPATH": str(REPO), "MONAI_FAIR_DEMO_DIR": os.path.join(d, "demo")}
            cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", TRAIN]
            cmd += ["--bundle_root", d, *overrides]
            # a guard against a hang, not a timing assertion
            proc = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=300)
            self.assertEqual(sorted(os.listdir(d)), [], "nothing (demo data, checkpoints, reports) may be written")
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        self.assertNotEqual(proc.returncode, 0)
        self.assertNotIn("Epoch", proc.stdout + proc.stderr)
        return proc, lines[-1]

    def test_metric(self):
        _, last = self._run("--metric", "eodd")
        self.assertEqual(
            last,
            "error: BundleConfigError: --metric 'eodd': unknown bias metric (did you mean 'eod'?); "
            "allowed: spd, eod, aod.",
        )

    def test_methods(self):
        _, last = self._run("--methods", "['prunning']")
        self.assertTrue(last.startswith("error: BundleConfigError: --methods ['prunning']: unknown method(s)"), last)
        self.assertIn(f"configured: {ALL_METHODS}", last)

    def test_debiaser_argument(self):
        _, last = self._run("--debiasers#pruning#step_sise", "5")
        self.assertTrue(last.startswith("error: BundleConfigError: --debiasers#pruning#step_sise: 'step_sise'"), last)
        self.assertIn("did you mean 'step_size'", last)

    def test_seeds(self):
        _, last = self._run("--seeds", "abc")
        self.assertTrue(
            last.startswith("error: BundleConfigError: --seeds 'abc': expected a list of integer seeds"), last
        )


if __name__ == "__main__":
    unittest.main()
