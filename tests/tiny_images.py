"""Tiny image folders whose sources differ in their spectra, for tests that extract with ``fft``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

KINDS = ("noise", "smooth", "striped")


def _image(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """Noise; the same noise blurred (a generator's missing high frequencies); noise plus a periodic grid (an up-sampling artefact)."""
    pixels = rng.integers(0, 256, (size, size, 3)).astype(np.float64)
    if kind == "smooth":
        for axis in (0, 1):
            pixels = (pixels + np.roll(pixels, 1, axis) + np.roll(pixels, -1, axis)) / 3
    elif kind == "striped":
        pixels[::4] = pixels[::4] * 0.5 + 127
    return pixels.clip(0, 255).astype(np.uint8)


def write_sources(root: Path, sources: dict[str, str], count: int = 24, size: int = 32, seed: int = 0) -> Path:
    """One sub-folder of ``count`` PNGs per source; ``sources`` maps a source name to one of :data:`KINDS`."""
    for offset, (name, kind) in enumerate(sources.items()):
        rng = np.random.default_rng([seed, offset])
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            Image.fromarray(_image(kind, rng, size)).save(folder / f"{index:03d}.png")
    return root
