# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""DICOM demographics ingestion speed: header-only folder scan vs a full ``LoadImage`` pass over the same files.

The folder holds the demo CT series (many small slices, as in NLST) plus real pydicom / pydicom-data files (a
1955x1841 chest CR, CT, MR, multi-frame CT). Three ways to get every row's sex/age:

1. ``scan_dicom_folder``: header-only reads (``stop_before_pixels`` + ``specific_tags``), series grouping and
   spatial ordering, pixel-data completeness check, manifest;
2. ``DicomDemographicsd`` on paths (header-only read per manifest row, before any ``LoadImaged``);
3. the full pass: ``LoadImaged(PydicomReader(prune_metadata=False))`` + ``DicomDemographicsd`` per row (pixels
   decoded, series stacked).

Each is run ``repeats`` times after a warm-up and the best wall time is kept; process CPU time is printed too (the
steadier figure on a shared machine). The gap grows with slice size and compression (decoding is what the scan
skips): tiny demo slices understate it. The headline ratios (full-load time over scan time) are on the last line.

Usage: ``python benchmarks/ingest_bench_dicom.py [--quick]``; ``run(quick)`` returns the figures as a dict.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

from monai.data import PydicomReader
from monai.transforms import LoadImaged
from pydicom.data import get_testdata_file

from monai_fair.data.demo.ct import make_ct_demo
from monai_fair.data.dicom_scan import scan_dicom_folder
from monai_fair.data.dicom_series import DicomSeriesReader
from monai_fair.transforms.dicom_demographics import DicomDemographicsd

REAL_FILES = ("CT_small.dcm", "MR_small.dcm", "RG1_UNCI.dcm", "eCT_Supplemental.dcm", "JPEG2000.dcm")


def _best(fn: Callable[[], Any], repeats: int) -> tuple[Any, float, float]:
    """(result, best wall seconds, CPU seconds of that run) over ``repeats`` runs after one warm-up."""
    out = fn()
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        if wall < best_wall:
            best_wall, best_cpu = wall, cpu
    return out, best_wall, best_cpu


def run(quick: bool = False) -> dict[str, Any]:
    """Time the three ingestion paths on one generated folder and return the figures.

    Args:
        quick: a smaller folder (8 demo patients of 16 slices of 128x128; default 8 of 32 of 512x512, as CT) and
            fewer repeats.

    Returns:
        ``n_files``, ``n_rows``, seconds and files/s of each path, and ``ratio`` (scan files/s ÷ full-load files/s).
    """
    warnings.filterwarnings("ignore")
    logging.getLogger("monai_fair").setLevel(logging.ERROR)
    logging.getLogger("monai.data").setLevel(logging.ERROR)
    n_patients, n_slices, size, repeats = (8, 16, 128, 2) if quick else (8, 32, 512, 3)
    tmp = tempfile.mkdtemp(prefix="ingest_bench_dicom_")
    try:
        root = os.path.join(tmp, "archive")
        make_ct_demo(os.path.join(root, "ct"), seed=0, n_patients=n_patients, n_slices=n_slices, size=size)
        os.makedirs(os.path.join(root, "real"))
        for name in REAL_FILES:
            path = get_testdata_file(name)
            if path is not None:
                shutil.copy(path, os.path.join(root, "real", name))

        scan, scan_wall, scan_cpu = _best(lambda: scan_dicom_folder(root, pattern="*.dcm"), repeats)
        rows = list(scan.manifest["image"])
        n_files = int(scan.n_files - len(scan.skipped))

        header_t = DicomDemographicsd(keys="image")
        _, header_wall, header_cpu = _best(lambda: [header_t({"image": r}) for r in rows], repeats)

        load = LoadImaged(keys="image", reader=DicomSeriesReader(prune_metadata=False))
        full_t = DicomDemographicsd(keys="image")
        plain = LoadImaged(keys="image", reader=PydicomReader(prune_metadata=False))

        def full_pass() -> list[dict]:
            return [full_t((load if isinstance(r, list) else plain)({"image": r})) for r in rows]

        full, full_wall, full_cpu = _best(full_pass, repeats)
        agree = all(int(a["sex"]) == int(b) for a, b in zip(full, scan.manifest["sex"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "n_files": n_files,
        "n_rows": len(rows),
        "scan_s": scan_wall,
        "scan_cpu_s": scan_cpu,
        "header_transform_s": header_wall,
        "header_transform_cpu_s": header_cpu,
        "full_load_s": full_wall,
        "full_load_cpu_s": full_cpu,
        "scan_files_per_s": n_files / scan_wall,
        "full_load_files_per_s": n_files / full_wall,
        "ratio": full_wall / scan_wall,
        "cpu_ratio": full_cpu / scan_cpu,
        "header_transform_ratio": full_wall / header_wall,
        "sex_codes_agree": agree,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small folder, fewer repeats")
    r = run(quick=parser.parse_args().quick)
    print(f"[dicom ingest] {r['n_files']} DICOM files -> {r['n_rows']} manifest rows (series + 2D images)")
    print(
        f"  header-only scan (manifest):      {r['scan_s']:.3f} s wall, {r['scan_cpu_s']:.3f} s CPU, "
        f"{r['scan_files_per_s']:.0f} files/s"
    )
    print(
        f"  DicomDemographicsd on paths:      {r['header_transform_s']:.3f} s wall, "
        f"{r['header_transform_cpu_s']:.3f} s CPU (one header per row)"
    )
    print(
        f"  full LoadImaged + transform:      {r['full_load_s']:.3f} s wall, {r['full_load_cpu_s']:.3f} s CPU, "
        f"{r['full_load_files_per_s']:.0f} files/s"
    )
    print(f"  sex codes agree between scan and full load: {r['sex_codes_agree']}")
    print(
        f"headline: header-only DICOM scan {r['cpu_ratio']:.1f}x less CPU time than a full LoadImage pass "
        f"({r['ratio']:.1f}x wall; {r['scan_files_per_s']:.0f} vs {r['full_load_files_per_s']:.0f} files/s wall) "
        f"over {r['n_files']} files"
    )


if __name__ == "__main__":
    main()
