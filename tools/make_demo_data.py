# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Generate (or reuse) a demo dataset written in a real dataset's on-disk layout, with its planted bias.

    python tools/make_demo_data.py mimic_cxr --out /tmp/mimic_demo --seed 0 --param n_subjects=600 \\
        --param female_cue_ratio=0.5
    python tools/make_demo_data.py --list

``NAME`` is one of :data:`monai_fair.data.demo.DEMO_DATASETS` (mimic_cxr, chexpert, isic, ct, embeddings).
``--param key=value`` values are parsed as JSON when they can be (numbers, booleans, lists), else kept as strings.
Without ``--out`` the dataset is cached under ``$MONAI_FAIR_DEMO_DIR`` (default ``~/.cache/monai_fair/demo``).
Prints the dataset folder on the last line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from monai_fair.data.demo import DEMO_DATASETS, make_demo_dataset


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``["a=1", "b=x", "c=[0.9, 0.05, 0.05]"]`` → ``{"a": 1, "b": "x", "c": [0.9, 0.05, 0.05]}``.

    Raises:
        ValueError: an item without ``=`` or with an empty key.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param expects key=value, got {item!r}.")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", nargs="?", choices=sorted(DEMO_DATASETS), help="demo dataset to generate")
    parser.add_argument("--out", default=None, help="output folder (default: the demo cache)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="generator parameter")
    parser.add_argument("--list", action="store_true", help="list the demo datasets and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        for name, target in sorted(DEMO_DATASETS.items()):
            print(f"{name}\t{target}")
        return 0
    if args.name is None:
        parser.error("NAME is required (or --list).")
    try:
        params = parse_params(args.param)
    except ValueError as e:
        parser.error(str(e))
    path = make_demo_dataset(args.name, root=args.out, seed=args.seed, **params)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
