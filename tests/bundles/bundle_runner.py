# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Shared pieces of the bundle tests: the bundles' config paths, ``python -m monai.bundle`` commands run in a
subprocess against this checkout, a per-test output folder, and the real ISIC images' manifest."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

__all__ = [
    "REPO",
    "SCHEMA",
    "BundleRunMixin",
    "bundle_configs",
    "bundle_run_command",
    "isic_manifest",
    "run_command",
]

REPO = Path(__file__).resolve().parents[2]
SCHEMA = str(REPO / "bundles" / "schema" / "meta_schema_20240725.json")

# the real dermoscopy images: next to a checkout at /work/main or a worktree at /work/wt/<n>, else the fixed place
_ISIC_PLACES = (
    REPO / ".." / "shared" / "data" / "isic2017_val",
    REPO / ".." / ".." / "shared" / "data" / "isic2017_val",
    Path("/work/shared/data/isic2017_val"),
)


def bundle_configs(bundle: str, *names: str) -> list[str]:
    """The paths of config files of a bundle.

    Args:
        bundle: the bundle's folder name under ``bundles/``.
        names: config file names without ``.json`` (``"train"``, ``"metadata"``, ...).
    """
    return [str(REPO / "bundles" / bundle / "configs" / f"{name}.json") for name in names]


def bundle_run_command(config_file: str, *args: str) -> list[str]:
    """``python -m monai.bundle run --config_file <config_file> <args>`` with this interpreter.

    Args:
        config_file: one path, or several as a list in a string (``"['a.json','b.json']"``).
        args: further command-line arguments.
    """
    return [sys.executable, "-m", "monai.bundle", "run", "--config_file", config_file, *args]


def run_command(args: list[str], env: dict[str, str], cwd: str) -> subprocess.CompletedProcess:
    """Run a command and return it; a failure raises with the command and the tails of its output.

    Args:
        args: the command.
        env: its environment.
        cwd: its working folder.

    Raises:
        AssertionError: the command exited with a non-zero status.
    """
    proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(
            f"command failed ({proc.returncode}): {' '.join(args)}\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def isic_manifest() -> Path | None:
    """The manifest CSV of the real ISIC 2017 validation images, or ``None`` where they are not here."""
    for place in _ISIC_PLACES:
        if (place / "manifest.csv").is_file():
            return place / "manifest.csv"
    return None


class BundleRunMixin:
    """For a ``unittest.TestCase`` that runs bundles end to end: ``self.out`` is a fresh temporary folder (the demo
    data are generated there too), ``self.env`` makes the subprocesses import this checkout's package.

    Attributes:
        omp_threads: ``OMP_NUM_THREADS`` of the subprocesses.
    """

    omp_threads = "1"

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.out = Path(self.tmp.name)
        # the checkout's package, whatever monai_fair the environment has installed
        self.env = {
            **os.environ,
            "MONAI_FAIR_DEMO_DIR": str(self.out / "demo"),
            "OMP_NUM_THREADS": self.omp_threads,
            "PYTHONPATH": str(REPO),
        }

    def tearDown(self):
        self.tmp.cleanup()

    def _paths(self, tag: str) -> list[str]:
        return ["--output_dir", str(self.out / tag / "eval"), "--ckpt_dir", str(self.out / tag / "models")]

    def _run(self, cmd: list[str]) -> subprocess.CompletedProcess:
        return run_command(cmd, self.env, cwd=str(self.out))

    def _real_manifest(self, patient_id: bool = False) -> Path:
        """A copy of the real images' manifest in ``self.out`` with absolute image paths (skips where they are
        not here).

        Args:
            patient_id: add a ``patient_id`` column (one lesion a patient: the image id).
        """
        source = isic_manifest()
        if source is None:
            self.skipTest(f"real images not found at {_ISIC_PLACES[-1]}")
        table = pd.read_csv(source)
        table["image"] = [str((source.parent / name).resolve()) for name in table["image"]]
        if patient_id:
            table["patient_id"] = table["image_id"]
        manifest = self.out / "manifest.csv"
        table.to_csv(manifest, index=False)
        return manifest
