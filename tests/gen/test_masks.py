"""Masks: exact diagonal triangles, random masks within their coverage, seeded, and the per-image plan."""

from __future__ import annotations

import numpy as np
import pytest

from fdt.gen.masks import MaskError, mask_plan, random_mask, triangle_mask


@pytest.mark.parametrize("size", [1, 4, 7, 32])
def test_triangles_are_exact(size: int) -> None:
    i, j = np.indices((size, size))
    expected = {
        "upper-left": i + j <= size - 1,
        "lower-right": i + j >= size - 1,
        "upper-right": j >= i,
        "lower-left": j <= i,
    }
    for kind, mask in expected.items():
        assert np.array_equal(triangle_mask(kind, size, size), mask), kind
        assert triangle_mask(kind, size, size).sum() == size * (size + 1) // 2


def test_triangle_of_a_literal_4x4() -> None:
    assert triangle_mask("upper-left", 4, 4).astype(int).tolist() == [[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]]


def test_non_square_triangles_follow_pixel_centres() -> None:
    height, width = 5, 8
    i, j = np.indices((height, width))
    y, x = (i + 0.5) / height, (j + 0.5) / width  # pixel centres in the unit square
    assert np.array_equal(triangle_mask("upper-right", height, width), x >= y)
    assert np.array_equal(triangle_mask("upper-left", height, width), x + y <= 1)
    upper, lower = triangle_mask("upper-right", height, width), triangle_mask("lower-left", height, width)
    assert (upper ^ lower).all()  # no pixel centre lies on this diagonal: the halves partition the image


@pytest.mark.parametrize("coverage", [(0.1, 0.4), (0.25, 0.25), (0.05, 0.9)])
def test_random_masks_stay_in_their_coverage(coverage: tuple[float, float]) -> None:
    fractions = [random_mask(24, 32, coverage, seed).mean() for seed in range(20)]
    low, high = coverage
    assert all(low - 1e-9 <= f <= high + 1e-9 for f in fractions)
    if low < high:
        assert len(set(fractions)) > 1


def test_random_masks_are_seeded() -> None:
    assert np.array_equal(random_mask(32, 32, (0.1, 0.4), 3), random_mask(32, 32, (0.1, 0.4), 3))
    assert not np.array_equal(random_mask(32, 32, (0.1, 0.4), 3), random_mask(32, 32, (0.1, 0.4), 4))


@pytest.mark.parametrize("coverage", [(0.0, 0.5), (0.5, 0.2), (0.2, 1.0), (0.1,)])
def test_bad_coverage_is_refused(coverage: tuple[float, ...]) -> None:
    with pytest.raises(MaskError, match="coverage"):
        random_mask(8, 8, coverage, 0)  # type: ignore[arg-type]


def test_mask_plan() -> None:
    assert mask_plan("diagonal,random", 5) == ["upper-left", "upper-right", "lower-left", "lower-right", "random"]
    assert [mask_plan("diagonal,random", 1, offset=k)[0] for k in range(6)] == ["upper-left", "upper-right", "lower-left", "lower-right", "random", "upper-left"]
    assert mask_plan(["random"], 3) == ["random"] * 3
    assert mask_plan("diagonal,random", 7) == ["upper-left", "upper-right", "lower-left", "lower-right", "random", "random", "random"]
    with pytest.raises(MaskError, match="add 'random'"):
        mask_plan("diagonal", 5)
    with pytest.raises(MaskError, match="unknown mask kind 'square'"):
        mask_plan("diagonal,square", 1)
