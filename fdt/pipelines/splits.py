"""Grouped splits: cross-validation folds and a held-out train/validation/test split.

Images of one group (the five inpaintings of one photo, the resized copies of one
original) never sit on both sides of a split; otherwise near-duplicates leak and
scores are flattering.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from fdt.grouping import DEFAULT_FRACTIONS, PARTS, assign_groups, holdout_masks
from fdt.pipelines.errors import SplitError

__all__ = ["DEFAULT_FRACTIONS", "PARTS", "assign_groups", "check_binary", "grouped_folds", "holdout_masks", "parse_fractions"]


def check_binary(y: np.ndarray, what: str = "training set") -> None:
    """Refuse a set without both real (0) and fake (1) images: a detector cannot learn from one class."""
    present = np.unique(y)
    if present.size < 2:
        names = ", ".join("real" if v == 0 else "fake" if v == 1 else str(v) for v in present) or "no"
        raise SplitError(f"the {what} has only one class ({names} images); it needs both real and fake images")


def grouped_folds(y: np.ndarray, groups: np.ndarray, n_splits: int, random_state: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified, grouped cross-validation folds as ``(train_rows, test_rows)`` pairs.

    Raises :class:`SplitError` when a class has fewer groups than folds, because
    then some fold cannot hold that class and its scores are undefined.
    """
    y, groups = np.asarray(y), np.asarray(groups)
    check_binary(y)
    if n_splits < 2:
        raise SplitError(f"cross-validation needs at least 2 folds, not {n_splits}")
    for label in np.unique(y):
        count = np.unique(groups[y == label]).size
        if count < n_splits:
            name = {0: "real", 1: "fake"}.get(int(label) if np.issubdtype(y.dtype, np.integer) else -1, str(label))
            raise SplitError(
                f"only {count} {name} group(s) for {n_splits}-fold cross-validation; "
                "lower --cv or add images from more groups"
            )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    return list(splitter.split(np.zeros((y.size, 1)), y, groups))


def parse_fractions(text: str) -> tuple[float, float, float]:
    """``"80/10/10"`` (or ``"0.8,0.1,0.1"``) as train/validation/test fractions summing to 1."""
    parts = text.replace(",", "/").split("/")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 3 or any(v < 0 for v in values) or sum(values) <= 0:
        raise SplitError(f"split must be three non-negative numbers like 80/10/10, not {text!r}")
    total = sum(values)
    fractions = tuple(v / total for v in values)
    if fractions[0] == 0 or fractions[2] == 0:
        raise SplitError(f"split {text!r} needs a non-empty train and test part")
    return fractions  # type: ignore[return-value]
