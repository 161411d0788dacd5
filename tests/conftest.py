"""Shared test setup: no network, no real weight caches, tiny images written by the tests themselves."""

from __future__ import annotations

import os

# Tests never reach a hub: published-weights lookups must fail fast with their message.
os.environ["FDT_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402


def write_images(folder: Path, count: int, size: int = 32, seed: int = 0, fmt: str = "png") -> list[Path]:
    """``count`` random-noise RGB images of ``size`` px; distinct seeds give distinct files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        path = folder / f"img{index:04d}.{fmt}"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def image_tree(tmp_path: Path) -> Path:
    """``data/real`` (12 images) and ``data/fake`` (12 images), 32 px."""
    root = tmp_path / "data"
    write_images(root / "real", 12, seed=1)
    write_images(root / "fake", 12, seed=2)
    return root


@pytest.fixture(autouse=True)
def _private_torch_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty TORCH_HOME per test, so no test depends on weights a developer happens to have cached."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
