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


SOURCES = {
    "coco": (0, np.zeros(6)),
    "inpaint": (1, np.array([1.5, 0, 0, 0, 0, 0])),
    "sd21": (1, np.array([0, 1.5, 0, 0, 0, 0])),
    "dcgan": (1, np.array([3.0, 0, 0, 0, 0, 0])),
}


@pytest.fixture
def featuresets() -> dict[str, FeatureSet]:
    """The same 160 images (coco real; inpaint, sd21, dcgan fake) at two resolutions."""
    return {res: make_featureset(SOURCES, per_source=40, seed=0 if res == "native" else 1, resolution=res) for res in ("native", "64")}


@pytest.fixture
def store_root(tmp_path, featuresets):
    """A feature store holding ``featuresets`` under the ``fft`` extractor, written through the store's API."""
    from fdt.data import ImageRecord
    from fdt.features_store.store import FeatureStore

    root = tmp_path / "features_store"
    store = FeatureStore(root)
    for fs in featuresets.values():
        records = [ImageRecord(f"/images/{s}/{i}.png", str(s), int(l), str(g)) for i, (s, l, g) in enumerate(zip(fs.sources, fs.y, fs.groups))]
        store.write(fs.key, list(fs.sha256), fs.X, records)
    return root


@pytest.fixture
def featureset_factory():
    """:func:`make_featureset`, for tests that need their own sizes."""
    return make_featureset


@pytest.fixture(scope="module")
def matrix_report():
    """Matrices over inpaint, sd21, dcgan at two resolutions, logreg defaults, 3 folds (built once per module)."""
    from fdt.pipelines.matrix import generalisation_matrices
    from fdt.pipelines.specs import get_spec

    data = {res: make_featureset(SOURCES, per_source=40, seed=i, resolution=res) for i, res in enumerate(("native", "64"))}
    return generalisation_matrices(data, ["coco"], ["inpaint", "sd21", "dcgan"], get_spec("logreg"), metric="roc_auc", n_trials=0, cv=3)
