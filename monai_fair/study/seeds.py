# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Run a study once per seed, each seed from a freshly instantiated bundle config.

A seed re-draws the data split, re-initialises the network and re-trains, so every seed gets its own
:class:`monai.bundle.ConfigParser` over the same config files and overrides: nothing instantiated for one seed is
reused by the next. The config names what one seed does with two ids (defaults ``seed_run``, a list of expressions
evaluated in order, and ``seed_result``, the seed's result) and holds the seed in ``seed``.

On a CPU the seeds can run side by side in worker processes (``SeedLoop(workers=...)``): the demo's small
convolutions hardly gain from a second thread, so one single-threaded process per seed keeps every core busy.
"""

from __future__ import annotations

import logging
import multiprocessing
import numbers
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from .command_line import parse_bundle_command
from .errors import StudyRunError, cause_line

__all__ = ["SeedLoop", "resolve_seed_workers", "run_seed"]

logger = logging.getLogger(__name__)


def _default_meta_file(config_file: Sequence[str]) -> str | None:
    # MONAI's rule (ConfigWorkflow): metadata.json next to the first config file, when it exists
    path = Path(config_file[0]).parent / "metadata.json"
    return str(path) if path.is_file() else None


def run_seed(
    config_file: str | Sequence[str],
    seed: int,
    overrides: Mapping[str, Any] | None = None,
    meta_file: str | Sequence[str] | None = None,
    run_id: str = "seed_run",
    result_id: str = "seed_result",
    seed_id: str = "seed",
    determinism: bool = True,
) -> Any:
    """Run one seed of a study from a fresh parse of its config.

    Args:
        config_file: the config file(s), merged in order (as ``--config_file``).
        seed: the seed, written to ``seed_id`` after the overrides.
        overrides: ``{id: value}`` applied after reading the files (as ``--id value`` on the command line).
        meta_file: metadata file(s) read into ``_meta_``; default ``metadata.json`` next to the first config file.
        run_id: id of the list of expressions one seed evaluates in order (absent: nothing to run).
        result_id: id whose parsed content is the seed's result.
        seed_id: id of the seed.
        determinism: call ``monai.utils.set_determinism(seed)`` before anything is instantiated.

    Returns:
        the parsed content of ``result_id``.
    """
    from monai.bundle import ConfigParser
    from monai.utils import set_determinism

    files = [str(config_file)] if isinstance(config_file, (str, os.PathLike)) else [str(f) for f in config_file]
    parser = ConfigParser()
    parser.read_config(f=files)
    meta_file = _default_meta_file(files) if meta_file is None else meta_file
    if meta_file is not None:
        parser.read_meta(f=meta_file)
    parser.update(pairs=dict(overrides or {}))
    parser[seed_id] = int(seed)
    if determinism:
        set_determinism(seed=int(seed))
    parser.parse(reset=True)
    if run_id in parser:
        steps = parser[run_id]
        for i in range(len(steps) if isinstance(steps, list) else 1):
            parser.get_parsed_content(f"{run_id}#{i}" if isinstance(steps, list) else run_id)
    return parser.get_parsed_content(result_id)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_seed_workers(workers: int | str, n_seeds: int) -> tuple[int, int | None]:
    """``(processes, torch threads per process)`` for running ``n_seeds`` seeds.

    Args:
        workers: a number of processes (1: every seed in this process, one after the other), or ``"auto"``: one
            process when CUDA is available or ``torch.distributed`` runs (the GPU, or the ranks, are the parallelism),
            otherwise up to two processes per core and never more than the seeds, each with
            ``max(1, cores // processes)`` threads (a third seed shares the cores rather than waiting for them).
        n_seeds: number of seeds.

    Raises:
        ValueError: ``workers`` is neither a positive integer nor ``"auto"``.
    """
    import torch

    if workers == "auto":
        busy = torch.cuda.is_available() or (torch.distributed.is_available() and torch.distributed.is_initialized())
        workers = 1 if busy else min(n_seeds, 2 * _cpu_count())
    elif isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1:
        raise ValueError(f'seed_workers must be a positive integer or "auto", got {workers!r}.')
    workers = max(1, min(int(workers), n_seeds))
    return workers, (None if workers == 1 else max(1, _cpu_count() // workers))


def _start_worker(threads: int | None, level: int) -> None:
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    logging.basicConfig(level=level, format="%(asctime)s - %(processName)s - %(name)s - %(levelname)s - %(message)s")


class SeedLoop:
    """Run every seed of a study (see :func:`run_seed`) and collect the results, in seed order.

    In a bundle config::

        "results": "$@seed_loop.run()",
        "seed_loop": {"_target_": "monai_fair.study.SeedLoop", "seeds": "@seeds"}

    With ``config_file=None`` the files and overrides are those of the ``python -m monai.bundle run`` command line
    that started the process (:func:`~monai_fair.study.command_line.parse_bundle_command`), so ``--epochs 2``
    reaches every seed.

    Args:
        seeds: the seeds, in order (one integer: that seed alone).
        config_file: config file(s); ``None``: from the command line.
        overrides: overrides; ``None``: from the command line (or none with an explicit ``config_file``).
        meta_file: metadata file(s); ``None``: from the command line, else MONAI's default.
        run_id, result_id, seed_id, determinism: see :func:`run_seed`.
        workers: processes that run seeds side by side (:func:`resolve_seed_workers`; default 1, every seed in this
            process). Worker processes are started with ``spawn``, log to stderr, and return the seed results;
            figures can differ from a one-process run in the last digits (another thread count sums floats in
            another order), and are reproducible for the same ``workers``.

    Raises:
        ValueError: no seed, a seed that is not an integer, or no config file given and the process was not started
            by ``monai.bundle run``.
    """

    def __init__(
        self,
        seeds: Sequence[int],
        config_file: str | Sequence[str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        meta_file: str | Sequence[str] | None = None,
        run_id: str = "seed_run",
        result_id: str = "seed_result",
        seed_id: str = "seed",
        determinism: bool = True,
        workers: int | str = 1,
    ) -> None:
        values = [seeds] if isinstance(seeds, numbers.Integral) else seeds
        if isinstance(values, (str, bytes)) or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in values
        ):
            raise ValueError(f'seeds must be integers, e.g. --seeds "[42, 43]", got {seeds!r}.')
        seeds = [int(s) for s in values]
        if not seeds:
            raise ValueError("seeds must not be empty.")
        if config_file is None:
            command = parse_bundle_command()
            if command is None:
                raise ValueError(
                    f"{type(self).__name__} needs config_file (and overrides) when the process was not started with "
                    "'python -m monai.bundle run --config_file ...'."
                )
            config_file = command.config_file
            overrides = command.overrides if overrides is None else overrides
            meta_file = command.meta_file if meta_file is None else meta_file
        self.seeds = seeds
        self.config_file = [str(config_file)] if isinstance(config_file, (str, os.PathLike)) else list(config_file)
        self.overrides = dict(overrides or {})
        self.meta_file = meta_file
        self.run_id, self.result_id, self.seed_id = run_id, result_id, seed_id
        self.determinism = determinism
        self.workers, self.threads = resolve_seed_workers(workers, len(seeds))

    def _args(self, seed: int, overrides: Mapping[str, Any] | None = None) -> tuple:
        # ``overrides``: set over the loop's own for this run (a subclass's per-run settings)
        return (
            self.config_file,
            seed,
            {**self.overrides, **overrides} if overrides else self.overrides,
            self.meta_file,
            self.run_id,
            self.result_id,
            self.seed_id,
            self.determinism,
        )

    def _failed(self, i: int, seed: int, error: Exception) -> StudyRunError:
        return StudyRunError(f"seed {seed} ({i + 1} of {len(self.seeds)}) failed: {cause_line(error)}")

    def run(self) -> list[Any]:
        """The result of every seed, in order.

        Raises:
            StudyRunError: a seed failed; the message names the seed and the cause (past MONAI's wrappers), and the
                original exception is its ``__cause__``.
        """
        if self.workers > 1:
            return self._run_in_workers()
        results = []
        for i, seed in enumerate(self.seeds):
            logger.info("=== seed %s (%d of %d) ===", seed, i + 1, len(self.seeds))
            try:
                result = run_seed(*self._args(seed))
            except Exception as e:
                raise self._failed(i, seed, e) from e
            results.append(result)
        return results

    def _run_in_workers(self) -> list[Any]:
        logger.info(
            "=== seeds %s in %d worker processes (%d torch thread(s) each) ===", self.seeds, self.workers, self.threads
        )
        level = logging.getLogger().getEffectiveLevel()
        context = multiprocessing.get_context("spawn")  # no fork of a process holding threads and open files
        with ProcessPoolExecutor(
            self.workers, context, initializer=_start_worker, initargs=(self.threads, level)
        ) as pool:
            futures = [pool.submit(run_seed, *self._args(seed)) for seed in self.seeds]
            results = []
            for i, (seed, future) in enumerate(zip(self.seeds, futures)):
                try:
                    results.append(future.result())
                except Exception as e:
                    for other in futures:
                        other.cancel()
                    raise self._failed(i, seed, e) from e
        return results
