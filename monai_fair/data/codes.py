# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Integer codes of demographic attributes, shared by every manifest builder and transform.

Metrics see small integer codes; the code→name maps travel with manifests and configs and are what reports print.
``UNKNOWN`` (-1) marks a missing or unparseable value; it is kept (and counted), never guessed.
"""

from __future__ import annotations

__all__ = ["UNKNOWN", "SEX_CODES", "SEX_NAMES", "encode_sex", "invert"]

UNKNOWN = -1

SEX_CODES: dict[str, int] = {"F": 0, "M": 1, "O": 2}
SEX_NAMES: dict[int, str] = {v: k for k, v in SEX_CODES.items()}

_SEX_ALIASES = {"F": "F", "FEMALE": "F", "W": "F", "WOMAN": "F", "M": "M", "MALE": "M", "MAN": "M", "O": "O", "OTHER": "O"}


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
