# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""monai_fair.report"""

from __future__ import annotations

from .aggregate import aggregate_results, bootstrap_mean_interval
from .counterfactual_plots import plot_counterfactual_pairs, plot_null_calibration, plot_power_curve
from .cross_group_plots import plot_auc_by_group, plot_same_other_auc, plot_underdiagnosis
from .cross_group_report import cross_group_results, cross_group_tables, write_cross_group_report
from .embedding_plots import plot_attribute_removal, plot_latent_sweep, plot_poisoning
from .embedding_report import poisoning_table, removal_table, write_embedding_report
from .group_plots import (
    figure_to_array,
    figure_to_png,
    plot_group_calibration,
    plot_group_metric_bars,
    plot_group_roc,
    reliability_curve,
    roc_curve_points,
)
from .html import html_table, image_data_uri, render_study_html, write_html
from .results import RECORD_METRICS, SPLITS, STUDY_RESULTS_FORMAT, StudyResults
from .study_plots import method_colors, plot_method_bars, plot_tradeoff, plot_trajectories
from .study_report import write_study_report
from .tables import (
    METRIC_LABELS,
    format_mean_std,
    format_value,
    markdown_table,
    summary_display_table,
    summary_markdown,
    write_csv,
)

__all__ = [
    "aggregate_results",
    "bootstrap_mean_interval",
    "cross_group_results",
    "cross_group_tables",
    "figure_to_array",
    "figure_to_png",
    "format_mean_std",
    "format_value",
    "html_table",
    "image_data_uri",
    "markdown_table",
    "method_colors",
    "METRIC_LABELS",
    "plot_attribute_removal",
    "plot_auc_by_group",
    "plot_counterfactual_pairs",
    "plot_group_calibration",
    "plot_group_metric_bars",
    "plot_group_roc",
    "plot_latent_sweep",
    "plot_method_bars",
    "plot_null_calibration",
    "plot_poisoning",
    "plot_power_curve",
    "plot_same_other_auc",
    "plot_tradeoff",
    "plot_trajectories",
    "plot_underdiagnosis",
    "poisoning_table",
    "RECORD_METRICS",
    "reliability_curve",
    "removal_table",
    "render_study_html",
    "roc_curve_points",
    "SPLITS",
    "STUDY_RESULTS_FORMAT",
    "StudyResults",
    "summary_display_table",
    "summary_markdown",
    "write_cross_group_report",
    "write_csv",
    "write_embedding_report",
    "write_html",
    "write_study_report",
]
