# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""ITA skin-tone groups for a list of images, computed at ingestion and cached on disk.

A study that groups by skin tone needs the groups before it splits and samples, and most dermoscopy datasets carry
no skin-tone labels. :func:`ita_groups` runs the ITA sampler of :mod:`monai_fair.transforms.ita` (the same one as
:class:`~monai_fair.transforms.ita.SkinToneITAd` and ``tools/label_ita.py``) over each image once and keeps the
result in a CSV cache keyed by the image's path, size and modification time and the sampler settings, so later runs
(and every seed) read it back.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .ita import ita_category, load_rgb, make_skin_sampler

__all__ = ["ita_groups"]

logger = logging.getLogger(__name__)


def _file_key(path: str) -> str:
    try:
        st = os.stat(path)
        stamp = f"{st.st_size}:{int(st.st_mtime)}"
    except OSError:
        stamp = "missing"
    return hashlib.sha1(f"{os.path.abspath(path)}|{stamp}".encode()).hexdigest()[:16]


def ita_groups(
    images: Sequence[str],
    cache_dir: str | os.PathLike | None,
    sampler: str = "outside_lesion",
    scheme: str = "binary45",
    max_side: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """ITA (degrees) and its ``scheme`` category code of every image; unreadable images or no usable skin give NaN
    and the unknown code -1 (counted in the log, never 0).

    Args:
        images: image paths.
        cache_dir: folder of the cache CSV (``None``: no cache).
        sampler: skin-pixel sampler name (:data:`~monai_fair.transforms.ita.SKIN_SAMPLERS`).
        scheme: category scheme (:data:`~monai_fair.transforms.ita.ITA_SCHEMES`).
        max_side: images are reduced to this longest side before sampling.

    Returns:
        ``(ita, group)`` arrays in the order of ``images``.
    """
    keys = [_file_key(str(p)) for p in images]
    cache_file = None
    cached: dict[str, float] = {}
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"ita_{sampler}_{int(max_side)}.csv"
        if cache_file.is_file():
            table = pd.read_csv(cache_file)
            cached = dict(zip(table["key"].astype(str), pd.to_numeric(table["ita"], errors="coerce")))
    todo = [i for i, k in enumerate(keys) if k not in cached]
    if todo:
        fn = make_skin_sampler(sampler, return_mask=False)
        failed = 0
        for i in todo:
            try:
                value = float(fn(load_rgb(images[i], max_side)).ita)
            except (OSError, ValueError, SyntaxError):
                value = math.nan
            failed += int(not math.isfinite(value))
            cached[keys[i]] = value
        logger.info("ITA computed for %d image(s) (%d without usable skin or unreadable).", len(todo), failed)
        if cache_file is not None:
            try:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
                pd.DataFrame({"key": list(cached), "ita": list(cached.values())}).to_csv(tmp, index=False)
                os.replace(tmp, cache_file)
            except OSError as e:  # a read-only dataset folder: compute again next time rather than fail
                logger.warning("ITA cache %s not written (%s); pass another cache folder to keep it.", cache_file, e)
    ita = np.array([cached[k] for k in keys], dtype=float)
    return ita, np.asarray(ita_category(ita, scheme), dtype=np.int64).reshape(-1)
