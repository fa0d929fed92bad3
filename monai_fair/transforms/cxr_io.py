# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Read a chest X-ray (PNG/JPEG/TIFF/BMP or DICOM) into display intensities 0..255 whatever its bit depth.

The study preprocessing works on 0..255 images. Hospital exports and several public CXR sets store 12- or 16-bit
PNG/TIFF, and DICOM stores raw detector values with a rescale, a VOI window and possibly an inverted (MONOCHROME1)
grey scale. :func:`read_cxr_image` maps each of them onto the same 0..255 scale, so the same content gives the same
normalised image:

* PIL images are divided by their real maximum ``2**bits - 1`` (8 for ``L``/``RGB``, 16 for ``I;16``; a 32-bit
  ``I`` or float ``F`` image needs ``bits``), then multiplied by 255;
* DICOM: stored values (``BitsStored``, signedness) → modality LUT (``RescaleSlope``/``RescaleIntercept``) → the
  first VOI window (``WindowCenter``/``WindowWidth``, ``VOILUTFunction``) or VOI LUT, else the full stored range →
  0..255, inverted for ``MONOCHROME1``.

Unreadable files raise a ``ValueError`` that names the file; warnings in the log name the file only (no folders,
which can hold patient IDs).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

__all__ = ["PIL_MODE_BITS", "read_cxr_image", "dicom_display_array", "LoadCXRImaged"]

logger = logging.getLogger(__name__)

# bits per sample of the PIL modes whose depth the mode itself states
PIL_MODE_BITS: dict[str, int] = {
    "1": 1,
    "L": 8,
    "LA": 8,
    "P": 8,
    "RGB": 8,
    "RGBA": 8,
    "RGBX": 8,
    "CMYK": 8,
    "YCbCr": 8,
    "I;16": 16,
    "I;16L": 16,
    "I;16B": 16,
    "I;16N": 16,
}
_DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")


def _is_dicom(path: Path) -> bool:
    if path.suffix.lower() in _DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def _scale_to_bits(arr: np.ndarray, bits: int, path: Path) -> np.ndarray:
    top = float(2**bits - 1)
    high = float(arr.max()) if arr.size else 0.0
    if high > top:
        raise ValueError(
            f"{path}: values up to {high:g} exceed the {bits}-bit range 0..{top:g}; pass the image's real bit depth "
            "as bits= (LoadCXRImaged / cxr_preprocess_transforms)."
        )
    if float(arr.min()) < 0:
        raise ValueError(f"{path}: negative intensities in a PIL image; convert it or pass it as DICOM.")
    return arr.astype(np.float64) * (255.0 / top)


def _read_pil(path: Path, bits: int | None) -> tuple[np.ndarray, dict[str, Any]]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated file fails here, with its name
            mode = img.mode
            if mode == "P":
                img = img.convert("RGBA" if "transparency" in img.info else "RGB")
                mode = img.mode
            elif mode in ("CMYK", "YCbCr", "RGBX"):
                img = img.convert("RGB")
                mode = "RGB"
            arr = np.asarray(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"cannot read image file {path}: {e} (corrupt, truncated or not an image).") from e
    if mode == "1":
        arr = arr.astype(np.uint8)
    known = PIL_MODE_BITS.get("1" if mode == "1" else mode)
    if bits is None:
        if known is None:
            raise ValueError(
                f"{path}: PIL mode {mode!r} does not state the bit depth; pass bits= (e.g. bits=12 or 16) to "
                "LoadCXRImaged / cxr_preprocess_transforms."
            )
        bits = known
    if known == 16 and bits == 16 and arr.size and arr.max() < 4096:
        logger.warning(
            "%s: a 16-bit image whose values stay below 4096 (12-bit content?); it is scaled by 65535, pass bits=12 "
            "if the source is 12-bit.",
            path.name,  # the name only: folders can hold patient IDs
        )
    out = _scale_to_bits(arr, bits, path)
    out = out[None] if out.ndim == 2 else np.moveaxis(out, -1, 0)  # channel first
    return out, {"mode": mode, "bits": bits}


def _first(value: Any) -> float:
    if isinstance(value, (list, tuple)) or (hasattr(value, "__iter__") and not isinstance(value, (str, bytes))):
        value = list(value)[0]
    return float(value)


def _window(x: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2/3 VOI functions, to 0..1."""
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((x - center) / width + 0.5, 0.0, 1.0)
    if width < 1:
        raise ValueError(f"LINEAR window width must be >= 1, got {width:g}")
    if width == 1:
        return (x > center - 0.5).astype(np.float64)
    return np.clip((x - (center - 0.5)) / (width - 1.0) + 0.5, 0.0, 1.0)


def dicom_display_array(ds: Any, path: str | os.PathLike = "<dataset>") -> tuple[np.ndarray, dict[str, Any]]:
    """Display intensities 0..255 (channel first) of a 2D DICOM image and how they were obtained.

    Args:
        ds: a pydicom ``Dataset`` with pixel data.
        path: the file name used in messages.

    Returns:
        ``(array (C, H, W) float64 in 0..255, meta)`` with meta ``{"bits", "voi", "photometric"}``.

    Raises:
        ValueError: no or undecodable pixel data, several frames, or an unsupported photometric interpretation.
    """
    from pydicom.pixels import apply_modality_lut

    path = Path(path)
    try:
        arr = ds.pixel_array
    except Exception as e:  # noqa: BLE001 - any decoder failure becomes a named error
        raise ValueError(f"cannot decode the pixel data of DICOM file {path}: {e}") from e
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if frames > 1:
        raise ValueError(f"DICOM file {path} has {frames} frames; a chest X-ray must be one 2D frame.")
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if samples != 1:
        if photometric not in ("RGB", "YBR_FULL", "YBR_FULL_422") or int(ds.BitsStored) != 8:
            raise ValueError(f"DICOM file {path}: unsupported colour image ({photometric}, {ds.BitsStored} bits).")
        if photometric != "RGB":
            from pydicom.pixels import convert_color_space

            arr = convert_color_space(arr, photometric, "RGB")
        return np.moveaxis(arr.astype(np.float64), -1, 0), {"bits": 8, "voi": "none", "photometric": photometric}
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"DICOM file {path}: unsupported PhotometricInterpretation {photometric!r}.")
    bits = int(getattr(ds, "BitsStored", None) or ds.BitsAllocated)
    signed = int(getattr(ds, "PixelRepresentation", 0) or 0) == 1
    lo_s, hi_s = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    x = np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)
    ends = np.asarray(apply_modality_lut(np.array([lo_s, hi_s], dtype=arr.dtype), ds), dtype=np.float64)
    lo, hi = float(ends.min()), float(ends.max())
    voi = "range"
    if "VOILUTSequence" in ds and len(ds.VOILUTSequence):
        # PS3.3 C.11.2.1.1: values below the first mapped value take the first entry, above the range the last
        item = ds.VOILUTSequence[0]
        n_entries, first_mapped, out_bits = (int(v) for v in item.LUTDescriptor)
        lut = np.asarray(item.LUTData, dtype=np.float64).ravel()[: n_entries or 65536]
        index = np.clip(np.rint(x) - first_mapped, 0, len(lut) - 1).astype(np.int64)
        y = lut[index] / float(2**out_bits - 1)
        voi = "lut"
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        try:
            center, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
            function = str(getattr(ds, "VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
            if not (math.isfinite(center) and math.isfinite(width) and width > 0):
                raise ValueError(f"window center {center:g}, width {width:g}")
            y = _window(x, center, width, function)
            voi = "window"
        except (TypeError, ValueError, IndexError) as e:
            logger.warning(
                "%s: unusable VOI window (%s); scaled by the stored %d-bit range instead.", path.name, e, bits
            )
    if voi == "range":
        y = np.clip((x - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(x)
    if photometric == "MONOCHROME1":
        y = 1.0 - y
    return (y * 255.0)[None], {"bits": bits, "voi": voi, "photometric": photometric}


def read_cxr_image(path: str | os.PathLike, bits: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a chest X-ray file as channel-first display intensities 0..255 (float64) and a meta dict.

    Args:
        path: a PNG/JPEG/TIFF/BMP file, or a DICOM file (``.dcm``/``.dicom`` or a ``DICM`` preamble).
        bits: bit depth of PIL images whose mode does not state it (or to override it, e.g. 12 for 12-bit content
            stored in 16-bit PNG); ignored for DICOM, which states ``BitsStored``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unreadable or corrupt file, values above ``2**bits - 1``, or an unknown bit depth; the
            message names the file.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"chest X-ray file {p} does not exist.")
    if bits is not None and not (isinstance(bits, int) and 1 <= bits <= 32):
        raise ValueError(f"bits must be an integer 1..32, got {bits!r}.")
    if _is_dicom(p):
        import pydicom
        from pydicom.errors import InvalidDicomError

        try:
            ds = pydicom.dcmread(p)
        except (InvalidDicomError, OSError, EOFError, ValueError) as e:
            raise ValueError(f"cannot read DICOM file {p}: {e}") from e
        arr, meta = dicom_display_array(ds, p)
        return arr, {**meta, "mode": "DICOM"}
    return _read_pil(p, bits)


class LoadCXRImaged(MapTransform):
    """Load chest X-rays as channel-first ``MetaTensor`` s in 0..255 (see :func:`read_cxr_image`).

    Replaces ``LoadImaged(reader=PILReader()) + EnsureChannelFirstd`` for CXRs: images are H×W (rows, columns),
    scaled by their real bit depth, DICOM windowed. The meta dict holds ``filename_or_obj``, ``bits`` and ``mode``.

    Args:
        keys: keys of the image paths.
        bits: bit depth for PIL images whose mode does not state it (see :func:`read_cxr_image`).
        allow_missing_keys: do not raise if a key is missing.
    """

    def __init__(self, keys: KeysCollection, bits: int | None = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.bits = bits

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            path = d[key]
            arr, meta = read_cxr_image(path, self.bits)
            meta = {**meta, "filename_or_obj": str(path), "original_channel_dim": 0}
            d[key] = MetaTensor(torch.as_tensor(arr, dtype=torch.float32), meta=meta)
        return d
