"""The one metrics function every evaluation uses, and the mean ± std summary of several folds.

Scores are the probability that an image is fake (label 1), so every metric reads
the same numbers whether it comes from cross-validation, a held-out split, a
generalisation-matrix cell or a benchmark.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np

from fdt.pipelines.errors import UnknownMetricError
from fdt.pipelines.intervals import ECE_BINS, weighted_metrics

METRICS: tuple[str, ...] = (
    "roc_auc",
    "average_precision",
    "accuracy",
    "balanced_accuracy",
    "real_accuracy",
    "fake_accuracy",
    "best_threshold_accuracy",
    "precision",
    "recall",
    "f1",
    "eer",
    "tpr_at_fpr_1",
    "tpr_at_fpr_5",
    "tpr_at_fpr_10",
    "brier",
    "ece",
)
"""Every metric :func:`compute_metrics` returns, in report order."""

LOWER_IS_BETTER = frozenset({"eer", "brier", "ece"})
"""Metrics where a smaller value is a better detector."""


def check_metric(name: str) -> str:
    """Return ``name`` if it is a metric, else raise :class:`UnknownMetricError` listing the valid ones."""
    if name not in METRICS:
        raise UnknownMetricError(f"unknown metric {name!r}; choose one of: {', '.join(METRICS)}")
    return name


def compute_metrics(
    y_true: np.ndarray, proba_fake: np.ndarray, threshold: float = 0.5, thresholds: Mapping[str, float] | None = None
) -> dict[str, float]:
    """All detection metrics of fake-probabilities against labels (0 real, 1 fake).

    Parameters
    ----------
    y_true : array of shape (n,)
        0 for real, 1 for fake.
    proba_fake : array of shape (n,)
        Calibrated probability that each image is fake.
    threshold : float, default=0.5
        Probability at or above which an image is called fake for the thresholded metrics.
    thresholds : mapping, optional
        Thresholds chosen on other rows (validation or out-of-fold predictions, see
        :func:`fdt.pipelines.intervals.choose_thresholds`) for the metrics that pick
        an operating point: ``best_threshold_accuracy`` and ``tpr_at_fpr_K``.

    Returns
    -------
    dict
        One float per name in :data:`METRICS`. Metrics that need both classes
        (ROC AUC, AP, EER, TPR at FPR, balanced accuracy) are NaN when one is missing,
        rather than a misleading number.

    Notes
    -----
    - ``eer``: the equal error rate, where the false positive rate equals the false
      negative rate, linearly interpolated between consecutive ROC points.
    - ``tpr_at_fpr_K``: with ``thresholds``, the TPR here at the threshold chosen
      elsewhere for an FPR of K %; without, the highest TPR over these rows' own ROC
      points with FPR at most K % (an oracle operating point, never interpolated).
    - ``best_threshold_accuracy``: with ``thresholds``, the accuracy here at the
      accuracy-maximising threshold chosen elsewhere; without, the best accuracy over
      every threshold of these very rows, an optimistic upper bound.
    - ``ece``: expected calibration error over ``ECE_BINS`` equal-width bins of the fake
      probability, ``sum_b n_b / n * |mean(y)_b - mean(p)_b|``; bins are right-closed
      except the first, which also holds 0.

    The computation is :func:`fdt.pipelines.intervals.weighted_metrics` with every
    weight 1, the code bootstrap intervals run, so a value and its interval agree.
    """
    y = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(proba_fake, dtype=float).ravel()
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"labels and scores must be non-empty and of one length, got {y.size} and {p.size}")
    values = weighted_metrics(y, p, np.ones((1, y.size)), threshold, thresholds)
    return {name: float(values[name][0]) for name in METRICS}


def expected_calibration_error(y_true: np.ndarray, proba_fake: np.ndarray) -> float:
    """Expected calibration error of fake-probabilities over equal-width bins (see :func:`compute_metrics`)."""
    return compute_metrics(y_true, proba_fake)["ece"]


def summarise(folds: Iterable[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and (population) standard deviation of each metric over folds, ignoring NaN folds."""
    rows = list(folds)
    summary = {}
    for name in rows[0]:
        values = np.array([row[name] for row in rows], dtype=float)
        finite = values[~np.isnan(values)]
        summary[name] = {
            "mean": float(finite.mean()) if finite.size else math.nan,
            "std": float(finite.std()) if finite.size else math.nan,
        }
    return summary


def format_summary(summary: Mapping[str, Mapping[str, float]]) -> str:
    """One ``name  mean ± std`` line per metric, for terminals and Markdown code blocks."""
    width = max(len(name) for name in summary)
    return "\n".join(f"{name:<{width}}  {v['mean']:.4f} ± {v['std']:.4f}" for name, v in summary.items())


def format_scored(scored: Mapping[str, Any], names: Iterable[str] = ("roc_auc", "average_precision", "accuracy", "best_threshold_accuracy", "eer")) -> str:
    """``name  value [low, high]`` lines of a scored set (pooled, then per fake source), and its flags."""
    from fdt.pipelines.intervals import format_interval

    names = list(names)
    width = max(len(name) for name in names)
    lines = [f"{name:<{width}}  {format_interval(scored['metrics'][name], scored['intervals'][name], 4)}" for name in names]
    lines += [f"FLAG: {flag}" for flag in scored.get("flags", [])]
    for source, part in scored.get("per_source", {}).items():
        flags = "".join(f"  FLAG: {flag}" for flag in part["flags"])
        lines.append(f"  reals vs {source}: roc_auc {format_interval(part['metrics']['roc_auc'], part['intervals']['roc_auc'], 4)}{flags}")
    return "\n".join(lines)
