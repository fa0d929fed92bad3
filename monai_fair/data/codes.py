# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Integer codes of demographic attributes, shared by every manifest builder and transform.

Metrics see small integer codes; the code→name maps travel with manifests and configs and are what reports print.
``UNKNOWN`` (-1) marks a missing or unparseable value; it is kept (and counted), never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "UNKNOWN",
    "SEX_CODES",
    "SEX_NAMES",
    "DEFAULT_AGE_BINS",
    "encode_sex",
    "encode_age_group",
    "age_group_names",
    "invert",
]

UNKNOWN = -1

SEX_CODES: dict[str, int] = {"F": 0, "M": 1, "O": 2}
SEX_NAMES: dict[int, str] = {v: k for k, v in SEX_CODES.items()}

_SEX_ALIASES = {
    "F": "F",
    "FEMALE": "F",
    "W": "F",
    "WOMAN": "F",
    "M": "M",
    "MALE": "M",
    "MAN": "M",
    "O": "O",
    "OTHER": "O",
}


def encode_sex(value: object) -> int:
    """Code of a sex value as found in DICOM (``M``/``F``/``O``) or CSVs (``Male``, ``female``, ...).

    Returns ``UNKNOWN`` for empty, missing or unrecognised values.
    """
    if value is None:
        return UNKNOWN
    key = str(value).strip().upper()
    return SEX_CODES.get(_SEX_ALIASES.get(key, ""), UNKNOWN)


def invert(codes: dict[str, int]) -> dict[int, str]:
    """Invert a name→code map into the code→name map that reports print."""
    return {int(v): str(k) for k, v in codes.items()}


# lower edges of the age groups (years): [0, 40), [40, 60), [60, 80), [80, inf)
DEFAULT_AGE_BINS: tuple[float, ...] = (0.0, 40.0, 60.0, 80.0)


def encode_age_group(age: float | None, bins: Sequence[float] = DEFAULT_AGE_BINS) -> int:
    """Index of the age group whose lower edge is the largest edge <= ``age`` (``bins`` ascending lower edges).

    ``bins=(0, 60)`` gives the binary "age >= 60" split. Missing, NaN, negative or below-first-edge ages give
    ``UNKNOWN``.
    """
    if age is None:
        return UNKNOWN
    try:
        a = float(age)
    except (TypeError, ValueError):
        return UNKNOWN
    if math.isnan(a) or a < 0 or a < bins[0]:
        return UNKNOWN
    if any(b1 <= b0 for b0, b1 in zip(bins, bins[1:])):
        raise ValueError(f"age bins must be strictly ascending, got {tuple(bins)}.")
    return max(i for i, edge in enumerate(bins) if a >= edge)


def age_group_names(bins: Sequence[float] = DEFAULT_AGE_BINS) -> dict[int, str]:
    """Code→name map of :func:`encode_age_group`, e.g. ``{0: "0-39", 1: "40-59", 2: "60-79", 3: "80+"}``."""
    names = {}
    for i, lo in enumerate(bins):
        if i + 1 < len(bins):
            hi = bins[i + 1]
            names[i] = f"{lo:g}-{hi - 1:g}" if float(hi).is_integer() and float(lo).is_integer() else f"[{lo:g},{hi:g})"
        else:
            names[i] = f"{lo:g}+"
    return names
