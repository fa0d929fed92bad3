# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Spatial slice order of 3D DICOM series, and a MONAI reader that stacks slices in that order.

File names and InstanceNumber do not reliably follow anatomy; the position of each slice along the slice normal
(ImagePositionPatient projected on the cross product of the ImageOrientationPatient row and column cosines) does.
MONAI's ``PydicomReader`` orders a series folder by InstanceNumber and stacks a *list* of files as channels;
:class:`DicomSeriesReader` orders by position (InstanceNumber only as a fallback) and reads a list of files as one
series, so a manifest's ordered file list loads as a volume.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pydicom
from monai.data import PydicomReader
from monai.utils import MetaKeys

__all__ = [
    "ORIENTATION_TOLERANCE",
    "SPACING_TOLERANCE",
    "slice_normal",
    "slice_positions",
    "order_slices",
    "spacing_problem",
    "DicomSeriesReader",
]

ORIENTATION_TOLERANCE = 1e-4
# relative spread of slice gaps tolerated before a series counts as irregular (rounding of written positions)
SPACING_TOLERANCE = 0.01


def _floats(value: Any, n: int) -> np.ndarray | None:
    if value is None:
        return None
    try:
        arr = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) and np.isfinite(arr).all() else None


def slice_normal(orientation: Any) -> np.ndarray | None:
    """Unit normal of a slice from its ImageOrientationPatient (row cosines × column cosines); None if invalid."""
    iop = _floats(orientation, 6)
    if iop is None:
        return None
    normal = np.cross(iop[:3], iop[3:])
    norm = np.linalg.norm(normal)
    return normal / norm if norm > 1e-6 else None


def slice_positions(headers: Sequence[Any]) -> np.ndarray | None:
    """Position of each slice along the common slice normal, or None when IPP/IOP are missing or disagree.

    Args:
        headers: pydicom Datasets (header-only reads suffice) of one series.
    """
    if not headers:
        return None
    normals = [slice_normal(getattr(h, "ImageOrientationPatient", None)) for h in headers]
    if any(n is None for n in normals):
        return None
    if not all(np.allclose(n, normals[0], atol=ORIENTATION_TOLERANCE) for n in normals):
        return None
    positions = [_floats(getattr(h, "ImagePositionPatient", None), 3) for h in headers]
    if any(p is None for p in positions):
        return None
    return np.asarray([float(p @ normals[0]) for p in positions])


def spacing_problem(positions: Sequence[float] | np.ndarray, tolerance: float = SPACING_TOLERANCE) -> str | None:
    """Why the slice gaps of a series are not one regular spacing (None when they are).

    A missing slice shows as one gap about twice the others; stacking such a series with one spacing puts every
    slice after the hole at the wrong place.

    Args:
        positions: slice positions along the normal, in slice order.
        tolerance: tolerated relative spread of the gaps around their median.
    """
    gaps = np.abs(np.diff(np.asarray(positions, dtype=np.float64)))
    if gaps.size == 0:
        return None
    median = float(np.median(gaps))
    if median <= 0 or np.any(np.abs(gaps - median) > tolerance * median + 1e-3):
        odd = int(np.sum(np.abs(gaps - median) > tolerance * median + 1e-3))
        return (
            f"irregular slice spacing: gaps {float(gaps.min()):.4g}-{float(gaps.max()):.4g} mm around a median of "
            f"{median:.4g} mm ({odd} of {gaps.size} gaps differ; a missing or extra slice?)"
        )
    return None


def order_slices(headers: Sequence[Any]) -> tuple[list[int], str]:
    """Indices that put the slices of one series in spatial order, and the method used.

    Returns:
        ``(order, method)`` with method ``"position"`` (IPP on the slice normal, ascending), ``"instance_number"``
        (fallback when geometry is missing or inconsistent) or ``"none"`` (neither available: input order kept).
    """
    positions = slice_positions(headers)
    if positions is not None:
        return [int(i) for i in np.argsort(positions, kind="stable")], "position"
    numbers = []
    for h in headers:
        try:
            numbers.append(int(getattr(h, "InstanceNumber")))
        except (AttributeError, TypeError, ValueError):
            return list(range(len(headers))), "none"
    return [int(i) for i in np.argsort(numbers, kind="stable")], "instance_number"


class DicomSeriesReader(PydicomReader):
    """``PydicomReader`` that stacks a series in spatial order and reads a list of files as one series.

    Use it as ``LoadImaged(keys="image", reader=DicomSeriesReader(prune_metadata=False))`` with a series folder
    or an ordered list of slice files (as written by :func:`monai_fair.data.dicom_scan.scan_dicom_folder`). Single
    files behave exactly as with ``PydicomReader``. All ``PydicomReader`` arguments are accepted.

    A series whose slice gaps are not one regular spacing (a missing slice) raises by default: its stacked volume
    would put every slice after the hole at the wrong place. With ``irregular_spacing="warn"`` it is stacked as
    MONAI would (one spacing spread over the whole extent) with a warning and the reason in the meta dict under
    ``"spacing_note"``; resample it from the slice positions before any geometric use.

    Args:
        list_as_series: read a list of two or more files as the slices of one series (MONAI's default stacks them
            as channels).
        irregular_spacing: ``"error"`` (default) or ``"warn"``.
        kwargs: ``PydicomReader`` arguments (``to_gpu`` is not supported).

    Raises:
        ValueError: when ``to_gpu=True`` is asked for, or for an unknown ``irregular_spacing``.
    """

    def __init__(self, list_as_series: bool = True, irregular_spacing: str = "error", **kwargs: Any) -> None:
        if kwargs.get("to_gpu", False):
            raise ValueError("DicomSeriesReader does not support to_gpu; use monai.data.PydicomReader for that.")
        if irregular_spacing not in ("error", "warn"):
            raise ValueError(f"irregular_spacing must be 'error' or 'warn', got {irregular_spacing!r}.")
        super().__init__(**kwargs)
        self.list_as_series = list_as_series
        self.irregular_spacing = irregular_spacing

    def read(self, data: Sequence[os.PathLike | str] | os.PathLike | str, **kwargs: Any):
        """Read a file, a series folder, or (with ``list_as_series``) a list of slice files as one series."""
        names = [data] if isinstance(data, (str, os.PathLike)) else list(data)
        if self.list_as_series and len(names) > 1 and not any(os.path.isdir(f"{n}") for n in names):
            kwargs_ = {**self.kwargs, **kwargs}
            self.filenames = [[f"{n}" for n in names]]
            self.has_series = True
            return [pydicom.dcmread(fp=f"{n}", **kwargs_) for n in names]
        return super().read(data, **kwargs)

    def _combine_dicom_series(self, data: Sequence, filenames: Sequence) -> tuple[np.ndarray, dict]:
        slices = list(data)
        names = list(filenames)
        if not slices:
            raise ValueError("the input does not have valid slices.")
        order, method = order_slices(slices)
        if method == "none":
            warnings.warn("DicomSeriesReader: no slice geometry and no InstanceNumber; keeping the given order.")
        slices = [slices[i] for i in order]
        names = [names[i] for i in order]
        arrays = [self._get_array_data(s, n) for s, n in zip(slices, names)]
        if any(a.shape != arrays[0].shape for a in arrays):
            raise ValueError(f"DicomSeriesReader: slices of one series have different shapes in {names[0]!r}.")
        first = slices[0]
        pixel_spacing = [float(v) for v in getattr(first, "PixelSpacing", [1.0, 1.0])]
        meta = self._get_meta_dict(first)
        if len(slices) == 1:
            meta["spacing"] = np.asarray(pixel_spacing)
            meta[MetaKeys.SPATIAL_SHAPE] = arrays[0].shape
            return arrays[0], meta
        positions = slice_positions(slices)
        gap = float(np.mean(np.abs(np.diff(positions)))) if positions is not None else 1.0
        problem = spacing_problem(positions) if positions is not None else None
        if problem is not None:
            where = os.path.dirname(names[0]) or names[0]
            if self.irregular_spacing == "error":
                raise ValueError(
                    f"DicomSeriesReader: series in {where!r}: {problem}. Drop the series, or pass "
                    "irregular_spacing='warn' to stack it anyway with a note."
                )
            warnings.warn(f"DicomSeriesReader: series in {where!r}: {problem}; stacked with one spacing anyway.")
            meta["spacing_note"] = problem
        meta["spacing"] = np.asarray(pixel_spacing + [gap])
        last_ipp = getattr(slices[-1], "ImagePositionPatient", None)
        if last_ipp is not None:
            meta["lastImagePositionPatient"] = np.asarray([float(v) for v in last_ipp])
        meta[MetaKeys.SPATIAL_SHAPE] = arrays[0].shape + (len(slices),)
        return np.stack(arrays, axis=-1), meta
