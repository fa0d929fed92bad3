# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""The cross-group study (Joshi, race and chest X-ray diagnosis, done by patient and with intervals).

Every model (a training set, e.g. one group only or mixed, and a mitigation) is trained once per seed from a fresh
config, then evaluated on the test set of every group:

* per label and per test group, the AUC with a bootstrap interval
  (:func:`~monai_fair.metrics.compute_group_roc_auc` over stratified resamples from
  :func:`~monai_fair.metrics.bootstrap_weights`);
* the AUC on the training group's test set ("same group") and on the other groups' test sets pooled ("other
  groups"), per label and averaged over labels, and their difference, the drop, with an interval from the same
  resamples;
* underdiagnosis (:mod:`~monai_fair.metrics.underdiagnosis`) per group and per intersection, at the validation
  F1-optimal No Finding threshold;
* a linear probe of the training group vs the others from the penultimate features, fitted and scored on
  patient-disjoint halves of the test set (AUC with interval).

:class:`CrossGroupLoop` runs every (seed, model) from a fresh config (the model's name is set with an override),
:class:`CrossGroupEvaluation` is one such run's ``seed_result`` and :class:`CrossGroupReport` writes the report.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from monai_fair.metrics import (
    INTERSECTION_SEPARATOR,
    FairnessSpec,
    bootstrap_weights,
    combine_group_codes,
    compute_group_roc_auc,
    make_generator,
    make_probe,
    percentile_interval,
    probe_split,
    weighted_roc_auc,
)
from monai_fair.metrics.underdiagnosis import best_f1_threshold, compute_underdiagnosis

from .errors import BundleConfigError, StudyRunError, cause_line
from .report import _log_settings
from .runtime import is_main_process
from .seeds import SeedLoop, run_seed

__all__ = [
    "CrossGroupEvaluation",
    "CrossGroupLoop",
    "CrossGroupReport",
    "check_cross_group_settings",
    "collect_cross_group_outputs",
    "probe_group",
]

logger = logging.getLogger("monai_fair")


def _no_finding(value: str | None) -> str | None:
    # MONAI's command line drops a None override, so "" (or "none") also says "no No Finding label"
    return None if value is None or str(value).strip().lower() in ("", "none", "null") else str(value)


def check_cross_group_settings(
    models: Mapping[str, Mapping[str, Any]],
    run_models: Sequence[str],
    published_model: str | None,
    labels: Sequence[str],
    no_finding: str | None,
    uncertain: str = "zeros",
    attribute: str = "race",
    manifest_file: str | os.PathLike | None = None,
) -> None:
    """Check the cross-group bundle's own settings before any data are read (the generic ones are checked by
    :func:`~monai_fair.study.validate_study_config`).

    Raises:
        BundleConfigError: the first bad setting, naming its override and what it accepts.
    """
    from monai_fair.data.chexpert import UNCERTAINTY_POLICIES
    from monai_fair.data.race_splits import TRAINING_SETS
    from monai_fair.debias.group_reweighting import MITIGATIONS

    no_finding = _no_finding(no_finding)

    def fail(key: str, value: Any, problem: str) -> BundleConfigError:
        return BundleConfigError(f"--{key} {value!r}: {problem}")

    names = list(models)
    for name, spec in models.items():
        if not isinstance(spec, Mapping) or spec.get("train_set") not in TRAINING_SETS:
            raise fail(f"models#{name}#train_set", dict(spec).get("train_set"), f"expected one of {TRAINING_SETS}.")
        if spec.get("mitigation", "none") not in MITIGATIONS:
            raise fail(f"models#{name}#mitigation", spec.get("mitigation"), f"expected one of {MITIGATIONS}.")
    if isinstance(run_models, str) or not run_models or not all(isinstance(m, str) for m in run_models):
        raise fail("run_models", run_models, "expected a list of model names, e.g. \"['single', 'mixed']\".")
    unknown = [m for m in run_models if m not in models]
    if unknown:
        raise fail("run_models", run_models, f"unknown model(s) {unknown}; configured: {', '.join(names)}.")
    if published_model is not None and published_model not in models:
        raise fail("published_model", published_model, f"expected one of {', '.join(names)} or null.")
    if isinstance(labels, str) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise fail("labels", labels, "expected a non-empty list of label names.")
    if no_finding is not None and no_finding not in labels:
        raise fail("no_finding", no_finding, "expected one of the labels, or null (with one label: its negatives).")
    if uncertain not in UNCERTAINTY_POLICIES:
        raise fail("uncertain", uncertain, f"expected one of {UNCERTAINTY_POLICIES}.")
    if manifest_file is not None:
        import pandas as pd

        columns = list(pd.read_csv(manifest_file, nrows=0).columns)
        missing = [c for c in labels if c not in columns]
        if missing:
            raise fail("labels", labels, f"columns {missing} are not in the manifest; columns: {', '.join(columns)}.")


def collect_cross_group_outputs(
    model: torch.nn.Module,
    loader: Any,
    keys: Sequence[str],
    device: torch.device | str = "cpu",
    feature_layer: str | None = "fc",
    amp: bool = False,
) -> dict[str, Any]:
    """Sigmoid outputs, labels, the named data-dict keys and (optionally) the input of ``feature_layer`` (the
    penultimate features) of every batch of ``loader``.

    Returns:
        ``{"prob": (N, L), "label": (N, L), "features": (N, D) or None, key: list}``.
    """
    device = torch.device(device)
    feats: list[torch.Tensor] = []
    handle = None
    if feature_layer:
        layer = dict(model.named_modules())[feature_layer]
        handle = layer.register_forward_hook(lambda m, inp, out: feats.append(inp[0].detach().float().cpu()))
    probs, labels, extra = [], [], {k: [] for k in keys}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.autocast(device.type, enabled=amp and device.type == "cuda"):
            for batch in loader:
                logits = model(torch.as_tensor(batch["image"]).to(device))
                probs.append(torch.sigmoid(logits.float()).cpu())
                y = torch.as_tensor(batch["label"], dtype=torch.float32)
                labels.append(y.reshape(y.shape[0], -1))
                for k in keys:
                    v = batch[k]
                    extra[k].extend(v.tolist() if isinstance(v, torch.Tensor) else list(v))
    finally:
        if handle is not None:
            handle.remove()
        model.train(was_training)
    out: dict[str, Any] = {
        "prob": torch.cat(probs).to(torch.float64),
        "label": torch.cat(labels).to(torch.float64),
        "features": torch.cat(feats).flatten(1) if feats else None,
    }
    out.update(extra)
    return out


def probe_group(
    features: torch.Tensor | np.ndarray,
    target: Sequence[int] | np.ndarray,
    patients: Sequence[str],
    *,
    n_bootstrap: int = 200,
    ci_level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Linear probe (logistic regression on standardised features) of a binary group target, fitted on one half of
    the patients and scored (AUC, percentile interval over resamples of the scored half) on the other half.

    Returns:
        ``{"probe_auc", "probe_auc_ci_low", "probe_auc_ci_high", "n_probe_test"}``; NaN with a warning when a half
        lacks one of the two classes.
    """
    x = features.numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    y = np.asarray(target, dtype=int)
    pid = np.asarray([str(p) for p in patients])
    nan = {"probe_auc": math.nan, "probe_auc_ci_low": math.nan, "probe_auc_ci_high": math.nan, "n_probe_test": 0.0}
    uniq, first = np.unique(pid, return_index=True)
    tr_p, te_p = probe_split(y[first], 0.5, seed)
    train, test = np.isin(pid, uniq[tr_p]), np.isin(pid, uniq[te_p])
    if len(np.unique(y[train])) < 2 or len(np.unique(y[test])) < 2:
        logger.warning("probe: a patient half lacks the training group or the others; probe AUC is NaN.")
        return nan
    probe = make_probe("linear", "binary", seed).fit(x[train], y[train])
    score = probe.predict_proba(x[test])[:, 1]
    out = {"probe_auc": float(weighted_roc_auc(score, y[test])), "n_probe_test": float(test.sum())}
    if n_bootstrap > 0:
        w = bootstrap_weights([int(test.sum())], n_bootstrap, stratified=False, generator=make_generator(seed, "cpu"))
        lo, hi = percentile_interval(weighted_roc_auc(score, y[test], w), ci_level)
        out.update(probe_auc_ci_low=float(lo), probe_auc_ci_high=float(hi))
    else:
        out.update(probe_auc_ci_low=math.nan, probe_auc_ci_high=math.nan)
    return out


def _nanmean(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return torch.nanmean(x, dim=dim)


def _interval(reps: torch.Tensor, point: float, ci_level: float) -> tuple[float, float]:
    if math.isnan(point) or reps is None:
        return math.nan, math.nan
    lo, hi = percentile_interval(reps, ci_level)
    return float(lo), float(hi)


class CrossGroupEvaluation:
    """One (seed, model) run of the cross-group study: every figure of the module docstring as one record.

    Args:
        model: the trained network (multi-label logits; ``feature_layer`` is its last linear layer).
        test_loader: the test set of every group (data dicts with ``label``, the attributes and ``patient_hash``).
        val_loader: the model's validation set (for the No Finding operating point); ``None``: threshold 0.5.
        labels: the label names, in output order.
        spec: the study's fairness spec: its one attribute is the group, its ``reference`` the single training
            group (defines "same group"), its ``min_group_size`` the smallest group with a figure (AUC: samples;
            underdiagnosis: samples with a finding).
        group_names: ``{attribute: {code: name}}`` (the manifest's code maps, also those of ``intersect_with``).
        model_name: the model's name in the report (e.g. ``"single"``, ``"mixed_reweighting"``).
        seed: the seed.
        no_finding: the No Finding label for underdiagnosis; ``None`` (or ``""``): with one label, "no finding" is that label
            being 0 (the underdiagnosis rate is then its false-negative rate); else no underdiagnosis figures.
        intersect_with: attributes crossed with ``attribute`` for intersectional underdiagnosis (absent ones are
            skipped).
        checkpoint: a state dict to load first (``weights_only=True``), e.g. when re-evaluating saved models.
        device: where the model runs.
        n_bootstrap: resamples of every interval.
        ci_level: interval level.
        feature_layer: the module whose input is the penultimate feature vector (``fc`` in MONAI's ResNet); ``None``:
            no probe.
        amp: autocast on CUDA.
        train_set: the training set's name (recorded).
        mitigation: the mitigation's name (recorded).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        test_loader: Any,
        val_loader: Any | None,
        labels: Sequence[str],
        spec: FairnessSpec,
        group_names: Mapping[str, Mapping[int, str]],
        model_name: str,
        seed: int,
        *,
        no_finding: str | None = "No Finding",
        intersect_with: Sequence[str] = ("sex", "age_group"),
        checkpoint: str | os.PathLike | None = None,
        device: torch.device | str = "cpu",
        n_bootstrap: int = 200,
        ci_level: float = 0.95,
        feature_layer: str | None = "fc",
        amp: bool = False,
        train_set: str = "",
        mitigation: str = "none",
    ) -> None:
        no_finding = _no_finding(no_finding)
        if no_finding is not None and no_finding not in labels:
            raise ValueError(f"no_finding {no_finding!r} is not one of the labels {list(labels)}.")
        if spec.intersectional or spec.reference is None:
            raise ValueError("the spec needs one attribute and the training group as its reference.")
        attribute = spec.attributes[0]
        self.model, self.test_loader, self.val_loader = model, test_loader, val_loader
        self.labels, self.attribute, self.train_group = list(labels), attribute, int(spec.reference)
        self.group_names = {k: {int(c): str(n) for c, n in v.items()} for k, v in dict(group_names).items()}
        self.model_name, self.seed = str(model_name), int(seed)
        self.no_finding, self.intersect_with = no_finding, [a for a in intersect_with if a != attribute]
        self.checkpoint, self.device = checkpoint, device
        self.n_bootstrap, self.ci_level, self.min_group_size = int(n_bootstrap), float(ci_level), spec.min_group_size
        self.feature_layer, self.amp = feature_layer, bool(amp)
        self.train_set, self.mitigation = str(train_set), str(mitigation)

    def _name(self, attribute: str, code: int) -> str:
        return self.group_names.get(attribute, {}).get(int(code), str(code))

    def _keys(self, loader: Any) -> list[str]:
        first = loader.dataset[0] if len(loader.dataset) else {}
        keys = [self.attribute, *[a for a in self.intersect_with if a in first]]
        return keys + (["patient_hash"] if "patient_hash" in first else [])

    def _no_finding_columns(self, out: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.no_finding is not None:
            k = self.labels.index(self.no_finding)
            return out["prob"][:, k], out["label"][:, k]
        if len(self.labels) == 1:  # "no finding" = the one label is negative
            return 1.0 - out["prob"][:, 0], 1.0 - out["label"][:, 0]
        return None

    def run(self) -> dict[str, Any]:
        """Evaluate the model; returns ``{"seed", "model", "records": [record], "group_names"}`` (rank 0 only under
        ``torch.distributed``; other ranks return ``None``)."""
        if not is_main_process():
            return None
        if self.checkpoint is not None:
            state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
            self.model.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
        keys = self._keys(self.test_loader)
        test = collect_cross_group_outputs(
            self.model, self.test_loader, keys, self.device, self.feature_layer, self.amp
        )
        record: dict[str, Any] = {"seed": self.seed, "method": self.model_name, "split": "test"}
        record.update(self._auc_figures(test))
        record.update(self._underdiagnosis(test))
        if self.feature_layer and test["features"] is not None and "patient_hash" in test:
            g = np.asarray(test[self.attribute])
            known = g >= 0
            record.update(
                probe_group(
                    test["features"][torch.as_tensor(known)],
                    (g[known] == self.train_group).astype(int),
                    np.asarray(test["patient_hash"])[known],
                    n_bootstrap=self.n_bootstrap,
                    ci_level=self.ci_level,
                    seed=self.seed,
                )
            )
        logger.info(
            "%s (seed %d): AUC same %.3f, other %.3f, drop %.3f [%.3f, %.3f]",
            self.model_name,
            self.seed,
            record["auc_same"],
            record["auc_other"],
            record["auc_drop"],
            record["auc_drop_ci_low"],
            record["auc_drop_ci_high"],
        )
        return {
            "seed": self.seed,
            "model": self.model_name,
            "train_set": self.train_set,
            "mitigation": self.mitigation,
            "records": [record],
            "group_names": self.group_names,
            "labels": self.labels,
            "train_group": self._name(self.attribute, self.train_group),
        }

    def _auc_figures(self, out: Mapping[str, Any]) -> dict[str, float]:
        """Per-label AUC per group and same vs other, with intervals from one set of stratified resamples."""
        g_all = torch.as_tensor(out[self.attribute], dtype=torch.int64)
        known = g_all >= 0
        order = torch.argsort(g_all[known], stable=True)
        g = g_all[known][order]
        prob, y = out["prob"][known][order], out["label"][known][order]
        codes = sorted(set(g.tolist()))
        if self.train_group not in codes or len(codes) < 2:
            raise ValueError(
                f"the test set needs the training group {self.train_group} and another group; it has {codes}."
            )
        side = (g != self.train_group).to(torch.int64)  # 0: same group, 1: other groups
        sizes = [int((g == c).sum()) for c in codes]
        w = None
        if self.n_bootstrap > 0:
            w = bootstrap_weights(sizes, self.n_bootstrap, generator=make_generator(self.seed, "cpu"))
        rec: dict[str, float] = {}
        n_labels = len(self.labels)
        same = torch.full((n_labels,), math.nan, dtype=torch.float64)
        other = same.clone()
        same_reps = torch.full((self.n_bootstrap, n_labels), math.nan, dtype=torch.float64)
        other_reps = same_reps.clone()
        for k, label in enumerate(self.labels):
            m = ~torch.isnan(y[:, k])
            s, yk = prob[m, k], y[m, k]
            wk = w[:, m] if w is not None else None
            per = compute_group_roc_auc(s, yk, g[m], group_codes=codes, min_group_size=self.min_group_size)
            per_reps = None
            if wk is not None:
                per_reps = compute_group_roc_auc(
                    s, yk, g[m], group_codes=codes, min_group_size=self.min_group_size, weights=wk
                )
            for j, c in enumerate(codes):
                name = f"auc:{label}:{self._name(self.attribute, c)}"
                rec[name] = float(per[j])
                if per_reps is not None:
                    rec[f"{name}_ci_low"], rec[f"{name}_ci_high"] = _interval(per_reps[:, j], rec[name], self.ci_level)
            so = compute_group_roc_auc(s, yk, side[m], group_codes=[0, 1], min_group_size=self.min_group_size)
            same[k], other[k] = so[0], so[1]
            if wk is not None:
                so_reps = compute_group_roc_auc(
                    s, yk, side[m], group_codes=[0, 1], min_group_size=self.min_group_size, weights=wk
                )
                same_reps[:, k], other_reps[:, k] = so_reps[:, 0], so_reps[:, 1]
            rec[f"auc_same:{label}"], rec[f"auc_other:{label}"] = float(same[k]), float(other[k])
            rec[f"auc_drop:{label}"] = float(same[k] - other[k])
        # averages over the labels defined on both sides (the seed's "mean AUC")
        both = ~torch.isnan(same) & ~torch.isnan(other)
        rec["n_labels_compared"] = float(both.sum())
        for name, point, reps in (
            ("auc_same", same, same_reps),
            ("auc_other", other, other_reps),
            ("auc_drop", same - other, same_reps - other_reps),
        ):
            value = float(point[both].mean()) if bool(both.any()) else math.nan
            rec[name] = value
            rec[f"{name}_ci_low"], rec[f"{name}_ci_high"] = (
                _interval(_nanmean(reps[:, both]), value, self.ci_level) if w is not None else (math.nan, math.nan)
            )
        for j, c in enumerate(codes):
            vals = [rec[f"auc:{label}:{self._name(self.attribute, c)}"] for label in self.labels]
            finite = [v for v in vals if not math.isnan(v)]
            rec[f"mean_auc:{self._name(self.attribute, c)}"] = float(np.mean(finite)) if finite else math.nan
            rec[f"n_test:{self._name(self.attribute, c)}"] = float(sizes[j])
        lo = rec.get("auc_same_ci_low", math.nan)
        # a model whose same-group AUC interval reaches 0.5 tells no one apart: its small drop is not "fair"
        rec["better_than_chance"] = float(not (math.isnan(rec["auc_same"]) or (lo == lo and lo <= 0.5)))
        rec["drop_excludes_zero"] = float(rec.get("auc_drop_ci_low", math.nan) > 0.0)
        return rec

    def _threshold(self) -> float:
        if self.val_loader is None:
            return 0.5
        val = collect_cross_group_outputs(self.model, self.val_loader, [], self.device, None, self.amp)
        cols = self._no_finding_columns(val)
        if cols is None:
            return math.nan
        s, y = cols
        m = ~torch.isnan(y)
        try:
            return best_f1_threshold(s[m], y[m])[0]
        except ValueError as e:
            logger.warning("underdiagnosis: no F1-optimal threshold on validation (%s); figures are NaN.", e)
            return math.nan

    def _underdiagnosis(self, out: Mapping[str, Any]) -> dict[str, float]:
        cols = self._no_finding_columns(out)
        if cols is None:
            return {}
        thr = self._threshold()
        rec: dict[str, float] = {"nf_threshold": thr}
        if math.isnan(thr):
            return rec
        s, y = cols
        g = torch.as_tensor(out[self.attribute], dtype=torch.int64)
        subgroupings = [((self.attribute,), g)]
        for other in self.intersect_with:
            if other in out:
                h = torch.as_tensor(out[other], dtype=torch.int64)
                subgroupings.append(((self.attribute, other), combine_group_codes([g, h])))
        for attrs, codes in subgroupings:
            res = compute_underdiagnosis(
                s,
                y,
                codes,
                thr,
                min_group_size=self.min_group_size,
                n_bootstrap=self.n_bootstrap,
                ci_level=self.ci_level,
                seed=self.seed,
            )
            for j, code in enumerate(res["codes"].tolist()):
                name = f"underdiagnosis:{self._subgroup_name(attrs, code)}"
                rec[name] = float(res["rate"][j])
                rec[f"{name}_ci_low"], rec[f"{name}_ci_high"] = float(res["ci_low"][j]), float(res["ci_high"][j])
                rec[name.replace("underdiagnosis:", "n_finding:", 1)] = float(res["n"][j])
        return rec

    def _subgroup_name(self, attrs: Sequence[str], code: int) -> str:
        if len(attrs) == 1:
            return self._name(attrs[0], code)
        from monai_fair.metrics import INTERSECTION_RADIX

        parts = []
        for a in reversed(attrs):
            parts.append(self._name(a, code % INTERSECTION_RADIX))
            code //= INTERSECTION_RADIX
        return INTERSECTION_SEPARATOR.join(reversed(parts))


class CrossGroupLoop(SeedLoop):
    """Run every model of the study for every seed, each from a fresh config (see
    :func:`~monai_fair.study.run_seed`), with ``model_id`` set to the model's name: a
    :class:`~monai_fair.study.SeedLoop` over seeds x models, in this process.

    In a bundle config::

        "seed_loop": {"_target_": "monai_fair.study.CrossGroupLoop", "seeds": "@seeds", "models": "@models"},
        "results": "$@seed_loop.run()"

    Args:
        seeds: the seeds.
        models: the model names (or a mapping whose keys are the names), in report order.
        model_id: the config id that holds the current model's name.
        config_file, overrides, meta_file: as :class:`~monai_fair.study.SeedLoop` (``None``: the command line).
        run_id, result_id, seed_id, determinism: see :func:`~monai_fair.study.run_seed`.

    Raises:
        ValueError: no seed or no model, or no config file and no bundle command line.
    """

    def __init__(
        self,
        seeds: Sequence[int],
        models: Sequence[str] | Mapping[str, Any],
        model_id: str = "model_name",
        config_file: str | Sequence[str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        meta_file: str | Sequence[str] | None = None,
        run_id: str = "seed_run",
        result_id: str = "seed_result",
        seed_id: str = "seed",
        determinism: bool = True,
    ) -> None:
        names = list(models)
        if not names:
            raise ValueError("models must name at least one model.")
        super().__init__(seeds, config_file, overrides, meta_file, run_id, result_id, seed_id, determinism)
        self.models, self.model_id = [str(m) for m in names], model_id

    def run(self) -> list[Any]:
        """The result of every (seed, model), seed-major.

        Raises:
            StudyRunError: a run failed (naming the seed and the model; the original exception is the cause).
        """
        results = []
        total = len(self.seeds) * len(self.models)
        for seed in self.seeds:
            for model in self.models:
                logger.info("=== seed %s, model %s (%d of %d) ===", seed, model, len(results) + 1, total)
                try:
                    result = run_seed(*self._args(seed, {self.model_id: model}))
                except Exception as e:
                    raise StudyRunError(f"seed {seed}, model {model!r} failed: {cause_line(e)}") from e
                results.append(result)
        return results


class CrossGroupReport:
    """The report of the cross-group study, declared once per bundle.

    Args:
        output_dir: report folder.
        title: report title.
        settings: run settings shown in the report and logged at start-up.
        demo: the data are generated demo data.
        name: the study's name, prefixing the start-up log line.
        models: the model names, in report order.
        min_group_size: the study's minimum subgroup size (small subgroups are marked in the tables).
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        title: str = "Cross-group study",
        settings: Mapping[str, Any] | None = None,
        demo: bool = False,
        name: str = "study",
        models: Sequence[str] | Mapping[str, Any] = (),
        min_group_size: int = 10,
    ) -> None:
        self.output_dir, self.title = output_dir, title
        self.settings, self.demo, self.name = dict(settings or {}), bool(demo), name
        self.models = [str(m) for m in models]
        self.min_group_size = int(min_group_size)

    def log_settings(self) -> str:
        """Log (as a warning, so it is always seen) one line with the settings, flagged when on demo data."""
        return _log_settings(self.name, self.settings, self.demo)

    def write(self, runs: Sequence[Mapping[str, Any] | None], output_dir: str | os.PathLike | None = None):
        """Write the report of the (seed, model) runs (rank 0 only; other ranks return ``None``).

        Returns:
            the written paths (see :func:`monai_fair.report.write_cross_group_report`).
        """
        if not is_main_process():
            return None
        from monai_fair.report.cross_group_report import write_cross_group_report

        paths = write_cross_group_report(
            [r for r in runs if r is not None],
            self.output_dir if output_dir is None else output_dir,
            title=self.title,
            settings=self.settings,
            demo=self.demo,
            models=self.models or None,
            min_group_size=self.min_group_size,
        )
        logger.info("report written to %s", paths["report_html"])
        return paths
