# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""One seed of the adversarial multi-task study (Li et al. 2021): vanilla, w/o L_orth and w/ L_orth, evaluated alike.

* :func:`isic_adversarial_study_data`: the study's split function (for :class:`~monai_fair.study.StudySplits`): the
  ISIC 2018 / HAM10000 layout (or the demo in that layout) or a generic manifest of dermoscopy images, groups by
  sex, age >= 60 or ITA skin tone, the ITA computed at ingestion when the data carry none
  (:func:`~monai_fair.transforms.ita_groups`), lesion-level train/val/test splits (the paper's 80/20 with a
  validation share carved out of the 80 for the decision threshold).
* :class:`AdversarialFairnessStudy`: trains every variant from the same initial weights with
  :class:`~monai_fair.debias.AdversarialMultitaskTrainer`, evaluates each with
  :class:`~monai_fair.study.DebiasingStudy` (same spec, threshold and bootstrap as every study) and adds the
  paper's per-group weighted precision/recall/F1 (Table 1) and the critic's Pearson correlation between predicted
  and true batch SPD on test batches (Table 2): batches of varied group/label composition
  (:func:`~monai_fair.debias.adversarial_multitask.composition_batches`, ``critic_eval="shifted"``, whose SPD
  genuinely varies) or random stratified batches (``"stratified"``, the paper's, whose SPD varies only by sampling
  noise); both are recorded. With ``critic_steps > 0`` the critic is refitted on the trained, frozen generator
  after training (:func:`~monai_fair.debias.adversarial_multitask.calibrate_critic`).
* :class:`AdversarialStudyReport`: the shared report plus the two tables laid out as the paper's and a scatter of the
  critic's predictions.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from monai_fair.metrics import FairnessSpec, compute_group_weighted_prf, pearson_r
from monai_fair.networks.bias_heads import CRITIC_READOUTS

from .artefacts import save_seed_results
from .errors import BundleConfigError
from .report import StudyReport
from .runtime import is_main_process

__all__ = [
    "ADVERSARIAL_STUDY_VARIANTS",
    "CRITIC_EVAL_BATCHES",
    "AdversarialFairnessStudy",
    "AdversarialStudyReport",
    "critic_batches",
    "isic_adversarial_study_data",
    "publish_adversarial_model",
    "validate_adversarial_config",
]

logger = logging.getLogger(__name__)

#: the paper's three rows: method name -> trainer settings
ADVERSARIAL_STUDY_VARIANTS: dict[str, dict[str, Any]] = {
    "vanilla": {"variant": "vanilla"},
    "ours_wo_orth": {"variant": "adversarial", "orthogonality_weight": 0.0},
    "ours_w_orth": {"variant": "adversarial"},
}
_ATTRIBUTES = ("sex", "age_group", "ita_group")
#: protocols of the critic's test batches: headline first in ``critic_eval``, both always recorded
CRITIC_EVAL_BATCHES = ("shifted", "stratified")


# ------------------------------------------------------------------------------------------------------------ data
def _with_ita(frame: pd.DataFrame, ita_cache: str | None, ita_sampler: str, ita_scheme: str) -> dict[int, str]:
    from monai_fair.transforms.ita import ita_group_names
    from monai_fair.transforms.ita_groups import ita_groups

    ita, group = ita_groups(frame["image"].astype(str).tolist(), ita_cache, ita_sampler, ita_scheme)
    frame["ita"], frame["ita_group"] = ita, group
    return ita_group_names(ita_scheme)


def isic_adversarial_study_data(
    dataset_dir: str | os.PathLike | None = None,
    manifest: str | os.PathLike | None = None,
    label_column: str = "label",
    seed: int = 0,
    attribute: str = "ita_group",
    task: str = "malignant",
    fractions: Sequence[float] = (0.7, 0.1, 0.2),
    ita_cache: str | os.PathLike | None = None,
    ita_sampler: str = "outside_lesion",
    ita_scheme: str = "binary45",
    patient_column: str = "patient_id",
    missing_patient: str = "image",
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[int, str]]]:
    """Train/val/test data dicts of one seed and the attributes' code maps.

    Args:
        dataset_dir: ISIC 2018 Task 3 / HAM10000 folder (metadata + ground truth + images; the demo's layout).
        manifest: a generic manifest CSV instead (``image``, the label column, ``sex`` and/or ``age``/``ita``...).
        label_column: the manifest's label column (ISIC 2018: the task's column is built, see ``task``).
        seed: split seed.
        attribute: ``sex``, ``age_group`` (age >= 60) or ``ita_group`` (binary45: dark <= 45 < light; computed from
            the images when the data have no ``ita``).
        task: ISIC 2018 target: ``"malignant"`` (binary) or ``"dx"`` (the 7 classes, as class indices).
        fractions: train/val/test fractions of lesions (patients).
        ita_cache: folder of the ITA cache (``None``: ``.monai_fair_ita`` next to the data, or no cache when that
            folder cannot be written).
        ita_sampler: ITA skin sampler.
        ita_scheme: ITA category scheme (``binary45`` is the paper's).
        patient_column: the manifest's patient column (hashed), if any.
        missing_patient: a manifest without one: ``"image"`` (split by image, logged) or ``"error"``.

    Returns:
        ``({"train", "val", "test"}, code_maps)``; each dict has ``image``, ``label``, the attributes present, and
        ``index`` (position within its split, for the previous epoch's predictions).

    Raises:
        ValueError: both or neither of ``dataset_dir`` and ``manifest``, an unknown attribute or task.
        KeyError: the data lack the attribute.
    """
    from monai_fair.data.isic import AGE_GROUP_60_NAMES, build_isic2018_manifest
    from monai_fair.data.manifest import frame_to_data_dicts, read_manifest
    from monai_fair.data.splits import patient_level_split

    if (dataset_dir is None) == (manifest is None):
        raise ValueError("give exactly one of dataset_dir (ISIC 2018 layout) or manifest (CSV).")
    if attribute not in _ATTRIBUTES:
        raise ValueError(f"attribute must be one of {_ATTRIBUTES}, got {attribute!r}.")
    if task not in ("malignant", "dx"):
        raise ValueError(f"task must be 'malignant' or 'dx', got {task!r}.")
    if dataset_dir is not None:
        table, code_maps, skipped = build_isic2018_manifest(dataset_dir)
        table = table.copy()
        label_column = task
        cache = ita_cache if ita_cache is not None else Path(dataset_dir) / ".monai_fair_ita"
    else:
        columns = pd.read_csv(manifest, nrows=0).columns
        attrs = [c for c in ("sex", "age", "ita", "ita_group") if c in columns]
        if attribute not in columns and attribute != "ita_group" and not (attribute == "age_group" and "age" in attrs):
            raise KeyError(f"attribute column {attribute!r} not found in {manifest}; available: {list(columns)}.")
        table, code_maps, skipped = read_manifest(
            manifest,
            label_column,
            attrs,
            patient_column=patient_column,
            check_split_groups=False,
            age_bins=(0, 60) if "age" in attrs else None,
        )
        table = table.copy()
        cache = ita_cache if ita_cache is not None else Path(manifest).resolve().parent / ".monai_fair_ita"
        if attribute == "age_group" and "age_group" in table.columns:
            code_maps["age_group"] = dict(AGE_GROUP_60_NAMES)
    if skipped.total:
        logger.info("isic_adversarial_study_data: %s", skipped.summary())
    if attribute == "ita_group" and "ita_group" not in table.columns:
        code_maps = dict(code_maps)
        code_maps["ita_group"] = _with_ita(table, None if cache is None else str(cache), ita_sampler, ita_scheme)
    if attribute not in table.columns:
        raise KeyError(f"the data have no {attribute!r}; columns: {list(table.columns)}.")
    patient = "patient_hash" if "patient_hash" in table.columns else patient_column
    split = patient_level_split(table, fractions, seed, patient_column=patient, missing_patient=missing_patient)
    attrs = [c for c in _ATTRIBUTES if c in split.columns]
    data = {}
    for name in ("train", "val", "test"):
        dicts = frame_to_data_dicts(split[split["split"] == name], label_column, attrs)
        for i, d in enumerate(dicts):
            d["index"] = i
        data[name] = dicts
    return data, {k: v for k, v in code_maps.items() if k in attrs or k in (label_column,)}


# ------------------------------------------------------------------------------------------------- critic figures
def critic_batches(groups: torch.Tensor, batch_size: int, n_batches: int, seed: int = 0) -> list[torch.Tensor]:
    """Random test batches that hold every group in its proportion (:class:`GroupStratifiedBatchSampler`), drawn
    afresh (different shuffles) until ``n_batches`` full-size batches are collected."""
    from monai_fair.data.stratified_batches import GroupStratifiedBatchSampler

    g = torch.as_tensor(groups).reshape(-1).cpu()
    size = min(int(batch_size), g.numel())
    sampler = GroupStratifiedBatchSampler(g.tolist(), size, seed=seed)
    out: list[torch.Tensor] = []
    for _ in range(10 * n_batches + 10):
        for batch in sampler:
            if len(batch) >= size // 2 + 1:
                out.append(torch.as_tensor(batch))
            if len(out) >= n_batches:
                return out
    return out


# ---------------------------------------------------------------------------------------------------------- study
class AdversarialFairnessStudy:
    """Train and evaluate the variants of one seed.

    Args:
        network: the classifier as built by the config (e.g. ``fair_vgg11``); every variant starts from a copy of
            its initial weights.
        bias_heads: ``D`` and ``P`` (:class:`~monai_fair.networks.BiasCriticHeads`), copied per variant.
        train_loader: training loader (stratified batches with ``index``).
        val_loader: validation loader (threshold).
        test_loader: test loader.
        spec: the study's fairness spec (binary group: reference vs rest).
        variants: ``{method name: trainer settings}`` (default :data:`ADVERSARIAL_STUDY_VARIANTS`); settings are
            :class:`~monai_fair.debias.AdversarialMultitaskTrainer` arguments (``variant``, ``orthogonality_weight``...).
        methods: names of ``variants`` to run (default all).
        epochs: training epochs.
        lr: learning rate of ``G`` and ``C`` (paper 1e-3).
        bias_lr: learning rate of ``D`` and ``P`` (paper 1e-4).
        adversarial_weight: ``lambda_adv``.
        orthogonality_weight: ``lambda_orth`` of the variants that do not set it.
        orth_form: ``"paper"`` or ``"cosine"``.
        confusion: the generator's target for D (``"privileged"``, Eq. 3, or ``"uniform"``).
        critic_weight: ``lambda_P`` in the generator step.
        ckpt_dir: the seed's checkpoint folder (``<method>/model.pt``, ``<method>/bias_heads.pt``).
        output_dir: the seed's output folder.
        device: training device.
        n_bootstrap: bootstrap resamples of the evaluation.
        seed: the seed.
        critic_batch_size: size of the test batches of the correlation (paper 64), and of the calibration batches.
        critic_n_batches: number of such batches (per protocol).
        critic_eval: the protocol of the headline ``critic_corr``: ``"shifted"`` (varied group/label composition) or
            ``"stratified"`` (the paper's random stratified batches); the other is recorded as well.
        critic_steps: updates of the critic alone on the trained, frozen generator after training (0: none, the
            paper; :func:`~monai_fair.debias.adversarial_multitask.calibrate_critic` on the training data).
        critic_lr: learning rate of that calibration.
        critic_aux_weight: weight of the per-sample supervision of the ``"group_ratio"`` read-out (training and
            calibration).
        summary_writer: optional TensorBoard writer (per-epoch losses of every variant).
        train_handlers: extra Ignite handlers attached to every trainer.
        amp: bf16 autocast when collecting outputs on CUDA.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        bias_heads: torch.nn.Module,
        train_loader: Iterable,
        val_loader: Iterable,
        test_loader: Iterable,
        spec: FairnessSpec,
        variants: Mapping[str, Mapping[str, Any]] | None = None,
        methods: Sequence[str] | None = None,
        epochs: int = 10,
        lr: float = 1e-3,
        bias_lr: float = 1e-4,
        adversarial_weight: float = 1.0,
        orthogonality_weight: float = 1.0,
        orth_form: str = "paper",
        confusion: str = "privileged",
        critic_weight: float = 0.0,
        ckpt_dir: str | os.PathLike = "models",
        output_dir: str | os.PathLike = "eval",
        device: torch.device | str = "cpu",
        n_bootstrap: int = 100,
        seed: int = 0,
        critic_batch_size: int = 64,
        critic_n_batches: int = 50,
        critic_eval: str = "stratified",
        critic_steps: int = 0,
        critic_lr: float = 1e-3,
        critic_aux_weight: float = 1.0,
        summary_writer: Any = None,
        train_handlers: Sequence[Any] | None = None,
        amp: bool = True,
    ) -> None:
        variants = dict(ADVERSARIAL_STUDY_VARIANTS if variants is None else variants)
        methods = list(variants) if methods is None else [methods] if isinstance(methods, str) else list(methods)
        unknown = [m for m in methods if m not in variants]
        if unknown:
            raise ValueError(f"unknown variants {unknown}; configured: {sorted(variants)}.")
        self.variants = {m: dict(variants[m]) for m in methods}
        self.network, self.bias_heads = network, bias_heads
        self.initial_network = copy.deepcopy(network.state_dict())
        self.initial_heads = copy.deepcopy(bias_heads.state_dict())
        self.train_loader, self.val_loader, self.test_loader = train_loader, val_loader, test_loader
        self.spec = spec
        self.epochs, self.lr, self.bias_lr = int(epochs), float(lr), float(bias_lr)
        self.adversarial_weight, self.orthogonality_weight = float(adversarial_weight), float(orthogonality_weight)
        self.orth_form, self.critic_weight = orth_form, float(critic_weight)
        self.confusion = confusion
        self.ckpt_dir, self.output_dir = Path(ckpt_dir), Path(output_dir)
        self.device = torch.device(device)
        self.n_bootstrap, self.seed = int(n_bootstrap), int(seed)
        self.critic_batch_size, self.critic_n_batches = int(critic_batch_size), int(critic_n_batches)
        if critic_eval not in CRITIC_EVAL_BATCHES:
            raise ValueError(f"critic_eval must be one of {CRITIC_EVAL_BATCHES}, got {critic_eval!r}.")
        self.critic_eval = critic_eval
        self.critic_steps, self.critic_lr = int(critic_steps), float(critic_lr)
        self.critic_aux_weight = float(critic_aux_weight)
        self.summary_writer = summary_writer
        self.train_handlers = list(train_handlers or [])
        self.amp = amp
        self.history: dict[str, list[dict[str, float]]] = {}

    # ---------------------------------------------------------------------------------------------------- training
    def _fresh(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        net, heads = copy.deepcopy(self.network), copy.deepcopy(self.bias_heads)
        net.load_state_dict(self.initial_network)
        heads.load_state_dict(self.initial_heads)
        return net.to(self.device), heads.to(self.device)

    def _trainer(self, method: str, net: torch.nn.Module, heads: torch.nn.Module):
        from monai_fair.debias.adversarial_multitask import AdversarialMultitaskTrainer
        from monai_fair.networks.bias_heads import split_vgg

        settings = {
            "adversarial_weight": self.adversarial_weight,
            "orthogonality_weight": self.orthogonality_weight,
            "orth_form": self.orth_form,
            "confusion": self.confusion,
            "critic_weight": self.critic_weight,
            "critic_aux_weight": self.critic_aux_weight,
            **self.variants[method],
        }
        generator, classifier = split_vgg(net)
        g_params = list(generator.parameters())
        return AdversarialMultitaskTrainer(
            device=self.device,
            max_epochs=self.epochs,
            train_data_loader=self.train_loader,
            network=net,
            generator=generator,
            classifier=classifier,
            bias_heads=heads,
            optimizer=torch.optim.Adam(net.parameters(), lr=self.lr),
            bias_optimizer=torch.optim.Adam(heads.parameters(), lr=self.bias_lr),
            generator_optimizer=torch.optim.Adam(g_params, lr=self.lr),
            loss_function=torch.nn.BCEWithLogitsLoss(),
            spec=self.spec,
            train_handlers=self.train_handlers,
            **settings,
        )

    def _log_epochs(self, method: str, trainer: Any) -> None:
        from ignite.engine import Events

        sums: dict[str, float] = {}

        def accumulate(engine: Any) -> None:
            for k, v in engine.state.output.items():
                if k.startswith("loss") and isinstance(v, (float, torch.Tensor)):
                    sums[k] = sums.get(k, 0.0) + float(v)
            sums["_n"] = sums.get("_n", 0.0) + 1

        def flush(engine: Any) -> None:
            n = max(sums.pop("_n", 1.0), 1.0)
            row = {k: v / n for k, v in sums.items()}
            self.history.setdefault(method, []).append(row)
            if self.summary_writer is not None:
                for k, v in row.items():
                    self.summary_writer.add_scalar(f"{method}/{k}", v, engine.state.epoch)
            logger.info(
                "seed %s %-13s epoch %d %s",
                self.seed,
                method,
                engine.state.epoch,
                " ".join(f"{k}={v:.4f}" for k, v in row.items()),
            )
            sums.clear()

        trainer.add_event_handler(Events.ITERATION_COMPLETED, accumulate)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, flush)

    def train(self) -> dict[str, Path]:
        """Train every variant from the same initial weights; save ``<ckpt_dir>/<method>/{model,bias_heads}.pt``."""
        paths = {}
        for method in self.variants:
            net, heads = self._fresh()
            trainer = self._trainer(method, net, heads)
            self._log_epochs(method, trainer)
            trainer.run()
            if trainer.variant != "vanilla" and self.critic_steps > 0:
                self._calibrate(method, net, heads)
            folder = self.ckpt_dir / method
            folder.mkdir(parents=True, exist_ok=True)
            if is_main_process():
                torch.save(net.state_dict(), folder / "model.pt")
                torch.save(heads.state_dict(), folder / "bias_heads.pt")
            paths[method] = folder
        return paths

    def _calibrate(self, method: str, net: torch.nn.Module, heads: torch.nn.Module) -> None:
        """Refit P on the trained generator's features of one pass over the training data (eval mode)."""
        from monai_fair.debias.adversarial_multitask import calibrate_critic

        feats, scores, labels, groups = self._outputs(net, heads, self.train_loader)
        out = calibrate_critic(
            heads,
            feats,
            scores,
            groups,
            labels,
            int(self.spec.reference),
            self.critic_steps,
            self.critic_batch_size,
            lr=self.critic_lr,
            aux_weight=self.critic_aux_weight,
            seed=self.seed,
        )
        self.history.setdefault(f"{method}_calibration", []).append(out)
        logger.info(
            "seed %s %-13s critic calibrated: %d steps, L_P %.4f", self.seed, method, out["steps"], out["loss_p"]
        )

    # -------------------------------------------------------------------------------------------------- evaluation
    def load(self, method: str) -> tuple[torch.nn.Module, torch.nn.Module]:
        """The trained network and heads of ``method`` from ``ckpt_dir`` (``weights_only=True``).

        Raises:
            FileNotFoundError: nothing saved for ``method``.
        """
        net, heads = self._fresh()
        folder = self.ckpt_dir / method
        if not (folder / "model.pt").is_file():
            raise FileNotFoundError(f"no trained model for {method!r} in {folder}; run train.json first.")
        net.load_state_dict(torch.load(folder / "model.pt", map_location=self.device, weights_only=True))
        heads.load_state_dict(torch.load(folder / "bias_heads.pt", map_location=self.device, weights_only=True))
        return net, heads

    def _test_outputs(self, net: torch.nn.Module, heads: torch.nn.Module):
        return self._outputs(net, heads, self.test_loader)

    @torch.no_grad()
    def _outputs(self, net: torch.nn.Module, heads: torch.nn.Module, loader: Iterable):
        from monai_fair.debias.adversarial_multitask import positive_scores
        from monai_fair.debias.base import batch_tensors
        from monai_fair.networks.bias_heads import split_vgg

        generator, classifier = split_vgg(net)
        net.eval()
        heads.eval()
        feats, scores, labels, groups = [], [], [], []
        for batch in loader:
            x, y, g = batch_tensors(batch, self.spec, self.device)
            h = generator(x)
            feats.append(h)
            scores.append(positive_scores(classifier(h)))
            labels.append(y)
            groups.append(g)
        return torch.cat(feats), torch.cat(scores), torch.cat(labels), torch.cat(groups)

    def critic_figures(self, heads: torch.nn.Module, feats, scores, groups, labels=None) -> dict[str, Any]:
        """Pearson r (and mean absolute error) between P's predicted and the true SPD of test batches, the true SPD
        measured as P's training label (soft SPD of the classifier's probabilities), for both protocols of
        :data:`CRITIC_EVAL_BATCHES` (``critic_corr_shifted`` needs ``labels``); ``critic_corr``, ``critic_mae``,
        ``predicted`` and ``true`` are those of the protocol ``critic_eval``."""
        from monai_fair.debias.adversarial_multitask import batch_spd_label, composition_batches

        ref = int(self.spec.reference)
        size, n = self.critic_batch_size, self.critic_n_batches
        protocols = {"stratified": critic_batches(groups, size, n, self.seed)}
        if labels is not None:
            protocols["shifted"] = composition_batches(groups, labels, ref, min(size, len(groups)), n, self.seed)
        out: dict[str, Any] = {}
        for name, batches in protocols.items():
            predicted, true = [], []
            for idx in batches:
                idx = idx.to(feats.device)
                true.append(batch_spd_label(scores[idx], groups[idx], ref, self.spec.unknown))
                predicted.append(float(heads.predict_spd(feats[idx])))
            p, t = np.asarray(predicted, float), np.asarray(true, float)
            ok = np.isfinite(p) & np.isfinite(t)
            out[name] = {
                "critic_corr": pearson_r(p, t),
                "critic_mae": float(np.abs(p[ok] - t[ok]).mean()) if ok.any() else math.nan,
                "critic_batches": float(ok.sum()),
                "predicted": p.tolist(),
                "true": t.tolist(),
            }
        head = out.get(self.critic_eval, out["stratified"])
        return {
            **head,
            **{f"critic_corr_{name}": figures["critic_corr"] for name, figures in out.items()},
            "critic_eval": self.critic_eval if self.critic_eval in out else "stratified",
        }

    def _group_prf(self, scores, labels, groups, threshold: float) -> dict[str, float]:
        names = self.spec.names([int(c) for c in torch.unique(groups) if c >= 0])
        prf = compute_group_weighted_prf((scores > threshold).long(), labels.long(), groups, num_classes=2)
        out = {}
        for code, figures in prf.items():
            name = str(names.get(code, code)).replace(" ", "_")
            for k in ("precision", "recall", "f1"):
                out[f"{k}_{name}"] = figures[k]
        return out

    def run(self, fit: bool = True) -> dict[str, Any] | None:
        """Evaluate every variant (after ``train()``; ``fit`` is accepted for symmetry with ``DebiasingStudy``).

        Returns:
            ``{"seed", "records", "trajectories", "rho", "spec", "critic"}``: the records of
            :class:`~monai_fair.study.DebiasingStudy` with ``method`` = the variant, test records carrying the
            per-group weighted precision/recall/F1 (``precision_<group>``...) and, for the adversarial variants,
            ``critic_corr``/``critic_mae``; ``critic`` holds each variant's predicted and true batch SPDs.
        """
        from .debiasing import DebiasingStudy

        if not is_main_process():
            return None
        records, critic = [], {}
        for method, settings in self.variants.items():
            net, heads = self.load(method)
            study = DebiasingStudy(
                net,
                self.val_loader,
                self.test_loader,
                {},
                spec=self.spec,
                output_dir=self.output_dir / method,
                n_bootstrap=self.n_bootstrap,
                seed=self.seed,
                device=self.device,
                amp=self.amp,
            )
            result = study.run(fit=True)
            feats, scores, labels, groups = self._test_outputs(net, heads)
            for rec in result["records"]:
                rec = {**rec, "method": method}
                if rec["split"] == "test":
                    rec.update(self._group_prf(scores, labels, groups, float(rec["threshold"])))
                    if settings.get("variant", "adversarial") != "vanilla":
                        figures = self.critic_figures(heads, feats, scores, groups, labels)
                        critic[method] = {k: figures[k] for k in ("predicted", "true", "critic_eval")}
                        rec.update(
                            {k: v for k, v in figures.items() if k.startswith("critic_corr") or k == "critic_mae"}
                        )
                    logger.info(
                        "seed %s %-13s test BA %.3f  SPD %+.3f  EOD %+.3f  critic r %s",
                        self.seed,
                        method,
                        rec["balanced_accuracy"],
                        rec["spd"],
                        rec["eod"],
                        f"{rec['critic_corr']:+.3f}" if "critic_corr" in rec else "-",
                    )
                records.append(rec)
        out = {
            "seed": self.seed,
            "records": records,
            "trajectories": {},
            "rho": {},
            "spec": self.spec.as_dict(),
            "critic": critic,
            "history": self.history,
        }
        save_seed_results(self.output_dir, out, "results.json" if fit else "results_reloaded.json")
        return out


# --------------------------------------------------------------------------------------------------------- report
def _mean_std(values: Sequence[float], digits: int = 3) -> str:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], float)
    if v.size == 0:
        return "n/a"
    std = f"{v.std(ddof=1):.{digits}f}" if v.size > 1 else "n/a"
    return f"{v.mean():.{digits}f} ({std})"


class AdversarialStudyReport(StudyReport):
    """:class:`~monai_fair.study.StudyReport` plus the paper's two tables and the critic scatter.

    Writes, next to the shared report: ``table1_group_performance.{csv,md}`` (per group weighted precision, recall,
    F1 of each variant, mean (std) over seeds), ``table2_fairness.{csv,md}`` (SPD, EOD, AOD and the critic's
    correlation, mean (std): ``Corr`` of the study's ``critic_eval`` protocol, ``Corr shifted`` and
    ``Corr stratified`` of both), ``critic_scatter.png``; the tables are also added to ``report.html``.
    """

    def tables(self, seed_runs: Sequence[Mapping[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(table1, table2)`` from the per-seed results (test split)."""
        recs = pd.DataFrame([r for run in seed_runs for r in run["records"] if r["split"] == "test"])
        methods = list(dict.fromkeys(recs["method"]))
        prf_cols = [c for c in recs.columns if c.split("_", 1)[0] in ("precision", "recall", "f1") and "_" in c]
        groups = list(dict.fromkeys(c.split("_", 1)[1] for c in prf_cols))
        rows1 = []
        for g in groups:
            for k in ("precision", "recall", "f1"):
                row = {"group": g, "metric": k}
                for m in methods:
                    col = f"{k}_{g}"
                    row[m] = _mean_std(recs.loc[recs["method"] == m, col].tolist()) if col in recs else "n/a"
                rows1.append(row)
        rows2 = []
        for m in methods:
            sub = recs[recs["method"] == m]
            row = {"method": m}
            for k in ("spd", "eod", "aod"):
                row[k.upper()] = _mean_std(sub[k].abs().tolist())
            row["Corr"] = _mean_std(sub["critic_corr"].tolist()) if "critic_corr" in sub else "n/a"
            for name in CRITIC_EVAL_BATCHES:
                col = f"critic_corr_{name}"
                if col in recs:
                    row[f"Corr {name}"] = _mean_std(sub[col].tolist())
            row["better than chance"] = (
                f"{int(sub['better_than_chance'].sum())}/{len(sub)}" if "better_than_chance" in sub else "n/a"
            )
            rows2.append(row)
        return pd.DataFrame(rows1), pd.DataFrame(rows2)

    def _scatter(self, seed_runs: Sequence[Mapping[str, Any]], path: Path) -> str | None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        methods = list(dict.fromkeys(m for run in seed_runs for m in run.get("critic", {})))
        if not methods:
            return None
        protocol = next(
            (c.get("critic_eval") for run in seed_runs for c in run.get("critic", {}).values() if c.get("critic_eval")),
            "stratified",
        )
        batches = "varied-composition" if protocol == "shifted" else "random stratified"
        fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 4), squeeze=False)
        for ax, m in zip(axes[0], methods):
            for run in seed_runs:
                c = run.get("critic", {}).get(m)
                if c:
                    ax.scatter(c["true"], c["predicted"], s=10, alpha=0.6, label=f"seed {run['seed']}")
            ax.set_xlabel("true batch SPD")
            ax.set_ylabel("critic-predicted batch SPD")
            ax.set_title(m)
            ax.legend(fontsize=7)
        label = "DEMO DATA (synthetic): " if self.demo else ""
        fig.suptitle(f"{label}critic P on {batches} test batches")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return str(path)

    def write(self, seed_runs: Iterable[Mapping[str, Any] | None], output_dir: str | os.PathLike | None = None):
        """The shared report, then the paper's tables and the critic scatter (rank 0 only)."""
        if not is_main_process():
            return None
        runs = [r for r in seed_runs if r is not None]
        paths = super().write(runs, output_dir)
        out = Path(self.output_dir if output_dir is None else output_dir)
        from monai_fair.report.html import html_table
        from monai_fair.report.tables import markdown_table

        t1, t2 = self.tables(runs)
        head = "DEMO DATA (synthetic) -- " if self.demo else ""
        html = []
        for name, table, caption in (
            ("table1_group_performance", t1, "Table 1: per-group weighted precision, recall and F1 (test), mean (std)"),
            ("table2_fairness", t2, "Table 2: |SPD|, |EOD|, |AOD| and critic correlation (test), mean (std)"),
        ):
            table.to_csv(out / f"{name}.csv", index=False)
            (out / f"{name}.md").write_text(f"{head}{caption}\n\n{markdown_table(table)}\n")
            paths[f"{name}_csv"] = str(out / f"{name}.csv")
            html.append(f"<h2>{head}{caption}</h2>{html_table(table)}")
        scatter = self._scatter(runs, out / "critic_scatter.png")
        if scatter:
            from monai_fair.report.html import image_data_uri

            paths["critic_scatter"] = scatter
            html.append(f'<h2>{head}critic predictions</h2><img src="{image_data_uri(scatter)}" alt="critic scatter">')
        report = Path(paths["report_html"])
        text = report.read_text()
        text = text.replace("</body>", "\n".join(html) + "\n</body>") if "</body>" in text else text + "\n".join(html)
        report.write_text(text)
        logger.info("%s", (out / "table2_fairness.md").read_text())
        return paths


# ----------------------------------------------------------------------------------------------------- validation
def validate_adversarial_config(
    variants: Mapping[str, Any], methods: Sequence[str] | None, attribute: str, settings: Mapping[str, Any]
) -> None:
    """Checks of this study's own settings, before anything is read or trained.

    Raises:
        BundleConfigError: naming the override (``--run_variants``, ``--attribute``, ``--orthogonality_weight``...).
    """
    if attribute not in _ATTRIBUTES:
        raise BundleConfigError(f"--attribute {attribute!r}: allowed: {', '.join(_ATTRIBUTES)}.")
    names = [methods] if isinstance(methods, str) else list(methods or [])
    unknown = [m for m in names if m not in variants]
    if unknown:
        raise BundleConfigError(
            f"--run_variants {names!r}: unknown variant(s) {unknown}; configured: {', '.join(variants)}."
        )
    for key in ("adversarial_weight", "orthogonality_weight", "critic_weight"):
        v = settings.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0):
            raise BundleConfigError(f"--{key} {v!r}: expected a non-negative number.")
    for key in ("lr", "bias_lr"):
        v = settings.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0):
            raise BundleConfigError(f"--{key} {v!r}: expected a positive learning rate.")
    task = settings.get("task")
    if task is not None and task != "malignant":
        raise BundleConfigError(
            f"--task {task!r}: this bundle evaluates a binary task (malignant); the 7-class ISIC 2018 task needs "
            "AdversarialMultitaskTrainer(label_dtype='long', positive_classes=...) and a multi-class evaluation."
        )
    confusion = settings.get("confusion")
    if confusion is not None and confusion not in ("privileged", "uniform"):
        raise BundleConfigError(f"--confusion {confusion!r}: allowed: privileged, uniform.")
    form = settings.get("orth_form")
    if form is not None and form not in ("paper", "cosine"):
        raise BundleConfigError(f"--orth_form {form!r}: allowed: paper, cosine.")
    for key in ("critic_batch_size", "critic_n_batches"):
        v = settings.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 2):
            raise BundleConfigError(f"--{key} {v!r}: expected an integer >= 2.")
    v = settings.get("critic_steps")
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
        raise BundleConfigError(f"--critic_steps {v!r}: expected a non-negative integer (0: no calibration).")
    v = settings.get("critic_lr")
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0):
        raise BundleConfigError(f"--critic_lr {v!r}: expected a positive learning rate.")
    v = settings.get("critic_aux_weight")
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0):
        raise BundleConfigError(f"--critic_aux_weight {v!r}: expected a non-negative number.")
    for key, allowed in (("critic_eval", CRITIC_EVAL_BATCHES), ("critic_readout", CRITIC_READOUTS)):
        v = settings.get(key)
        if v is not None and v not in allowed:
            raise BundleConfigError(f"--{key} {v!r}: allowed: {', '.join(allowed)}.")


def publish_adversarial_model(
    ckpt_dir: str | os.PathLike, seed: int, method: str = "ours_w_orth", network_config: Mapping[str, Any] | None = None
) -> str | None:
    """Copy ``seed``'s trained ``method`` (network and D/P heads) to ``<ckpt_dir>/model.pt`` and
    ``<ckpt_dir>/bias_heads.pt``, with its network settings in ``network.json`` (what ``inference.json`` loads).

    Returns:
        the published model path (``None`` on ranks other than 0).

    Raises:
        FileNotFoundError: nothing trained for ``seed`` and ``method``.
    """
    import shutil

    if not is_main_process():
        return None
    source = Path(ckpt_dir) / f"seed_{int(seed)}" / method
    if not (source / "model.pt").is_file():
        raise FileNotFoundError(f"no trained {method!r} model of seed {seed} to publish in {source}.")
    for name in ("model.pt", "bias_heads.pt"):
        shutil.copyfile(source / name, Path(ckpt_dir) / name)
    if network_config is not None:
        (Path(ckpt_dir) / "network.json").write_text(json.dumps(dict(network_config), indent=2))
    logger.info("seed %s's %s model published in %s", seed, method, ckpt_dir)
    return str(Path(ckpt_dir) / "model.pt")
