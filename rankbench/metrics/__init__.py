"""Ranking-agreement metrics: how well a supernet's scores rank candidates against the truth.

A package of four modules: :mod:`~rankbench.metrics.point` (the point metrics and their
registry), :mod:`~rankbench.metrics.bootstrap` (intervals, :func:`rank_metrics`),
:mod:`~rankbench.metrics.paired` and :mod:`~rankbench.metrics.reliability`; import the names
from here.

Pure functions: 1-D arrays in, floats (or a dict) out. Conventions, everywhere:

- higher score = better, higher truth = better (accuracies);
- ties are allowed on both sides: isomorphic subnets share one NB101 truth, and a weak
  supernet can give several subnets the same accuracy. Each metric says how it treats them;
- a correlation is undefined when either side is constant: it returns NaN (as scipy does);
- NaN/inf in the input is an error, never silently dropped: callers drop candidates without a
  truth explicitly, so that ``n`` in a report is the number really ranked;
- a ranking needs at least 3 candidates.

The metrics are registered in :data:`METRICS` (``list_metrics()``) so that reports and tests
iterate over the same list; :func:`rank_metrics` computes all of them, with bootstrap intervals
whose unit is the thing that varies: hash classes (isomorphic subnets share one network and
one truth) are drawn, then each drawn class's truth from its repeats (:func:`bootstrap_ci`).
:func:`paired_difference` compares two rankers over training seeds; :func:`split_half_reliability`
says how well a truth of a few noisy repeats can agree with a noise-free one.
"""
from __future__ import annotations

from rankbench.metrics.bootstrap import (DISATTENUATION, TRUTH_REDUCES, ConfidenceInterval, _bootstrap_values,
                                         _class_counts, _class_kendall, _Classes, _classes, _disattenuated,
                                         _draw_class_truths, _draw_truths, _eval_resamples, _interval, _noise_status,
                                         _truth_noise, _w_kendall, bootstrap_ci, rank_metrics)
from rankbench.metrics.paired import paired_difference
from rankbench.metrics.point import (MEAN_DECIMALS, METRICS, MetricFn, best_rank_at_k, group_mean, kendall_tau,
                                     list_metrics, pearson, precision_at_10_naslib, precision_at_k,
                                     precision_at_k_awnas, register_metric, spearman, top1_regret, worst_rank_at_k)
from rankbench.metrics.reliability import MIN_RELIABILITY_CLASSES, split_half_reliability

__all__ = [
    "METRICS",
    "register_metric",
    "list_metrics",
    "kendall_tau",
    "spearman",
    "pearson",
    "precision_at_k",
    "precision_at_10_naslib",
    "precision_at_k_awnas",
    "best_rank_at_k",
    "worst_rank_at_k",
    "top1_regret",
    "ConfidenceInterval",
    "bootstrap_ci",
    "rank_metrics",
    "paired_difference",
    "split_half_reliability",
    "MIN_RELIABILITY_CLASSES",
    "DISATTENUATION",
    "TRUTH_REDUCES",
    "group_mean",
    "MEAN_DECIMALS",
]

#: internals the tests check against naive references (not public API)
_TESTED_INTERNALS = (_bootstrap_values, _class_counts, _class_kendall, _Classes, _classes, _disattenuated,
                     _draw_class_truths, _draw_truths, _eval_resamples, _interval, _noise_status, _truth_noise,
                     _w_kendall, MetricFn)
