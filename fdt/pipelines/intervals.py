"""Every metric with a 95 % bootstrap interval over groups, and thresholds chosen where they may be.

Why groups: the rows of one group (five inpaintings of one photo, a COCO photo
and the fake made from its caption) are not independent, so resampling rows
would give intervals that are too narrow. Why one weighted pass: a resample of
groups is a vector of row weights (how often each row's group was drawn), and
every metric fdt reports is a weighted sum over the rows sorted once by score
(:func:`fdt.pipelines.metrics.weighted_metrics`), so 1000 resamples cost a few
matrix products instead of 1000 calls to scikit-learn.
:func:`fdt.pipelines.metrics.compute_metrics` is the same code with every weight
1, so a point estimate and its interval always agree on what a metric means.

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

from fdt.pipelines.metrics import ECE_BINS, TPR_AT_FPR, weighted_metrics

__all__ = [
    "DEFAULT_RESAMPLES", "ECE_BINS", "TPR_AT_FPR", "bootstrap_metrics", "bootstrap_weights", "choose_threshold",
    "choose_thresholds", "format_interval", "group_strata", "weighted_metrics",
]
DEFAULT_RESAMPLES = 1000
_CHUNK_ELEMENTS = 4_000_000  # rows x resamples per weighted pass: ~32 MB per float64 array


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
