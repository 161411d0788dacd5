"""Tiny synthetic feature sets and stores for the pipeline tests; nothing here needs torch."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from fdt.features_store.featureset import ExtractorKey, FeatureSet


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def make_featureset(
    sources: dict[str, tuple[int, np.ndarray]], per_source: int = 30, dim: int = 6, copies: int = 1, seed: int = 0,
    resolution: str = "native",
) -> FeatureSet:
    """Rows drawn around a per-source mean; ``copies`` near-duplicates per group (same image, tiny noise).

    ``sources`` maps name -> (label, mean vector of length ``dim``).
    """
    rng = np.random.default_rng(seed)
    X, y, groups, names = [], [], [], []
    for name, (label, mean) in sources.items():
        for image in range(per_source):
            base = rng.normal(mean, 1.0)
            for _ in range(copies):
                X.append(base + rng.normal(0, 0.01, dim))
                y.append(label)
                groups.append(f"{name}-{image}")
                names.append(name)
    n = len(y)
    sha = np.array([f"{i:064x}" for i in range(n)])
    key = ExtractorKey("fft", {"size": dim}, "none", resolution)
    return FeatureSet(np.asarray(X, np.float32), np.asarray(y), np.asarray(groups), np.asarray(names), sha, sha.copy(), key)
