# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Label dermoscopy images with their Individual Typology Angle (ITA) and skin-tone category.

Usage::

    python tools/label_ita.py FOLDER_OR_MANIFEST [--out ita.csv] [--sampler outside_lesion|patches]
        [--scheme binary45 [--scheme kinyanjui_fitz6 ...]] [--workers N] [--image-column image] [--max-side 256]

Writes a CSV with one row per image: ``image`` (path relative to the folder, or as written in the manifest),
``ita``, ``ita_group`` (first scheme), ``ita_group_<scheme>`` for every scheme, the confidence columns
(``n_pixels, frac_kept, l_star, b_star, l_std, b_std``), ``sampler`` and ``reason`` (why ``ita`` is NaN: no usable
skin, or the file could not be read). Unreadable or non-image files are counted skips with a reason, never a crash.
Also writes ``<out stem>_hist.png``, a histogram of ITA with the first scheme's category boundaries.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["main", "find_images", "label_one", "plot_histogram"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
CONFIDENCE_COLUMNS = ("n_pixels", "frac_kept", "l_star", "b_star", "l_std", "b_std")


def find_images(source: Path, image_column: str = "image") -> tuple[list[Path], list[str]]:
    """Image files and their names for the CSV: every image file below a folder (sorted), or a manifest's column.

    Raises:
        FileNotFoundError: ``source`` does not exist.
        KeyError: the manifest lacks ``image_column``.
        ValueError: the manifest is empty or not a CSV.
    """
    if source.is_dir():
        files = sorted(
            p
            for p in source.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
        return files, [p.relative_to(source).as_posix() for p in files]
    if not source.is_file():
        raise FileNotFoundError(f"{source} is neither a folder nor a manifest CSV.")
    from monai_fair.data.manifest import read_csv_table

    table = read_csv_table(source, "manifest")
    if image_column not in table.columns:
        raise KeyError(f"manifest {source} has no {image_column!r} column; found {list(table.columns)}.")
    names = table[image_column].astype(str).str.strip().tolist()
    base = source.resolve().parent
    return [Path(n) if Path(n).is_absolute() else base / n for n in names], names


_WORKER: dict[str, Any] = {}


def _init_worker(sampler: str, max_side: int) -> None:
    # one thread per worker process: parallelism comes from the processes
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    from monai_fair.transforms.ita import make_skin_sampler

    kwargs = {"return_mask": False}
    _WORKER["sampler"] = make_skin_sampler(sampler, **kwargs)
    _WORKER["max_side"] = max_side


def label_one(path: Path) -> dict[str, Any]:
    """ITA and confidence of one image file (in a worker initialised by ``_init_worker``)."""
    from monai_fair.transforms.ita import load_rgb

    sampler = _WORKER["sampler"]
    try:
        rgb = load_rgb(path, _WORKER["max_side"])
    except (OSError, ValueError, SyntaxError) as err:  # PIL raises these for missing, truncated or non-image files
        row = {"ita": math.nan, **{c: math.nan for c in CONFIDENCE_COLUMNS}}
        # PIL messages quote the full path, which can hold a patient ID: name the file only
        text = str(err).replace(str(path), path.name).replace(str(path.resolve()), path.name)[:120]
        row.update(n_pixels=0, sampler=sampler.name, reason=f"unreadable: {type(err).__name__}: {text}")
        row["skipped"] = True
        return row
    res = sampler(rgb)
    return {"ita": res.ita, **res.confidence, "sampler": res.sampler, "skipped": False}


def plot_histogram(ita: np.ndarray, scheme: str, path: Path, title: str = "") -> Path:
    """Histogram of the finite ITA values with the category boundaries of ``scheme`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from monai_fair.data.colour import ITA_SCHEMES, ita_category, ita_group_names

    vals = ita[np.isfinite(ita)]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(vals, bins=np.arange(-90, 92.5, 2.5), color="#a0522d", alpha=0.85)
    for edge in ITA_SCHEMES[scheme].edges:
        ax.axvline(edge, color="k", lw=0.8, ls="--")
    codes = ita_category(vals, scheme)
    names = ita_group_names(scheme)
    counts = ", ".join(f"{names[k]}: {int((codes == k).sum())}" for k in sorted(names))
    ax.set_xlabel("ITA (degrees)")
    ax.set_ylabel("images")
    ax.set_title(
        (
            f"{title} n={vals.size} (NaN: {int((~np.isfinite(ita)).sum())}), median {np.median(vals):.1f}°"
            if vals.size
            else f"{title} no finite ITA"
        ),
        fontsize=9,
    )
    ax.text(0.01, 0.98, f"{scheme}: {counts}", transform=ax.transAxes, va="top", fontsize=7, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _parser() -> argparse.ArgumentParser:
    from monai_fair.data.colour import ITA_SCHEMES
    from monai_fair.transforms.ita import SKIN_SAMPLERS

    p = argparse.ArgumentParser(description="Label dermoscopy images with ITA skin tone.")
    p.add_argument("source", help="folder of images (searched recursively) or a manifest CSV")
    p.add_argument("--out", default="ita.csv", help="output CSV (default ita.csv)")
    p.add_argument("--sampler", default="outside_lesion", choices=sorted(SKIN_SAMPLERS))
    p.add_argument("--scheme", action="append", choices=sorted(ITA_SCHEMES), help="category scheme (repeatable)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--image-column", default="image", help="image column of a manifest CSV")
    p.add_argument("--max-side", type=int, default=256, help="decode images at most this large (default 256)")
    p.add_argument("--no-plot", action="store_true", help="do not write the histogram PNG")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status: 0 (also when some files were skipped), 1 when no image gave
    an ITA, 2 on bad arguments or an unreadable source."""
    from tqdm import tqdm

    from monai_fair.data.colour import ita_category

    args = _parser().parse_args(argv)
    schemes = args.scheme or ["binary45"]
    if args.workers < 1:
        print(f"error: --workers must be >= 1, got {args.workers}", file=sys.stderr)
        return 2
    if args.max_side < 16:
        print(f"error: --max-side must be >= 16 pixels, got {args.max_side}", file=sys.stderr)
        return 2
    try:
        files, names = find_images(Path(args.source), args.image_column)
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2
    if not files:
        print(f"error: no images found in {args.source}", file=sys.stderr)
        return 2

    bar = dict(total=len(files), desc="ITA", unit="img", disable=args.quiet)
    if args.workers == 1:
        _init_worker(args.sampler, args.max_side)
        rows = [label_one(f) for f in tqdm(files, **bar)]
    else:
        import multiprocessing as mp

        with mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn").Pool(
            args.workers, _init_worker, (args.sampler, args.max_side)
        ) as pool:
            rows = list(tqdm(pool.imap(label_one, files, chunksize=8), **bar))

    table = pd.DataFrame(rows)
    skipped = table.pop("skipped").to_numpy(bool)
    table.insert(0, "image", names)
    ita = table["ita"].to_numpy(float)
    table.insert(2, "ita_group", ita_category(ita, schemes[0]))
    for k, scheme in enumerate(schemes):
        table.insert(3 + k, f"ita_group_{scheme}", ita_category(ita, scheme))
    table["reason"] = table["reason"].fillna("")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)

    n_nan = int(np.isnan(ita).sum())
    print(
        f"wrote {out}: {len(table)} images, {int(np.isfinite(ita).sum())} with ITA, {n_nan} NaN "
        f"({int(skipped.sum())} unreadable files skipped)"
    )
    if n_nan:
        reasons = Counter(r.split(" (")[0].split(":")[0] for r in table["reason"][np.isnan(ita)])
        for reason, n in reasons.most_common():
            print(f"  NaN: {reason}: {n}")
    if np.isfinite(ita).any():
        print(f"median ITA {np.nanmedian(ita):.1f}")
    else:
        print(f"error: no image of {args.source} gave an ITA (reasons above); {out} lists every file", file=sys.stderr)
    if not args.no_plot:
        png = plot_histogram(ita, schemes[0], out.with_name(out.stem + "_hist.png"), title=Path(args.source).name)
        print(f"wrote {png}")
    return 0 if np.isfinite(ita).any() else 1


if __name__ == "__main__":
    sys.exit(main())
