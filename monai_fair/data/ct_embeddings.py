# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""3D CT volumes (DICOM series or NIfTI) → a cached embedding table, through the same ingestion as every study.

A DICOM folder is scanned header-only by :func:`~monai_fair.data.dicom_scan.scan_dicom_folder` (one de-identified
row per series: sex and age codes from the header, salted patient hash, spatially ordered slices); NIfTI volumes
come with a manifest CSV (``image``, ``sex``, ``age``, optional ``patient_hash``). Each volume is read with
``LoadImaged`` (:class:`~monai_fair.data.dicom_series.DicomSeriesReader` for DICOM), clipped to a HU window, scaled
to [0, 1], resized to ``roi_size`` and passed through a configurable MONAI 3D encoder (any ``nn.Module`` mapping
``(B, 1, *roi_size)`` to ``(B, D)``; default a seeded, randomly initialised ``resnet10`` feature extractor, or
load foundation-model weights into it). The table is written with
:func:`~monai_fair.data.embeddings.write_embedding_table` (``patient_hash``, ``sex`` F/M, ``age``, labels, ``emb_<i>``),
so :func:`~monai_fair.data.embeddings.load_embedding_table` and the embedding study read it like any other table.
No name, ID, date or free text leaves the scan. The table is cached: a JSON key (volumes, encoder settings and
weights) next to it says whether it is current.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from monai_fair.data.codes import SEX_NAMES
from monai_fair.data.dicom_series import DicomSeriesReader
from monai_fair.data.embeddings import write_embedding_table

__all__ = ["CTEmbedder", "default_ct_encoder"]

logger = logging.getLogger(__name__)


def default_ct_encoder(seed: int = 0) -> torch.nn.Module:
    """A seeded, randomly initialised MONAI ``resnet10`` 3D feature extractor (512-d, global average pooled).

    Random features are a pipeline check, not a foundation model: load real weights into it (or pass another
    encoder) for real studies.
    """
    from monai.networks.nets import resnet10

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return resnet10(spatial_dims=3, n_input_channels=1, feed_forward=False).eval()


def _is_dicom(image: Any) -> bool:
    if isinstance(image, (list, tuple)):
        return True
    path = str(image)
    return os.path.isdir(path) or path.lower().endswith((".dcm", ".dicom"))


class CTEmbedder:
    """Encode CT volumes into an embedding table.

    Args:
        encoder: ``(B, 1, *roi_size) → (B, D)`` network (default :func:`default_ct_encoder`).
        roi_size: size every volume is resized to (depth follows the volume's last axis as MONAI loads it).
        hu_window: HU values clipped to this window, then scaled to [0, 1].
        batch_size: volumes per forward pass.
        device: where to encode.
        seed: seed of the default encoder.

    Example::

        table = CTEmbedder().embed_dicom_folder("/data/nlst_ct", "/cache/ct_embeddings.npz", labels=labels)
    """

    def __init__(
        self,
        encoder: torch.nn.Module | None = None,
        roi_size: Sequence[int] = (64, 64, 32),
        hu_window: Sequence[float] = (-1000.0, 400.0),
        batch_size: int = 2,
        device: str | torch.device = "cpu",
        seed: int = 0,
    ) -> None:
        if len(roi_size) != 3 or min(int(s) for s in roi_size) < 8:
            raise ValueError(f"roi_size must be three sizes >= 8, got {tuple(roi_size)}.")
        if len(hu_window) != 2 or not float(hu_window[0]) < float(hu_window[1]):
            raise ValueError(f"hu_window must be (low, high) with low < high, got {tuple(hu_window)}.")
        self.device = torch.device(device)
        self.encoder = (encoder if encoder is not None else default_ct_encoder(seed)).to(self.device).eval()
        self.roi_size = tuple(int(s) for s in roi_size)
        self.hu_window = (float(hu_window[0]), float(hu_window[1]))
        self.batch_size = int(batch_size)

    def transforms(self, dicom: bool):
        """The MONAI chain of one volume: load, channel first, HU window → [0, 1], resize."""
        from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Resized, ScaleIntensityRanged

        reader = DicomSeriesReader() if dicom else None
        return Compose(
            [
                LoadImaged(keys="image", reader=reader, image_only=True),
                EnsureChannelFirstd(keys="image", channel_dim="no_channel"),
                ScaleIntensityRanged(
                    keys="image", a_min=self.hu_window[0], a_max=self.hu_window[1], b_min=0.0, b_max=1.0, clip=True
                ),
                Resized(keys="image", spatial_size=self.roi_size),
            ]
        )

    def cache_key(self, images: Sequence[Any]) -> str:
        """Hash of the volumes (paths, sizes, modification times), the preprocessing and the encoder weights."""
        h = hashlib.sha256()
        for image in images:
            for f in image if isinstance(image, (list, tuple)) else [image]:
                p = Path(str(f))
                files = sorted(p.iterdir()) if p.is_dir() else [p]
                for g in files:
                    st = g.stat()
                    h.update(f"{g}|{st.st_size}|{st.st_mtime_ns}".encode())
        h.update(json.dumps({"roi": self.roi_size, "hu": self.hu_window, "cls": type(self.encoder).__name__}).encode())
        for name, t in self.encoder.state_dict().items():
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    @torch.no_grad()
    def encode(self, images: Sequence[Any]) -> np.ndarray:
        """``(N, D)`` float32 embeddings of the volumes (DICOM series folders / file lists, or NIfTI files)."""
        if not images:
            raise ValueError("no CT volumes to encode.")
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = []
            for image in images[start : start + self.batch_size]:
                try:
                    batch.append(self.transforms(_is_dicom(image))({"image": image})["image"].as_tensor())
                except Exception as e:  # name the volume, not just MONAI's transform chain
                    raise RuntimeError(f"cannot load CT volume {image!r}: {type(e).__name__}: {e}") from e
            feats = self.encoder(torch.stack(batch).float().to(self.device))
            if feats.ndim != 2:
                raise ValueError(f"the encoder must return (B, D) features, got shape {tuple(feats.shape)}.")
            out.append(feats.detach().cpu().numpy().astype(np.float32))
        return np.concatenate(out, 0)

    def embed_manifest(
        self,
        manifest: pd.DataFrame,
        output_file: str | os.PathLike,
        labels: pd.DataFrame | None = None,
        label_columns: Sequence[str] = (),
        join_column: str = "patient_hash",
    ) -> Path:
        """Encode the volumes of a manifest (``image``, ``sex`` code or name, ``age``, optional ``patient_hash``)
        and write the table (reused when its cache key matches).

        Args:
            manifest: one row per volume.
            output_file: the table (``.npz``, ``.csv`` or ``.parquet``); ``<output_file>.json`` holds its cache key.
            labels: optional label table joined on ``join_column`` (e.g. hashed ids from the scan's ``with_labels``).
            label_columns: label columns taken from ``labels`` (or from the manifest itself).
            join_column: column shared by ``manifest`` and ``labels``.
        """
        if "image" not in manifest.columns:
            raise KeyError(f"CT manifest needs an 'image' column; columns: {list(manifest.columns)}.")
        frame = manifest.reset_index(drop=True)
        if labels is not None:
            frame = frame.merge(labels[[join_column, *label_columns]], on=join_column, how="left", validate="m:1")
        missing = [c for c in label_columns if c not in frame.columns]
        if missing:
            raise KeyError(f"label column(s) {missing} not in the CT manifest or label table.")
        images = [json.loads(v) if isinstance(v, str) and v.startswith("[") else v for v in frame["image"]]
        output_file = Path(output_file)
        key = self.cache_key(images)
        key_file = output_file.with_name(output_file.name + ".json")
        if output_file.is_file() and key_file.is_file() and json.loads(key_file.read_text()).get("key") == key:
            logger.info("CT embeddings up to date: %s", output_file)
            return output_file
        embeddings = self.encode(images)
        sex = frame["sex"] if "sex" in frame.columns else pd.Series([None] * len(frame))
        columns: dict[str, Any] = {
            # fixed-width strings: NPZ tables are read with allow_pickle=False
            "patient_hash": np.asarray(
                frame["patient_hash"] if "patient_hash" in frame.columns else [""] * len(frame), dtype=str
            ),
            "sex": np.asarray(
                [SEX_NAMES.get(int(v), "") if _is_code(v) else ("" if v is None else str(v)) for v in sex], dtype=str
            ),
            "age": pd.to_numeric(frame.get("age", pd.Series([np.nan] * len(frame))), errors="coerce").to_numpy(),
        }
        for c in label_columns:
            columns[c] = pd.to_numeric(frame[c], errors="coerce").to_numpy()
        output_file.parent.mkdir(parents=True, exist_ok=True)
        path = write_embedding_table(output_file, embeddings, columns)
        info = {"key": key, "n": len(frame), "dim": int(embeddings.shape[1]), "roi_size": list(self.roi_size)}
        key_file.write_text(json.dumps(info, indent=2))
        logger.info("encoded %d CT volumes (%d-d) -> %s", len(frame), embeddings.shape[1], path)
        return path

    def embed_dicom_folder(
        self,
        root: str | os.PathLike,
        output_file: str | os.PathLike,
        labels: pd.DataFrame | None = None,
        label_columns: Sequence[str] = (),
        id_column: str = "pid",
        scan_kwargs: Mapping[str, Any] | None = None,
    ) -> Path:
        """Scan a DICOM folder (one row per 3D series), encode every series and write the table.

        Args:
            root: the DICOM folder.
            output_file: the table file.
            labels: optional label table with the raw patient id in ``id_column`` (hashed with the scan's salt, so
                the raw id is never written).
            label_columns: label columns of ``labels``.
            id_column: patient id column of ``labels``.
            scan_kwargs: further :func:`~monai_fair.data.dicom_scan.scan_dicom_folder` arguments.
        """
        from monai_fair.data.dicom_scan import scan_dicom_folder

        scan_kwargs = dict(scan_kwargs or {})
        scan = scan_dicom_folder(root, **scan_kwargs)
        manifest = scan.manifest
        if labels is not None:  # the scan's own join: ids hashed with its salt, raw ids never kept
            manifest = scan.with_labels(labels, list(label_columns), id_column, scan_kwargs.get("salt")).frame
        manifest = manifest[manifest["n_slices"] > 1]
        if manifest.empty:
            raise ValueError(f"no 3D series found under {root} ({len(scan.skipped)} file(s) skipped).")
        return self.embed_manifest(manifest, output_file, None, label_columns)


def _is_code(value: Any) -> bool:
    try:
        return float(value) == int(float(value))
    except (TypeError, ValueError):
        return False
