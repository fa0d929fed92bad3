# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Dictionary transform: DICOM demographics into numeric sample keys, personal tags out of the header.

MONAI's ``PydicomReader(prune_metadata=False)`` keeps the whole header in the image meta as DICOM-JSON
(``meta["00100040"] == {"vr": "CS", "Value": ["F"]}``). Collation keeps only meta keys present in every sample and
PersistentDataset drops meta by default, so demographics are read per sample into top-level numeric keys
(``sex``, ``age``, ``age_group``, ``ethnic_group``) and personal tags (names, IDs, dates, times, free text,
institution, UIDs, private tags) are removed before anything is cached, collated or logged.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform
from pydicom.dataset import Dataset

from monai_fair.data.codes import DEFAULT_AGE_BINS, UNKNOWN, encode_age_group
from monai_fair.data.dicom_header import (
    extract_dicom_demographics,
    normalize_ethnic_group,
    read_dicom_header,
    strip_personal_dataset,
    strip_personal_json,
)
from monai_fair.data.patient_age import MAX_PLAUSIBLE_AGE

__all__ = ["DicomDemographicsd", "DicomDemographicsD", "DicomDemographicsDict"]

logger = logging.getLogger(__name__)


class DicomDemographicsd(MapTransform):
    """Write DICOM demographics into numeric sample keys and remove personal tags from the header.

    Works on what ``keys`` hold:

    * a ``MetaTensor`` from ``LoadImaged(keys="image", reader=PydicomReader(prune_metadata=False))`` (2D image or
      3D series; the header is the DICOM-JSON in ``.meta``, and ``<key>_meta_dict`` too with ``image_only=False``);
    * a pydicom ``Dataset`` (e.g. a header-only read): replaced by a copy without personal elements;
    * a file path, series folder or list of slice files *before* ``LoadImaged``: the header is read without pixel
      data and the path is left as is (then the default ``PydicomReader(prune_metadata=True)`` never loads the
      personal tags at all).

    Written keys: ``sex`` (F=0, M=1, O=2, unknown=-1), ``age`` (years, NaN when unknown), ``age_group`` (code of
    ``age_bins``), ``ethnic_group`` (code of the normalized EthnicGroup text, -1 when absent), optionally
    ``patient_hash`` (salted hash of PatientID) and a reason string per sample. Only the first present key is the
    demographics source; personal tags are removed from every key.

    The ethnic-group code map is :attr:`ethnic_group_codes` (name→code) / :attr:`ethnic_group_names`
    (code→name). Pass ``ethnic_groups`` (e.g. from a folder scan) to fix it: with DataLoader workers every
    worker holds its own copy of the transform, so an accumulated map would differ between workers. Unseen values
    then give -1 with a reason. Reasons are counted in :attr:`reason_counts` and each distinct reason is logged
    once (no header values are logged).

    Args:
        keys: keys holding the image / header.
        age_bins: ascending lower edges of the age groups.
        ethnic_groups: fixed name→code map of EthnicGroup values; None accumulates codes in order of appearance.
        patient_hash_key: key for the hashed PatientID; None writes none.
        salt: salt of the patient hash (default: ``$MONAI_FAIR_SALT``).
        strip: ``"personal"`` removes personal tags, ``"all_tags"`` removes every DICOM tag from the meta (safest,
            and keeps collation of differing headers consistent), ``"none"`` keeps the header (not recommended).
        max_age: ages above this are unknown.
        sex_key: output key of the sex code.
        age_key: output key of the age in years.
        age_group_key: output key of the age-group code.
        ethnic_group_key: output key of the ethnic-group code; None writes none.
        reason_key: output key of a ``"; "``-joined reason string (``""`` when all is known); None writes none.
        meta_key_postfix: postfix of the meta dict written by ``LoadImaged(image_only=False)``.
        allow_missing_keys: don't raise when a key is missing.

    Raises:
        ValueError: for an unknown ``strip`` mode.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        age_bins: Sequence[float] = DEFAULT_AGE_BINS,
        ethnic_groups: Mapping[str, int] | None = None,
        patient_hash_key: str | None = None,
        salt: str | None = None,
        strip: str = "personal",
        max_age: float = MAX_PLAUSIBLE_AGE,
        sex_key: str = "sex",
        age_key: str = "age",
        age_group_key: str = "age_group",
        ethnic_group_key: str | None = "ethnic_group",
        reason_key: str | None = None,
        meta_key_postfix: str = "meta_dict",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if strip not in ("personal", "all_tags", "none"):
            raise ValueError(f"strip must be 'personal', 'all_tags' or 'none', got {strip!r}.")
        encode_age_group(0.0, age_bins)  # validates the bins now rather than on the first sample
        self.age_bins = tuple(float(b) for b in age_bins)
        self.frozen_ethnic_groups = ethnic_groups is not None
        self.ethnic_group_codes: dict[str, int] = (
            {normalize_ethnic_group(k): int(v) for k, v in ethnic_groups.items()} if ethnic_groups else {}
        )
        self.patient_hash_key = patient_hash_key
        self.salt = salt
        self.strip = strip
        self.max_age = max_age
        self.sex_key, self.age_key, self.age_group_key = sex_key, age_key, age_group_key
        self.ethnic_group_key = ethnic_group_key
        self.reason_key = reason_key
        self.meta_key_postfix = meta_key_postfix
        self.reason_counts: Counter[str] = Counter()
        self._logged: set[str] = set()

    @property
    def ethnic_group_names(self) -> dict[int, str]:
        """Code→name map of the ethnic groups seen or given."""
        return {code: name for name, code in self.ethnic_group_codes.items()}

    def _ethnic_code(self, name: str, reasons: list[str]) -> int:
        if not name:
            return UNKNOWN
        if name not in self.ethnic_group_codes:
            if self.frozen_ethnic_groups:
                reasons.append("ethnic_group: EthnicGroup value not in the given code map")
                return UNKNOWN
            self.ethnic_group_codes[name] = max(self.ethnic_group_codes.values(), default=-1) + 1
        return self.ethnic_group_codes[name]

    def _header_of(self, d: Mapping[Hashable, Any], key: Hashable) -> Mapping | Dataset | None:
        value = d[key]
        if isinstance(value, MetaTensor):
            return value.meta
        meta = d.get(f"{key}_{self.meta_key_postfix}")
        if isinstance(meta, Mapping):
            return meta
        if isinstance(value, Dataset):
            return value
        if isinstance(value, (str, os.PathLike)) or (
            isinstance(value, (list, tuple)) and value and all(isinstance(v, (str, os.PathLike)) for v in value)
        ):
            return read_dicom_header(value)  # type: ignore[arg-type]
        return None

    def _strip(self, d: dict, key: Hashable) -> None:
        if self.strip == "none":
            return
        all_tags = self.strip == "all_tags"
        value = d[key]
        if isinstance(value, MetaTensor):
            strip_personal_json(value.meta, all_tags)
        meta = d.get(f"{key}_{self.meta_key_postfix}")
        if isinstance(meta, dict):
            strip_personal_json(meta, all_tags)
        if isinstance(value, Dataset):
            d[key] = Dataset() if all_tags else strip_personal_dataset(value)

    def _note(self, reasons: Iterable[str]) -> None:
        for reason in reasons:
            self.reason_counts[reason] += 1
            if reason not in self._logged:
                self._logged.add(reason)
                logger.warning("DicomDemographicsd: %s (further occurrences are only counted).", reason)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        source_done = False
        for key in self.key_iterator(d):
            if not source_done:
                header = self._header_of(d, key)
                if header is None:
                    raise TypeError(
                        f"DicomDemographicsd: key {key!r} holds {type(d[key]).__name__}; expected a MetaTensor "
                        "with DICOM meta, a pydicom Dataset or a DICOM path."
                    )
                demo = extract_dicom_demographics(header, self.age_bins, self.max_age, self.salt)
                reasons = list(demo.reasons)
                if self.patient_hash_key is None:
                    reasons = [r for r in reasons if not r.startswith("patient_hash:")]
                d[self.sex_key] = demo.sex
                d[self.age_key] = float(demo.age)
                d[self.age_group_key] = demo.age_group
                if self.ethnic_group_key is not None:
                    d[self.ethnic_group_key] = self._ethnic_code(demo.ethnic_group, reasons)
                if self.patient_hash_key is not None:
                    d[self.patient_hash_key] = demo.patient_hash
                if self.reason_key is not None:
                    d[self.reason_key] = "; ".join(reasons)
                self._note(reasons)
                source_done = True
            self._strip(d, key)
        return d


DicomDemographicsD = DicomDemographicsDict = DicomDemographicsd
