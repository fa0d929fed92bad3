# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Where a study's data come from (a generated demo, the real dataset's folder or a manifest CSV) and its splits.

Bundles default to a demo dataset generated in the real dataset's own layout; ``--dataset_dir`` points at the real
one and ``--manifest_file`` at any other data. :class:`DataSource` makes that choice once, and
:class:`StudySplits` calls the study's split function (e.g.
:func:`~monai_fair.data.sampling.marcinkevics_study_data`) with it for one seed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["DATASET_KINDS", "DataSource", "SplitMapping", "StudySplits"]

#: ``demo``: generated; ``manifest``: a generic manifest CSV; any other name: the real dataset at ``dataset_dir``
DATASET_KINDS = ("demo", "manifest")


class DataSource:
    """The data of a study run.

    Args:
        demo_name: the demo dataset generated when no data are given (see :func:`~monai_fair.data.make_demo_dataset`).
        dataset: ``"demo"``, ``"manifest"``, the real dataset's name (``real_name``), or ``None`` to choose from the
            paths: ``manifest`` with ``manifest_file``, ``real_name`` with ``dataset_dir``, else ``demo``.
        dataset_dir: root of the real dataset.
        manifest_file: a generic manifest CSV.
        demo_dir: where the demo dataset is generated (default: ``$MONAI_FAIR_DEMO_DIR`` or the user cache).
        demo_seed: generation seed of the demo dataset.
        demo_params: generator parameters (e.g. ``{"n_subjects": 600}``).
        real_name: the name of the real dataset (``"mimic"``), printed in logs and reports.

    Raises:
        ValueError: ``dataset="manifest"`` without ``manifest_file``, or a real dataset without ``dataset_dir``.
    """

    def __init__(
        self,
        demo_name: str,
        dataset: str | None = None,
        dataset_dir: str | os.PathLike | None = None,
        manifest_file: str | os.PathLike | None = None,
        demo_dir: str | os.PathLike | None = None,
        demo_seed: int = 0,
        demo_params: Mapping[str, Any] | None = None,
        real_name: str = "dataset",
    ) -> None:
        if dataset is None:
            dataset = "manifest" if manifest_file else (real_name if dataset_dir else "demo")
        if dataset == "manifest" and not manifest_file:
            raise ValueError("dataset='manifest' needs manifest_file (--manifest_file /path/manifest.csv).")
        if dataset not in DATASET_KINDS and not dataset_dir:
            raise ValueError(f"dataset={dataset!r} needs dataset_dir (--dataset_dir /path/to/{dataset}).")
        self.demo_name = demo_name
        self.kind = str(dataset)
        self._dataset_dir = dataset_dir
        self.manifest_file = str(manifest_file) if self.kind == "manifest" else None
        self.demo_dir, self.demo_seed, self.demo_params = demo_dir, int(demo_seed), dict(demo_params or {})
        self._generated: Path | None = None

    @property
    def demo(self) -> bool:
        """The data are generated demo data."""
        return self.kind == "demo"

    @property
    def description(self) -> str:
        """What the numbers ran on, as logs and reports print it."""
        return f"DEMO (synthetic {self.demo_name} layout)" if self.demo else self.kind

    @property
    def dataset_dir(self) -> str | None:
        """The dataset folder (the demo is generated, or reused from the cache, on first access); ``None`` for a
        manifest."""
        if self.kind == "manifest":
            return None
        if self.demo:
            from monai_fair.data import make_demo_dataset

            if self._generated is None:
                self._generated = make_demo_dataset(
                    self.demo_name, root=self.demo_dir, seed=self.demo_seed, **self.demo_params
                )
            return str(self._generated)
        return str(self._dataset_dir)

    def label_column(self, label: str) -> str:
        """The label column: a manifest names it after the label; the dataset builders write ``label``."""
        return label if self.kind == "manifest" else "label"


class SplitMapping(Mapping[str, list]):
    """A mapping ``{split: [data dicts]}`` with the attributes' code → name maps (``code_maps``): what the study
    configs index (``@seed_data['train']``) and ask for group codes. Subclasses set ``splits`` and ``code_maps``."""

    splits: dict[str, list]
    code_maps: dict[str, Any]

    def group_code(self, attribute: str, value: int | str, what: str = "privileged group") -> int:
        """The code of group ``value`` (a code, a name of the attribute's code map, or for ``sex`` any spelling the
        manifests accept, e.g. ``male``), for the spec's ``reference``.

        Raises:
            ValueError: a name the code map does not know (the message lists the accepted names).
        """
        from monai_fair.data.sampling import resolve_code

        return resolve_code(value, self.code_maps.get(attribute), what)

    def __getitem__(self, key: str) -> list:
        return self.splits[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.splits)

    def __len__(self) -> int:
        return len(self.splits)


class StudySplits(SplitMapping):
    """The train/val/test data dicts of one seed, and the code → name maps of the attributes.

    A mapping ``{split: [data dicts]}`` with the attribute ``code_maps``; in a bundle config::

        "seed_data": {"_target_": "monai_fair.study.StudySplits", "split": "@split_fn", "source": "@source",
                      "label": "@label", "seed": "@seed"},
        "train#dataset#data": "$@seed_data['train']"

    Args:
        split: the study's split function, called as ``split(dataset_dir=..., manifest=..., label_column=...,
            seed=...)`` and returning ``(splits, code_maps)`` (e.g. a ``"_mode_": "callable"`` config component of
            :func:`~monai_fair.data.sampling.marcinkevics_study_data` with the study's other arguments bound).
        source: the :class:`DataSource`.
        label: the label.
        seed: the split seed.
    """

    def __init__(
        self, split: Callable[..., tuple[Mapping[str, list], Mapping]], source: DataSource, label: str, seed: int
    ):
        splits, code_maps = split(
            dataset_dir=source.dataset_dir,
            manifest=source.manifest_file,
            label_column=source.label_column(label),
            seed=int(seed),
        )
        self.splits = dict(splits)
        self.code_maps = dict(code_maps)
