# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Salted hashing of patient identifiers: splits stay patient-level without the identifier leaving ingestion."""

from __future__ import annotations

import hashlib
import os

__all__ = ["hash_patient_id", "DEFAULT_SALT_ENV"]

DEFAULT_SALT_ENV = "MONAI_FAIR_SALT"


def hash_patient_id(patient_id: object, salt: str | None = None, length: int = 16) -> str:
    """A salted SHA-256 digest of a patient identifier (hex, ``length`` characters).

    Args:
        patient_id: the identifier as read from a header or CSV.
        salt: secret salt; defaults to the ``MONAI_FAIR_SALT`` environment variable, else a fixed project salt
            (deterministic splits, but then hashes of small ID spaces can be brute-forced: set a salt for real data).
        length: number of hex characters kept.
    """
    if salt is None:
        salt = os.environ.get(DEFAULT_SALT_ENV, "monai_fair")
    digest = hashlib.sha256(f"{salt}\x00{patient_id}".encode()).hexdigest()
    return digest[:length]
