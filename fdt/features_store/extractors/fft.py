"""Log-magnitude Fourier spectra: the frequency-domain detector of Durall et al. and the seed studies.

The whole computation runs in :meth:`FFTExtractor.preprocessor` (numpy, in the
DataLoader workers), because it is cheaper than decoding the image; ``forward``
only stacks rows. Spectra are resampled to a fixed grid; images are not, so the
high frequencies where generator artefacts live survive at any input size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from fdt.features_store.extractors.base import Extractor
from fdt.features_store.registry import register_extractor

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as PIL's "L" conversion


def log_spectrum(gray: np.ndarray) -> np.ndarray:
    """Centred log-magnitude spectrum ``log(1 + |FFT2(gray)|)`` of a 2-D float array."""
    return np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(gray)))).astype(np.float32)


def azimuthal_profile(spectrum: np.ndarray, bins: int) -> np.ndarray:
    """Mean of the spectrum over rings of equal normalised radius (0 = DC, 1 = the corner), ``bins`` rings."""
    height, width = spectrum.shape
    y, x = np.indices((height, width), dtype=np.float32)
    radius = np.hypot(y - height // 2, x - width // 2)
    ring = np.minimum((radius / radius.max() * bins).astype(np.int64), bins - 1)
    sums = np.bincount(ring.ravel(), weights=spectrum.ravel(), minlength=bins)
    counts = np.bincount(ring.ravel(), minlength=bins)
    return (sums / np.maximum(counts, 1)).astype(np.float32)


@dataclass(frozen=True)
class SpectrumFeatures:
    """Picklable preprocessor: RGB image -> grayscale -> log spectrum -> grid or profile."""

    size: int
    profile: bool

    def __call__(self, image: Image.Image) -> np.ndarray:
        gray = np.asarray(image, dtype=np.float32) @ LUMA
        spectrum = log_spectrum(gray)
        if self.profile:
            return azimuthal_profile(spectrum, self.size)
        if spectrum.shape != (self.size, self.size):
            spectrum = np.asarray(
                Image.fromarray(spectrum, mode="F").resize((self.size, self.size), Image.Resampling.BILINEAR), dtype=np.float32
            )
        return spectrum.ravel()


@register_extractor("fft")
class FFTExtractor(Extractor):
    """Log-magnitude 2-D spectrum of the grayscale image, centred and resampled to ``size``×``size``.

    Parameters
    ----------
    size : int
        Side of the spectrum grid (``size**2`` features), or the number of rings
        with ``profile=True``.
    profile : bool
        Return the 1-D azimuthal average of the spectrum (Durall et al., 2020)
        instead of the 2-D grid.
    device : str
        Accepted for a uniform CLI; the FFT always runs on the CPU workers.
    """

    name = "fft"

    def __init__(self, size: int = 64, profile: bool = False, device: str = "cpu") -> None:
        self.size = size
        self.profile = profile
        self.device = device

    def _checked(self) -> tuple[int, bool]:
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 2:
            raise ValueError(f"fft size must be an integer of at least 2, not {self.size!r}")
        if not isinstance(self.profile, bool):
            raise ValueError(f"fft profile must be true or false, not {self.profile!r}")
        return self.size, self.profile

    def key_params(self) -> dict[str, Any]:
        size, profile = self._checked()
        return {"size": size, "profile": profile}

    @property
    def num_features(self) -> int:
        size, profile = self._checked()
        return size if profile else size * size

    def preprocessor(self) -> SpectrumFeatures:
        return SpectrumFeatures(*self._checked())

    def forward(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(batch, dtype=np.float32).reshape(len(batch), -1)

    def info(self) -> dict[str, Any]:
        return {"numpy_version": np.__version__}
