# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Check a study bundle's settings and command-line overrides before anything is trained.

A misspelled method, metric or debiaser argument used to surface as a ``KeyError`` after standard training had
finished. :func:`validate_study_config` reads the same config files and overrides the bundle CLI received (as
:class:`~monai_fair.study.SeedLoop` does), checks every setting the config declares, and raises a
:class:`~monai_fair.study.errors.BundleConfigError` naming the override (``--metric``) and what it accepts. It
instantiates nothing but the selected debiasers (with a stand-in spec, no data), so it runs in well under a second.
Each check applies only when the config has the setting, so any study bundle can call it first in ``initialize``::

    "initialize": ["$monai_fair.study.install_cause_hook()", "$monai_fair.study.validate_study_config()", ...]
"""

from __future__ import annotations

import difflib
import inspect
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .command_line import parse_bundle_command
from .data_source import DATASET_KINDS
from .errors import BundleConfigError

__all__ = ["MISSING_PATIENT_POLICIES", "accepted_arguments", "validate_study_config"]

logger = logging.getLogger(__name__)

#: what a study does with a manifest that has no patient column (see ``monai_fair.data.splits.patient_level_split``)
MISSING_PATIENT_POLICIES = ("error", "image")
# keys of a config component that are not arguments of its target
_COMPONENT_KEYS = ("_target_", "_mode_", "_requires_", "_disabled_", "_desc_")


def _flag(key: str) -> str:
    return f"--{key}"


def _fail(key: str, value: Any, problem: str) -> BundleConfigError:
    text = repr(value)
    return BundleConfigError(f"{_flag(key)} {text if len(text) <= 120 else text[:117] + '...'}: {problem}")


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


# --- component arguments ------------------------------------------------------------------------------------------
def _locate(target: str) -> Any:
    from pydoc import locate

    from monai.bundle.config_item import ComponentLocator

    name = ComponentLocator().get_component_module_name(target)
    if isinstance(name, list):  # the same short name in several MONAI modules: MONAI takes the first
        name = name[0]
    return locate(f"{name}.{target}" if name else target)


def accepted_arguments(target: Any) -> set[str] | None:
    """The keyword arguments ``target`` (a class or a function) accepts; ``None`` when it accepts any.

    A class's ``__init__`` that takes ``**kwargs`` is taken to pass them to its base class (the debiasers do), so
    the bases' arguments count too.
    """
    functions = (
        [b.__dict__["__init__"] for b in target.__mro__ if "__init__" in b.__dict__]
        if inspect.isclass(target)
        else [target]
    )
    names: set[str] = set()
    for function in functions:
        if function is object.__init__:
            return names
        try:
            params = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return names if inspect.isclass(target) else None


def _check_component_keys(component_id: str, config: Mapping[str, Any]) -> None:
    target_name = config.get("_target_")
    if not isinstance(target_name, str):
        return
    target = _locate(target_name)
    if target is None:
        raise _fail(f"{component_id}#_target_", target_name, "cannot be imported.")
    accepted = accepted_arguments(target)
    if accepted is None:
        return
    for key in config:
        if key not in _COMPONENT_KEYS and key not in accepted:
            hint = _suggest(key, sorted(accepted))
            raise BundleConfigError(
                f"{_flag(f'{component_id}#{key}')}: {key!r} is not an argument of {target_name}{hint}; "
                f"accepted: {', '.join(sorted(accepted))}."
            )


# --- the checks ---------------------------------------------------------------------------------------------------
class _Settings:
    """The config (with overrides) and the config files alone, read without instantiating anything."""

    def __init__(self, config_file: Sequence[str], overrides: Mapping[str, Any], meta_file: Any) -> None:
        from monai.bundle import ConfigParser

        self.base = ConfigParser()
        self.base.read_config(f=list(config_file))
        self.parser = ConfigParser()
        self.parser.read_config(f=list(config_file))
        if meta_file is not None:
            self.parser.read_meta(f=meta_file)
        self.overrides = dict(overrides)

    def has(self, key: str) -> bool:
        return key in self.parser

    def value(self, key: str) -> Any:
        try:
            return self.parser.get_parsed_content(key, instantiate=False)
        except Exception as e:  # an override that does not evaluate
            raise _fail(key, self.parser[key], f"cannot be evaluated: {e}") from None


def _check_override_ids(settings: _Settings) -> None:
    for key, value in settings.overrides.items():
        if key.startswith("_meta_") or key in settings.base:
            continue
        parent, _, leaf = key.rpartition("#")
        if parent and parent in settings.base and isinstance(settings.base[parent], Mapping):
            if "_target_" in settings.base[parent]:
                _check_component_keys(parent, {leaf: value, "_target_": settings.base[parent]["_target_"]})
            continue  # a new key of a plain mapping (e.g. --demo_params#n_subjects)
        # the first segment of the id that the config lacks, and the entries next to it
        parts = key.split("#")
        depth = next(i for i in range(len(parts)) if "#".join(parts[: i + 1]) not in settings.base)
        above = "#".join(parts[:depth])
        entries = settings.base[above] if above else settings.base.get()
        known = [str(k) for k in entries if not str(k).startswith("_")] if isinstance(entries, Mapping) else []
        where = f"{above!r} has no entry {parts[depth]!r}" if above else "is not a setting of this bundle"
        raise BundleConfigError(
            f"{_flag(key)}: {where}{_suggest(parts[depth], known)}; an override must name an id of the config."
        )


def _check_seeds(settings: _Settings) -> None:
    if settings.has("seeds"):
        seeds = settings.value("seeds")
        values = [seeds] if _is_int(seeds) else seeds
        if not isinstance(values, (list, tuple)) or not values or not all(_is_int(s) for s in values):
            raise _fail(
                "seeds", seeds, 'expected a list of integer seeds, e.g. --seeds "[42, 43]" (or one, --seeds 42).'
            )
        repeated = sorted({s for s in values if values.count(s) > 1})
        if repeated:
            raise _fail("seeds", seeds, f"seeds {repeated} repeat; each seed writes its own seed_<n> folders.")
    if settings.has("seed") and not _is_int(settings.value("seed")):
        raise _fail("seed", settings.value("seed"), "expected an integer.")


def _check_data(settings: _Settings) -> str | None:
    """Checks where the data come from; returns the manifest file when there is one."""
    real_name = settings.value("source#real_name") if settings.has("source#real_name") else None
    allowed = [*DATASET_KINDS, *([real_name] if real_name else [])]
    dataset = settings.value("dataset") if settings.has("dataset") else None
    manifest = settings.value("manifest_file") if settings.has("manifest_file") else None
    dataset_dir = settings.value("dataset_dir") if settings.has("dataset_dir") else None
    if dataset is not None and dataset not in allowed:
        raise _fail(
            "dataset",
            dataset,
            f"unknown dataset{_suggest(dataset, allowed)}; allowed: {', '.join(allowed)} (or leave it unset).",
        )
    kind = dataset or ("manifest" if manifest else (real_name if dataset_dir else "demo"))
    if kind == "manifest":
        if not manifest:
            raise _fail("dataset", dataset, "needs --manifest_file /path/manifest.csv.")
        if not Path(manifest).is_file():
            raise _fail("manifest_file", manifest, "no such file.")
        return str(manifest)
    if kind != "demo":
        if not dataset_dir:
            raise _fail("dataset", dataset, f"needs --dataset_dir /path/to/{kind}.")
        if not Path(dataset_dir).is_dir():
            raise _fail("dataset_dir", dataset_dir, "no such folder.")
    for key in ("mimic_iv_dir", "demo_dir"):
        folder = settings.value(key) if settings.has(key) else None
        if key == "mimic_iv_dir" and folder and not Path(folder).is_dir():
            raise _fail(key, folder, "no such folder.")
    return None


def _check_methods(settings: _Settings) -> list[str]:
    configured = list(settings.parser["debiasers"]) if settings.has("debiasers") else []
    if not settings.has("methods"):
        return configured
    methods = settings.value("methods")
    names = [methods] if isinstance(methods, str) else methods
    if names is None:
        return configured
    if not isinstance(names, (list, tuple)) or not all(isinstance(m, str) for m in names):
        raise _fail(
            "methods",
            methods,
            f"expected a list of method names, e.g. --methods \"['pruning']\"; configured: {', '.join(configured)}.",
        )
    unknown = [m for m in names if m not in configured]
    if unknown:
        hint = "".join(_suggest(m, configured) for m in unknown)
        raise _fail("methods", methods, f"unknown method(s) {unknown}{hint}; configured: {', '.join(configured)}.")
    return list(names)


def _check_fairness(settings: _Settings) -> None:
    from monai_fair.metrics.evaluation import BIAS_KINDS

    if settings.has("metric"):
        metric = settings.value("metric")
        if metric not in BIAS_KINDS:
            raise _fail(
                "metric",
                metric,
                f"unknown bias metric{_suggest(metric, BIAS_KINDS)}; allowed: {', '.join(BIAS_KINDS)}.",
            )
    if settings.has("epsilon"):
        epsilon = settings.value("epsilon")
        if not _is_number(epsilon) or not epsilon > 0:
            raise _fail("epsilon", epsilon, "the tolerance must be a positive number (e.g. 0.05).")
    if settings.has("attribute"):
        attribute = settings.value("attribute")
        if not isinstance(attribute, str) or not attribute:
            raise _fail("attribute", attribute, "expected one attribute column name, e.g. sex.")
    groups = {k: settings.value(k) for k in ("privileged", "unprivileged") if settings.has(k)}
    attribute = settings.value("attribute") if settings.has("attribute") else None
    for key, value in groups.items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is None and key == "unprivileged":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, str)):
                raise _fail(key, value, "expected a group code or name.")
            if attribute == "sex" and isinstance(v, str) and not v.strip().lstrip("-").isdigit():
                from monai_fair.data.codes import UNKNOWN, encode_sex
                from monai_fair.data.manifest import SEX_SPELLINGS

                if encode_sex(v) == UNKNOWN:
                    raise _fail(
                        key,
                        value,
                        f"not a sex group; accepted: a code or one of {', '.join(SEX_SPELLINGS)} (any case).",
                    )
    if len(groups) == 2 and str(groups["privileged"]).strip().lower() == str(groups["unprivileged"]).strip().lower():
        raise _fail("unprivileged", groups["unprivileged"], "is the same group as --privileged.")


def _check_manifest(settings: _Settings, manifest: str) -> None:
    import pandas as pd

    try:
        columns = list(pd.read_csv(manifest, nrows=0).columns)
    except Exception as e:
        raise _fail("manifest_file", manifest, f"cannot be read as a CSV ({type(e).__name__}: {e}).") from None
    # attributes a study computes from the images at ingestion (e.g. ITA skin tone) need no manifest column
    computed = settings.value("computed_attributes") if settings.has("computed_attributes") else None
    for key in ("attribute", "label"):
        if key == "attribute" and computed and settings.has(key) and settings.value(key) in computed:
            continue
        if settings.has(key) and settings.value(key) not in columns:
            value = settings.value(key)
            raise _fail(
                key, value, f"no such column in the manifest{_suggest(value, columns)}; columns: {', '.join(columns)}."
            )
    policy = settings.value("missing_patient") if settings.has("missing_patient") else "error"
    patient = settings.value("patient_column") if settings.has("patient_column") else "patient_id"
    if patient not in columns and "patient_hash" not in columns:
        if policy == "error":
            raise _fail(
                "patient_column",
                patient,
                f"no such column in the manifest (nor patient_hash){_suggest(patient, columns)}; name the patient "
                "column with --patient_column, or split by image with --missing_patient image (patient leakage "
                f"between splits then cannot be ruled out); columns: {', '.join(columns)}.",
            )
        logger.warning(
            "manifest has no patient column %r: the splits are drawn by image; patient leakage cannot be ruled out.",
            patient,
        )


def _check_options(settings: _Settings) -> None:
    checks = {
        "epochs": (lambda v: _is_int(v) and v >= 1, "expected an integer >= 1."),
        "batch_size": (lambda v: _is_int(v) and v >= 1, "expected an integer >= 1."),
        "val_batch_size": (lambda v: _is_int(v) and v >= 1, "expected an integer >= 1."),
        "n_bootstrap": (lambda v: _is_int(v) and v >= 1, "expected an integer >= 1 (resamples)."),
        "num_workers": (lambda v: _is_int(v) and v >= 0, "expected an integer >= 0."),
        "seed_workers": (
            lambda v: v == "auto" or (_is_int(v) and v >= 1),
            'expected "auto" or an integer >= 1 (processes running seeds side by side; 1: one after the other).',
        ),
        "input_size": (lambda v: v is None or (_is_int(v) and v >= 8), "expected an integer >= 8 (pixels)."),
        "stored_size": (lambda v: v is None or (_is_int(v) and v >= 8), "expected an integer >= 8 (pixels)."),
        "lr": (lambda v: _is_number(v) and v > 0, "expected a positive learning rate."),
        "amp": (lambda v: isinstance(v, bool), "expected true or false."),
        "verify_images": (
            lambda v: isinstance(v, bool),
            "expected true or false (decode every image before training).",
        ),
        "bits": (
            lambda v: v is None or (_is_int(v) and 1 <= v <= 32),
            "expected the images' bit depth (e.g. 12 or 16 for 16-bit PNG exports of 12-bit data), or null to read it "
            "from each file.",
        ),
        "missing_patient": (
            lambda v: v in MISSING_PATIENT_POLICIES,
            f"allowed: {', '.join(MISSING_PATIENT_POLICIES)}.",
        ),
        "patient_column": (lambda v: isinstance(v, str) and v != "", "expected a column name."),
    }
    for key, (ok, expected) in checks.items():
        if settings.has(key) and not ok(settings.value(key)):
            raise _fail(key, settings.value(key), expected)
    if settings.has("split_fractions"):
        fractions = settings.value("split_fractions")
        if (
            not isinstance(fractions, (list, tuple))
            or len(fractions) != 3
            or not all(_is_number(f) and f > 0 for f in fractions)
            or abs(sum(fractions) - 1.0) > 1e-6
        ):
            raise _fail("split_fractions", fractions, "expected three positive train/val/test fractions summing to 1.")
    if settings.has("device"):
        _check_device(settings.value("device"))


def _check_device(device: Any) -> None:
    import torch

    if device == "auto":
        return
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise _fail("device", device, f"not a device ({e}); allowed: auto, cpu, cuda, cuda:<n>.") from None
    if parsed.type == "cuda" and (not torch.cuda.is_available() or (parsed.index or 0) >= torch.cuda.device_count()):
        raise _fail(
            "device", device, f"not available here ({torch.cuda.device_count()} CUDA device(s)); use auto or cpu."
        )


def _check_debiasers(settings: _Settings, methods: Sequence[str]) -> None:
    if not settings.has("debiasers"):
        return
    raw = settings.parser["debiasers"]
    for name, config in raw.items():
        if isinstance(config, Mapping):
            _check_component_keys(f"debiasers#{name}", config)
    spec = _stand_in_spec(settings)
    for name in methods:
        config = raw[name]
        if not isinstance(config, Mapping) or not isinstance(config.get("_target_"), str):
            continue
        kwargs = {}
        for key, value in config.items():
            if key in _COMPONENT_KEYS:
                continue
            plain = _plain_value(settings, value, spec)
            if plain is not _SKIP:
                kwargs[key] = plain
        try:
            _locate(config["_target_"])(**kwargs)
        except Exception as e:
            raise BundleConfigError(
                f"{_flag(f'debiasers#{name}')}: {config['_target_']} rejects its settings: {type(e).__name__}: {e} "
                f"(fix them with --debiasers#{name}#<argument>, or leave {name!r} out of --methods)."
            ) from None


_SKIP = object()


def _plain_value(settings: _Settings, value: Any, spec: Any) -> Any:
    """A debiaser argument without instantiating anything: the spec becomes ``spec``, a reference to a plain value
    its value; expressions and other components are left to their defaults (``_SKIP``)."""
    if isinstance(value, str) and value.startswith("@"):
        key = value[1:]
        if key == "fairness":
            return spec
        raw = settings.parser[key] if key in settings.parser else None
        if raw is None or isinstance(raw, (Mapping, list)) or (isinstance(raw, str) and raw[:1] in "$@%"):
            return _SKIP
        return settings.value(key)
    if isinstance(value, str) and value[:1] in "$%":
        return _SKIP
    if isinstance(value, (Mapping, list)):
        return _SKIP
    return value


def _stand_in_spec(settings: _Settings) -> Any:
    from monai_fair.metrics import FairnessSpec

    kwargs = {k: settings.value(k) for k in ("metric", "epsilon") if settings.has(k)}
    if settings.has("attribute"):
        kwargs["attributes"] = settings.value("attribute")
    return FairnessSpec(**kwargs)


def validate_study_config(
    config_file: str | Sequence[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    meta_file: str | Sequence[str] | None = None,
) -> None:
    """Check a study bundle's settings and overrides before any data are read or anything is trained.

    Checked, when the config has them: that every override names an id of the config (and every argument of a
    component is one its target accepts, e.g. ``--debiasers#pruning#step_sise``); ``seeds``; ``dataset`` and its
    paths (``manifest_file``, ``dataset_dir``, ``mimic_iv_dir``); ``methods`` against the configured
    ``debiasers``; ``metric``, ``epsilon``, ``attribute``, ``privileged``/``unprivileged`` (sex spellings such as
    ``male``); with a manifest, that ``attribute``, ``label`` and the patient column (``patient_column``, or
    ``missing_patient="image"``) are columns of it; the training sizes, ``device``, ``verify_images``, ``bits`` and
    ``split_fractions``; and that each selected debiaser accepts its settings (instantiated with a stand-in spec).

    Args:
        config_file: the config file(s); ``None``: those of the ``python -m monai.bundle run`` command line.
        overrides: ``{id: value}``; ``None``: those of the command line (none with an explicit ``config_file``).
        meta_file: metadata file(s); ``None``: from the command line, else none.

    Raises:
        BundleConfigError: the first bad setting, naming its override and the values it accepts.
        ValueError: no ``config_file`` and the process was not started by ``monai.bundle run``.
    """
    if config_file is None:
        command = parse_bundle_command()
        if command is None:
            raise ValueError(
                "validate_study_config needs config_file (and overrides) outside 'python -m monai.bundle run'."
            )
        config_file = command.config_file
        overrides = command.overrides if overrides is None else overrides
        meta_file = command.meta_file if meta_file is None else meta_file
    files = [str(config_file)] if isinstance(config_file, (str, os.PathLike)) else [str(f) for f in config_file]
    settings = _Settings(files, overrides or {}, meta_file)
    _check_override_ids(settings)
    try:
        settings.parser.update(pairs=dict(settings.overrides))
    except Exception as e:
        raise BundleConfigError(f"the overrides {sorted(settings.overrides)} cannot be applied: {e}") from None
    _check_seeds(settings)
    manifest = _check_data(settings)
    methods = _check_methods(settings)
    _check_fairness(settings)
    _check_options(settings)
    if manifest is not None:
        _check_manifest(settings, manifest)
    _check_debiasers(settings, methods)
    logger.info("settings checked (%d override(s)).", len(settings.overrides))
