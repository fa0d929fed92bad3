# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""One seed of the counterfactual-invariance audit study (``cxr_counterfactual_audit``) and its report.

Per seed: load the split's images, fit the conditional generator on the training images, obtain the classifiers
(the demo trains two with the same network and the same labels, in which the unprivileged group's positives are
planted as negatives: ``sex_dependent`` sees the image, ``invariant`` sees the image re-rendered with one attribute
value, so it cannot use the attribute; or the user's classifiers are given), audit each on the test images
(:class:`~monai_fair.audit.CounterfactualAudit`) and return records for :class:`CounterfactualAuditReport`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from monai_fair.audit import AttributeNeutralised, CounterfactualAudit, fit_generator, load_classifier, stack_images

from .data_source import SplitMapping
from .report import StudyReport

__all__ = [
    "AuditData",
    "CounterfactualAuditReport",
    "CounterfactualAuditStudy",
    "audit_test_table",
    "check_audit_inputs",
    "check_audit_settings",
    "planted_labels",
    "train_classifier",
]

logger = logging.getLogger("monai_fair")

TEST_NAMES = {
    "gcm": "GCM (cross-fitted)",
    "crt": "CRT",
    "paired_t": "paired t (paper)",
    "flip": "counterfactual flip",
    "dp": "DP test",
    "eo": "EO test",
}


def check_audit_inputs(classifiers: Mapping[str, Any] | None) -> None:
    """Check the classifiers of ``inference.json`` before anything is read or trained.

    Raises:
        BundleConfigError: no classifier, a classifier without a file, or a file that does not exist.
    """
    from .errors import BundleConfigError

    if not classifiers:
        raise BundleConfigError("inference.json audits a classifier you supply: --classifier_file /path/model.ts.")
    for name, value in classifiers.items():
        if isinstance(value, nn.Module):
            continue
        if value is None:
            raise BundleConfigError(
                f"classifier {name!r} has no file: pass --classifier_file /path/model.ts (a TorchScript file)."
            )
        if not os.path.isfile(os.fspath(value)):
            raise BundleConfigError(f"classifier {name!r}: file {os.fspath(value)!r} not found.")


def check_audit_settings(
    tests: Sequence[str],
    alpha: float,
    regressor: str,
    n_folds: int,
    n_draws: int,
    image_size: int,
    channels: int,
) -> None:
    """Check the audit's settings before anything is read or trained.

    Raises:
        BundleConfigError: the first bad setting, naming its override and what it accepts.
    """
    from monai_fair.audit import INVARIANCE_TESTS, REGRESSORS

    from .errors import BundleConfigError

    def fail(key: str, value: Any, expected: str) -> BundleConfigError:
        return BundleConfigError(f"--{key} {value!r}: {expected}")

    if isinstance(tests, str) or not tests or any(t not in INVARIANCE_TESTS for t in tests):
        raise fail("tests", tests, f"expected a list of {sorted(INVARIANCE_TESTS)}, e.g. \"['gcm', 'crt']\".")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise fail("alpha", alpha, "expected a level in (0, 1), e.g. 0.05.")
    if regressor not in REGRESSORS:
        raise fail("regressor", regressor, f"allowed: {', '.join(REGRESSORS)}.")
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 2:
        raise fail("n_folds", n_folds, "expected an integer >= 2 (cross-fitting folds).")
    if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 1:
        raise fail("n_draws", n_draws, "expected an integer >= 1 (CRT null draws).")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8 or image_size % 8:
        raise fail("image_size", image_size, "expected a multiple of 8 (the generator halves it three times).")
    if channels not in (1, 3):
        raise fail("channels", channels, "expected 1 (grey) or 3 (RGB).")


def planted_labels(labels: torch.Tensor, attributes: torch.Tensor, unprivileged: int) -> torch.Tensor:
    """The labels with every positive of the ``unprivileged`` group set to negative: a classifier trained on them
    learns to recognise the group (the planted dependence)."""
    y = torch.as_tensor(labels).float().clone()
    y[torch.as_tensor(attributes).long() == int(unprivileged)] = 0.0
    return y


def train_classifier(
    network: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
) -> nn.Module:
    """Train a binary classifier (one logit) with BCE and Adam on shuffled batches; returns it in eval mode."""
    network.train()
    opt = torch.optim.Adam(network.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(int(seed))
    y = torch.as_tensor(labels).float().reshape(-1)
    for _ in range(int(epochs)):
        perm = torch.randperm(images.shape[0], generator=gen)
        for start in range(0, len(perm), batch_size):
            idx = perm[start : start + batch_size]
            if idx.numel() < 2:
                continue
            loss = loss_fn(network(images[idx]).reshape(-1), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return network.eval()


def _binary(data: Sequence[Mapping[str, Any]], attribute: str, limit: int | None, seed: int) -> list[dict]:
    """Rows whose attribute code is 0 or 1 (others are counted and left out), at most ``limit`` (seeded draw)."""
    keep = [dict(d) for d in data if int(d.get(attribute, -1)) in (0, 1)]
    dropped = len(data) - len(keep)
    if dropped:
        logger.info("counterfactual audit: %d sample(s) without a binary %s code left out", dropped, attribute)
    if limit is not None and len(keep) > limit:
        idx = np.sort(np.random.default_rng(seed).choice(len(keep), size=int(limit), replace=False))
        keep = [keep[i] for i in idx]
    return keep


class AuditData(SplitMapping):
    """The images of an audit of a given classifier: a manifest CSV (image, attribute and optional label columns) or a
    folder with one subfolder per attribute value (``F/``, ``M/`` for sex), split at random into the generator's
    training images (``train``) and the audited images (``test``).

    Args:
        input_dir: folder with one subfolder per attribute value (named like the manifest values: ``F``/``female``).
        manifest_file: manifest CSV (paths relative to its folder); exactly one of the two.
        attribute: the attribute column (``sex``: the shared F/M/O codes).
        label: the label column (for BA/EOD and the EO test), or None.
        image_column: the manifest's image column.
        generator_fraction: share of the images that train the generator; the rest are audited.
        seed: split seed.

    Raises:
        ValueError: neither or both sources, a missing folder or file, or too few images.
    """

    def __init__(
        self,
        input_dir: str | os.PathLike | None = None,
        manifest_file: str | os.PathLike | None = None,
        attribute: str = "sex",
        label: str | None = None,
        image_column: str = "image",
        generator_fraction: float = 0.5,
        seed: int = 0,
    ) -> None:
        from monai_fair.data.manifest import frame_to_data_dicts, read_csv_table, read_manifest

        if (input_dir is None) == (manifest_file is None):
            raise ValueError(
                "the audit needs exactly one of input_dir (--input_dir, one subfolder per attribute value) or "
                f"manifest_file (--manifest_file); got input_dir={input_dir!r}, manifest_file={manifest_file!r}."
            )
        if not 0.0 < generator_fraction < 1.0:
            raise ValueError(f"generator_fraction must be in (0, 1), got {generator_fraction}.")
        if manifest_file is not None:
            path = Path(manifest_file)
            if not path.is_file():
                raise ValueError(f"manifest_file {str(path)!r} not found.")
            frame = read_csv_table(path, "manifest")
            label_column = label if label is not None else "_no_label"
            if label is None:
                frame[label_column] = 0.0
            manifest = read_manifest(
                frame,
                label_column,
                [attribute],
                image_column=image_column,
                patient_column=None,
                split_column=None,
                base_dir=path.parent,
            )
            rows = frame_to_data_dicts(manifest.frame, label_column, [attribute])
            self.code_maps = dict(manifest.code_maps)
        else:
            rows, self.code_maps = self._folder(Path(input_dir), attribute)
            label = None
        if label is None:
            for r in rows:
                r.pop("label", None)
        if len(rows) < 40:
            raise ValueError(f"only {len(rows)} image(s) found; the audit needs at least 40.")
        order = np.random.default_rng(int(seed)).permutation(len(rows))
        cut = int(round(generator_fraction * len(rows)))
        self.splits = {"train": [rows[i] for i in order[:cut]], "test": [rows[i] for i in order[cut:]]}

    @staticmethod
    def _folder(root: Path, attribute: str) -> tuple[list[dict[str, Any]], dict[str, dict[int, str]]]:
        from monai_fair.data.codes import SEX_NAMES, encode_sex

        from .inference import IMAGE_SUFFIXES

        if not root.is_dir():
            raise ValueError(f"input_dir {str(root)!r} is not a folder.")
        groups = sorted(p for p in root.iterdir() if p.is_dir())
        if len(groups) < 2:
            raise ValueError(f"input_dir {str(root)!r} needs one subfolder per {attribute} value (e.g. F/ and M/).")
        if attribute == "sex":
            codes = {g.name: encode_sex(g.name) for g in groups}
            names = dict(SEX_NAMES)
        else:
            codes = {g.name: i for i, g in enumerate(groups)}
            names = {i: g.name for i, g in enumerate(groups)}
        rows = [
            {"image": str(f.resolve()), attribute: codes[g.name]}
            for g in groups
            for f in sorted(g.rglob("*"))
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
        ]
        return rows, {attribute: names}


class CounterfactualAuditStudy:
    """One seed of the audit study.

    Args:
        data: ``{"train": [...], "test": [...]}`` data dicts (e.g. a :class:`~monai_fair.study.StudySplits`).
        transform: MONAI dictionary transform that loads an image into the generator's space ``(C, H, W)`` in [0, 1].
        generator: an untrained conditional generator (``loss``, ``encode``, ``decode``), or a fitted one with
            ``fit_generator=False``.
        spec: the study's :class:`~monai_fair.metrics.FairnessSpec` (its first attribute is flipped).
        classifiers: ``{name: module or TorchScript path}`` to audit; None: the demo's two trained classifiers.
        classifier_factory: builds an untrained network for the demo classifiers.
        unprivileged: the group whose positives are planted as negatives (demo classifiers).
        generator_epochs, generator_lr, beta, independence_weight: generator training.
        classifier_epochs, classifier_lr: demo classifier training.
        max_train, max_test: at most this many images per split (seeded draw; None: all).
        audit_kwargs: settings of :class:`~monai_fair.audit.CounterfactualAudit` (tests, alpha, n_draws, ...).
        score_kwargs: ``input_size`` / ``input_channels`` / ``output_index`` of the user's classifiers.
        checkpoint_dir: where the generator and classifier state dicts are saved (None: not saved).
        n_examples: counterfactual pairs kept for the report.
        fit: train the generator and the demo classifiers and save them to ``checkpoint_dir``; False: load them from
            there (``generator.pt``, ``classifier_<name>.pt``) and only audit.
        seed: the seed.
        batch_size: training batch size.
        select_threshold: decide at each classifier's balanced-accuracy-optimal threshold on the labelled ``val``
            split (as the other studies do); otherwise, or without such a split, at the audit's ``threshold``.
    """

    def __init__(
        self,
        data: Mapping[str, Sequence[Mapping[str, Any]]],
        transform: Callable,
        generator: nn.Module,
        spec: Any,
        classifiers: Mapping[str, nn.Module | str] | None = None,
        classifier_factory: Callable[[], nn.Module] | None = None,
        unprivileged: int = 0,
        generator_epochs: int = 30,
        generator_lr: float = 2e-3,
        beta: float = 1.0,
        independence_weight: float = 10.0,
        classifier_epochs: int = 10,
        classifier_lr: float = 1e-3,
        max_train: int | None = None,
        max_test: int | None = None,
        audit_kwargs: Mapping[str, Any] | None = None,
        score_kwargs: Mapping[str, Any] | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        n_examples: int = 4,
        fit: bool = True,
        seed: int = 0,
        batch_size: int = 64,
        select_threshold: bool = True,
    ) -> None:
        if classifiers is None and classifier_factory is None:
            raise ValueError("give the classifiers to audit, or a classifier_factory for the demo's two classifiers.")
        self.data, self.transform, self.generator, self.spec = data, transform, generator, spec
        self.attribute = spec.attributes[0]
        self.classifiers, self.classifier_factory = classifiers, classifier_factory
        self.unprivileged = int(unprivileged)
        self.generator_epochs, self.generator_lr = int(generator_epochs), float(generator_lr)
        self.beta, self.independence_weight = float(beta), float(independence_weight)
        self.classifier_epochs, self.classifier_lr = int(classifier_epochs), float(classifier_lr)
        self.max_train, self.max_test = max_train, max_test
        self.audit_kwargs, self.score_kwargs = dict(audit_kwargs or {}), dict(score_kwargs or {})
        self.checkpoint_dir, self.n_examples, self.fit = checkpoint_dir, int(n_examples), bool(fit)
        self.seed, self.batch_size = int(seed), int(batch_size)
        self.select_threshold = bool(select_threshold)

    def _split(self, name: str, limit: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        rows = _binary(self.data[name], self.attribute, limit, self.seed)
        if len(rows) < 20:
            raise ValueError(f"the {name} split has {len(rows)} images with a binary {self.attribute!r}; need >= 20.")
        images = stack_images(rows, self.transform)
        a = torch.tensor([int(r[self.attribute]) for r in rows])
        labels = torch.tensor([float(r["label"]) for r in rows]) if all("label" in r for r in rows) else None
        return images, a, labels

    def _demo_classifiers(self, x: torch.Tensor, a: torch.Tensor, y: torch.Tensor | None) -> dict[str, nn.Module]:
        if y is None:
            raise ValueError("the demo classifiers need labels in the train split.")
        planted = planted_labels(y, a, self.unprivileged)
        torch.manual_seed(self.seed)
        dependent = train_classifier(
            self.classifier_factory(),
            x,
            planted,
            self.classifier_epochs,
            self.batch_size,
            self.classifier_lr,
            self.seed,
        )
        torch.manual_seed(self.seed)
        invariant = AttributeNeutralised(self.classifier_factory(), self.generator, reference=self.unprivileged)
        train_classifier(
            invariant.classifier,
            invariant.neutralise(x),
            planted,
            self.classifier_epochs,
            self.batch_size,
            self.classifier_lr,
            self.seed,
        )
        return {"sex_dependent" if self.attribute == "sex" else "dependent": dependent, "invariant": invariant}

    def _validation_thresholds(self, classifiers: Mapping[str, nn.Module]) -> dict[str, float]:
        """Each classifier's balanced-accuracy-optimal threshold on the validation split (true labels), as the
        studies choose it; none when there is no labelled validation split."""
        from monai_fair.audit import score_classifier
        from monai_fair.metrics import best_balanced_accuracy_threshold

        if "val" not in self.data:
            return {}
        x_val, _, y_val = self._split("val", self.max_test)
        if y_val is None or len(set(y_val.tolist())) < 2:
            return {}
        out = {}
        for name, clf in classifiers.items():
            p = score_classifier(clf, x_val, batch_size=128, **self.score_kwargs)
            out[name] = best_balanced_accuracy_threshold(p.double(), y_val.double())[0]
        logger.info("seed %d: validation thresholds %s", self.seed, {k: round(v, 4) for k, v in out.items()})
        return out

    def _saved(self, name: str) -> dict[str, torch.Tensor]:
        path = Path(self.checkpoint_dir or "") / name
        if self.checkpoint_dir is None or not path.is_file():
            raise ValueError(f"no saved {name} in checkpoint_dir {self.checkpoint_dir!r}: run train.json first.")
        return torch.load(path, map_location="cpu", weights_only=True)

    def _load_generator(self) -> None:
        self.generator.load_state_dict(self._saved("generator.pt"))

    def _load_demo_classifiers(self) -> dict[str, nn.Module]:
        names = ["sex_dependent" if self.attribute == "sex" else "dependent", "invariant"]
        dependent = self.classifier_factory()
        dependent.load_state_dict(self._saved(f"classifier_{names[0]}.pt"))
        invariant = AttributeNeutralised(self.classifier_factory(), self.generator, reference=self.unprivileged)
        invariant.load_state_dict(self._saved(f"classifier_{names[1]}.pt"))
        return {names[0]: dependent.eval(), names[1]: invariant.eval()}

    def run(self) -> dict[str, Any]:
        """Fit, audit and return ``{"seed", "records", "trajectories", "examples", "generator_history"}``."""
        x_train, a_train, y_train = self._split("train", self.max_train)
        history: list[dict[str, float]] = []
        if self.fit:
            torch.manual_seed(self.seed)
            history = fit_generator(
                self.generator,
                x_train,
                a_train,
                self.generator_epochs,
                self.batch_size,
                self.generator_lr,
                self.beta,
                self.independence_weight,
                self.seed,
            )
            logger.info("seed %d: generator trained, last epoch %s", self.seed, history[-1] if history else {})
        else:
            self._load_generator()
        self.generator.eval()
        if self.classifiers is not None:
            classifiers = {k: load_classifier(v) for k, v in self.classifiers.items()}
        elif self.fit:
            classifiers = self._demo_classifiers(x_train, a_train, y_train)
        else:
            classifiers = self._load_demo_classifiers()
        x_test, a_test, y_test = self._split("test", self.max_test)
        auditor = CounterfactualAudit(self.generator, self.spec, seed=self.seed, **self.audit_kwargs)
        thresholds = self._validation_thresholds(classifiers) if self.select_threshold else {}
        cfs = auditor.counterfactuals(x_test)
        records, examples = [], {}
        for name, clf in classifiers.items():
            outcome = auditor.audit(
                clf, x_test, a_test, y_test, counterfactuals=cfs, threshold=thresholds.get(name), **self.score_kwargs
            )
            rec = {"seed": self.seed, "method": name, "split": "test", **auditor.record(outcome)}
            records.append(rec)
            t = outcome["tests"]
            logger.info(
                "seed %d, %s: GCM p=%.3g, CRT p=%.3g, flip rate %.3f, DP p=%.3g",
                self.seed,
                name,
                t["gcm"].p_value if "gcm" in t else float("nan"),
                t["crt"].p_value if "crt" in t else float("nan"),
                t["flip"].effect_size,
                t["dp"].p_value,
            )
            k = min(self.n_examples, x_test.shape[0])
            examples[name] = {
                "original": x_test[:k].numpy(),
                "a": a_test[:k].numpy(),
                "a0": cfs[1][:k].numpy(),
                "a1": cfs[2][:k].numpy(),
                "p": outcome["scores"][:k].numpy(),
                "p0": outcome["scores_a0"][:k].numpy(),
                "p1": outcome["scores_a1"][:k].numpy(),
            }
        if self.checkpoint_dir is not None and self.fit:
            out = Path(self.checkpoint_dir)
            out.mkdir(parents=True, exist_ok=True)
            torch.save(self.generator.state_dict(), out / "generator.pt")
            for name, clf in classifiers.items():
                if self.classifiers is None:
                    torch.save(clf.state_dict(), out / f"classifier_{name}.pt")
        return {
            "seed": self.seed,
            "records": records,
            "trajectories": {},
            "examples": examples,
            "generator_history": history,
        }


def audit_test_table(per_seed: pd.DataFrame, alpha: float, tests: Sequence[str] = tuple(TEST_NAMES)) -> pd.DataFrame:
    """Per classifier and test: seeds rejecting at ``alpha`` (k/N), median p-value and mean ± std effect size.

    Args:
        per_seed: the per-seed records (``<t>_p_value``, ``<t>_rejects``, ``<t>_effect`` columns).
        alpha: the level.
        tests: test names, in table order (absent ones are skipped).
    """
    from monai_fair.report import format_mean_std

    rows = []
    for method in dict.fromkeys(per_seed["method"]):
        sub = per_seed[per_seed["method"] == method]
        for t in tests:
            if f"{t}_p_value" not in sub.columns:
                continue
            p = sub[f"{t}_p_value"].to_numpy(dtype=float)
            rej = sub[f"{t}_rejects"].to_numpy(dtype=float)
            eff = sub[f"{t}_effect"].to_numpy(dtype=float)
            fin = np.isfinite(p)
            rows.append(
                {
                    "classifier": str(method),
                    "test": TEST_NAMES.get(t, t),
                    f"rejects at α={alpha:g}": f"{int(np.nansum(rej))}/{int(fin.sum())}",
                    "median p": f"{np.median(p[fin]):.3g}" if fin.any() else "n/a",
                    "effect (mean ± std)": format_mean_std(
                        float(np.nanmean(eff)) if np.isfinite(eff).any() else float("nan"),
                        float(np.nanstd(eff, ddof=1)) if np.isfinite(eff).sum() > 1 else float("nan"),
                    ),
                }
            )
    return pd.DataFrame(rows)


class CounterfactualAuditReport(StudyReport):
    """:class:`~monai_fair.study.StudyReport` of the audit: the standard files (results JSON/CSV, summary, bars) plus
    the invariance test table (``tests.csv``, ``tests.md``), example counterfactual pairs (``pairs_<classifier>.png``)
    and a report page with both tables.

    Args:
        alpha: the tests' level (for the table).
        others: see :class:`~monai_fair.study.StudyReport`.
    """

    def __init__(self, *args: Any, alpha: float = 0.05, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alpha = float(alpha)

    def write(self, seed_runs, output_dir=None):
        """Write the report; returns the written paths (rank 0 only)."""
        from monai_fair.report import (
            StudyResults,
            plot_counterfactual_pairs,
            render_study_html,
            summary_display_table,
            write_csv,
            write_html,
        )
        from monai_fair.report.aggregate import aggregate_results

        runs = [r for r in seed_runs if r is not None]
        paths = super().write(runs, output_dir)
        if paths is None:
            return None
        out = Path(self.output_dir if output_dir is None else output_dir)
        label = "DEMO DATA (synthetic)" if self.demo else None
        results = StudyResults.from_json(paths["results_json"])
        per_seed = results.to_dataframe()
        table = audit_test_table(per_seed, self.alpha)
        paths["tests_csv"] = write_csv(table, out / "tests.csv", label)
        from monai_fair.report import markdown_table

        head = f"**{label}**\n\n" if label else ""
        (out / "tests.md").write_text(f"# {self.title}\n\n{head}{markdown_table(table)}\n", encoding="utf-8")
        paths["tests_md"] = str(out / "tests.md")
        images = []
        names = self.spec.names([0, 1])
        for name, ex in runs[0].get("examples", {}).items():
            rows = [
                f"{names.get(int(a), a)}: p={p:.2f}; {names.get(0)} {p0:.2f} / {names.get(1)} {p1:.2f}"
                for a, p, p0, p1 in zip(ex["a"], ex["p"], ex["p0"], ex["p1"])
            ]
            p = plot_counterfactual_pairs(
                ex["original"],
                [ex["a0"], ex["a1"]],
                out / f"pairs_{name}.png",
                row_labels=rows,
                column_titles=("original", f"{self.spec.name} = {names.get(0)}", f"{self.spec.name} = {names.get(1)}"),
                title=f"Counterfactual pairs, classifier '{name}' (seed {runs[0]['seed']})",
                data_label=label,
            )
            paths[f"pairs_{name}"] = p
            images.append((f"{name}: originals and their two counterfactual versions with the classifier's p", p))
        summary = aggregate_results(results, epsilon=self.spec.epsilon)
        n = len(results.seeds)
        tables = {
            f"Invariance tests of each classifier over {n} seeds (H0: Ŷ ⊥ {self.spec.name} | U)": table,
            f"Classifier performance and fairness on the test split (mean ± std over {n} seeds)": summary_display_table(
                summary, "test", metric=self.spec.metric, epsilon=self.spec.epsilon
            ),
        }
        if "bars_test" in paths:
            images.append(("Test split: balanced accuracy and |bias| per classifier", paths["bars_test"]))
        notes = [
            "GCM: generalised covariance measure with cross-fitted regressions (default); CRT: conditional "
            "randomisation test; paired t: the paper's statistic, kept for compatibility (its null is not derived). "
            "Flip: share of images whose hard prediction changes between the two counterfactual versions (McNemar's "
            "exact test of the direction). DP/EO: independent-samples tests of positive rates / TPRs (baselines: they "
            "test parity, not invariance). U is abducted by the conditional generator; a test is only as good as U."
        ]
        text = render_study_html(
            self.title,
            tables=tables,
            images=images,
            settings=self.shown_settings(),
            demo=self.demo,
            data_label=label or str(self.settings.get("dataset", "real data")),
            notes=notes,
        )
        paths["report_html"] = write_html(text, out / "report.html")
        logger.info("audit report written to %s", paths["report_html"])
        return paths
