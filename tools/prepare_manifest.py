# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Build a manifest CSV (image path, labels, attribute codes, hashed patient, split) from a dataset's own layout.

    python tools/prepare_manifest.py mimic_cxr --dataset_dir /data/mimic-cxr-jpg --mimic_iv_dir /data/mimiciv \\
        --task "Enlarged Cardiomediastinum" --out mimic_manifest.csv
    python tools/prepare_manifest.py chexpert --dataset_dir /data/CheXpert-v1.0-small \\
        --demographics "/data/CHEXPERT DEMO.csv" --out chexpert_manifest.csv
    python tools/prepare_manifest.py nih --dataset_dir /data/nih-cxr14 --out nih_manifest.csv
    python tools/prepare_manifest.py generic my.csv --label y --attribute sex --attribute site --out manifest.csv

Writes ``--out`` and the code maps next to it (``<out>.codes.json``), and prints the skip report. The manifest
holds no raw patient identifiers (only salted hashes; set ``MONAI_FAIR_SALT`` for real data) and no dates.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from monai_fair.data.chexpert import UNCERTAINTY_POLICIES, build_chexpert_manifest
from monai_fair.data.manifest import Manifest, read_manifest, write_manifest
from monai_fair.data.mimic_cxr import build_mimic_cxr_manifest
from monai_fair.data.nih import build_nih_manifest


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output manifest CSV")
    p.add_argument("--no-check-files", dest="check_files", action="store_false", help="do not check image files")


def _cxr_labels(p: argparse.ArgumentParser) -> None:
    p.add_argument("--uncertain", choices=UNCERTAINTY_POLICIES, default="ignore", help="policy for -1 labels")
    p.add_argument("--blank", choices=("zeros", "ignore"), default="zeros", help="policy for blank labels")
    p.add_argument(
        "--task", default=None, help='binary "disease vs No Finding" task, e.g. "Enlarged Cardiomediastinum"'
    )
    p.add_argument("--all-views", dest="frontal_only", action="store_false", help="keep lateral views too")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="dataset", required=True)
    p = sub.add_parser("mimic_cxr", help="MIMIC-CXR-JPG + MIMIC-IV")
    p.add_argument("--dataset_dir", required=True)
    p.add_argument("--mimic_iv_dir", default=None, help="MIMIC-IV root (default <dataset_dir>/mimic-iv)")
    p.add_argument("--race-grouping", choices=("coarse", "raw"), default="coarse")
    _cxr_labels(p)
    _common(p)
    p = sub.add_parser("chexpert", help="CheXpert + CHEXPERT DEMO table")
    p.add_argument("--dataset_dir", required=True)
    p.add_argument("--demographics", default=None, help="CHEXPERT DEMO .csv/.xlsx (default: looked up)")
    _cxr_labels(p)
    _common(p)
    p = sub.add_parser("nih", help="NIH ChestX-ray14")
    p.add_argument("--dataset_dir", required=True)
    p.add_argument("--table", default=None, help="Data_Entry_2017*.csv (default: looked up)")
    p.add_argument("--view", action="append", default=None, help="keep only these View Position values")
    _common(p)
    p = sub.add_parser("generic", help="any CSV with image, label and attribute columns")
    p.add_argument("csv")
    p.add_argument("--label", action="append", required=True, help="label column (repeat for multi-label)")
    p.add_argument("--attribute", action="append", default=[], help="attribute column (repeat)")
    p.add_argument("--image-column", default="image")
    p.add_argument("--patient-column", default="patient_id")
    p.add_argument("--missing-labels", choices=("skip", "keep", "error"), default="skip")
    p.add_argument("--age-bins", default=None, help="comma-separated lower edges, adds age_group from age")
    _common(p)
    return parser


def run(args: argparse.Namespace) -> Manifest:
    """Build the manifest the parsed arguments describe."""
    if args.dataset == "mimic_cxr":
        return build_mimic_cxr_manifest(
            args.dataset_dir,
            args.mimic_iv_dir,
            views=("PA", "AP") if args.frontal_only else ("PA", "AP", "LATERAL", "LL", ""),
            uncertain=args.uncertain,
            blank=args.blank,
            task=args.task,
            race_grouping=args.race_grouping,
            check_files=args.check_files,
        )
    if args.dataset == "chexpert":
        return build_chexpert_manifest(
            args.dataset_dir,
            args.demographics,
            frontal_only=args.frontal_only,
            uncertain=args.uncertain,
            blank=args.blank,
            task=args.task,
            check_files=args.check_files,
        )
    if args.dataset == "nih":
        return build_nih_manifest(args.dataset_dir, args.table, views=args.view, check_files=args.check_files)
    bins = None if args.age_bins is None else tuple(float(b) for b in args.age_bins.split(","))
    return read_manifest(
        args.csv,
        args.label,
        args.attribute,
        image_column=args.image_column,
        patient_column=args.patient_column,
        check_files=args.check_files,
        missing_labels=args.missing_labels,
        age_bins=bins,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    manifest = run(args)
    path = write_manifest(manifest.frame, args.out, manifest.code_maps)
    print(f"skipped: {manifest.skipped.summary()}")
    print(f"{len(manifest.frame)} rows -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
