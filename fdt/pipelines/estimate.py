"""A time estimate before an O(n²) pipeline starts: one small timed fit, scaled by the spec's cost exponent.

Why: an exact kernel SVM on the seed studies' 15,000 rows takes a day and a half
to tune (issue 13), and nothing tells the user until it is too late. The estimate
never refuses; it prints one line naming the scalable specs.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from fdt.pipelines.solvers import configure

SAMPLE_ROWS = 400
"""Rows of the timed fit: enough that fixed overheads do not dominate, few enough to cost well under a second."""
SCALABLE = ("svm-nystroem", "logreg-rff", "sgd-hinge", "svm-linear")


def estimate_seconds(spec: Any, X: np.ndarray, y: np.ndarray, n_trials: int, cv: int, random_state: int | None = 0) -> float:
    """Seconds to tune ``spec`` with ``n_trials`` trials of ``cv`` folds on ``X``, plus the refit and calibration.

    One fit on at most :data:`SAMPLE_ROWS` rows (as a fold would: train on
    ``(cv-1)/cv`` of them, score the rest) is timed and scaled by
    ``(fold rows / sample rows) ** spec.cost_exponent``.
    """
    rng = np.random.default_rng(random_state)
    sample = np.sort(rng.choice(len(y), size=min(len(y), SAMPLE_ROWS), replace=False))
    cut = max(2, len(sample) * (cv - 1) // cv)
    train, test = sample[:cut], sample[cut:]
    if len(np.unique(y[train])) < 2:
        train, test = sample, sample
    pipeline = spec.build(random_state)
    configure(pipeline, len(train), X.shape[1], random_state)
    started = time.perf_counter()
    pipeline.fit(X[train], y[train])
    getattr(pipeline, "decision_function", pipeline.predict)(X[test])
    seconds = time.perf_counter() - started
    fold_rows = len(y) * (cv - 1) / cv
    fits = max(n_trials, 1) * cv + cv + 1
    return seconds * (fold_rows / len(train)) ** spec.cost_exponent * fits


def time_warning(spec: Any, X: np.ndarray, y: np.ndarray, n_trials: int, cv: int, limit_seconds: float, random_state: int | None = 0) -> str | None:
    """One line suggesting a scalable spec when an O(n²) ``spec`` would take longer than ``limit_seconds``; else None."""
    if not spec.quadratic:
        return None
    seconds = estimate_seconds(spec, X, y, n_trials, cv, random_state)
    if seconds <= limit_seconds:
        return None
    return (
        f"estimate: {spec.name} on {len(y):,} rows x {max(n_trials, 1)} trial(s) x {cv} folds ≈ {_duration(seconds)} "
        f"(a timed fit on {min(len(y), SAMPLE_ROWS)} rows, time ∝ n^{spec.cost_exponent:g}); "
        f"scalable specs: {', '.join(SCALABLE)} (fdt pipelines ls)"
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
