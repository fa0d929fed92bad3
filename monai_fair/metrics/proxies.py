# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Differentiable proxies of statistical parity and equal opportunity differences on probabilities.

Both proxies are linear in the probabilities, ``proxy = sum_i w_i f(x_i)``, so weights counted over a whole
evaluation set give the exact full-set proxy (and its gradient) when summed over mini-batches of any size, and a
mini-batch that lacks a group contributes its share instead of a NaN.
"""

from __future__ import annotations

import torch

__all__ = ["proxy_weights", "compute_bias_proxy"]

_KINDS = ("spd", "eod")


def proxy_weights(labels: torch.Tensor, groups: torch.Tensor, privileged: int = 1, kind: str = "eod") -> torch.Tensor:
    """Per-sample weights ``w`` such that ``sum(w * prob)`` is the proxy "unprivileged minus privileged".

    * SPD: ``w_i = [a_i = u]/N_u - [a_i = p]/N_p``
    * EOD: ``w_i = y_i ([a_i = u]/N_{u,y=1} - [a_i = p]/N_{p,y=1})``

    where ``p`` is the privileged group and ``u`` every other group code.

    Args:
        labels: binary labels ``(N,)``.
        groups: integer group codes ``(N,)``.
        privileged: code of the privileged (reference) group.
        kind: ``"spd"`` or ``"eod"``.

    Raises:
        ValueError: unknown kind, length mismatch, or a group that has no (positive) sample, for which the proxy
            is undefined.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}.")
    labels = torch.as_tensor(labels).reshape(-1)
    groups = torch.as_tensor(groups, device=labels.device).reshape(-1)
    if labels.shape != groups.shape:
        raise ValueError(f"labels and groups must have the same length, got {labels.numel()} and {groups.numel()}.")
    priv = groups == privileged
    unpriv = ~priv
    if kind == "eod":
        pos = labels > 0.5
        priv, unpriv = priv & pos, unpriv & pos
    n_priv, n_unpriv = int(priv.sum()), int(unpriv.sum())
    if n_priv == 0 or n_unpriv == 0:
        what = "positive samples of " if kind == "eod" else "samples of "
        raise ValueError(f"the {kind.upper()} proxy is undefined: {what}privileged={n_priv}, unprivileged={n_unpriv}.")
    return unpriv.to(torch.float32) / n_unpriv - priv.to(torch.float32) / n_priv


def compute_bias_proxy(
    probs: torch.Tensor,
    labels: torch.Tensor | None = None,
    groups: torch.Tensor | None = None,
    privileged: int = 1,
    kind: str = "eod",
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Differentiable bias proxy (unprivileged minus privileged mean probability).

    Args:
        probs: probabilities of the positive class ``(N,)`` (apply the sigmoid first; the proxy is not meant for
            logits).
        labels: binary labels ``(N,)``; needed unless ``weights`` is given.
        groups: group codes ``(N,)``; needed unless ``weights`` is given.
        privileged: code of the privileged group.
        kind: ``"spd"`` or ``"eod"``.
        weights: precomputed full-set weights for these samples (see :func:`proxy_weights`); with them the
            proxy of a mini-batch is its exact share of the full-set proxy and is never NaN.

    Returns:
        a scalar tensor that carries gradient to ``probs``.
    """
    probs = probs.reshape(-1)
    if weights is None:
        if labels is None or groups is None:
            raise ValueError("labels and groups are required when weights are not given.")
        weights = proxy_weights(labels, groups, privileged, kind)
    weights = weights.reshape(-1).to(device=probs.device, dtype=probs.dtype)
    if weights.shape != probs.shape:
        raise ValueError(f"weights and probs must have the same length, got {weights.numel()} and {probs.numel()}.")
    return torch.sum(weights * probs)
