# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Debiasing: post-processing, intra-processing and in-training methods sharing one interface."""

from __future__ import annotations

from .adaptive_pruning import AdaptivePruningDebiaser, kmeans, unit_weight_magnitude
from .adversarial_finetune import AdversarialFineTuning, batch_bias_target
from .adversarial_multitask import (
    ADVERSARIAL_VARIANTS,
    CONFUSION_TARGETS,
    ORTHOGONALITY_FORMS,
    AdversarialMultitaskTrainer,
    EpochScoreMemory,
    batch_spd_label,
    calibrate_critic,
    composition_batches,
    orthogonality_loss,
    positive_scores,
)
from .base import (
    BinaryEvaluation,
    Debiaser,
    DebiasResult,
    Trajectory,
    as_plain_tensor,
    as_spec,
    batch_tensors,
    check_binary_fit_data,
    collect_outputs,
    evaluate_binary,
    positive_logit,
    positive_probability,
)
from .bias_gradient import BiasGradientDebiaser, freeze_batchnorm_
from .engineered_bias_gradient import EngineeredBiasGradientDebiaser, binary_task_loss
from .equalized_odds import (
    EqualizedOddsPostprocessing,
    EqualizedOddsPostprocessor,
    equalized_odds_lp,
    group_confusion_rates,
)
from .group_reweighting import (
    LOSS_WEIGHT_KEY,
    MITIGATIONS,
    MaskedWeightedBCEWithLogitsLoss,
    distributed_group_sampler,
    group_sampler,
    weighted_target_batch,
    with_loss_weights,
)
from .influence import FullSetProxyWeights, ThresholdProxyWeights, ThresholdTaskWeights, unit_influence
from .latent_penalties import MMD_BANDWIDTHS, correlation_penalty, cross_covariance_penalty, group_mmd, rbf_mmd2
from .linear_erasure import INLPEraser, LeaceEraser, attribute_matrix
from .postprocessor import Postprocessor
from .pruning import PRUNING_PROXIES, PruningDebiaser, check_proxy_metric, check_reiterable
from .random_perturbation import RandomPerturbation, bootstrap_evaluation, resample_weights
from .reject_option import RejectOptionClassification, RejectOptionPostprocessor, reject_option_grid
from .unit_mask import (
    UnitMaskedLayer,
    UnitMaskSet,
    add_unit_masks,
    count_prunable_units,
    find_unit_masks,
    layer_output_shapes,
    load_unit_masked_state_dict,
    prunable_layer_names,
)
from .vae_debias import ADVERSARY_INPUTS, LAMBDA_SCHEDULES, VAE_SCHEMES, VAEDebiaser, ganin_lambda

__all__ = [
    "AdaptivePruningDebiaser",
    "add_unit_masks",
    "ADVERSARIAL_VARIANTS",
    "AdversarialFineTuning",
    "AdversarialMultitaskTrainer",
    "ADVERSARY_INPUTS",
    "as_plain_tensor",
    "as_spec",
    "attribute_matrix",
    "batch_bias_target",
    "batch_spd_label",
    "batch_tensors",
    "BiasGradientDebiaser",
    "binary_task_loss",
    "BinaryEvaluation",
    "bootstrap_evaluation",
    "calibrate_critic",
    "check_binary_fit_data",
    "check_proxy_metric",
    "check_reiterable",
    "collect_outputs",
    "composition_batches",
    "CONFUSION_TARGETS",
    "correlation_penalty",
    "count_prunable_units",
    "cross_covariance_penalty",
    "Debiaser",
    "DebiasResult",
    "distributed_group_sampler",
    "EngineeredBiasGradientDebiaser",
    "EpochScoreMemory",
    "equalized_odds_lp",
    "EqualizedOddsPostprocessing",
    "EqualizedOddsPostprocessor",
    "evaluate_binary",
    "find_unit_masks",
    "freeze_batchnorm_",
    "FullSetProxyWeights",
    "ganin_lambda",
    "group_confusion_rates",
    "group_mmd",
    "group_sampler",
    "INLPEraser",
    "kmeans",
    "LAMBDA_SCHEDULES",
    "layer_output_shapes",
    "LeaceEraser",
    "load_unit_masked_state_dict",
    "LOSS_WEIGHT_KEY",
    "MaskedWeightedBCEWithLogitsLoss",
    "MITIGATIONS",
    "MMD_BANDWIDTHS",
    "ORTHOGONALITY_FORMS",
    "orthogonality_loss",
    "positive_logit",
    "positive_probability",
    "positive_scores",
    "Postprocessor",
    "prunable_layer_names",
    "PRUNING_PROXIES",
    "PruningDebiaser",
    "RandomPerturbation",
    "rbf_mmd2",
    "reject_option_grid",
    "RejectOptionClassification",
    "RejectOptionPostprocessor",
    "resample_weights",
    "ThresholdProxyWeights",
    "ThresholdTaskWeights",
    "Trajectory",
    "unit_influence",
    "unit_weight_magnitude",
    "UnitMaskedLayer",
    "UnitMaskSet",
    "VAE_SCHEMES",
    "VAEDebiaser",
    "weighted_target_batch",
    "with_loss_weights",
]
