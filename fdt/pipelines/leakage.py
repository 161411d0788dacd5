"""Features of a network fdt trained from data are never scored on the images it trained on.

An autoencoder (or, later, a fine-tuned CNN) trained on the images it then
describes makes those images look "typical", so a head can tell seen images
(the reals it trained on) from unseen ones (the fakes) and score the network's
memory rather than the generator. The extractor stores a reference to its
training record (:mod:`fdt.grouping`) with the features; this module reads it
and finds the rows of groups or images the network saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fdt.features_store.featureset import FeatureSet
from fdt.grouping import read_training_record
from fdt.pipelines.errors import PipelineError


class TrainedRowsError(PipelineError):
    """Rows to be scored were seen by the network whose features they are."""


@dataclass
class Seen:
    """Which rows a trained extractor saw, and how to name it in messages."""

    rows: np.ndarray
    network: str
    split: dict | None
    sources: list[str]
    """The sources of the rows whose images it trained on."""


def seen_rows(data: FeatureSet) -> Seen | None:
    """The rows whose group or image the extractor trained on; ``None`` for extractors not trained from data.

    Raises :class:`TrainedRowsError` when the features come from a network trained
    from data whose training record is missing or changed: what it saw cannot be
    checked, so nothing it describes can be scored honestly.
    """
    if not data.info.get("trained_from_data"):
        return None
    network = f"{data.key.extractor} model {data.info.get('weights_file', '?')}"
    reference = data.info.get("training_record")
    if not reference:
        raise TrainedRowsError(
            f"{network} has no record of the images it trained on (written before fdt kept one); retrain it to evaluate its features"
        )
    try:
        record = read_training_record(reference["path"])
    except (OSError, ValueError) as error:
        raise TrainedRowsError(f"cannot read the training record of {network} ({error}); it says which images must not be scored") from None
    if record["trained_sha256"] != reference["trained_sha256"]:
        raise TrainedRowsError(f"the training record {reference['path']} no longer matches {network}'s features; re-extract them")
    rows = np.isin(data.groups.astype(str), record["groups"]) | np.isin(data.sha256.astype(str), record["images"])
    trained = np.isin(data.sha256.astype(str), record["images"])
    return Seen(rows, network, record["split"], sorted(set(data.sources[trained].astype(str).tolist())))


def check_scored_rows(data: FeatureSet, scored: np.ndarray, what: str, allow: bool = False) -> str | None:
    """Refuse (or, with ``allow``, describe in bold) scoring rows the extractor trained on.

    Returns the warning to print in reports when ``allow`` forced it, else ``None``.
    """
    seen = seen_rows(data)
    if seen is None:
        return None
    overlap = int((seen.rows & scored).sum())
    if not overlap:
        return None
    protocol = f"seed {seen.split['seed']}, split {'/'.join(f'{f:g}' for f in seen.split['fractions'])}" if seen.split else "every image it was given"
    message = (
        f"{overlap} of {int(scored.sum())} {what} rows are images (or groups) that {seen.network} trained on ({protocol}); "
        "use the seed and split it was trained with"
    )
    if not allow:
        raise TrainedRowsError(message + ", or --allow-trained-groups to report anyway (flagged)")
    return f"**LEAK: {message}. These scores are not an honest evaluation.**"


def optimistic_cv_note(data: FeatureSet, train: np.ndarray) -> str | None:
    """The note for cross-validation on rows the extractor saw (expected: it trained on the train share)."""
    seen = seen_rows(data)
    if seen is None or not (seen.rows & train).any():
        return None
    return (
        f"cross-validation folds hold images {seen.network} trained on, so CV scores may be optimistic; "
        "the validation and test scores are on groups it never saw"
    )
