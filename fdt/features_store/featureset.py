"""What a reader gets from the store: a feature matrix with labels, groups and row metadata."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal strings (and hashes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class ExtractorKey:
    """Identifies one kind of feature row: which extractor, how configured, which weights, at which resolution.

    ``params`` holds only the parameters that change the features (never device or
    batch size). ``weights`` is the weights identity: ``imagenet:sha256:<hex>``,
    ``file:sha256:<hex>``, ``random:seed=<n>``, or ``none`` for weight-free extractors.
    ``perturb`` is the canonical key of the perturbation chain applied before the
    resolution step (:mod:`fdt.perturb`); ``""`` (clean) leaves the key id as it
    was before perturbations existed, so stores written then are reused.
    """

    extractor: str
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    weights: str = "none"
    resolution: str = "native"
    perturb: str = ""
    params_json: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params_json", canonical_json(self.params))

    @property
    def id(self) -> str:
        """A short stable hash of the key, used as the key's folder name in the store."""
        fields = [self.extractor, self.params_json, self.weights, self.resolution] + ([self.perturb] if self.perturb else [])
        text = canonical_json(fields)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> str:
        params = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        text = f"{self.extractor}({params}) weights={self.weights} resolution={self.resolution}"
        return f"{text} perturb={self.perturb}" if self.perturb else text

    def to_dict(self) -> dict[str, Any]:
        data = {"extractor": self.extractor, "params": self.params, "weights": self.weights, "resolution": self.resolution}
        return dict(data, perturb=self.perturb) if self.perturb else data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ExtractorKey":
        return cls(data["extractor"], dict(data.get("params") or {}), data.get("weights", "none"), str(data.get("resolution", "native")), str(data.get("perturb", "")))


@dataclass
class FeatureSet:
    """Rows of one :class:`ExtractorKey`, one per (image, source), aligned across every array.

    ``X`` is float32 ``(n, d)``; ``y`` is 0 (real) / 1 (fake); ``groups`` ties images
    that must stay on one side of a split; ``sources``, ``sha256`` and ``paths`` are
    row metadata.
    """

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    sources: np.ndarray
    sha256: np.ndarray
    paths: np.ndarray
    key: ExtractorKey
    info: dict = field(default_factory=dict)
    """The extractor's self-description stored with the rows (e.g. what a trained network trained on)."""

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, rows: np.ndarray) -> "FeatureSet":
        """The rows selected by a boolean mask or an index array."""
        return FeatureSet(
            self.X[rows], self.y[rows], self.groups[rows], self.sources[rows], self.sha256[rows], self.paths[rows], self.key, self.info
        )
