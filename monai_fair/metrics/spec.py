# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""``FairnessSpec``: what "fair" means for a study, declared once and handed to every piece.

A bundle declares one spec (attribute key(s), reference group, bias metric, epsilon, unknown-code policy, output
index, minimum group size); handlers, debiasers, the study layer, the audit tool and the reports all read it, so
the same words mean the same thing everywhere (names: ``docs/names.md``).

**Intersectional groups.** A spec may name several attributes (e.g. ``["sex", "age_group"]``). Each combination of
codes is one group, with code ``c_1 * 1000**(k-1) + ... + c_k`` and a readable name such as ``F × 60-79``; a sample
with an unknown (negative) code in any attribute has the unknown code -1. With one attribute the codes are the
attribute's own.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from monai_fair.data.codes import UNKNOWN

from .evaluation import BIAS_KINDS, UNKNOWN_POLICIES

__all__ = ["FairnessSpec", "INTERSECTION_RADIX", "INTERSECTION_SEPARATOR", "combine_group_codes"]

# codes of each attribute must be below this (attributes are small integer codes)
INTERSECTION_RADIX = 1000
INTERSECTION_SEPARATOR = " × "


def combine_group_codes(codes: Sequence[torch.Tensor]) -> torch.Tensor:
    """Intersectional group codes from one code tensor per attribute (see the module docstring).

    Raises:
        ValueError: a code is not below :data:`INTERSECTION_RADIX`, or the tensors differ in length.
    """
    tensors = [torch.as_tensor(c).reshape(-1).long() for c in codes]
    if not tensors:
        raise ValueError("need at least one attribute.")
    if len(tensors) == 1:
        return tensors[0]
    n = tensors[0].numel()
    if any(t.numel() != n for t in tensors):
        raise ValueError(f"every attribute needs one code per sample, got lengths {[t.numel() for t in tensors]}.")
    out = torch.zeros_like(tensors[0])
    unknown = torch.zeros_like(tensors[0], dtype=torch.bool)
    for t in tensors:
        if bool((t >= INTERSECTION_RADIX).any()):
            raise ValueError(f"attribute codes must be below {INTERSECTION_RADIX} to form intersections.")
        unknown |= t < 0
        out = out * INTERSECTION_RADIX + t.clamp_min(0)
    return torch.where(unknown, torch.full_like(out, UNKNOWN), out)


def _int_keyed(names: Mapping[Any, Any] | None, what: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for k, v in (names or {}).items():
        try:
            out[int(k)] = str(v)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{what}: keys must be integer codes (or their strings), got {k!r}.") from e
    return out


@dataclass
class FairnessSpec:
    """The fairness question of a study (one per bundle).

    Args:
        attributes: batch key of the sensitive attribute, or several keys for intersectional groups.
        reference: the reference (privileged) group: a code, a name (``"M"``, ``"M × 60-79"``), one code or name
            per attribute, or ``None`` for the largest group present.
        group_names: code → name map of the attribute, or ``{attribute: {code: name}}`` for several (the manifest's
            ``codes.json`` / ``code_maps`` have this shape).
        metric: the bias measured, ``"spd"``, ``"eod"`` or ``"aod"`` ("group minus reference").
        epsilon: tolerance of the objective ``BA * [|bias| < epsilon]`` and of "fair" in reports.
        unknown: policy for unknown codes, ``"exclude"`` or ``"group"`` (``docs/metrics.md``).
        output_index: output column (label) of the positive class that is evaluated.
        min_group_size: groups smaller than this get NaN figures and a flag.

    Raises:
        ValueError: on an unknown ``metric`` or ``unknown`` policy, no attribute, or a reference that is not a code
            or a name of the declared groups.
    """

    attributes: Sequence[str] | str = "sex"
    reference: int | str | Sequence[int | str] | None = None
    group_names: Mapping[Any, Any] | None = None
    metric: str = "eod"
    epsilon: float = 0.05
    unknown: str = "exclude"
    output_index: int = 0
    min_group_size: int = 10
    _names: dict[str, dict[int, str]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.attributes = (self.attributes,) if isinstance(self.attributes, str) else tuple(self.attributes)
        if not self.attributes or not all(isinstance(a, str) and a for a in self.attributes):
            raise ValueError(f"attributes must be one or more batch keys, got {self.attributes!r}.")
        if self.metric not in BIAS_KINDS:
            raise ValueError(f"metric must be one of {BIAS_KINDS}, got {self.metric!r}.")
        if self.unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown must be one of {UNKNOWN_POLICIES}, got {self.unknown!r}.")
        if not self.epsilon > 0:
            raise ValueError(f"epsilon must be positive, got {self.epsilon!r}.")
        if int(self.min_group_size) < 1:
            raise ValueError(f"min_group_size must be at least 1, got {self.min_group_size!r}.")
        self.min_group_size = int(self.min_group_size)
        self.output_index = int(self.output_index)
        self._names = self._split_names(self.group_names)
        self.reference = self.reference_code()

    # names ---------------------------------------------------------------------------------------------------------
    def _split_names(self, names: Mapping[Any, Any] | None) -> dict[str, dict[int, str]]:
        if not names:
            return {a: {} for a in self.attributes}
        if all(a in names for a in self.attributes) and all(isinstance(names[a], Mapping) for a in self.attributes):
            return {a: _int_keyed(names[a], f"group_names[{a!r}]") for a in self.attributes}
        if len(self.attributes) == 1:
            return {self.attributes[0]: _int_keyed(names, "group_names")}
        raise ValueError(
            f"with several attributes, group_names must map each of {list(self.attributes)} to its code → name map."
        )

    @property
    def intersectional(self) -> bool:
        return len(self.attributes) > 1

    @property
    def name(self) -> str:
        """The group variable's name, e.g. ``sex`` or ``sex × age_group``."""
        return INTERSECTION_SEPARATOR.join(self.attributes)

    def names(self, codes: Sequence[int] | None = None) -> dict[int, str]:
        """Group code → readable name, for the declared combinations (and any extra ``codes``).

        Codes without a declared name are named by their attribute codes; the unknown code is ``unknown``.
        """
        out: dict[int, str] = {}
        per_attr = [self._names[a] for a in self.attributes]
        if all(per_attr):
            for combo in itertools.product(*[sorted(m) for m in per_attr]):
                code = int(combine_group_codes([torch.tensor([c]) for c in combo])[0])
                out[code] = INTERSECTION_SEPARATOR.join(m[c] for m, c in zip(per_attr, combo))
        for c in codes or []:
            c = int(c)
            if c not in out:
                out[c] = "unknown" if c < 0 else self._name_of(c)
        return out

    def _name_of(self, code: int) -> str:
        parts = []
        for i, attr in enumerate(reversed(self.attributes)):
            part = code % INTERSECTION_RADIX if self.intersectional else code
            parts.append(self._names[attr].get(part, str(part)))
            code //= INTERSECTION_RADIX
        return INTERSECTION_SEPARATOR.join(reversed(parts))

    def reference_code(self) -> int | None:
        """The reference group's code (``None``: the largest group present, chosen at evaluation time)."""
        ref = self.reference
        if ref is None:
            return None
        if isinstance(ref, (list, tuple)):
            return self._with_reference(ref)
        if isinstance(ref, str) and self.intersectional and INTERSECTION_SEPARATOR.strip() in ref:
            return self._with_reference([p.strip() for p in ref.split(INTERSECTION_SEPARATOR.strip())])
        if self.intersectional:
            if isinstance(ref, str):
                by_name = {v.lower(): k for k, v in self.names().items()}
                if ref.strip().lower() in by_name:
                    return by_name[ref.strip().lower()]
                raise ValueError(
                    f"reference {ref!r} is not an intersectional group name; expected one of {sorted(by_name)} or "
                    f"one value per attribute {list(self.attributes)}."
                )
            return int(ref)
        return self._attribute_code(self.attributes[0], ref)

    def _with_reference(self, parts: Sequence[int | str]) -> int:
        if len(parts) != len(self.attributes):
            raise ValueError(f"reference {list(parts)} must give one value per attribute {list(self.attributes)}.")
        codes = [self._attribute_code(a, v) for a, v in zip(self.attributes, parts)]
        return int(combine_group_codes([torch.tensor([c]) for c in codes])[0])

    def _attribute_code(self, attribute: str, value: int | str) -> int:
        names = self._names[attribute]
        if isinstance(value, bool):
            raise ValueError(f"reference of {attribute!r} must be a code or a name, got {value!r}.")
        if isinstance(value, int):
            code = int(value)
        else:
            text = str(value).strip()
            by_name = {v.lower(): k for k, v in names.items()}
            if text.lower() in by_name:
                code = by_name[text.lower()]
            elif text.lstrip("-").isdigit():
                code = int(text)
            else:
                known = ", ".join(f"{k}={v}" for k, v in sorted(names.items())) or "no names declared"
                raise ValueError(
                    f"reference group {value!r} of attribute {attribute!r} is not a code or a name ({known}); "
                    "set the spec's reference to one of them."
                )
        if code < 0:
            raise ValueError(f"the reference group of {attribute!r} must be a known code (>= 0), got {code}.")
        if names and code not in names:
            known = ", ".join(f"{k}={v}" for k, v in sorted(names.items()))
            raise ValueError(f"reference code {code} of attribute {attribute!r} is not declared ({known}).")
        return code

    # data ----------------------------------------------------------------------------------------------------------
    def group_codes(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """The (intersectional) group code of every sample of a dict batch, as a 1-D long tensor.

        Raises:
            KeyError: the batch lacks one of the attributes (the message names it and the keys present).
        """
        codes = []
        for a in self.attributes:
            if a not in batch:
                raise KeyError(
                    f"the batch has no attribute {a!r} (FairnessSpec.attributes={list(self.attributes)}); keys "
                    f"present: {sorted(map(str, batch))[:20]}."
                )
            v = batch[a]
            as_tensor = getattr(v, "as_tensor", None)
            v = as_tensor() if callable(as_tensor) and isinstance(v, torch.Tensor) else torch.as_tensor(v)
            codes.append(v.reshape(-1))
        return combine_group_codes(codes)

    def resolve_reference(self, groups: torch.Tensor) -> int:
        """The reference code, or the largest known group present in ``groups`` (ties: the smallest code)."""
        if self.reference is not None:
            return int(self.reference)
        g = torch.as_tensor(groups).reshape(-1).long()
        g = g[g >= 0]
        if g.numel() == 0:
            raise ValueError("no sample has a known group code; cannot choose a reference group.")
        codes, counts = torch.unique(g, return_counts=True)
        best = counts.max()
        return int(codes[counts == best].min())

    def as_dict(self) -> dict[str, Any]:
        """Plain settings for reports and logs (names, not objects)."""
        ref = self.reference
        return {
            "attributes": list(self.attributes),
            "reference": None if ref is None else self.names([ref]).get(ref, str(ref)),
            "metric": self.metric,
            "epsilon": self.epsilon,
            "unknown": self.unknown,
            "output_index": self.output_index,
            "min_group_size": self.min_group_size,
        }

    def core_settings(self, epsilon: float | None = None) -> dict[str, Any]:
        """The spec's ``metric``, ``epsilon`` (or the one given), ``unknown`` and ``min_group_size`` as keyword
        arguments of the evaluation core."""
        return {
            "metric": self.metric,
            "epsilon": self.epsilon if epsilon is None else float(epsilon),
            "unknown": self.unknown,
            "min_group_size": self.min_group_size,
        }

    def evaluate(self, scores, labels, groups, *, thresholds=0.5, weights=None, reference=None, epsilon=None):
        """:func:`~monai_fair.metrics.evaluation.evaluate_binary_fairness` with this spec's settings.

        ``reference`` (default :meth:`resolve_reference`) and ``epsilon`` (default the spec's) may be given when the
        caller has resolved the reference on other data or selects with a tighter tolerance.
        """
        from .evaluation import evaluate_binary_fairness

        ref = self.resolve_reference(groups) if reference is None else int(reference)
        return evaluate_binary_fairness(
            scores, labels, groups, ref, thresholds=thresholds, weights=weights, **self.core_settings(epsilon)
        )

    def summarize(self, scores, labels, groups, *, threshold=0.5, reference=None, **bootstrap: Any):
        """:func:`~monai_fair.metrics.evaluation.summarize_binary_fairness` with this spec's settings
        (``bootstrap``: ``n_bootstrap``, ``ci_level``, ``seed``, ``bootstrap_mean``)."""
        from .evaluation import summarize_binary_fairness

        ref = self.resolve_reference(groups) if reference is None else int(reference)
        return summarize_binary_fairness(
            scores, labels, groups, ref, threshold=threshold, **bootstrap, **self.core_settings()
        )
