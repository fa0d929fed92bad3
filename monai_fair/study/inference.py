# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""What a bundle's ``inference.json`` and model-zoo tools need around the trained model: the data dicts of a folder or
a manifest, the fairness audit of the written predictions, and the selected seed's model at ``models/model.pt``."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .runtime import is_main_process

__all__ = ["IMAGE_SUFFIXES", "audit_predictions", "inference_data", "publish_model"]

logger = logging.getLogger(__name__)

#: image files an inference folder is searched for (recursively)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".dcm", ".dicom")


def inference_data(
    input_dir: str | os.PathLike | None = None,
    manifest_file: str | os.PathLike | None = None,
    image_column: str = "image",
) -> list[dict[str, str]]:
    """Data dicts ``{"image": absolute path, "filename": key}`` of every image of a folder or of a manifest.

    ``filename`` is what the predictions CSV names each row by: the path relative to ``input_dir``, or the
    manifest's own ``image_column`` value (so the predictions join back to the manifest exactly).

    Args:
        input_dir: folder searched recursively for files ending in :data:`IMAGE_SUFFIXES`.
        manifest_file: a CSV with an ``image_column`` (paths absolute or relative to the CSV's folder).
        image_column: the manifest's image column.

    Raises:
        ValueError: neither or both of ``input_dir`` / ``manifest_file``, no image found, a manifest without
            ``image_column``, or manifest rows whose image file does not exist.
    """
    if (input_dir is None) == (manifest_file is None):
        raise ValueError(
            "inference needs exactly one of input_dir (--input_dir /path/images) or manifest_file "
            f"(--manifest_file /path/manifest.csv); got input_dir={input_dir!r}, manifest_file={manifest_file!r}."
        )
    if input_dir is not None:
        root = Path(input_dir)
        if not root.is_dir():
            raise ValueError(f"input_dir {str(root)!r} is not a folder.")
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"input_dir {str(root)!r} holds no image ({', '.join(IMAGE_SUFFIXES)}).")
        return [{"image": str(p.resolve()), "filename": p.relative_to(root).as_posix()} for p in files]
    path = Path(manifest_file)
    if not path.is_file():
        raise ValueError(f"manifest_file {str(path)!r} not found.")
    frame = pd.read_csv(path)
    if image_column not in frame.columns:
        raise ValueError(
            f"manifest_file {str(path)!r} has no image column {image_column!r} (--image_column); "
            f"columns: {list(frame.columns)}."
        )
    keys = frame[image_column].dropna().astype(str).tolist()
    if not keys:
        raise ValueError(f"manifest_file {str(path)!r} lists no image in column {image_column!r}.")
    data = [{"image": str((path.parent / k).resolve()), "filename": k} for k in keys]
    missing = [d["filename"] for d in data if not os.path.isfile(d["image"])]
    if missing:
        raise ValueError(
            f"{len(missing)} of {len(data)} image(s) of manifest_file {str(path)!r} do not exist "
            f"(e.g. {os.path.basename(missing[0])!r}); paths are relative to the manifest's folder."
        )
    return data


def audit_predictions(
    predictions_file: str | os.PathLike,
    manifest_file: str | os.PathLike | None,
    output_dir: str | os.PathLike,
    *,
    label: str,
    attributes: str | Sequence[str] | None,
    image_column: str = "image",
    reference: str | None = None,
    threshold: str | float = 0.5,
    metric: str = "eod",
    epsilon: float = 0.05,
    min_group_size: int = 10,
    n_bootstrap: int = 0,
    demo: bool = False,
) -> list[str]:
    """The fairness table of the predictions an inference run wrote, when the manifest gives labels and groups.

    Reads the ``ClassificationSaver`` CSV (no header: ``filename, pred0``), joins it to the manifest on
    ``image_column`` and runs :func:`monai_fair.audit.run_audit`; the report and tables go to ``output_dir``
    (``fairness_table.csv``, ``per_group.csv``, ``pooled.csv``, ``report.md``, plots).

    Args:
        predictions_file: the predictions CSV.
        manifest_file: the manifest the predictions were made for (``None``: a folder; nothing to audit).
        output_dir: where the audit is written.
        label: binary label column of the manifest.
        attributes: group column(s) of the manifest; ``None`` or empty: no audit.
        image_column: the manifest column the predictions are keyed by.
        reference: reference (privileged) group name; ``None``: the largest group.
        threshold: decision threshold on the probability (e.g. the study's validation threshold) or
            ``"ba-optimal"`` (chosen on these very data: optimistic).
        metric, epsilon, min_group_size: :class:`~monai_fair.metrics.FairnessSpec` fields.
        n_bootstrap: resamples for the intervals (0: none).
        demo: the model or the data are the generated demo: the report says so.

    Returns:
        the written paths (empty when there was nothing to audit).
    """
    from monai_fair.audit import render_report, run_audit, write_outputs

    attrs = [attributes] if isinstance(attributes, str) else list(attributes or [])
    if manifest_file is None or not attrs:
        logger.info("predictions only: the fairness table needs a manifest with the label and attribute columns.")
        return []
    columns = set(pd.read_csv(manifest_file, nrows=0).columns)
    absent = [c for c in [label, *attrs] if c not in columns]
    if absent:
        logger.warning(f"predictions only: manifest {str(manifest_file)!r} lacks the column(s) {absent} of the audit.")
        return []
    result = run_audit(
        predictions_file,
        score=["pred0"],
        label=[label],
        group=attrs,
        reference=reference,
        manifest=manifest_file,
        join_on=image_column,
        pred_key="filename",
        no_header=True,
        threshold=threshold,
        metric=metric,
        epsilon=epsilon,
        min_group_size=min_group_size,
        n_bootstrap=n_bootstrap,
    )
    report = render_report(result)
    if demo:
        report = "**DEMO DATA: a model trained on generated data, not a clinical result.**\n\n" + report
    paths = write_outputs(result, report, output_dir)
    logger.info(f"fairness audit of {result.n} predictions written to {os.fspath(output_dir)}")
    return paths


def publish_model(
    ckpt_dir: str | os.PathLike,
    seed: int,
    network_config: Mapping[str, Any] | None = None,
    filename: str = "model.pt",
) -> str | None:
    """Copy ``seed``'s model to ``<ckpt_dir>/model.pt``, where model-zoo tools expect it, with its network settings.

    The per-seed models stay in ``seed_<s>/``. ``network_config`` (the config values that build the network, e.g.
    ``scale``, ``width``, ``fc_channels``, ``pool_size``, ``batch_norm``, ``input_size``) is written next to it as
    ``network.json``: a config file merged after ``train.json`` rebuilds the network the model was trained with,
    so one ``ckpt_export`` / inference command serves every scale.

    Args:
        ckpt_dir: the bundle's ``models`` folder.
        seed: the selected seed (the bundles use the first of ``seeds``).
        network_config: config values to store in ``network.json``.
        filename: the model file name in ``seed_<s>/`` and in ``ckpt_dir``.

    Returns:
        the published path (``None`` on ranks other than 0).

    Raises:
        FileNotFoundError: ``seed`` has no saved model.
    """
    if not is_main_process():
        return None
    source = Path(ckpt_dir) / f"seed_{int(seed)}" / filename
    if not source.is_file():
        raise FileNotFoundError(f"no model of seed {seed} to publish: {source} does not exist.")
    target = Path(ckpt_dir) / filename
    shutil.copyfile(source, target)
    if network_config is not None:
        with open(Path(ckpt_dir) / "network.json", "w") as f:
            json.dump(dict(network_config), f, indent=2)
    logger.info(f"seed {seed}'s model published as {target}")
    return str(target)
