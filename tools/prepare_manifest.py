# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Build a manifest CSV (image path, labels, attribute codes, hashed patient, split) from a dataset's own layout.

    python tools/prepare_manifest.py mimic_cxr --dataset_dir /data/mimic-cxr-jpg --mimic_iv_dir /data/mimiciv \\
        --task "Enlarged Cardiomediastinum" --out mimic_manifest.csv
    python tools/prepare_manifest.py chexpert --dataset_dir /data/CheXpert-v1.0-small \\
        --demographics "/data/CHEXPERT DEMO.csv" --out chexpert_manifest.csv
    python tools/prepare_manifest.py nih --dataset_dir /data/nih-cxr14 --out nih_manifest.csv
    python tools/prepare_manifest.py generic my.csv --label y --attribute sex --attribute site --out manifest.csv
    python tools/prepare_manifest.py generic my.csv --label y --attribute sex --group-names sex:1=M,2=F --out m.csv
    python tools/prepare_manifest.py dicom /data/dicom --out dicom_manifest.csv [--labels nlst.csv --label y]

Writes ``--out`` and the code maps next to it (``<out>.codes.json``), and prints the skip report (``dicom`` also
writes it to ``<out>.skipped.csv``). The manifest holds no raw patient identifiers (only salted hashes; set
``MONAI_FAIR_SALT`` for real data) and no dates. Reports name files relative to the dataset root;
``--hashed-file-keys`` names them by salted hash only (file paths can hold patient IDs). Bad input ends in one
line ``prepare_manifest: error: ...`` naming the input and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import pandas as pd

from monai_fair.data.chexpert import UNCERTAINTY_POLICIES, build_chexpert_manifest
from monai_fair.data.codes import DEFAULT_AGE_BINS
from monai_fair.data.dicom_scan import scan_dicom_folder
from monai_fair.data.manifest import Manifest, SkipReport, read_manifest, write_manifest
from monai_fair.data.mimic_cxr import build_mimic_cxr_manifest
from monai_fair.data.nih import build_nih_manifest
from monai_fair.data.privacy import hash_patient_id


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output manifest CSV")
    p.add_argument("--no-check-files", dest="check_files", action="store_false", help="do not check image files")
    p.add_argument(
        "--hashed-file-keys",
        action="store_true",
        help="name skipped files by a salted hash of their path relative to the dataset root (paths can hold IDs)",
    )


def _bins(text: str | None) -> tuple[float, ...] | None:
    """``"0,40,60"`` → ``(0.0, 40.0, 60.0)``; raises naming the option."""
    if text is None:
        return None
    try:
        bins = tuple(float(b) for b in text.split(","))
    except ValueError:
        raise ValueError(f"--age-bins must be comma-separated numbers (lower edges), got {text!r}.") from None
    if list(bins) != sorted(set(bins)):
        raise ValueError(f"--age-bins must be strictly ascending, got {text!r}.")
    return bins


def parse_group_names(items: Sequence[str]) -> dict[str, dict[str, str]]:
    """``["sex:1=M,2=F"]`` → ``{"sex": {"1": "M", "2": "F"}}``.

    Raises:
        ValueError: an item not of the form ``ATTRIBUTE:VALUE=NAME[,VALUE=NAME...]``, naming ``--group-names``.
    """
    out: dict[str, dict[str, str]] = {}
    for item in items:
        attr, sep, pairs = item.partition(":")
        mapping = {}
        for pair in pairs.split(",") if sep else ():
            value, eq, name = pair.partition("=")
            if not eq or not value.strip() or not name.strip():
                break
            mapping[value.strip()] = name.strip()
        else:
            if sep and attr.strip() and mapping:
                out.setdefault(attr.strip(), {}).update(mapping)
                continue
        raise ValueError(f"--group-names expects ATTRIBUTE:VALUE=NAME[,VALUE=NAME...], e.g. sex:1=M,2=F; got {item!r}.")
    return out


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
    p.add_argument(
        "--group-names", action="append", default=[], help="names of coded values, e.g. sex:1=M,2=F (repeat)"
    )
    p.add_argument("--min-groups", type=int, default=2, help="fewest distinct values an attribute may have")
    p.add_argument(
        "--verify-images", action="store_true", help="decode every image; skip unreadable ones with the reason"
    )
    p.add_argument(
        "--allow-missing-groups",
        dest="check_split_groups",
        action="store_false",
        help="accept a split without any row of a group (its rates are then NaN there)",
    )
    _common(p)
    p = sub.add_parser("dicom", help="a folder of DICOM files (header-only scan: one row per image or 3D series)")
    p.add_argument("dataset_dir")
    p.add_argument("--pattern", default=None, help='file-name glob, e.g. "*.dcm" (default: every file)')
    p.add_argument("--series-as", choices=("auto", "folder", "files"), default="auto")
    p.add_argument("--irregular-spacing", choices=("skip", "keep"), default="skip", help="series with a missing slice")
    p.add_argument("--force", action="store_true", help="read files without the DICM preamble")
    p.add_argument("--age-bins", default=None, help="comma-separated lower edges of age_group")
    p.add_argument("--labels", default=None, help="per-patient label CSV joined on the hashed PatientID")
    p.add_argument("--label", action="append", default=None, help="label column of --labels (repeat)")
    p.add_argument("--id-column", default="pid", help="patient ID column of --labels")
    _common(p)
    return parser


def run(args: argparse.Namespace) -> Manifest:
    """Build the manifest the parsed arguments describe (``dicom``: see :func:`run_dicom`)."""
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
    if args.dataset == "dicom":
        return run_dicom(args)[0]
    return read_manifest(
        args.csv,
        args.label,
        args.attribute,
        image_column=args.image_column,
        patient_column=args.patient_column,
        check_files=args.check_files,
        missing_labels=args.missing_labels,
        age_bins=_bins(args.age_bins),
        group_names=parse_group_names(args.group_names) or None,
        min_groups=args.min_groups,
        check_split_groups=args.check_split_groups,
        verify_images=args.verify_images,
    )


def run_dicom(args: argparse.Namespace) -> tuple[Manifest, pd.DataFrame]:
    """Scan a DICOM folder: ``(manifest, skipped files)``; labels joined when ``--labels`` is given.

    Raises:
        ValueError: ``--labels`` without ``--label`` (or the reverse), or nothing usable in the folder.
    """
    if (args.labels is None) != (args.label is None):
        raise ValueError("--labels (the label CSV) and --label (its label column) go together.")
    result = scan_dicom_folder(
        args.dataset_dir,
        age_bins=_bins(args.age_bins) or DEFAULT_AGE_BINS,
        pattern=args.pattern,
        series_as=args.series_as,
        force=args.force,
        irregular_spacing=args.irregular_spacing,
    )
    if result.manifest.empty:
        raise ValueError(
            f"no usable DICOM image in {args.dataset_dir} ({result.n_files} files looked at; skipped: "
            f"{result.skip_counts or 'none'}); check the folder, or --pattern/--force."
        )
    if args.labels is not None:
        manifest = result.with_labels(args.labels, args.label, id_column=args.id_column)
    else:
        report = SkipReport()
        for reason, n in result.skip_counts.items():
            files = result.skipped.loc[result.skipped["reason"] == reason, "file"].head(5)
            report.add(f"scan: {reason}", n, files)
        manifest = Manifest(result.manifest, result.code_maps(), report)
    frame = manifest.frame.copy()
    frame["image"] = [json.dumps(v) if isinstance(v, list) else v for v in frame["image"]]
    return Manifest(frame, manifest.code_maps, manifest.skipped), result.skipped


def file_key(relative_path: str) -> str:
    """A salted hash naming a file in reports without its path (``MONAI_FAIR_SALT`` as for patients)."""
    return "file:" + hash_patient_id(f"file\x00{relative_path}")


def _hash_report(report: SkipReport) -> SkipReport:
    """The report with every example that is not a row number replaced by its file key."""
    out = SkipReport(max_examples=report.max_examples)
    for reason, n in report.counts.items():
        examples = report.examples.get(reason) or []
        out.add(reason, n, [e if e.startswith("row ") else file_key(e) for e in examples])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 with a one-line message naming the input on bad input)."""
    args = build_parser().parse_args(argv)
    try:
        manifest, skipped = run_dicom(args) if args.dataset == "dicom" else (run(args), None)
        if manifest.frame.empty:
            source = getattr(args, "csv", None) or getattr(args, "dataset_dir", None)
            raise ValueError(f"no usable row from {source} (skipped: {manifest.skipped.summary()}); nothing written.")
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as e:
        print(f"prepare_manifest: error: a table of {args.dataset} could not be read as CSV: {e}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, FileNotFoundError, NotADirectoryError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"prepare_manifest: error: {message}", file=sys.stderr)
        return 2
    report = _hash_report(manifest.skipped) if args.hashed_file_keys else manifest.skipped
    path = write_manifest(manifest.frame, args.out, manifest.code_maps)
    if skipped is not None:
        if args.hashed_file_keys:
            skipped = skipped.assign(file=[file_key(f) for f in skipped["file"]]).rename(columns={"file": "file_key"})
        skipped.to_csv(path.with_name(path.name + ".skipped.csv"), index=False)
    print(f"skipped: {report.summary()}")
    print(f"{len(manifest.frame)} rows -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
