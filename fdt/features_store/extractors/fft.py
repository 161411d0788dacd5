"""Log-magnitude Fourier spectra: the frequency-domain detector of Durall et al. and the seed studies.

The whole computation runs in :meth:`FFTExtractor.preprocessor` (numpy, in the
DataLoader workers), because it is cheaper than decoding the image; ``forward``
only stacks rows.

The spectrum is taken of the pixels the extractor is given, at their size. What
reaches it is the resolution's business: ``native`` and ``crop:N`` keep every
frequency the file holds; a resize (``--resolution N``) is a low-pass filter
that removes the high-frequency up-sampling artefacts a spectrum is read for, so
``fdt extract`` warns when the two are combined. Two ways to make a fixed-length
vector from a spectrum of any size:

- the **grid** (default): the magnitude spectrum averaged over ``size``×``size``
  equal frequency bands (area-weighted, so no band is skipped), then ``log1p``.
  Averaging magnitudes before the log keeps a narrow peak visible in its band;
  at ``crop:size`` the grid is the spectrum itself, bin for bin. ``grid=bilinear``
  is fdt 0.1's grid (the log spectrum resampled bilinearly, which blurs a narrow
  peak into its neighbours), kept to reproduce earlier stores and models.
- the **profile**: ``durall`` follows Durall et al. 2020 (the azimuthal mean of
  ``20 log|F|`` over integer radii, DC excluded, interpolated to ``size`` points
  and min-max normalised); ``rings`` is fdt's earlier profile (the mean of
  ``log1p|F|`` over ``size`` rings of equal normalised radius, DC ring included,
  not normalised).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from fdt.data import ImageDecodeError
from fdt.features_store.errors import ExtractorError
from fdt.features_store.extractors.base import MAX_SIDE, Extractor
from fdt.features_store.registry import register_extractor

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as PIL's "L" conversion
PROFILES = ("none", "durall", "rings")
GRIDS = ("band-mean", "bilinear")
DURALL_EPSILON = 1e-8  # added to |F| before the log, as in Durall et al.'s code


def magnitude_spectrum(gray: np.ndarray) -> np.ndarray:
    """Centred magnitude ``|FFT2(gray)|`` of a 2-D float array (DC at ``(h // 2, w // 2)``)."""
    return np.abs(np.fft.fftshift(np.fft.fft2(gray)))


def log_spectrum(gray: np.ndarray) -> np.ndarray:
    """Centred log-magnitude spectrum ``log(1 + |FFT2(gray)|)`` of a 2-D float array."""
    return np.log1p(magnitude_spectrum(gray)).astype(np.float32)


def band_mean_grid(magnitude: np.ndarray, size: int) -> np.ndarray:
    """``log1p`` of the magnitude averaged over ``size``×``size`` equal bands (area-weighted box filter)."""
    if magnitude.shape != (size, size):
        magnitude = np.asarray(
            Image.fromarray(magnitude.astype(np.float32), mode="F").resize((size, size), Image.Resampling.BOX), dtype=np.float64
        )
    return np.log1p(magnitude).astype(np.float32)


def bilinear_grid(magnitude: np.ndarray, size: int) -> np.ndarray:
    """fdt 0.1's grid: ``log1p`` of the magnitude, resampled bilinearly to ``size``×``size``."""
    spectrum = np.log1p(magnitude).astype(np.float32)
    if spectrum.shape != (size, size):
        spectrum = np.asarray(Image.fromarray(spectrum, mode="F").resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)
    return spectrum


def _radii(shape: tuple[int, int]) -> np.ndarray:
    height, width = shape
    y, x = np.indices((height, width), dtype=np.float64)
    return np.hypot(y - height // 2, x - width // 2)


def azimuthal_profile(spectrum: np.ndarray, bins: int) -> np.ndarray:
    """The ``rings`` profile: mean over ``bins`` rings of equal normalised radius (0 = DC, 1 = the corner)."""
    radius = _radii(spectrum.shape)
    ring = np.minimum((radius / radius.max() * bins).astype(np.int64), bins - 1)
    sums = np.bincount(ring.ravel(), weights=spectrum.ravel().astype(np.float64), minlength=bins)
    counts = np.bincount(ring.ravel(), minlength=bins)
    return (sums / np.maximum(counts, 1)).astype(np.float32)


def durall_profile(magnitude: np.ndarray, points: int) -> np.ndarray:
    """Durall et al. 2020's 1-D power spectrum: azimuthal mean of ``20 log|F|``, DC out, ``points`` long, in [0, 1].

    Rings are the integer parts of the float64 radius from the DC bin; ring 0 (DC)
    is dropped because it is the image's mean brightness, not a frequency. The
    ring means are linearly interpolated to ``points`` evenly spaced radii between
    the first and the last ring, then min-max normalised, so images of any size
    give comparable vectors.
    """
    radius = _radii(magnitude.shape).astype(np.int64)
    power = 20 * np.log(magnitude + DURALL_EPSILON)
    sums = np.bincount(radius.ravel(), weights=power.ravel())
    counts = np.bincount(radius.ravel())
    rings = np.flatnonzero(counts)[1:]
    if rings.size < 2:
        raise ImageDecodeError(f"an image of {magnitude.shape[1]}x{magnitude.shape[0]} pixels has too few frequencies for a profile")
    means = sums[rings] / counts[rings]
    profile = np.interp(np.linspace(rings[0], rings[-1], points), rings, means)
    span = profile.max() - profile.min()
    return ((profile - profile.min()) / span if span > 0 else np.zeros(points)).astype(np.float32)


@dataclass(frozen=True)
class SpectrumFeatures:
    """Picklable preprocessor: RGB image -> grayscale -> magnitude spectrum -> grid or profile."""

    size: int
    profile: str
    grid: str = "band-mean"

    def __call__(self, image: Image.Image) -> np.ndarray:
        gray = np.asarray(image, dtype=np.float32) @ LUMA
        magnitude = magnitude_spectrum(gray)
        if self.profile == "durall":
            return durall_profile(magnitude, self.size)
        if self.profile == "rings":
            return azimuthal_profile(np.log1p(magnitude), self.size)
        reduce = band_mean_grid if self.grid == "band-mean" else bilinear_grid
        return reduce(magnitude, self.size).ravel()


@register_extractor("fft")
class FFTExtractor(Extractor):
    """Log-magnitude spectrum of the grayscale image as given: a ``size``×``size`` band grid or a 1-D profile.

    Parameters
    ----------
    size : int
        Side of the band grid (``size**2`` features), or the length of the profile.
    profile : {"none", "durall", "rings"} or bool
        ``none`` (or ``false``): the 2-D band grid. ``durall`` (or ``true``): Durall
        et al. 2020's normalised azimuthal power profile. ``rings``: fdt's earlier
        profile (see the module docstring).
    device : str
        Accepted for a uniform CLI; the FFT always runs on the CPU workers.
    """

    reads_spectrum = True

    def __init__(self, size: int = 64, profile: str | bool = "none", grid: str = "band-mean", device: str = "cpu") -> None:
        self.size = size
        self.profile = profile
        self.grid = grid
        self.device = device

    def _checked(self) -> tuple[int, str, str]:
        if not isinstance(self.size, int) or isinstance(self.size, bool) or not 2 <= self.size <= MAX_SIDE:
            raise ExtractorError(f"fft size must be an integer from 2 to {MAX_SIDE}, not {self.size!r}")
        profile = {False: "none", True: "durall"}.get(self.profile, self.profile) if isinstance(self.profile, bool) else self.profile
        if profile not in PROFILES:
            raise ExtractorError(f"fft profile must be one of {', '.join(PROFILES)} (or true/false), not {self.profile!r}")
        if self.grid not in GRIDS:
            raise ExtractorError(f"fft grid must be one of {', '.join(GRIDS)}, not {self.grid!r}")
        return self.size, profile, self.grid

    def key_params(self) -> dict[str, Any]:
        size, profile, grid = self._checked()
        return {"size": size, "profile": profile} if profile != "none" else {"size": size, "profile": "none", "grid": grid}

    @property
    def num_features(self) -> int:
        size, profile, _ = self._checked()
        return size if profile != "none" else size * size

    def preprocessor(self) -> SpectrumFeatures:
        return SpectrumFeatures(*self._checked())

    def forward(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(batch, dtype=np.float32).reshape(len(batch), -1)

    def info(self) -> dict[str, Any]:
        return {"numpy_version": np.__version__}
