# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Counterfactual audit of an image classifier: fit the conditional generator, make every image's two attribute
versions, score the classifier on originals and counterfactuals and run the invariance tests on (Ŷ, A, U).

The generator has the interface of :class:`~monai_fair.networks.ConditionalVAE`: ``encode(x) -> U``,
``decode(u, a) -> x``. The classifier is any ``torch.nn.Module`` mapping images to logits (a MONAI network, or a
TorchScript file loaded by :func:`load_classifier`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .invariance import (
    InvarianceTestResult,
    counterfactual_flip_test,
    demographic_parity_test,
    equal_opportunity_test,
    run_invariance_tests,
)

__all__ = [
    "AttributeNeutralised",
    "CounterfactualAudit",
    "fit_generator",
    "load_classifier",
    "score_classifier",
    "stack_images",
]

logger = logging.getLogger(__name__)


def stack_images(data: Sequence[Mapping[str, Any]], transform: Callable, image_key: str = "image") -> torch.Tensor:
    """The images of ``data`` after ``transform`` (a MONAI dictionary transform), as one ``(N, C, H, W)`` tensor."""
    if not data:
        raise ValueError("no image to load.")
    out = []
    for d in data:
        img = transform(dict(d))[image_key]
        out.append(torch.as_tensor(getattr(img, "as_tensor", lambda: img)(), dtype=torch.float32))
    return torch.stack(out)


def load_classifier(classifier: nn.Module | str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """A classifier to audit: a module as given, or a TorchScript file (``torch.jit.save``), in eval mode.

    Raises:
        ValueError: a path that does not exist or is not a TorchScript file.
    """
    if isinstance(classifier, nn.Module):
        return classifier.to(device).eval()
    path = os.fspath(classifier)
    if not os.path.isfile(path):
        raise ValueError(f"classifier file {path!r} not found (give a TorchScript file saved with torch.jit.save).")
    try:
        return torch.jit.load(path, map_location=device).eval()
    except Exception as e:  # torch raises RuntimeError variants for non-TorchScript files
        raise ValueError(f"classifier file {path!r} is not a TorchScript file: {e}") from e


@torch.no_grad()
def score_classifier(
    classifier: nn.Module,
    images: torch.Tensor,
    batch_size: int = 128,
    output_index: int = 0,
    input_size: int | None = None,
    input_channels: int | None = None,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Sigmoid probabilities of output ``output_index`` on ``images`` ``(N, C, H, W)``.

    Args:
        classifier: the network (logits out).
        images: images in the generator's space.
        batch_size: inference batch size.
        output_index: the evaluated output column.
        input_size: resize to this side first (the classifier's own input size); None: as given.
        input_channels: repeat a single channel (or average to one) to this many; None: as given.
        device: where to run.
    """
    classifier = classifier.eval()
    out = []
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size].to(device)
        if input_size is not None and x.shape[-1] != input_size:
            x = nn.functional.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False)
        if input_channels is not None and x.shape[1] != input_channels:
            x = x.mean(1, keepdim=True) if input_channels == 1 else x[:, :1].repeat(1, input_channels, 1, 1)
        logits = classifier(x)
        logits = logits.reshape(logits.shape[0], -1)[:, output_index]
        out.append(torch.sigmoid(logits.float()).cpu())
    return torch.cat(out)


def fit_generator(
    generator: nn.Module,
    images: torch.Tensor,
    attributes: torch.Tensor,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 2e-3,
    beta: float = 1.0,
    independence_weight: float = 10.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> list[dict[str, float]]:
    """Train a conditional generator with a ``loss(x, a, beta, independence_weight)`` method (Adam, shuffled
    batches from a seeded generator).

    Returns:
        one dict of mean loss parts per epoch.
    """
    generator = generator.to(device).train()
    opt = torch.optim.Adam(generator.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(int(seed))
    a = torch.as_tensor(attributes).long()
    history = []
    for _ in range(int(epochs)):
        perm = torch.randperm(images.shape[0], generator=gen)
        sums: dict[str, float] = {}
        batches = 0
        for start in range(0, len(perm) - 1, batch_size):
            idx = perm[start : start + batch_size]
            if idx.numel() < 2:
                continue
            loss, parts = generator.loss(images[idx].to(device), a[idx].to(device), beta, independence_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            batches += 1
        history.append({k: v / max(batches, 1) for k, v in sums.items()})
    generator.eval()
    return history


class AttributeNeutralised(nn.Module):
    """``classifier(decode(encode(x), reference))``: a classifier that sees every image rendered with the same
    attribute value, so its output is a function of U alone (counterfactually invariant by construction).

    Args:
        classifier: the network applied to the neutralised image.
        generator: the conditional generator.
        reference: the attribute value every image is rendered with.
    """

    def __init__(self, classifier: nn.Module, generator: nn.Module, reference: int = 0) -> None:
        super().__init__()
        self.classifier, self.generator, self.reference = classifier, generator, int(reference)

    def neutralise(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.generator.decode(self.generator.encode(x), self.reference)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.neutralise(x))


class CounterfactualAudit:
    """Audit classifiers for counterfactual invariance in a binary attribute with a fitted generator.

    Args:
        generator: a fitted conditional generator (``encode``, ``decode``).
        spec: the study's :class:`~monai_fair.metrics.FairnessSpec` (the attribute, its reference group and the
            BA/EOD/SPD settings of the classifier's fairness figures).
        tests: invariance tests to run (:data:`~monai_fair.audit.invariance.INVARIANCE_TESTS`).
        alpha: level at which a test "rejects".
        threshold: decision threshold of the classifier's probability (Ŷ = 1[p > threshold]).
        n_folds, regressor, n_draws: settings of the tests (see :func:`~monai_fair.audit.gcm_test`).
        n_bootstrap: resamples of the BA/EOD/SPD intervals.
        batch_size: inference batch size.
        seed: seed of the tests and the bootstrap.
        device: where the networks run.
    """

    def __init__(
        self,
        generator: nn.Module,
        spec: Any,
        tests: Sequence[str] = ("gcm", "crt", "paired_t"),
        alpha: float = 0.05,
        threshold: float = 0.5,
        n_folds: int = 2,
        regressor: str = "logistic",
        n_draws: int = 500,
        n_bootstrap: int = 100,
        batch_size: int = 128,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}.")
        self.generator, self.spec = generator.eval(), spec
        self.tests, self.alpha, self.threshold = tuple(tests), float(alpha), float(threshold)
        self.n_folds, self.regressor, self.n_draws = int(n_folds), regressor, int(n_draws)
        self.n_bootstrap, self.batch_size, self.seed, self.device = int(n_bootstrap), int(batch_size), int(seed), device

    @torch.no_grad()
    def counterfactuals(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(U, x with A = 0, x with A = 1)`` of every image."""
        us, x0, x1 = [], [], []
        for start in range(0, images.shape[0], self.batch_size):
            x = images[start : start + self.batch_size].to(self.device)
            u = self.generator.encode(x)
            us.append(u.cpu())
            x0.append(self.generator.decode(u, 0).cpu())
            x1.append(self.generator.decode(u, 1).cpu())
        return torch.cat(us), torch.cat(x0), torch.cat(x1)

    def audit(
        self,
        classifier: nn.Module,
        images: torch.Tensor,
        attributes: torch.Tensor,
        labels: torch.Tensor | None = None,
        counterfactuals: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
        threshold: float | None = None,
        **score_kwargs: Any,
    ) -> dict[str, Any]:
        """Audit one classifier.

        Args:
            classifier: the network.
            images: ``(N, C, H, W)`` images in the generator's space.
            attributes: binary attribute codes ``(N,)`` (0/1).
            labels: binary labels (for BA, EOD and the EO test), or None.
            counterfactuals: :meth:`counterfactuals` of ``images``, when already computed.
            threshold: the decision threshold of this classifier (e.g. chosen on validation); None: the auditor's.
            score_kwargs: ``input_size``, ``input_channels``, ``output_index`` of :func:`score_classifier`.

        Returns:
            ``{"tests": {name: InvarianceTestResult}, "fairness": {...}, "scores", "scores_a0", "scores_a1", "u"}``;
            ``fairness`` holds BA/EOD/SPD (with labels) and ``better_than_chance``.
        """
        a = torch.as_tensor(attributes).long().reshape(-1)
        if not bool(((a == 0) | (a == 1)).all()):
            raise ValueError("the audited attribute must be binary (codes 0/1); drop other codes first.")
        u, x0, x1 = counterfactuals if counterfactuals is not None else self.counterfactuals(images)
        kw = dict(batch_size=self.batch_size, device=self.device, **score_kwargs)
        p = score_classifier(classifier, images, **kw)
        p0, p1 = score_classifier(classifier, x0, **kw), score_classifier(classifier, x1, **kw)
        thr = self.threshold if threshold is None else float(threshold)
        y_hat = (p > thr).double().numpy()
        tests: dict[str, InvarianceTestResult] = run_invariance_tests(
            y_hat,
            a.numpy(),
            u.numpy(),
            tests=self.tests,
            seed=self.seed,
            n_folds=self.n_folds,
            regressor=self.regressor,
            n_draws=self.n_draws,
        )
        tests["flip"] = counterfactual_flip_test(p0.numpy(), p1.numpy(), thr)
        ref = self.spec.resolve_reference(a)
        tests["dp"] = demographic_parity_test(y_hat, a.numpy(), ref, threshold=thr)
        fairness: dict[str, Any] = {}
        if labels is not None:
            y = torch.as_tensor(labels).reshape(-1).double()
            tests["eo"] = equal_opportunity_test(y_hat, a.numpy(), y.numpy(), ref, threshold=thr)
            fairness = self.spec.summarize(
                p.double(), y, a, threshold=thr, n_bootstrap=self.n_bootstrap, seed=self.seed
            )
        return {
            "tests": tests,
            "fairness": fairness,
            "threshold": thr,
            "scores": p,
            "scores_a0": p0,
            "scores_a1": p1,
            "u": u,
        }

    def record(self, outcome: Mapping[str, Any]) -> dict[str, float]:
        """The numeric record of one audit: per test ``<t>_statistic``, ``<t>_p_value``, ``<t>_effect``,
        ``<t>_rejects`` (1/0, NaN when undefined), plus ``flip_rate`` and the fairness figures."""
        rec: dict[str, float] = {}
        for name, r in outcome["tests"].items():
            rec[f"{name}_statistic"] = r.statistic
            rec[f"{name}_p_value"] = r.p_value
            rec[f"{name}_effect"] = r.effect_size
            rec[f"{name}_rejects"] = float(r.rejects(self.alpha)) if r.p_value == r.p_value else float("nan")
        rec["flip_rate"] = outcome["tests"]["flip"].effect_size
        rec["threshold"] = float(outcome.get("threshold", self.threshold))
        for k, v in outcome["fairness"].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                rec[k] = float(v)
        return rec
