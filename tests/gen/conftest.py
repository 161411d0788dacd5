"""Tiny real-image folders for the generator tests; the tiny SD pipelines live in :mod:`tests.gen.tiny_sd`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import write_images


@pytest.fixture(autouse=True)
def _two_threads() -> None:
    """The tests share two cores; more threads only add contention."""
    torch.set_num_threads(2)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A folder of 6 random 40 px RGB images (not square-sized, so cropping and resizing run)."""
    folder = tmp_path / "photos"
    write_images(folder, 6, size=40, seed=7)
    return folder
