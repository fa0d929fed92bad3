# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Adversarial VAE debiasing of embedding tables (Zheng et al. 2025, with the released code's bugs fixed).

A :class:`~monai_fair.networks.fair_vae.FairVAE` is trained on an ``(N, D)`` table of embeddings with a sex adversary
(binary cross-entropy) and an age adversary (squared error on standardised age) on its latent ``z``. Unlike the
release (``reference/methods.md`` section 2.3), the adversaries' gradient reaches the encoder, with one of two
schemes:

* ``"grl"``: ``z → GradientReversal(λ) → adversaries`` and one step on ``recon + β·KL + L_adv``: the adversaries
  descend ``L_adv`` while the encoder ascends ``λ·L_adv``.
* ``"alternating"``: (i) the adversaries take ``adversary_steps`` steps on ``L_adv(z.detach())``; (ii) with the
  adversaries frozen, the encoder/decoder take one step on ``recon + β·KL − λ·L_adv(z)``.

``λ`` rises from 0 to ``adversarial_weight`` with Ganin's schedule ``λ_max·(2 / (1 + exp(−γ·p)) − 1)`` over the
training progress ``p ∈ [0, 1]`` (``schedule="constant"`` keeps it at ``λ_max``). Reconstruction is the element-mean
squared error on per-feature standardised embeddings; the KL is averaged over batch and latent dimensions (so the
release's summed KL, which swamps the reconstruction, is not reproduced) and weighted by ``β = kl_weight``.
``L_adv = sex_weight·BCE + age_weight·MSE``; samples with a sex code other than 0/1 (unknown -1, other) are left out
of the sex loss and samples with a NaN age out of the age loss.

Beyond the paper (all off by default, see :mod:`~monai_fair.debias.latent_penalties`): the encoder's loss can add
``mmd_weight·MMD(z_F, z_M)`` and ``decorrelation_weight·Σ corr(z_j, attribute)²``, computed on ``penalty_batch_size``
rows drawn from the whole fit table, and ``task_weight·BCE`` of a linear task head on the latent (a supervised
variant for when task labels exist at fit time). The penalties have no opponent to fool: a fresh linear probe finds
no more than the penalty leaves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from monai_fair.debias.latent_penalties import MMD_BANDWIDTHS, correlation_penalty, group_mmd
from monai_fair.metrics import make_generator
from monai_fair.networks.fair_vae import VAE_OUTPUTS, FairVAE

__all__ = ["ADVERSARY_INPUTS", "VAE_SCHEMES", "LAMBDA_SCHEDULES", "VAEDebiaser", "ganin_lambda"]

VAE_SCHEMES = ("grl", "alternating")
LAMBDA_SCHEDULES = ("ganin", "constant")
ADVERSARY_INPUTS = ("z", "mu")


def ganin_lambda(progress: float, lambda_max: float, gamma: float = 10.0) -> float:
    """Ganin & Lempitsky's warm-up ``lambda_max * (2 / (1 + exp(-gamma * progress)) - 1)``, 0 at ``progress=0``."""
    p = min(max(float(progress), 0.0), 1.0)
    return float(lambda_max) * (2.0 / (1.0 + math.exp(-float(gamma) * p)) - 1.0)


def _as_tensor(x: Any, name: str, dtype: torch.dtype) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    return t.detach().to("cpu", dtype)


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


class VAEDebiaser:
    """Train an adversarial VAE on embeddings and map embeddings to debiased ones.

    Args:
        latent_size: latent size ``k``.
        hidden: encoder hidden sizes (the decoder mirrors them).
        adversary_hidden: hidden sizes of each adversary head.
        dropout: dropout in the encoder/decoder hidden layers.
        scheme: ``"grl"`` or ``"alternating"`` (module docstring).
        adversarial_weight: ``λ_max``, the weight of the adversarial term for the encoder.
        kl_weight: ``β``, the weight of the mean-reduced KL.
        sex_weight: weight of the sex BCE in ``L_adv`` (0 disables the sex adversary).
        age_weight: weight of the standardised-age MSE in ``L_adv`` (0 disables the age adversary).
        schedule: ``"ganin"`` (λ warms up from 0) or ``"constant"``.
        gamma: steepness of the Ganin schedule.
        lr: Adam learning rate of the encoder/decoder.
        adversary_lr: Adam learning rate of the adversaries.
        batch_size: mini-batch size.
        epochs: passes over the table.
        adversary_steps: adversary steps per batch in the alternating scheme.
        standardize: z-score every input feature with the fit table's mean/std (reconstructions are mapped back).
        seed: seed of the initialisation, the shuffling and the reparameterisation noise.
        device: where to train.
        mmd_weight: weight of the RBF MMD between the sexes' latents (:func:`~monai_fair.debias.latent_penalties.
            group_mmd`, Louizos et al. 2016) in the encoder's loss (0: off, as in the paper).
        mmd_bandwidths: the MMD's bandwidths, as multiples of the median squared pairwise distance.
        decorrelation_weight: weight of the sum of squared correlations between the latent dimensions and sex and
            standardised age (:func:`~monai_fair.debias.latent_penalties.correlation_penalty`; only the attributes
            with a non-zero ``sex_weight`` / ``age_weight``) in the encoder's loss (0: off, as in the paper).
        penalty_batch_size: rows drawn from the whole fit table at every step for the MMD and decorrelation
            penalties (``None``: the training batch). A small batch leaves a noise floor of chance correlations the
            penalties cannot tell from signal; a large one estimates the linear dependence of the table itself.
        task_weight: weight of a linear task head's BCE on the latent, trained with the encoder (needs ``labels``
            in :meth:`fit`; 0: off, as in the paper, whose VAE is unsupervised).

    Attributes:
        model: the trained :class:`~monai_fair.networks.fair_vae.FairVAE` (after :meth:`fit`).
        history: one dict per epoch: mean ``recon``, ``kl``, ``sex_loss``, ``age_loss``, the ``lambda`` at the end.

    Example::

        debiaser = VAEDebiaser(epochs=100).fit(train_embeddings, sex=train_sex, age=train_age)
        debiased = debiaser.transform(tune_embeddings, output="recon_mean")
    """

    def __init__(
        self,
        latent_size: int = 500,
        hidden: Sequence[int] = (),
        adversary_hidden: Sequence[int] = (),
        dropout: float = 0.0,
        scheme: str = "grl",
        adversarial_weight: float = 0.1,
        kl_weight: float = 0.01,
        sex_weight: float = 1.0,
        age_weight: float = 1.0,
        schedule: str = "ganin",
        gamma: float = 10.0,
        lr: float = 5e-4,
        adversary_lr: float = 2e-3,
        batch_size: int = 32,
        epochs: int = 100,
        adversary_steps: int = 1,
        standardize: bool = True,
        adversary_input: str = "z",
        seed: int = 0,
        device: str | torch.device = "cpu",
        mmd_weight: float = 0.0,
        mmd_bandwidths: Sequence[float] = MMD_BANDWIDTHS,
        decorrelation_weight: float = 0.0,
        penalty_batch_size: int | None = None,
        task_weight: float = 0.0,
    ) -> None:
        if scheme not in VAE_SCHEMES:
            raise ValueError(f"scheme must be one of {VAE_SCHEMES}, got {scheme!r}.")
        if adversary_input not in ADVERSARY_INPUTS:
            raise ValueError(f"adversary_input must be one of {ADVERSARY_INPUTS}, got {adversary_input!r}.")
        if schedule not in LAMBDA_SCHEDULES:
            raise ValueError(f"schedule must be one of {LAMBDA_SCHEDULES}, got {schedule!r}.")
        for name, value in (
            ("adversarial_weight", adversarial_weight),
            ("kl_weight", kl_weight),
            ("sex_weight", sex_weight),
            ("age_weight", age_weight),
            ("mmd_weight", mmd_weight),
            ("decorrelation_weight", decorrelation_weight),
            ("task_weight", task_weight),
        ):
            if not value >= 0:
                raise ValueError(f"{name} must be non-negative, got {value}.")
        if batch_size < 1 or epochs < 0 or adversary_steps < 1:
            raise ValueError(
                f"need batch_size >= 1, epochs >= 0, adversary_steps >= 1; got {batch_size}, {epochs}, "
                f"{adversary_steps}."
            )
        if penalty_batch_size is not None and int(penalty_batch_size) < 4:
            raise ValueError(f"penalty_batch_size must be None or at least 4, got {penalty_batch_size}.")
        self.config: dict[str, Any] = {
            "latent_size": int(latent_size),
            "hidden": [int(h) for h in hidden],
            "adversary_hidden": [int(h) for h in adversary_hidden],
            "dropout": float(dropout),
            "scheme": scheme,
            "adversarial_weight": float(adversarial_weight),
            "kl_weight": float(kl_weight),
            "sex_weight": float(sex_weight),
            "age_weight": float(age_weight),
            "schedule": schedule,
            "gamma": float(gamma),
            "lr": float(lr),
            "adversary_lr": float(adversary_lr),
            "batch_size": int(batch_size),
            "epochs": int(epochs),
            "adversary_steps": int(adversary_steps),
            "standardize": bool(standardize),
            "adversary_input": adversary_input,
            "seed": int(seed),
            "mmd_weight": float(mmd_weight),
            "mmd_bandwidths": [float(b) for b in mmd_bandwidths],
            "decorrelation_weight": float(decorrelation_weight),
            "penalty_batch_size": None if penalty_batch_size is None else int(penalty_batch_size),
            "task_weight": float(task_weight),
        }
        self.device = torch.device(device)
        self.model: FairVAE | None = None
        self.task_head: torch.nn.Module | None = None
        self.history: list[dict[str, float]] = []
        self.feature_mean: torch.Tensor | None = None
        self.feature_std: torch.Tensor | None = None
        self.age_mean = 0.0
        self.age_std = 1.0

    # ------------------------------------------------------------------ data
    def _check_embeddings(self, embeddings: Any) -> torch.Tensor:
        x = _as_tensor(embeddings, "embeddings", torch.float32)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"embeddings must be a non-empty (N, D) table, got shape {tuple(x.shape)}.")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("embeddings contain NaN or infinite values.")
        if self.model is not None and x.shape[1] != self.model.in_features:
            raise ValueError(f"embeddings have {x.shape[1]} features, the VAE was fitted on {self.model.in_features}.")
        return x

    def _targets(self, n: int, sex: Any | None, age: Any | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sex targets (NaN where not 0/1) and standardised age (NaN where unknown), both ``(N,)`` float32."""
        if sex is None:
            s = torch.full((n,), float("nan"))
        else:
            codes = _as_tensor(sex, "sex", torch.float64).reshape(-1)
            if codes.numel() != n:
                raise ValueError(f"sex has {codes.numel()} entries for {n} embeddings.")
            s = torch.where((codes == 0) | (codes == 1), codes, torch.full_like(codes, float("nan"))).float()
        if age is None:
            a = torch.full((n,), float("nan"))
        else:
            a = _as_tensor(age, "age", torch.float64).reshape(-1)
            if a.numel() != n:
                raise ValueError(f"age has {a.numel()} entries for {n} embeddings.")
            a = torch.where(torch.isfinite(a), a, torch.full_like(a, float("nan")))
            known = a[~torch.isnan(a)]
            self.age_mean = float(known.mean()) if known.numel() else 0.0
            std = float(known.std(unbiased=False)) if known.numel() > 1 else 0.0
            self.age_std = std if std > 0 else 1.0
            a = ((a - self.age_mean) / self.age_std).float()
        return s, a

    def _scale(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.feature_mean) / self.feature_std if self.config["standardize"] else x

    def _unscale(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.feature_std + self.feature_mean if self.config["standardize"] else x

    # ---------------------------------------------------------------- losses
    def adversary_losses(
        self, z: torch.Tensor, sex: torch.Tensor, age: torch.Tensor, reverse: bool = False
    ) -> dict[str, torch.Tensor]:
        """Sex BCE, age MSE and their weighted sum ``adv`` on latents ``z`` (NaN targets are left out).

        Args:
            z: latents ``(B, k)`` (keep their graph for the encoder to receive the adversarial gradient).
            sex: ``(B,)`` 0/1 targets, NaN to leave out.
            age: ``(B,)`` standardised ages, NaN to leave out.
            reverse: route ``z`` through the model's gradient reversal.
        """
        assert self.model is not None
        sex_logit, age_hat = self.model.adversaries(z, reverse=reverse)
        s_ok, a_ok = ~torch.isnan(sex), ~torch.isnan(age)
        zero = sex_logit.sum() * 0.0  # keeps a graph when a batch has no usable target
        sex_loss = F.binary_cross_entropy_with_logits(sex_logit[s_ok], sex[s_ok]) if bool(s_ok.any()) else zero
        age_loss = F.mse_loss(age_hat[a_ok], age[a_ok]) if bool(a_ok.any()) else zero
        adv = self.config["sex_weight"] * sex_loss + self.config["age_weight"] * age_loss
        return {"sex_loss": sex_loss, "age_loss": age_loss, "adv": adv}

    def vae_losses(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Reconstruction MSE (element mean), mean KL, and the sampled latents ``z``, for scaled inputs ``x``."""
        assert self.model is not None
        mu, logvar = self.model.encode(x)
        z = self.model.reparameterize(mu, logvar, generator)
        recon = F.mse_loss(self.model.decode(z), x)
        kl = FairVAE.kl_divergence(mu, logvar).mean()
        return {"recon": recon, "kl": kl, "z": z if self.config["adversary_input"] == "z" else mu}

    def matching_losses(self, z: torch.Tensor, sex: torch.Tensor, age: torch.Tensor) -> dict[str, torch.Tensor]:
        """The matching penalties of latents ``z``: ``mmd`` (RBF MMD² between the sexes), ``corr`` (squared
        correlations of every latent dimension with sex and with age, for the attributes with a non-zero loss
        weight) and their weighted sum ``match``; a term whose weight is 0 is a zero (not computed)."""
        c = self.config
        zero = z.sum() * 0.0
        mmd = group_mmd(z, sex, c["mmd_bandwidths"]) if c["mmd_weight"] > 0 else zero
        corr = zero
        if c["decorrelation_weight"] > 0:
            cols = [t for t, w in ((sex, c["sex_weight"]), (age, c["age_weight"])) if w > 0]
            corr = sum(correlation_penalty(z, t) for t in cols) if cols else zero
        return {"mmd": mmd, "corr": corr, "match": c["mmd_weight"] * mmd + c["decorrelation_weight"] * corr}

    def _encoder_terms(
        self,
        z: torch.Tensor,
        sex: torch.Tensor,
        age: torch.Tensor,
        labels: torch.Tensor | None,
        penalty_batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """The encoder's terms beside recon, KL and the adversaries: matching penalties (on ``penalty_batch`` when
        given, encoded here) and the task head's BCE; ``extra`` is their weighted sum."""
        assert self.model is not None
        if penalty_batch is None:
            match = self.matching_losses(z, sex, age)
        else:
            px, ps, pa = penalty_batch
            mu, logvar = self.model.encode(px)
            match = self.matching_losses(
                mu if self.config["adversary_input"] == "mu" else self.model.reparameterize(mu, logvar, generator),
                ps,
                pa,
            )
        task_loss = z.sum() * 0.0
        if self.task_head is not None:
            if labels is None:
                raise ValueError("task_weight > 0 needs task labels at fit time.")
            ok = ~torch.isnan(labels)
            if bool(ok.any()):
                task_loss = F.binary_cross_entropy_with_logits(self.task_head(z).squeeze(-1)[ok], labels[ok])
        return {**match, "task_loss": task_loss, "extra": match["match"] + self.config["task_weight"] * task_loss}

    def current_lambda(self, progress: float) -> float:
        """``λ`` at training progress ``progress ∈ [0, 1]``."""
        lam = self.config["adversarial_weight"]
        return ganin_lambda(progress, lam, self.config["gamma"]) if self.config["schedule"] == "ganin" else lam

    # -------------------------------------------------------------- training
    def build(self, in_features: int) -> FairVAE:
        """A freshly initialised VAE (seeded; the global RNG state is left untouched) with its optimisers."""
        c = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c["seed"])
            model = FairVAE(in_features, c["latent_size"], c["hidden"], c["adversary_hidden"], c["dropout"])
            head = torch.nn.Linear(c["latent_size"], 1) if c["task_weight"] > 0 else None
        self.model = model.to(self.device)
        self.task_head = head.to(self.device) if head is not None else None
        adversary_params = [*model.sex_adversary.parameters(), *model.age_adversary.parameters()]
        vae_params = [*model.encoder.parameters(), *model.decoder.parameters()]
        if self.task_head is not None:
            vae_params += list(self.task_head.parameters())
        self.vae_optimizer = torch.optim.Adam(vae_params, lr=c["lr"])
        self.adversary_optimizer = torch.optim.Adam(adversary_params, lr=c["adversary_lr"])
        return self.model

    def train_step(
        self,
        x: torch.Tensor,
        sex: torch.Tensor,
        age: torch.Tensor,
        lam: float,
        generator: torch.Generator | None,
        penalty_batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
        labels: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """One update on a batch of scaled inputs with targets, with adversarial weight ``lam``.

        Args:
            x: scaled inputs ``(B, D)``.
            sex: ``(B,)`` 0/1 targets, NaN to leave out.
            age: ``(B,)`` standardised ages, NaN to leave out.
            lam: adversarial weight of this step.
            generator: reparameterisation noise.
            penalty_batch: ``(x, sex, age)`` rows the matching penalties are computed on (default this batch).
            labels: ``(B,)`` 0/1 task labels of the task head (NaN to leave out; needed when ``task_weight > 0``).
        """
        assert self.model is not None
        model = self.model
        if self.config["scheme"] == "grl":
            model.reversal.scale = float(lam)
            terms = self.vae_losses(x, generator)
            adv = self.adversary_losses(terms["z"], sex, age, reverse=True)
            match = self._encoder_terms(terms["z"], sex, age, labels, penalty_batch, generator)
            loss = terms["recon"] + self.config["kl_weight"] * terms["kl"] + adv["adv"] + match["extra"]
            self.vae_optimizer.zero_grad(set_to_none=True)
            self.adversary_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.vae_optimizer.step()
            self.adversary_optimizer.step()
        else:
            terms = self.vae_losses(x, generator)
            for _ in range(self.config["adversary_steps"]):
                adv = self.adversary_losses(terms["z"].detach(), sex, age)
                self.adversary_optimizer.zero_grad(set_to_none=True)
                adv["adv"].backward()
                self.adversary_optimizer.step()
            adversary_params = [*model.sex_adversary.parameters(), *model.age_adversary.parameters()]
            for p in adversary_params:
                p.requires_grad_(False)
            try:
                adv = self.adversary_losses(terms["z"], sex, age)
                match = self._encoder_terms(terms["z"], sex, age, labels, penalty_batch, generator)
                loss = terms["recon"] + self.config["kl_weight"] * terms["kl"] - lam * adv["adv"] + match["extra"]
                self.vae_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.vae_optimizer.step()
            finally:
                for p in adversary_params:
                    p.requires_grad_(True)
        return {
            "recon": float(terms["recon"].detach()),
            "kl": float(terms["kl"].detach()),
            "sex_loss": float(adv["sex_loss"].detach()),
            "age_loss": float(adv["age_loss"].detach()),
            "mmd": float(match["mmd"].detach()),
            "decorrelation": float(match["corr"].detach()),
            "task_loss": float(match["task_loss"].detach()),
        }

    def fit(
        self, embeddings: Any, sex: Any | None = None, age: Any | None = None, labels: Any | None = None
    ) -> VAEDebiaser:
        """Train a fresh VAE and its adversaries on a table of embeddings.

        Args:
            embeddings: ``(N, D)`` array or tensor.
            sex: ``(N,)`` sex codes; codes other than 0 and 1 (unknown -1) are left out of the sex loss.
            age: ``(N,)`` ages in years; NaN is left out of the age loss (standardised with the known ages).
            labels: ``(N,)`` binary task labels for the task head (only used, and then required, when
                ``task_weight > 0``); values other than 0/1 are left out.

        Returns:
            ``self``.

        Raises:
            ValueError: ``task_weight > 0`` without ``labels``, or inputs of mismatched lengths.
        """
        self.model = None
        x = self._check_embeddings(embeddings)
        n = x.shape[0]
        s, a = self._targets(n, sex, age)
        y = None
        if self.config["task_weight"] > 0:
            if labels is None:
                raise ValueError("task_weight > 0 needs the task labels at fit time (fit(..., labels=...)).")
            y = _as_tensor(labels, "labels", torch.float64).reshape(-1)
            if y.numel() != n:
                raise ValueError(f"labels has {y.numel()} entries for {n} embeddings.")
            y = torch.where((y == 0) | (y == 1), y, torch.full_like(y, float("nan"))).float().to(self.device)
        self.feature_mean = x.mean(0)
        std = x.std(0, unbiased=False)
        self.feature_std = torch.where(std > 0, std, torch.ones_like(std))
        model = self.build(x.shape[1])
        xs, s, a = self._scale(x).to(self.device), s.to(self.device), a.to(self.device)
        c = self.config
        shuffle = make_generator(c["seed"], "cpu")
        noise = make_generator(c["seed"] + 1, self.device)
        steps_per_epoch = math.ceil(n / c["batch_size"])
        total = max(1, steps_per_epoch * c["epochs"])
        self.history = []
        step = 0
        model.train()
        for epoch in range(c["epochs"]):
            sums = dict.fromkeys(("recon", "kl", "sex_loss", "age_loss", "mmd", "decorrelation", "task_loss"), 0.0)
            order = torch.randperm(n, generator=shuffle).to(self.device)
            lam = 0.0
            for start in range(0, n, c["batch_size"]):
                idx = order[start : start + c["batch_size"]]
                lam = self.current_lambda(step / total)
                pb = None
                if c["penalty_batch_size"] and (c["mmd_weight"] > 0 or c["decorrelation_weight"] > 0):
                    pidx = torch.randperm(n, generator=shuffle)[: c["penalty_batch_size"]].to(self.device)
                    pb = (xs[pidx], s[pidx], a[pidx])
                out = self.train_step(xs[idx], s[idx], a[idx], lam, noise, pb, None if y is None else y[idx])
                for k in sums:
                    sums[k] += out[k] * idx.numel() / n
                step += 1
            self.history.append({"epoch": epoch, **sums, "lambda": lam})
        model.eval()
        return self

    # ------------------------------------------------------------- inference
    @torch.no_grad()
    def transform(
        self, embeddings: Any, output: str = "recon_mean", batch_size: int = 4096, seed: int | None = None
    ) -> torch.Tensor:
        """Debiased embeddings (float32, CPU): ``recon_mean`` / ``recon_sample`` ``(N, D)`` or ``latent_mu`` ``(N, k)``.

        Args:
            embeddings: ``(N, D)`` table in the scale of the fit table.
            output: one of :data:`~monai_fair.networks.fair_vae.VAE_OUTPUTS`.
            batch_size: rows per forward pass.
            seed: noise seed of ``recon_sample`` (default the fit seed), so repeated calls agree.
        """
        if self.model is None:
            raise RuntimeError("VAEDebiaser.transform called before fit (or load).")
        if output not in VAE_OUTPUTS:
            raise ValueError(f"output must be one of {VAE_OUTPUTS}, got {output!r}.")
        x = self._check_embeddings(embeddings)
        noise = make_generator(self.config["seed"] if seed is None else seed, self.device)
        was_training = self.model.training
        self.model.eval()
        parts = []
        for start in range(0, x.shape[0], batch_size):
            xb = self._scale(x[start : start + batch_size]).to(self.device)
            out = self.model.embed(xb, output, generator=noise).cpu()
            parts.append(out if output == "latent_mu" else self._unscale(out))
        self.model.train(was_training)
        return torch.cat(parts, 0)

    def fit_transform(
        self, embeddings: Any, sex: Any | None = None, age: Any | None = None, output: str = "recon_mean"
    ) -> torch.Tensor:
        """:meth:`fit` then :meth:`transform` of the same table."""
        return self.fit(embeddings, sex, age).transform(embeddings, output)

    # ----------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        """Config, network weights and the input/age scalers (tensors and plain values only)."""
        if self.model is None:
            raise RuntimeError("nothing to save: the VAE has not been fitted.")
        head = {} if self.task_head is None else {"task_head": _cpu_state(self.task_head)}
        return {
            "config": dict(self.config),
            "in_features": self.model.in_features,
            "model": _cpu_state(self.model),
            **head,
            "feature_mean": self.feature_mean,
            "feature_std": self.feature_std,
            "age_mean": self.age_mean,
            "age_std": self.age_std,
        }

    def save(self, path: str | Path) -> Path:
        """Write :meth:`state_dict` to ``path`` (loadable with ``weights_only=True``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), path)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> VAEDebiaser:
        """A debiaser restored from :meth:`save` (``weights_only=True``), ready to :meth:`transform`."""
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        debiaser = cls(**state["config"], device=device)
        debiaser.build(int(state["in_features"]))
        assert debiaser.model is not None
        debiaser.model.load_state_dict(state["model"])
        if debiaser.task_head is not None and "task_head" in state:
            debiaser.task_head.load_state_dict(state["task_head"])
        debiaser.model.eval()
        debiaser.feature_mean, debiaser.feature_std = state["feature_mean"], state["feature_std"]
        debiaser.age_mean, debiaser.age_std = float(state["age_mean"]), float(state["age_std"])
        return debiaser
