# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""One seed of an embedding-debiasing study (Zheng et al. 2025, with the protocol of ``reference/methods.md`` 2.5).

The representation debiasers (the adversarial VAE, LEACE, INLP) are fitted on the *train* table. The *evaluation*
table (NLST's "tune" split) is split, stratified by sex and label, into a probe-train and a probe-test part; every
representation (``original`` and each debiased one) is judged there by **fresh** probes fitted after debiasing
(:func:`~monai_fair.metrics.probes.probe_attributes`: sex accuracy / AUC and age MAE, linear and non-linear) and
by a fresh task probe (:func:`~monai_fair.metrics.probes.probe_task`: accuracy, AUC and the spec's bias metric from
the metrics core, against sex). All intervals are percentile intervals over resamples of the probe-test part.

Two further experiments give records of their own:

* poisoning (methods ``poisoned_<representation>_<pct>``): the task labels of ``pct`` % of one sex in the probe-train
  part are flipped (:func:`~monai_fair.data.poisoning.flip_group_labels`); the task probe is fitted on the flipped
  labels and judged against the true ones;
* latent-dimension sweep (methods ``<vae method>_latent_<k>``): the VAE refitted with latent size ``k``, judged by
  the same probes (attribute AUC against task AUC).

Records follow :mod:`monai_fair.report.results` (``split="test"``, numeric extra columns), so the per-seed outputs
go through :class:`~monai_fair.report.StudyResults` and the shared aggregation.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_fair.data.embeddings import NLST_SEX_MAP, EmbeddingTable, load_embedding_table
from monai_fair.data.poisoning import flip_group_labels
from monai_fair.debias.linear_erasure import INLPEraser, LeaceEraser
from monai_fair.debias.vae_debias import VAEDebiaser
from monai_fair.metrics import FairnessSpec
from monai_fair.metrics.probes import PROBE_KINDS, probe_attributes, probe_split, probe_task
from monai_fair.networks.debiased_embedding import DebiasedEmbedding
from monai_fair.networks.fair_vae import VAE_OUTPUTS

from .artefacts import save_seed_results
from .report import StudyReport, collect_study_results
from .runtime import is_main_process

__all__ = [
    "ORIGINAL",
    "EmbeddingDebiasStudy",
    "EmbeddingStudyReport",
    "ct_embedding_splits",
    "debias_ct_folder",
    "debias_embedding_table",
    "embedding_study_tables",
    "embedding_inference",
    "gather_seed_results",
    "load_embedding_splits",
    "publish_debiasers",
    "poisoned_method",
    "sweep_method",
]

logger = logging.getLogger("monai_fair")

#: the method name of the undebiased embeddings
ORIGINAL = "original"


def poisoned_method(representation: str, fraction: float) -> str:
    """Record name of the poisoning experiment on ``representation`` at flip ``fraction`` (e.g. ``poisoned_vae_50``)."""
    return f"poisoned_{representation}_{int(round(100 * float(fraction)))}"


def sweep_method(method: str, latent_size: int) -> str:
    """Record name of the latent-dimension sweep of ``method`` at latent size ``latent_size``."""
    return f"{method}_latent_{int(latent_size)}"


def load_embedding_splits(
    dataset_dir: str | os.PathLike,
    label_columns: str | Sequence[str] = ("cancer_in_1", "cancer_in_2"),
    train_file: str = "nlst_train_with_labels.npz",
    eval_file: str = "nlst_tune_with_labels.npz",
    demographics_file: str | None = "nlst_780_prsn_idc_20210527.csv",
    id_column: str = "pid",
    sex_column: str = "gender",
    age_column: str = "age",
    sex_map: Mapping[Any, str] | None = None,
    expected_dim: int | None = None,
) -> dict[str, EmbeddingTable]:
    """The train and evaluation embedding tables of an NLST-like folder (the real release's file names; the demo
    writes the same files).

    Args:
        dataset_dir: folder with the two tables (and the person table).
        label_columns: task label columns (the first is the study's task).
        train_file: table the debiasers are fitted on.
        eval_file: table the probes are fitted and judged on.
        demographics_file: side table joined by ``id_column`` (``None``: sex/age are columns of the tables).
        id_column: row id column of the tables (``pid``), also the side table's id column.
        sex_column: sex column (NLST person table: ``gender``, 1 = male, 2 = female).
        age_column: age column in years.
        sex_map: raw sex value → ``"F"``/``"M"``; default :data:`~monai_fair.data.embeddings.NLST_SEX_MAP` with a
            person table, else decoding by name.
        expected_dim: refuse tables of another embedding size.

    Returns:
        ``{"train": table, "eval": table}``.

    Raises:
        FileNotFoundError: a table is missing (the message names it and the folder).
    """
    root = Path(dataset_dir)
    side = root / demographics_file if demographics_file else None
    for f in (root / train_file, root / eval_file, *([side] if side is not None else [])):
        if not f.is_file():
            raise FileNotFoundError(f"embedding study: {f.name} not found in {root}.")
    if sex_map is None and side is not None:
        sex_map = NLST_SEX_MAP
    kwargs = dict(
        label_columns=label_columns,
        id_column=id_column,
        sex_column=sex_column,
        age_column=age_column,
        demographics=side,
        demographics_id_column=id_column,
        sex_map=sex_map,
        expected_dim=expected_dim,
    )
    return {
        "train": load_embedding_table(root / train_file, **kwargs),
        "eval": load_embedding_table(root / eval_file, **kwargs),
    }


def ct_embedding_splits(
    ct_dir: str | os.PathLike,
    output_file: str | os.PathLike,
    labels_file: str | os.PathLike | None = None,
    label_columns: str | Sequence[str] = ("cancer_in_1", "cancer_in_2"),
    id_column: str = "pid",
    eval_fraction: float = 0.5,
    seed: int = 0,
    embedder: Any | None = None,
    roi_size: Sequence[int] = (64, 64, 32),
    device: str | torch.device = "cpu",
) -> dict[str, EmbeddingTable]:
    """Train and evaluation tables of a folder of CT DICOM series: encoded (and cached) by
    :class:`~monai_fair.data.ct_embeddings.CTEmbedder`, read back with ``load_embedding_table``, split by patient
    row (stratified by sex and the first label, seeded).

    Args:
        ct_dir: folder of DICOM series (e.g. the CT demo in the NLST-like layout).
        output_file: the cached embedding table.
        labels_file: per-patient label CSV with ``id_column`` (default ``<ct_dir>/nlst_demo_labels.csv`` if present).
        label_columns: label columns.
        id_column: patient id column of the label CSV.
        eval_fraction: share of the rows in the evaluation table.
        seed: split seed.
        embedder: a :class:`~monai_fair.data.ct_embeddings.CTEmbedder` (default one with ``roi_size``, ``device``).
        roi_size: volume size of the default embedder.
        device: device of the default embedder.
    """
    import pandas as pd

    from monai_fair.data.ct_embeddings import CTEmbedder

    labels_cols = [label_columns] if isinstance(label_columns, str) else list(label_columns)
    if labels_file is None and (Path(ct_dir) / "nlst_demo_labels.csv").is_file():
        labels_file = Path(ct_dir) / "nlst_demo_labels.csv"
    if labels_file is None:
        raise ValueError(f"a CT study needs labels: pass --ct_labels_file (a CSV with {id_column} and {labels_cols}).")
    embedder = embedder if embedder is not None else CTEmbedder(roi_size=roi_size, device=device)
    path = embedder.embed_dicom_folder(ct_dir, output_file, pd.read_csv(labels_file), labels_cols, id_column)
    table = load_embedding_table(path, label_columns=labels_cols, nan_policy="drop")
    train, test = probe_split(np.stack([table.sex, table.labels[:, 0]], 1), eval_fraction, seed=seed)
    return {"train": table.subset(train), "eval": table.subset(test)}


def embedding_study_tables(
    source: Any,
    label_columns: str | Sequence[str] = ("cancer_in_1", "cancer_in_2"),
    train_file: str = "nlst_train_with_labels.npz",
    eval_file: str = "nlst_tune_with_labels.npz",
    demographics_file: str | None = "nlst_780_prsn_idc_20210527.csv",
    expected_dim: int | None = None,
    ct_dir: str | os.PathLike | None = None,
    ct_labels_file: str | os.PathLike | None = None,
    ct_cache_file: str | os.PathLike | None = None,
    ct_roi_size: Sequence[int] = (64, 64, 32),
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> dict[str, EmbeddingTable]:
    """The study's tables: from a folder of CT series when ``ct_dir`` is given (:func:`ct_embedding_splits`), else
    from the embedding tables of ``source`` (a :class:`~monai_fair.study.DataSource`; the demo is generated only in
    that case) with :func:`load_embedding_splits`."""
    if ct_dir:
        cache = ct_cache_file or Path(ct_dir) / "ct_embeddings.npz"
        return ct_embedding_splits(
            ct_dir, cache, ct_labels_file, label_columns, seed=seed, roi_size=ct_roi_size, device=device
        )
    return load_embedding_splits(
        source.dataset_dir, label_columns, train_file, eval_file, demographics_file, expected_dim=expected_dim
    )


def gather_seed_results(local: Sequence[Any]) -> list[Any] | None:
    """All ranks' per-seed results on rank 0, ordered by seed (others get ``None``); ``local`` as is without
    ``torch.distributed``."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return list(local)
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, list(local))
    if dist.get_rank() != 0:
        return None
    runs = [r for part in gathered for r in (part or []) if r is not None]
    return sorted(runs, key=lambda r: r["seed"])


def publish_debiasers(ckpt_dir: str | os.PathLike, seed: int, methods: Sequence[str], demo: bool = False) -> list[str]:
    """Copy seed ``seed``'s fitted debiasers (``seed_<seed>/<method>.pt``) to ``ckpt_dir/<method>.pt`` for inference,
    with ``ckpt_dir/debiasers.json`` (seed, methods, whether they were fitted on demo data).

    Returns:
        the published paths.

    Raises:
        FileNotFoundError: a method has no saved debiaser for that seed.
    """
    import json
    import shutil

    root, out = Path(ckpt_dir), []
    for method in methods:
        src = root / f"seed_{int(seed)}" / f"{method}.pt"
        if not src.is_file():
            raise FileNotFoundError(f"no fitted {method!r} for seed {seed} at {src}.")
        out.append(str(shutil.copyfile(src, root / f"{method}.pt")))
    info = {"seed": int(seed), "methods": list(methods), "demo": bool(demo)}
    (root / "debiasers.json").write_text(json.dumps(info, indent=2))
    return out


def embedding_inference(
    ckpt_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    input_table: str | os.PathLike | None = None,
    input_ct_dir: str | os.PathLike | None = None,
    method: str = "vae",
    output: str = "recon_mean",
    table_options: Mapping[str, Any] | None = None,
    ct_roi_size: Sequence[int] = (64, 64, 32),
    device: str | torch.device = "cpu",
) -> dict[str, str]:
    """Debias a new embedding table (``input_table``) or a folder of CT series (``input_ct_dir``) with the published
    debiaser ``ckpt_dir/<method>.pt`` (see :func:`publish_debiasers`), writing to ``output_dir``.

    Raises:
        ValueError: neither or both inputs given.
        FileNotFoundError: no published debiaser.
    """
    import json

    if bool(input_table) == bool(input_ct_dir):
        raise ValueError("give exactly one of --input_table (an embedding table) or --input_ct_dir (CT series).")
    model = Path(ckpt_dir) / f"{method}.pt"
    if not model.is_file():
        raise FileNotFoundError(f"no published debiaser {model}: run configs/train.json first.")
    info_file = Path(ckpt_dir) / "debiasers.json"
    demo = bool(json.loads(info_file.read_text()).get("demo", False)) if info_file.is_file() else False
    if input_ct_dir:
        return debias_ct_folder(
            input_ct_dir, model, output_dir, method, output, roi_size=ct_roi_size, device=device, demo=demo
        )
    out = Path(output_dir) / "debiased_embeddings.npz"
    return debias_embedding_table(input_table, model, out, method, output, demo=demo, **dict(table_options or {}))


def debias_embedding_table(
    table_file: str | os.PathLike,
    debiaser_file: str | os.PathLike,
    output_file: str | os.PathLike,
    method: str = "vae",
    output: str = "recon_mean",
    demo: bool = False,
    **load_kwargs: Any,
) -> dict[str, str]:
    """Debias a new embedding table with a saved debiaser; write the debiased table and a short report next to it.

    The input is read by :func:`~monai_fair.data.embeddings.load_embedding_table` (``load_kwargs``: columns, side
    table, ``sex_map``; no label column is needed, a sex column is). The output table keeps only the hashed ids and
    the sex / age values next to the debiased vectors, never raw ids; ``inference.json`` and ``report.html`` (same
    folder) give counts, sizes and the mean change of the vectors.

    Args:
        table_file: the embedding table to debias.
        debiaser_file: a saved :class:`~monai_fair.debias.VAEDebiaser` (``method="vae"``) or eraser
            (``"leace"``/``"inlp"``) from a training run (``models/<method>.pt``).
        output_file: the debiased table (``.npz``, ``.csv`` or ``.parquet``).
        method: the kind of the saved debiaser.
        output: the VAE's debiased embedding (``recon_mean``, ``recon_sample``, ``latent_mu``).
        demo: the debiaser was trained on demo data (the report says so).
        load_kwargs: further arguments of ``load_embedding_table``.

    Returns:
        ``{"table", "summary_json", "report_html"}`` paths.
    """
    import json

    from monai_fair.data.embeddings import write_embedding_table
    from monai_fair.report.html import render_study_html, write_html

    load_kwargs.setdefault("label_columns", ())
    table = load_embedding_table(table_file, **load_kwargs)
    debiaser = VAEDebiaser() if method == "vae" else (INLPEraser() if method == "inlp" else LeaceEraser())
    debiaser = _load(debiaser, Path(debiaser_file))
    x = _transform(debiaser, table.embeddings, output)
    names = table.code_maps.get("sex", {})
    sex_names = [names.get(int(c), "unknown") for c in table.sex]
    columns = {
        "patient_hash": np.asarray(table.patient_hash, dtype=str),  # fixed width: NPZ is read without pickle
        "sex": np.asarray(["" if n == "unknown" else n for n in sex_names], dtype=str),
        "age": table.age,
    }
    path = write_embedding_table(output_file, x, columns)
    change = float(np.linalg.norm(x - table.embeddings, axis=1).mean()) if x.shape == table.embeddings.shape else None
    summary = {
        "data": "DEMO-TRAINED DEBIASER" if demo else "real data",
        "input": Path(table_file).name,
        "rows": len(table),
        "input size": table.dim,
        "output size": int(x.shape[1]),
        "method": method,
        "output": output if method == "vae" else "erased",
        "sex counts": {k: sex_names.count(k) for k in sorted(set(sex_names))},
        "ages known": int(np.isfinite(table.age).sum()),
        "mean L2 change": change,
        "notes": {k: int(v) for k, v in table.notes.items()},
    }
    out = Path(path).parent
    (out / "inference.json").write_text(json.dumps(summary, indent=2))
    text = render_study_html(
        "Debiased embeddings",
        settings={k: json.dumps(v) if isinstance(v, dict) else v for k, v in summary.items()},
        demo=demo,
        data_label=summary["data"],
        notes=[f"Debiased table: {Path(path).name} (hashed ids, sex, age and {x.shape[1]} columns emb_<i>)."],
    )
    report = write_html(text, out / "report.html")
    logger.info("debiased %d embeddings (%s, %s) -> %s", len(table), method, output, path)
    return {"table": str(path), "summary_json": str(out / "inference.json"), "report_html": report}


def debias_ct_folder(
    ct_dir: str | os.PathLike,
    debiaser_file: str | os.PathLike,
    output_dir: str | os.PathLike,
    method: str = "vae",
    output: str = "recon_mean",
    embedder: Any | None = None,
    roi_size: Sequence[int] = (64, 64, 32),
    device: str | torch.device = "cpu",
    demo: bool = False,
) -> dict[str, str]:
    """Encode a folder of CT DICOM series (:class:`~monai_fair.data.ct_embeddings.CTEmbedder`, header demographics,
    PHI-safe) to ``<output_dir>/ct_embeddings.npz``, then debias it with :func:`debias_embedding_table` to
    ``<output_dir>/debiased_embeddings.npz`` with its report.

    The debiaser must have been trained on embeddings of the same encoder (same size).
    """
    from monai_fair.data.ct_embeddings import CTEmbedder

    embedder = embedder if embedder is not None else CTEmbedder(roi_size=roi_size, device=device)
    out = Path(output_dir)
    table = embedder.embed_dicom_folder(ct_dir, out / "ct_embeddings.npz")
    paths = debias_embedding_table(
        table, debiaser_file, out / "debiased_embeddings.npz", method=method, output=output, demo=demo
    )
    return {"embeddings": str(table), **paths}


def _fit(debiaser: Any, table: EmbeddingTable, label_index: int = 0) -> Any:
    if isinstance(debiaser, VAEDebiaser):  # the task labels feed the VAE's task head only when task_weight > 0
        labels = table.labels[:, label_index] if table.labels.ndim == 2 and table.labels.shape[1] else None
        return debiaser.fit(table.embeddings, table.sex, table.age, labels=labels)
    return debiaser.fit(table.embeddings, table.sex)


def _transform(debiaser: Any, x: np.ndarray, output: str) -> np.ndarray:
    if isinstance(debiaser, VAEDebiaser):
        return debiaser.transform(x, output=output).numpy()
    return np.asarray(debiaser.transform(x), dtype=np.float32)


def _save(debiaser: Any, path: Path) -> None:
    if isinstance(debiaser, VAEDebiaser):
        debiaser.save(path)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"mean": debiaser.mean, "projection": debiaser.projection, "rank": int(debiaser.rank)}, path)


def _load(debiaser: Any, path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"no saved debiaser at {path}: run configs/train.json first.")
    if isinstance(debiaser, VAEDebiaser):
        return VAEDebiaser.load(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    debiaser.mean, debiaser.projection, debiaser.rank = state["mean"], state["projection"], int(state["rank"])
    return debiaser


def _numeric(values: Mapping[str, Any]) -> dict[str, float]:
    return {
        k: float(v) for k, v in values.items() if isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)
    }


class EmbeddingDebiasStudy:
    """One seed: fit the representation debiasers, judge every representation with fresh probes, poison, sweep.

    Args:
        tables: ``{"train": EmbeddingTable, "eval": EmbeddingTable}`` (see :func:`load_embedding_splits`).
        debiasers: ``{name: debiaser}``: :class:`~monai_fair.debias.VAEDebiaser`,
            :class:`~monai_fair.debias.LeaceEraser` or :class:`~monai_fair.debias.INLPEraser` (fresh instances).
        methods: the names of ``debiasers`` to run, in report order.
        spec: the fairness spec (attribute ``sex``, reference group, bias metric).
        output_dir: this seed's report folder (``results.json`` of the seed).
        ckpt_dir: this seed's checkpoint folder (``<method>.pt``).
        label: the task label column (default the first of the tables).
        output: the VAE's debiased embedding, one of ``recon_mean``, ``recon_sample``, ``latent_mu``.
        probes: probe kinds of the attribute probes (``linear`` and a non-linear one, ``hgb`` or ``mlp``).
        task_probe: probe kind of the downstream task.
        probe_fraction: share of the evaluation table in the probe-test part.
        poison_group: the sex code whose labels are flipped (NLST coding here: F=0, M=1).
        poison_fractions: flip rates of the poisoning experiment (empty: none).
        latent_sizes: latent sizes of the sweep of each VAE method (empty: none).
        n_bootstrap: resamples of the probe-test part for the intervals.
        ci_level: interval level.
        seed: the seed (probe split, probes, resamples, flips).
    """

    def __init__(
        self,
        tables: Mapping[str, EmbeddingTable],
        debiasers: Mapping[str, Any],
        methods: Sequence[str],
        spec: FairnessSpec,
        output_dir: str | os.PathLike,
        ckpt_dir: str | os.PathLike,
        label: str | None = None,
        output: str = "recon_mean",
        probes: Sequence[str] = ("linear", "hgb"),
        task_probe: str = "linear",
        probe_fraction: float = 0.5,
        poison_group: int = 0,
        poison_fractions: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
        latent_sizes: Sequence[int] = (),
        n_bootstrap: int = 200,
        ci_level: float = 0.95,
        seed: int = 0,
    ) -> None:
        missing = [k for k in ("train", "eval") if k not in tables]
        if missing:
            raise ValueError(f"tables needs 'train' and 'eval' embedding tables; missing {missing}.")
        unknown = [m for m in methods if m not in debiasers]
        if unknown:
            raise ValueError(f"methods {unknown} have no debiaser; configured: {sorted(debiasers)}.")
        if ORIGINAL in methods:
            raise ValueError(f"{ORIGINAL!r} names the undebiased embeddings; pick another method name.")
        self.train, self.eval = tables["train"], tables["eval"]
        if self.train.dim != self.eval.dim:
            raise ValueError(f"train embeddings have {self.train.dim} features, evaluation ones {self.eval.dim}.")
        names = self.eval.label_names
        self.label = names[0] if label is None else str(label)
        if self.label not in names:
            raise ValueError(f"label {self.label!r} is not a label column of the tables ({names}).")
        self.label_index = names.index(self.label)
        self.debiasers, self.methods, self.spec = dict(debiasers), list(methods), spec
        self.output_dir, self.ckpt_dir = Path(output_dir), Path(ckpt_dir)
        self.output, self.probes, self.task_probe = output, tuple(probes), task_probe
        self.probe_fraction = float(probe_fraction)
        self.poison_group, self.poison_fractions = int(poison_group), [float(p) for p in poison_fractions]
        self.latent_sizes = [int(k) for k in latent_sizes]
        self.n_bootstrap, self.ci_level, self.seed = int(n_bootstrap), float(ci_level), int(seed)
        bad = [f for f in self.poison_fractions if not 0.0 <= f <= 1.0]
        if bad:
            raise ValueError(f"poison_fractions must be flip rates in [0, 1], got {bad}.")
        unknown_probes = [p for p in (*self.probes, task_probe) if p not in PROBE_KINDS]
        if unknown_probes:
            raise ValueError(f"unknown probe kind(s) {unknown_probes}; choose among {PROBE_KINDS}.")
        if output not in VAE_OUTPUTS:
            raise ValueError(f"output must be one of {VAE_OUTPUTS}, got {output!r}.")
        if not 0.0 < self.probe_fraction < 1.0 or any(k < 1 for k in self.latent_sizes):
            raise ValueError("probe_fraction must be in (0, 1) and latent_sizes positive.")
        if spec.reference is None:
            raise ValueError("the fairness spec needs a reference group (e.g. privileged 'M') for the task's EOD.")
        self.reference = int(spec.reference)

    # ---------------------------------------------------------------- pieces
    def _labels(self, table: EmbeddingTable) -> np.ndarray:
        y = table.labels[:, self.label_index]
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"label {self.label!r} must be binary 0/1 for the task probe.")
        return y.astype(np.int64)

    def judge(self, x: np.ndarray, index: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
        """Fresh attribute and task probes of representation ``x`` of the evaluation table (probe-train/test)."""
        a, b = index
        ev, y = self.eval, self._labels(self.eval)
        kw = dict(n_bootstrap=self.n_bootstrap, ci_level=self.ci_level, seed=self.seed)
        out = probe_attributes(x[a], x[b], ev.sex[a], ev.sex[b], ev.age[a], ev.age[b], probes=self.probes, **kw)
        task = probe_task(
            x[a], x[b], y[a], y[b], ev.sex[b], self.reference, probe=self.task_probe, metric=self.spec.metric, **kw
        )
        out.update(_numeric(task))
        return out

    def poison(self, x: np.ndarray, index: tuple[np.ndarray, np.ndarray], fraction: float) -> dict[str, float]:
        """Task probe of ``x`` fitted on probe-train labels with ``fraction`` of ``poison_group`` flipped."""
        a, b = index
        ev, y = self.eval, self._labels(self.eval)
        flipped, where = flip_group_labels(y[a], ev.sex[a], self.poison_group, fraction, seed=self.seed)
        task = probe_task(
            x[a],
            x[b],
            flipped,
            y[b],
            ev.sex[b],
            self.reference,
            probe=self.task_probe,
            metric=self.spec.metric,
            n_bootstrap=self.n_bootstrap,
            ci_level=self.ci_level,
            seed=self.seed,
        )
        return {"flip_rate": fraction, "n_flipped": float(len(where)), **_numeric(task)}

    def _fitted(self, method: str, fit: bool) -> Any:
        debiaser, path = self.debiasers[method], self.ckpt_dir / f"{method}.pt"
        if not fit:
            return _load(debiaser, path)
        _fit(debiaser, self.train, self.label_index)
        _save(debiaser, path)
        if isinstance(debiaser, VAEDebiaser):  # the network form, for MONAI tooling (state dict, weights_only)
            output = "latent_mu" if self.output == "latent_mu" else "recon_mean"
            net = DebiasedEmbedding.from_debiaser(debiaser, output)
            torch.save(net.state_dict(), self.ckpt_dir / f"{method}_network.pt")
        return debiaser

    # ------------------------------------------------------------------- run
    def run(self, fit: bool = True) -> dict[str, Any]:
        """Fit (or reload with ``fit=False``) every method and return the seed's records.

        Returns:
            ``{"seed", "records", "trajectories", "rho", "spec"}`` like :meth:`~monai_fair.study.DebiasingStudy.run`
            (``rho`` is ``None``: nothing is selected under an accuracy bound here).
        """
        ev = self.eval
        index = probe_split(np.stack([ev.sex, self._labels(ev)], 1), self.probe_fraction, seed=self.seed)
        representations = {ORIGINAL: ev.embeddings}
        records: list[dict[str, Any]] = []
        trajectories: dict[str, dict[str, list[float]]] = {}
        seconds: dict[str, float] = {ORIGINAL: 0.0}
        for method in self.methods:
            start = time.perf_counter()
            debiaser = self._fitted(method, fit)
            representations[method] = _transform(debiaser, ev.embeddings, self.output)
            seconds[method] = time.perf_counter() - start
            if isinstance(debiaser, VAEDebiaser) and debiaser.history:
                h = debiaser.history
                trajectories[method] = {"step": [r["epoch"] for r in h]} | {
                    k: [r[k] for r in h] for k in ("recon", "kl", "sex_loss", "age_loss", "decorrelation", "lambda")
                }
        for name, x in representations.items():
            rec = {"seed": self.seed, "method": name, "split": "test", **self.judge(x, index), "seconds": seconds[name]}
            records.append(rec)
            logger.info(
                "seed %d %s: sex AUC %s, task AUC %.3f, %s %.3f",
                self.seed,
                name,
                ", ".join(f"{p} {rec.get(f'{p}_sex_auc', float('nan')):.3f}" for p in self.probes),
                rec["task_auc"],
                self.spec.metric,
                rec.get(f"task_{self.spec.metric}", float("nan")),
            )
            for fraction in self.poison_fractions:
                poisoned = self.poison(x, index, fraction)
                records.append(
                    {"seed": self.seed, "method": poisoned_method(name, fraction), "split": "test", **poisoned}
                )
        if fit:
            for method in self.methods:
                debiaser = self.debiasers[method]
                if not isinstance(debiaser, VAEDebiaser):
                    continue
                for k in self.latent_sizes:
                    swept = VAEDebiaser(**{**debiaser.config, "latent_size": k}, device=debiaser.device)
                    x = _transform(_fit(swept, self.train, self.label_index), ev.embeddings, self.output)
                    rec = {"seed": self.seed, "method": sweep_method(method, k), "split": "test", "latent_size": k}
                    records.append({**rec, **self.judge(x, index)})
        results = {
            "seed": self.seed,
            "records": records,
            "trajectories": trajectories,
            "rho": None,
            "spec": self.spec.as_dict(),
        }
        save_seed_results(self.output_dir, results)
        return results


class EmbeddingStudyReport(StudyReport):
    """The report of an embedding-debiasing study (:func:`~monai_fair.report.embedding_report.write_embedding_report`).

    Args:
        output_dir: report folder.
        spec: the study's fairness spec (its metric is the task bias reported).
        methods: the debiasing methods, in report order (``original`` is put first).
        probes: the attribute probe kinds recorded.
        title: report title.
        settings: run settings shown in the report and logged at start-up.
        demo: the data are generated demo data.
        name: the study's name, prefixing the start-up log line.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        spec: FairnessSpec | None = None,
        methods: Sequence[str] = (),
        probes: Sequence[str] = ("linear", "hgb"),
        title: str = "Embedding debiasing study",
        settings: Mapping[str, Any] | None = None,
        demo: bool = False,
        name: str = "study",
    ) -> None:
        super().__init__(output_dir, spec=spec, title=title, settings=settings, demo=demo, name=name)
        self.representations = [ORIGINAL, *[m for m in methods if m != ORIGINAL]]
        self.probes = tuple(probes)

    def write(self, seed_runs: Iterable[Mapping[str, Any] | None], output_dir: str | os.PathLike | None = None):
        """Write the report of ``seed_runs`` (rank 0 only under ``torch.distributed``; others return ``None``)."""
        if not is_main_process():
            return None
        from monai_fair.report.embedding_report import write_embedding_report

        results = collect_study_results(seed_runs, self.spec.metric, self.spec.epsilon)
        paths = write_embedding_report(
            results,
            self.output_dir if output_dir is None else output_dir,
            representations=self.representations,
            probes=self.probes,
            metric=self.spec.metric,
            title=self.title,
            settings=self.shown_settings(),
            demo=self.demo,
        )
        logger.info("report written to %s", paths["report_html"])
        return paths
