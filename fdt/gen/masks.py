"""Inpainting masks: the four diagonal triangles and random blobs of a chosen coverage.

A mask is an ``(H, W)`` boolean array, ``True`` where pixels are repainted; it is
saved as an 8-bit image, white where repainted (the diffusers convention and the
seed study's black-and-white mask images).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from fdt.gen.errors import GenError

TRIANGLES = ("upper-left", "upper-right", "lower-left", "lower-right")
MASK_KINDS = ("diagonal", "random", *TRIANGLES)


class MaskError(GenError):
    """A mask specification cannot be used; the message says why in one line."""


def triangle_mask(kind: str, height: int, width: int) -> np.ndarray:
    """The triangle cut off by one of the image's diagonals, its diagonal included.

    ``upper-left`` and ``lower-right`` are the halves on either side of the
    anti-diagonal (top-right to bottom-left corner); ``upper-right`` and
    ``lower-left`` those on either side of the main diagonal. A pixel belongs
    to a triangle when its centre lies inside it or on the diagonal; the test is
    in integers so the mask is exact at every size (an ``N×N`` triangle covers
    ``N(N+1)/2`` pixels).
    """
    if kind not in TRIANGLES:
        raise MaskError(f"unknown triangle {kind!r}; choose from {', '.join(TRIANGLES)}")
    rows = (2 * np.arange(height)[:, None] + 1) * width  # (2i+1)W: row centre scaled by 2HW
    cols = (2 * np.arange(width)[None, :] + 1) * height  # (2j+1)H: column centre scaled by 2HW
    if kind == "upper-left":
        return rows + cols <= 2 * height * width
    if kind == "lower-right":
        return rows + cols >= 2 * height * width
    if kind == "upper-right":
        return cols >= rows
    return cols <= rows


def random_mask(height: int, width: int, coverage: tuple[float, float], seed: int) -> np.ndarray:
    """A random smooth blob mask whose covered fraction lies in ``coverage``.

    A coarse Gaussian noise field is upsampled bicubically and its top ``k``
    pixels are masked, with ``k`` drawn uniformly from the coverage range, so
    the shape is random but the coverage is guaranteed rather than hoped for.
    """
    low, high = check_coverage(coverage)
    total = height * width
    min_pixels, max_pixels = int(np.ceil(low * total)), int(np.floor(high * total))
    if min_pixels > max_pixels:
        raise MaskError(f"no {height}x{width} mask has a coverage between {low} and {high}")
    rng = np.random.default_rng(seed)
    k = int(rng.integers(min_pixels, max_pixels + 1))
    grid = int(rng.integers(3, 9))
    coarse = rng.standard_normal((grid, grid)).astype(np.float32)
    field = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))
    # a tiny seeded jitter breaks ties, so exactly k pixels are chosen
    field = field + rng.uniform(0, 1e-6, size=field.shape).astype(np.float32)
    mask = np.zeros(total, dtype=bool)
    mask[np.argsort(field, axis=None, kind="stable")[total - k :]] = True
    return mask.reshape(height, width)


def check_coverage(coverage: Sequence[float]) -> tuple[float, float]:
    """``(low, high)`` as floats, or a :class:`MaskError` if it is not a range inside (0, 1)."""
    if len(coverage) != 2:
        raise MaskError(f"coverage must be two numbers (low, high), not {coverage!r}")
    low, high = float(coverage[0]), float(coverage[1])
    if not 0.0 < low <= high < 1.0:
        raise MaskError(f"coverage must satisfy 0 < low <= high < 1, not ({low}, {high})")
    return low, high


def parse_mask_kinds(spec: str | Sequence[str]) -> list[str]:
    """Normalise ``"diagonal,random"`` (or a list) to known mask kinds, in order, without repeats."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    kinds: list[str] = []
    for name in (n.strip().lower() for n in names):
        if name not in MASK_KINDS:
            raise MaskError(f"unknown mask kind {name!r}; choose from {', '.join(MASK_KINDS)}")
        if name not in kinds:
            kinds.append(name)
    if not kinds:
        raise MaskError("no mask kinds given")
    return kinds


def mask_plan(kinds: str | Sequence[str], per_image: int, offset: int = 0) -> list[str]:
    """The masks of one source image's ``per_image`` outputs, all distinct while they can be.

    ``diagonal`` stands for the four triangles, ``random`` for one random mask;
    together they make the cycle ``upper-left, upper-right, lower-left,
    lower-right, random``. An image takes ``per_image`` consecutive entries of
    the cycle starting at ``offset`` (the number of its first output), so
    ``diagonal,random`` with 5 per image is the seed study's scheme and with 1
    per image successive images take turns instead of all getting the first
    triangle. More outputs than the cycle holds are random masks; without
    ``random`` that is an error, not a silent repeat.
    """
    if per_image < 1:
        raise MaskError(f"per-image must be at least 1, not {per_image}")
    kinds = parse_mask_kinds(kinds)
    cycle: list[str] = []
    for kind in kinds:
        for name in TRIANGLES if kind == "diagonal" else (kind,):
            if name not in cycle:
                cycle.append(name)
    if per_image > len(cycle):
        if "random" not in cycle:
            raise MaskError(f"{', '.join(kinds)} give(s) {len(cycle)} distinct mask(s), fewer than per-image {per_image}; add 'random'")
        fixed = [kind for kind in cycle if kind != "random"]
        return fixed + ["random"] * (per_image - len(fixed))
    return [cycle[(offset + j) % len(cycle)] for j in range(per_image)]


def make_mask(kind: str, height: int, width: int, coverage: tuple[float, float], seed: int) -> np.ndarray:
    """One mask of a planned kind; ``seed`` only matters for ``random``."""
    if kind == "random":
        return random_mask(height, width, coverage, seed)
    return triangle_mask(kind, height, width)


def mask_image(mask: np.ndarray) -> Image.Image:
    """A boolean mask as an 8-bit grayscale image, white where repainted."""
    return Image.fromarray(np.where(mask, 255, 0).astype(np.uint8))
