# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The config files and overrides of a ``python -m monai.bundle run ...`` command line.

A study rebuilds its whole config once per seed (a fresh split, network and training each time). MONAI's CLI hands
the config files and the ``--id value`` overrides to ``ConfigWorkflow``, whose parser a config expression cannot
reach. Instead of looking for that workflow on the call stack, the seed loop reads the same command line MONAI read
(``sys.argv``, values parsed with ``fire``, as MONAI's ``__main__`` does), and builds one fresh
:class:`monai.bundle.ConfigParser` per seed from it. Programmatic callers pass the files and overrides explicitly.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BundleCommand", "parse_bundle_command"]

# arguments of ``monai.bundle.scripts.run`` that are not config overrides
_RUN_ARGS = ("run_id", "init_id", "final_id", "meta_file", "config_file", "logging_file", "tracking", "args_file")


@dataclass
class BundleCommand:
    """What a ``monai.bundle run`` command line asks for.

    Attributes:
        config_file: the config file(s), merged in order.
        meta_file: the metadata file(s) (``None``: MONAI's default, ``metadata.json`` next to the first config).
        overrides: ``{id: value}`` overrides (``--epochs 2`` → ``{"epochs": 2}``).
    """

    config_file: list[str]
    meta_file: str | list[str] | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


def _parse_value(text: str) -> Any:
    from fire.parser import DefaultParseValue

    return DefaultParseValue(text)


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def parse_bundle_command(argv: Sequence[str] | None = None) -> BundleCommand | None:
    """Parse a ``python -m monai.bundle run --config_file ... [--id value ...]`` command line.

    Args:
        argv: the arguments (default ``sys.argv``); the program must be MONAI's bundle CLI (``monai/bundle``
            ``__main__``, also under ``torchrun -m``) and the command ``run``.

    Returns:
        the command, or ``None`` when ``argv`` is not such a command line (e.g. under pytest).

    Raises:
        ValueError: a ``--key`` without a value, or no ``--config_file`` (nor ``args_file`` giving one).
    """
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] != "run":
        return None
    program = os.path.normpath(argv[0])
    if not (program.endswith(os.path.join("monai", "bundle", "__main__.py")) or program == "monai.bundle"):
        return None
    args: dict[str, Any] = {}
    rest = argv[2:]
    i = 0
    while i < len(rest):
        token = rest[i]
        if not token.startswith("--"):
            if i == 0:  # ``run <run_id>``
                args["run_id"] = token
                i += 1
                continue
            raise ValueError(f"unexpected command-line argument {token!r}; overrides are '--id value' pairs.")
        key, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 >= len(rest) or rest[i + 1].startswith("--"):
                raise ValueError(f"command-line override --{key} has no value.")
            value = rest[i + 1]
            i += 1
        args[key] = _parse_value(value)
        i += 1
    if args.get("args_file"):
        from monai.bundle import ConfigParser

        args = {**ConfigParser.load_config_file(args.pop("args_file")), **args}
    if not args.get("config_file"):
        raise ValueError("the monai.bundle run command line names no --config_file.")
    overrides = {k: v for k, v in args.items() if k not in _RUN_ARGS}
    return BundleCommand(_as_list(args["config_file"]), args.get("meta_file"), overrides)
