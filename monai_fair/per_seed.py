# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Run one part of a bundle config once per seed, each time from a fresh instantiation of the whole config.

A study re-draws its data split, re-initialises its network and re-trains for every seed. MONAI config components
are instantiated once per parser, so the seed loop copies the running workflow's config (command-line overrides
included), sets the seed, and resolves the per-seed run list from a fresh :class:`monai.bundle.ConfigParser`.
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Sequence
from typing import Any

__all__ = ["current_config_parser", "run_per_seed"]

logger = logging.getLogger(__name__)


def current_config_parser():
    """The ``ConfigParser`` of the ``ConfigWorkflow`` that is running (found on the call stack), or ``None``."""
    from monai.bundle import ConfigWorkflow

    for info in inspect.stack(context=0):
        wf = info.frame.f_locals.get("self")
        if isinstance(wf, ConfigWorkflow):
            return wf.parser
    return None


def run_per_seed(
    seeds: Sequence[int],
    run_id: str = "seed_run",
    result_id: str = "seed_result",
    seed_id: str = "seed",
    parser: Any = None,
) -> list[Any]:
    """For each seed: copy the config, set ``seed_id`` to the seed, run ``run_id`` and collect ``result_id``.

    Args:
        seeds: the seeds, in order.
        run_id: config id of the per-seed run list (expressions evaluated in order).
        result_id: config id whose parsed content is the seed's result (evaluated after the run list).
        seed_id: config id holding the current seed.
        parser: the config parser to copy; default: the running ``ConfigWorkflow``'s parser.

    Returns:
        the list of per-seed results.
    """
    from monai.bundle import ConfigParser

    if parser is None:
        parser = current_config_parser()
        if parser is None:
            raise RuntimeError("run_per_seed needs a parser when it is not called from a running ConfigWorkflow.")
    if len(seeds) == 0:
        raise ValueError("seeds must not be empty.")
    base = copy.deepcopy(parser.get())
    results = []
    for i, seed in enumerate(seeds):
        logger.info("=== seed %s (%d of %d) ===", seed, i + 1, len(seeds))
        seed_parser = ConfigParser(copy.deepcopy(base), globals=copy.copy(parser.globals))
        seed_parser[seed_id] = int(seed)
        seed_parser.parse(reset=True)
        seed_parser.get_parsed_content(run_id)
        results.append(seed_parser.get_parsed_content(result_id))
    return results
