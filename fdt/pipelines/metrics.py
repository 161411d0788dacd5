"""The one metrics function every evaluation uses, and the mean ± std summary of several folds.

Scores are the probability that an image is fake (label 1), so every metric reads
the same numbers whether it comes from cross-validation, a held-out split, a
generalisation-matrix cell or a benchmark.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from fdt.pipelines.errors import UnknownMetricError

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
ECE_BINS = 10


def check_metric(name: str) -> str:
    """Return ``name`` if it is a metric, else raise :class:`UnknownMetricError` listing the valid ones."""
    if name not in METRICS:
        raise UnknownMetricError(f"unknown metric {name!r}; choose one of: {', '.join(METRICS)}")
    return name


def compute_metrics(y_true: np.ndarray, proba_fake: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """All detection metrics of fake-probabilities against labels (0 real, 1 fake).

    Parameters
    ----------
    y_true : array of shape (n,)
        0 for real, 1 for fake.
    proba_fake : array of shape (n,)
        Calibrated probability that each image is fake.
    threshold : float, default=0.5
        Probability at or above which an image is called fake for the thresholded metrics.

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
    - ``tpr_at_fpr_K``: the highest TPR over ROC operating points with FPR at most K %,
      never interpolated, so it is attainable by an actual threshold.
    - ``best_threshold_accuracy``: accuracy at the best threshold chosen on the same data;
      an optimistic upper bound, reported because the seed studies report it.
    - ``ece``: expected calibration error over ``ECE_BINS`` equal-width bins of the fake
      probability, ``sum_b n_b / n * |mean(y)_b - mean(p)_b|``; bins are right-closed
      except the first, which also holds 0.
    """
    y = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(proba_fake, dtype=float).ravel()
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"labels and scores must be non-empty and of one length, got {y.size} and {p.size}")
    predicted = (p >= threshold).astype(int)
    both = np.unique(y).size == 2
    real, fake = y == 0, y == 1
    real_acc = float(np.mean(predicted[real] == 0)) if real.any() else math.nan
    fake_acc = float(np.mean(predicted[fake] == 1)) if fake.any() else math.nan
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, predicted, labels=[1], average=None, zero_division=0.0
    )
    result = {
        "roc_auc": float(roc_auc_score(y, p)) if both else math.nan,
        "average_precision": float(average_precision_score(y, p)) if both else math.nan,
        "accuracy": float(np.mean(predicted == y)),
        "balanced_accuracy": (real_acc + fake_acc) / 2 if both else math.nan,
        "real_accuracy": real_acc,
        "fake_accuracy": fake_acc,
        "best_threshold_accuracy": _best_threshold_accuracy(y, p),
        "precision": float(precision[0]),
        "recall": float(recall[0]),
        "f1": float(f1[0]),
        "brier": float(brier_score_loss(y, p, pos_label=1)) if np.all((p >= 0) & (p <= 1)) else math.nan,
        "ece": expected_calibration_error(y, p),
    }
    if both:
        fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
        result["eer"] = _equal_error_rate(fpr, tpr)
        for percent in (1, 5, 10):
            result[f"tpr_at_fpr_{percent}"] = float(tpr[fpr <= percent / 100 + 1e-12].max())
    else:
        result.update({"eer": math.nan, "tpr_at_fpr_1": math.nan, "tpr_at_fpr_5": math.nan, "tpr_at_fpr_10": math.nan})
    return {name: result[name] for name in METRICS}


def expected_calibration_error(y_true: np.ndarray, proba_fake: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error of fake-probabilities over equal-width bins (see :func:`compute_metrics`)."""
    y = np.asarray(y_true, dtype=float)
    p = np.clip(np.asarray(proba_fake, dtype=float), 0.0, 1.0)
    bins = np.clip(np.ceil(p * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        inside = bins == b
        total += inside.sum() / y.size * abs(y[inside].mean() - p[inside].mean())
    return float(total)


def _best_threshold_accuracy(y: np.ndarray, p: np.ndarray) -> float:
    # Calling fake everything at or above each distinct score covers every achievable split.
    order = np.argsort(-p, kind="mergesort")
    ys, ps = y[order], p[order]
    distinct = np.r_[np.flatnonzero(np.diff(ps)), ys.size - 1]
    fakes_above = np.cumsum(ys)[distinct]
    reals_above = distinct + 1 - fakes_above
    reals = ys.size - ys.sum()
    correct = fakes_above + (reals - reals_above)
    return float(max(correct.max(), reals) / ys.size)


def _equal_error_rate(fpr: np.ndarray, tpr: np.ndarray) -> float:
    fnr = 1.0 - tpr
    gap = fnr - fpr  # decreasing along the ROC curve, from 1 to -1
    crossing = int(np.flatnonzero(gap <= 0)[0])
    if crossing == 0 or gap[crossing] == 0:
        return float(fpr[crossing])
    before, after = crossing - 1, crossing
    weight = gap[before] / (gap[before] - gap[after])
    return float(fpr[before] + weight * (fpr[after] - fpr[before]))


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
