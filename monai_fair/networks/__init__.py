# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""monai_fair.networks"""

from __future__ import annotations

from .bias_heads import CRITIC_READOUTS, BiasCriticHeads, VGGClassifierHead, VGGGenerator, group_ratio_spd, split_vgg
from .conditional_vae import ConditionalVAE, hsic
from .critic import AttributeAdversary, BatchBiasCritic, FeatureHook, FlatBatchBiasCritic, default_feature_module
from .debiased_embedding import DebiasedEmbedding
from .fair_vae import VAE_OUTPUTS, FairVAE, mlp
from .gradient_reversal import GradientReversal, grad_reverse
from .latent_diffusion import ConditionalLatentDiffusion
from .vgg import VGG_CONFIGS, FairVGG, fair_vgg11, fair_vgg13, fair_vgg16, load_imagenet_weights

__all__ = [
    "AttributeAdversary",
    "BatchBiasCritic",
    "BiasCriticHeads",
    "ConditionalLatentDiffusion",
    "ConditionalVAE",
    "CRITIC_READOUTS",
    "DebiasedEmbedding",
    "default_feature_module",
    "fair_vgg11",
    "fair_vgg13",
    "fair_vgg16",
    "FairVAE",
    "FairVGG",
    "FeatureHook",
    "FlatBatchBiasCritic",
    "grad_reverse",
    "GradientReversal",
    "group_ratio_spd",
    "hsic",
    "load_imagenet_weights",
    "mlp",
    "split_vgg",
    "VAE_OUTPUTS",
    "VGG_CONFIGS",
    "VGGClassifierHead",
    "VGGGenerator",
]
