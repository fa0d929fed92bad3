# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Ingestion benchmark: ITA skin-tone labelling throughput on one CPU core, and (if present) the DICOM scan bench.

ITA: images per second at 256x256 including JPEG decoding, for ``OutsideLesionSampler`` (LUT-based float32
sRGB→Lab on a 128-pixel working grid) against a plain scikit-image loop (``rgb2lab`` of the whole image,
``threshold_otsu`` on grey, median L*/b* of the bright class). Images: ``../shared/data/isic2017_val`` when it exists
beside the repository, else the ISIC demo dataset rendered at 256 px. Both run in the same process, alternating,
single-threaded; the ratio is printed.

Then, if ``benchmarks/ingest_bench_dicom.py`` exists (``run(quick: bool) -> dict``), its header-only-scan vs
full-LoadImage ratio is printed. The headline ratio (ITA speed-up) is the last line.

Usage: ``python benchmarks/ingest_bench.py [--quick]``
"""

from __future__ import annotations

import os

# single-threaded numpy/BLAS: set before numpy is imported
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
SHARED_VAL = HERE.parent / ".." / "shared" / "data" / "isic2017_val"


def _images(quick: bool) -> tuple[list[Path], str]:
    if SHARED_VAL.is_dir():
        files = sorted(SHARED_VAL.glob("*.jpg"))
        if files:
            return files[: 60 if quick else len(files)], f"isic2017_val ({SHARED_VAL.resolve()})"
    from monai_fair.data.demo.isic import make_isic_demo

    root = make_isic_demo(Path(tempfile.gettempdir()) / "monai_fair_ingest_bench_isic", n_lesions=60, size=256)
    return sorted((root / "HAM10000_images_part_1").glob("*.jpg")), "ISIC demo at 256 px"


def _skimage_ita(path: Path) -> float:
    """The plain baseline: full-image skimage Lab, Otsu on grey, medians of the bright class."""
    from skimage.color import rgb2gray, rgb2lab
    from skimage.filters import threshold_otsu

    from monai_fair.data.colour import ita_from_lab
    from monai_fair.transforms.ita import load_rgb

    rgb = load_rgb(path)
    lab = rgb2lab(rgb)
    grey = rgb2gray(rgb)
    skin = grey > threshold_otsu(grey)
    return ita_from_lab(float(np.median(lab[..., 0][skin])), float(np.median(lab[..., 2][skin])))


def _rate(fn, files: list[Path], repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for f in files:
            fn(f)
        best = max(best, len(files) / (time.perf_counter() - t0))
    return best


def bench_ita(quick: bool) -> dict[str, float]:
    """Images/s of ours and the skimage loop on one thread, and their ratio."""
    import torch

    from monai_fair.transforms.ita import OutsideLesionSampler, load_rgb

    torch.set_num_threads(1)
    files, source = _images(quick)
    sampler = OutsideLesionSampler(return_mask=False)

    def ours(path: Path) -> float:
        return sampler(load_rgb(path)).ita

    ours(files[0]), _skimage_ita(files[0])  # warm-up (imports, caches)
    repeats = 1 if quick else 3
    rates = {"ours": 0.0, "skimage": 0.0}
    for _ in range(repeats):  # alternate so both see the same machine load
        rates["ours"] = max(rates["ours"], _rate(ours, files, 1))
        rates["skimage"] = max(rates["skimage"], _rate(_skimage_ita, files, 1))
    print(f"ITA labelling, {len(files)} images from {source}, 256x256 JPEG, decoding included, 1 thread:")
    print(f"  ours (LUT Lab on 128 grid + Otsu/GHT + skin gate): {rates['ours']:8.1f} img/s")
    print(f"  skimage rgb2lab + threshold_otsu loop:             {rates['skimage']:8.1f} img/s")
    ratio = rates["ours"] / rates["skimage"]
    print(f"  ratio ours/skimage: {ratio:.2f}x")
    return {"ours_img_per_s": rates["ours"], "skimage_img_per_s": rates["skimage"], "ratio": ratio}


def bench_dicom(quick: bool) -> dict | None:
    """Run ``ingest_bench_dicom.run(quick)`` from this folder if that file exists."""
    path = HERE / "ingest_bench_dicom.py"
    if not path.is_file():
        print("DICOM scan benchmark: benchmarks/ingest_bench_dicom.py not present, skipped")
        return None
    spec = importlib.util.spec_from_file_location("ingest_bench_dicom", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    result = module.run(quick=quick)
    ratio = next((v for k, v in result.items() if "ratio" in k), None) if isinstance(result, dict) else None
    if ratio is not None:
        print(f"DICOM header-only scan vs full LoadImage: {float(ratio):.2f}x")
    else:
        print(f"DICOM benchmark result: {result}")
    return result


def main(argv: list[str] | None = None) -> int:
    """Run both benchmarks; the headline ratio is printed last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and repeats")
    args = parser.parse_args(argv)
    ita = bench_ita(args.quick)
    bench_dicom(args.quick)
    print(
        f"headline: ITA labelling {ita['ratio']:.2f}x faster than the skimage loop "
        f"({ita['ours_img_per_s']:.0f} vs {ita['skimage_img_per_s']:.0f} img/s on one core)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
