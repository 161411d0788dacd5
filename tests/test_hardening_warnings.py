"""fdt's own Fréchet distance emits no warning of SciPy's (pytorch-fid 0.3's ``sqrtm(disp=False)`` is deprecated in SciPy 1.16)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fdt.pipelines.quality import frechet_distance


@pytest.mark.parametrize("singular", [False, True], ids=["full-rank", "singular"])
def test_the_frechet_distance_warns_of_nothing(singular):
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(40, 6)), rng.normal(0.3, 1.2, size=(50, 6))
    if singular:  # fewer images than dimensions: the covariance product is singular and the eps offset is taken
        real, fake = real[:4], fake[:5]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        distance = frechet_distance(real, fake)
    assert np.isfinite(distance.value) and distance.value > 0
