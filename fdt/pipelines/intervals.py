"""Every metric with a 95 % bootstrap interval over groups, and thresholds chosen where they may be.

Why groups: the rows of one group (five inpaintings of one photo, a COCO photo
and the fake made from its caption) are not independent, so resampling rows
would give intervals that are too narrow. Why one weighted pass: a resample of
groups is a vector of row weights (how often each row's group was drawn), and
every metric fdt reports is a weighted sum over the rows sorted once by score,
so 1000 resamples cost a few matrix products instead of 1000 calls to
scikit-learn. :func:`fdt.pipelines.metrics.compute_metrics` is the same code
with every weight 1, so a point estimate and its interval always agree on what
a metric means.

The resampling, exactly (so anyone can reproduce an interval by hand):

1. Groups are the sorted unique values of ``groups``. A group is in stratum
   ``real`` if all its rows are real, ``fake`` if all are fake, ``mixed`` otherwise.
2. ``rng = numpy.random.default_rng(random_state)``; for each stratum in the
   order real, fake, mixed that has ``m > 0`` groups, ``rng.integers(0, m, size=(n_resamples, m))``
   draws resample ``b``'s groups of that stratum (with replacement, ``m`` of them).
3. Resample ``b`` is every row of every drawn group, repeated as often as the
   group was drawn; its metrics are :func:`compute_metrics` of those rows.
4. The interval is ``numpy.nanpercentile`` of the resampled values at
   ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` (linear interpolation);
   resamples where a metric is undefined (NaN) are left out.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

TPR_AT_FPR = (1, 5, 10)
ECE_BINS = 10
DEFAULT_RESAMPLES = 1000
_CHUNK_ELEMENTS = 4_000_000  # rows x resamples per weighted pass: ~32 MB per float64 array


def weighted_metrics(
    y_true: np.ndarray,
    proba_fake: np.ndarray,
    weights: np.ndarray,
    threshold: float = 0.5,
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Every metric of :data:`fdt.pipelines.metrics.METRICS` for each row of ``weights``.

    Parameters
    ----------
    y_true, proba_fake : arrays of shape (n,)
        Labels (0 real, 1 fake) and fake-probabilities.
    weights : array of shape (b, n)
        Non-negative row weights; row ``k`` of the result is the metrics of the data
        set in which row ``i`` appears ``weights[k, i]`` times.
    threshold : float
        Probability at or above which an image is called fake.
    thresholds : mapping, optional
        Thresholds chosen elsewhere (:func:`choose_thresholds` on validation rows):
        ``"best"`` for ``best_threshold_accuracy`` and ``"fpr_K"`` for ``tpr_at_fpr_K``.
        Without them those metrics are read off these rows' own ROC curve.

    Returns
    -------
    dict of name -> array of shape (b,)
    """
    y = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(proba_fake, dtype=float).ravel()
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    fake = y == 1
    real = ~fake
    order = np.argsort(-p, kind="mergesort")
    ys, ps, ws = y[order], p[order], w[:, order]
    # The last row of each run of equal scores: an operating point of the ROC curve.
    ends = np.r_[np.flatnonzero(np.diff(ps)), ps.size - 1]
    tp = np.cumsum(ws * ys, axis=1)[:, ends]
    fp = np.cumsum(ws * (1 - ys), axis=1)[:, ends]
    positives = ws @ ys.astype(float)
    negatives = ws.sum(axis=1) - positives
    total = positives + negatives
    both = (positives > 0) & (negatives > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.concatenate([np.zeros((len(w), 1)), tp / positives[:, None]], axis=1)
        fpr = np.concatenate([np.zeros((len(w), 1)), fp / negatives[:, None]], axis=1)
        auc = np.trapezoid(tpr, fpr, axis=1)
        precision_curve = tp / np.maximum(tp + fp, np.finfo(float).tiny)
        average_precision = np.sum(np.diff(tpr, axis=1) * precision_curve, axis=1)

        predicted = p >= threshold
        called_fake = w @ predicted.astype(float)
        true_fake = w @ (predicted & fake).astype(float)
        true_real = w @ (~predicted & real).astype(float)
        real_accuracy = np.where(negatives > 0, true_real / negatives, math.nan)
        fake_accuracy = np.where(positives > 0, true_fake / positives, math.nan)
        precision = np.where(called_fake > 0, true_fake / np.maximum(called_fake, np.finfo(float).tiny), 0.0)
        recall = np.where(positives > 0, true_fake / np.maximum(positives, np.finfo(float).tiny), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, np.finfo(float).tiny), 0.0)

        if thresholds and "best" in thresholds:
            best = _accuracy_at(w, fake, p, thresholds["best"], total)
        else:
            # Calling fake everything at or above each distinct score covers every achievable split.
            correct = tp + (negatives[:, None] - fp)
            best = np.maximum(correct.max(axis=1), negatives) / total

        brier = (w @ (p - y) ** 2) / total if np.all((p >= 0) & (p <= 1)) else np.full(len(w), math.nan)
        bins = np.clip(np.ceil(np.clip(p, 0.0, 1.0) * ECE_BINS).astype(int) - 1, 0, ECE_BINS - 1)
        onehot = np.eye(ECE_BINS)[bins]
        ece = np.abs(w @ (onehot * y[:, None]) - w @ (onehot * np.clip(p, 0.0, 1.0)[:, None])).sum(axis=1) / total

        result = {
            "roc_auc": np.where(both, auc, math.nan),
            "average_precision": np.where(both, average_precision, math.nan),
            "accuracy": (true_fake + true_real) / total,
            "balanced_accuracy": np.where(both, (real_accuracy + fake_accuracy) / 2, math.nan),
            "real_accuracy": real_accuracy,
            "fake_accuracy": fake_accuracy,
            "best_threshold_accuracy": best,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "eer": np.where(both, _equal_error_rate(fpr, tpr), math.nan),
            "brier": brier,
            "ece": ece,
        }
        for percent in TPR_AT_FPR:
            name = f"fpr_{percent}"
            if thresholds and name in thresholds:
                value = (w @ ((p >= thresholds[name]) & fake).astype(float)) / positives
            else:
                value = np.where(fpr <= percent / 100 + 1e-12, tpr, -np.inf).max(axis=1)
            result[f"tpr_at_fpr_{percent}"] = np.where(both, value, math.nan)
    return result


def _accuracy_at(w: np.ndarray, fake: np.ndarray, p: np.ndarray, threshold: float, total: np.ndarray) -> np.ndarray:
    return (w @ ((p >= threshold) == fake).astype(float)) / total


def _equal_error_rate(fpr: np.ndarray, tpr: np.ndarray) -> np.ndarray:
    """Where the false negative rate crosses the false positive rate, interpolated between ROC points."""
    gap = (1.0 - tpr) - fpr  # decreasing along the curve, from 1 to -1
    crossed = gap <= 0
    crossing = np.where(crossed.any(axis=1), crossed.argmax(axis=1), gap.shape[1] - 1)
    rows = np.arange(len(gap))
    before = np.maximum(crossing - 1, 0)
    g_before, g_after = gap[rows, before], gap[rows, crossing]
    exact = (crossing == 0) | (g_after == 0)
    weight = np.where(exact, 0.0, g_before / np.where(exact, 1.0, g_before - g_after))
    interpolated = fpr[rows, before] + weight * (fpr[rows, crossing] - fpr[rows, before])
    return np.where(exact, fpr[rows, crossing], interpolated)


def choose_thresholds(y_true: np.ndarray, proba_fake: np.ndarray) -> dict[str, float]:
    """Thresholds chosen on these rows, to be applied to other rows (validation -> test).

    ``"best"`` maximises accuracy here; ``"fpr_K"`` is the lowest threshold whose
    false positive rate here is at most K %. An image is called fake when its
    probability is at or above the threshold.
    """
    y = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(proba_fake, dtype=float).ravel()
    if np.unique(y).size < 2:
        return {}
    order = np.argsort(-p, kind="mergesort")
    ys, ps = y[order], p[order]
    ends = np.r_[np.flatnonzero(np.diff(ps)), ps.size - 1]
    tp, fp = np.cumsum(ys)[ends], np.cumsum(1 - ys)[ends]
    negatives = (y == 0).sum()
    correct = tp + negatives - fp
    cut = int(correct.argmax())
    chosen = {"best": float(ps[ends[cut]]) if correct[cut] > negatives else math.inf}
    for percent in TPR_AT_FPR:
        allowed = np.flatnonzero(fp / negatives <= percent / 100 + 1e-12)
        chosen[f"fpr_{percent}"] = float(ps[ends[allowed[-1]]]) if allowed.size else math.inf
    return chosen


def choose_threshold(y_true: np.ndarray, proba_fake: np.ndarray) -> float:
    """The accuracy-maximising threshold of these rows (see :func:`choose_thresholds`); 0.5 if one class."""
    return choose_thresholds(y_true, proba_fake).get("best", 0.5)


def group_strata(y_true: np.ndarray, groups: Sequence) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """``(group index of each row, sorted unique groups, [group indices of real, fake, mixed groups])``."""
    y = np.asarray(y_true).astype(int).ravel()
    unique, index = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    fakes = np.bincount(index, weights=y, minlength=unique.size)
    sizes = np.bincount(index, minlength=unique.size)
    strata = [np.flatnonzero(fakes == 0), np.flatnonzero(fakes == sizes), np.flatnonzero((fakes > 0) & (fakes < sizes))]
    return index, unique, strata


def bootstrap_weights(y_true: np.ndarray, groups: Sequence, n_resamples: int = DEFAULT_RESAMPLES, random_state: int = 0) -> np.ndarray:
    """Row weights ``(n_resamples, n)`` of a stratified bootstrap over groups (the module's steps 1–3)."""
    index, unique, strata = group_strata(y_true, groups)
    rng = np.random.default_rng(random_state)
    counts = np.zeros((n_resamples, unique.size))
    rows = np.arange(n_resamples)[:, None]
    for members in strata:
        if members.size:
            drawn = members[rng.integers(0, members.size, size=(n_resamples, members.size))]
            np.add.at(counts, (np.broadcast_to(rows, drawn.shape), drawn), 1.0)
    return counts[:, index]


def bootstrap_metrics(
    y_true: np.ndarray,
    proba_fake: np.ndarray,
    groups: Sequence,
    threshold: float = 0.5,
    thresholds: Mapping[str, float] | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    random_state: int = 0,
) -> dict[str, tuple[float, float]]:
    """A percentile bootstrap interval over groups for every metric (see the module docstring)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    y = np.asarray(y_true).astype(int).ravel()
    weights = bootstrap_weights(y, groups, n_resamples, random_state)
    step = max(1, _CHUNK_ELEMENTS // max(y.size, 1))
    parts: list[dict[str, np.ndarray]] = [
        weighted_metrics(y, proba_fake, weights[start : start + step], threshold, thresholds)
        for start in range(0, n_resamples, step)
    ]
    tail = (1 - confidence) / 2 * 100
    intervals = {}
    for name in parts[0]:
        values = np.concatenate([part[name] for part in parts])
        if np.isnan(values).all():
            intervals[name] = (math.nan, math.nan)
        else:
            low, high = np.nanpercentile(values, [tail, 100 - tail])
            intervals[name] = (float(low), float(high))
    return intervals


def format_interval(value: float, interval: tuple[float, float] | None, digits: int = 2) -> str:
    """``0.91 [0.86, 0.95]``; ``–`` for an undefined value; the value alone without an interval."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if interval is None or any(v is None or math.isnan(v) for v in interval):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"
