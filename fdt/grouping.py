"""The one train/validation/test assignment of groups, and the record of what a network trained on.

Every stage that splits data (tuning, matrices, the networks fdt trains from
data) calls :func:`assign_groups` with the same seed and shares, so "the test
groups" means the same images everywhere. A network trained on data writes a
:func:`training_record` beside its model file; evaluation reads it and refuses
to score rows the network has seen (:mod:`fdt.pipelines.leakage`).

This module sits at the bottom of the package (numpy only), so ``fdt.models``
can split before training without importing ``fdt.pipelines``.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fdt.atomic import write_json

PARTS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
RECORD_FORMAT = "fdt.training-record"
RECORD_VERSION = 1


def group_of(group: str, sha256: str) -> str:
    """A row's group: the one given, else the image's own content hash (an image is its own group)."""
    return group or f"sha256:{sha256}"


def assign_groups(
    groups: Sequence[str],
    strata: Sequence[str],
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    random_state: int = 0,
    labels: Sequence[int] | None = None,
) -> dict[str, str]:
    """Assign each group to ``train``, ``val`` or ``test``, stratified by source.

    A group's stratum is the alphabetically first stratum among its real rows
    (label 0, when ``labels`` are given), else among all its rows: a photo and the
    fakes made from it follow the photo's source, whichever fakes are present,
    and row order never matters. Within a stratum, the sorted groups are shuffled by a
    generator seeded from ``(random_state, stratum name)`` and cut at the shares
    ``fractions`` by group count (a group goes to the part its midpoint falls in).
    So a group's part depends only on the seed, the shares and the groups of its
    own stratum: adding another source, another resolution or the fakes made from
    a photo never moves that photo to another part, and a network trained on the
    train part of the reals leaves the same validation and test groups unseen
    that tuning and reports score.
    """
    groups = np.asarray(groups).astype(str)
    strata = np.asarray(strata).astype(str)
    if groups.size == 0:
        return {}
    rank = np.zeros(groups.size, int) if labels is None else (np.asarray(labels).astype(int) != 0).astype(int)
    order = np.lexsort((strata, rank, groups))
    first = np.r_[True, groups[order][1:] != groups[order][:-1]]
    unique_groups, group_stratum = groups[order][first], strata[order][first]
    bounds = np.cumsum(fractions) / np.sum(fractions)
    assignment: dict[str, str] = {}
    for stratum in np.unique(group_stratum):
        members = np.sort(unique_groups[group_stratum == stratum])
        rng = np.random.default_rng([int(random_state), zlib.crc32(stratum.encode())])
        shuffled = members[rng.permutation(members.size)]
        middle = (np.arange(members.size) + 0.5) / members.size
        parts = np.searchsorted(bounds, middle, side="right")
        for group, part in zip(shuffled, parts):
            assignment[str(group)] = PARTS[min(int(part), 2)]
    return assignment


def holdout_masks(groups: Sequence[str], assignment: dict[str, str]) -> dict[str, np.ndarray]:
    """Boolean row masks of ``train``, ``val`` and ``test`` from a group assignment."""
    parts = np.array([assignment[str(g)] for g in groups])
    return {part: parts == part for part in PARTS}


# ---------------------------------------------------------------- what a network trained on


def record_path(model: str | os.PathLike) -> Path:
    """Where the training record of a model file lives: ``<model>.training.json``."""
    model = Path(model)
    return model.with_name(model.name + ".training.json")


def training_record(
    groups: Sequence[str],
    images: Sequence[str],
    split: dict[str, Any] | None,
    data_fingerprint: str,
) -> dict[str, Any]:
    """The record of the groups and images a network trained on.

    ``split`` is ``{"seed": S, "fractions": [train, val, test]}`` when the network
    trained on the train share of :func:`assign_groups`, ``None`` when it trained on
    every image it was given.
    """
    trained_groups = sorted(set(map(str, groups)))
    trained_images = sorted(set(map(str, images)))
    digest = hashlib.sha256("\n".join(trained_groups).encode() + b"\0" + "\n".join(trained_images).encode()).hexdigest()
    return {
        "format": RECORD_FORMAT,
        "format_version": RECORD_VERSION,
        "split": split,
        "data_fingerprint": data_fingerprint,
        "trained_sha256": digest,
        "groups": trained_groups,
        "images": trained_images,
    }


def write_training_record(model: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write ``record`` to :func:`record_path` atomically; return its path."""
    path = record_path(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json(path, record, indent=None)


def read_training_record(path: str | os.PathLike) -> dict[str, Any]:
    """A training record written by :func:`write_training_record`; :class:`~fdt.data.DataError` (a ``ValueError``) if it is not one."""
    from fdt.data import DataError

    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except ValueError as error:
        raise DataError(f"{path} is not an fdt training record (not JSON: {error})") from None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT or record.get("format_version") != RECORD_VERSION:
        raise DataError(f"{path} is not an fdt training record (format {RECORD_FORMAT} version {RECORD_VERSION})")
    return record
