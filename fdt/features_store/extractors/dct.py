"""Log-absolute 2-D DCT spectra: the frequency-domain features of Frank et al. 2020 ("FreDect").

Frank et al. show that GAN up-sampling leaves a grid of peaks in the DCT-II
spectrum and that a linear model on ``log(|DCT2(x)| + eps)`` separates real
from fake. Like ``fft``, the whole computation runs in the preprocessor (numpy
and scipy in the DataLoader workers); ``forward`` only stacks rows.

The DCT is taken of the pixels the extractor is given, at their size, with no
resize inside: choose the resolution (``crop:N`` or ``native``) to decide what
it sees. At ``crop:size`` the grid is the spectrum itself, coefficient for
coefficient (orthonormal DCT-II, as ``scipy.fft.dctn(x, norm="ortho")``); a
spectrum of another size is reduced to ``size``×``size`` by averaging ``|DCT|``
over equal frequency bands before the log (the ``fft`` grid's rule). The
features are not standardised here: Frank et al. standardise per coefficient,
which is the pipeline's scaler's job, fitted on training rows only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from fdt.features_store.errors import ExtractorError
from fdt.features_store.extractors.base import MAX_SIDE, Extractor
from fdt.features_store.extractors.fft import LUMA
from fdt.features_store.registry import register_extractor

CHANNELS = ("gray", "rgb")
EPSILON = 1e-12  # added to |DCT| before the log, as in Frank et al.'s code


def log_dct(plane: np.ndarray, size: int) -> np.ndarray:
    """``log(|DCT-II(plane)| + eps)`` of a 2-D array (orthonormal), band-averaged to ``size``×``size`` if needed."""
    from scipy.fft import dctn

    magnitude = np.abs(dctn(plane.astype(np.float64), type=2, norm="ortho", workers=1))
    if magnitude.shape != (size, size):
        magnitude = np.asarray(
            Image.fromarray(magnitude.astype(np.float32), mode="F").resize((size, size), Image.Resampling.BOX), dtype=np.float64
        )
    return np.log(magnitude + EPSILON).astype(np.float32)


@dataclass(frozen=True)
class DCTFeatures:
    """Picklable preprocessor: RGB image -> grayscale (or each channel) -> log-abs DCT grid, flattened."""

    size: int
    channels: str

    def __call__(self, image: Image.Image) -> np.ndarray:
        pixels = np.asarray(image, dtype=np.float32)
        if self.channels == "gray":
            return log_dct(pixels @ LUMA, self.size).ravel()
        return np.concatenate([log_dct(pixels[..., channel], self.size).ravel() for channel in range(3)])


@register_extractor("dct")
class DCTExtractor(Extractor):
    """Log-absolute 2-D DCT-II of the image as given, as a ``size``×``size`` grid per plane.

    Parameters
    ----------
    size : int
        Side of the coefficient grid; use the resolution ``crop:size`` to get the
        image's own spectrum coefficient for coefficient.
    channels : {"gray", "rgb"}
        ``gray`` (BT.601 luma, ``size**2`` features) or one grid per RGB channel
        (``3 * size**2`` features, channel-major).
    device : str
        Accepted for a uniform CLI; the DCT always runs on the CPU workers.
    """

    reads_spectrum = True

    def __init__(self, size: int = 64, channels: str = "gray", device: str = "cpu") -> None:
        self.size = size
        self.channels = channels
        self.device = device

    def _checked(self) -> tuple[int, str]:
        if not isinstance(self.size, int) or isinstance(self.size, bool) or not 2 <= self.size <= MAX_SIDE:
            raise ExtractorError(f"dct size must be an integer from 2 to {MAX_SIDE}, not {self.size!r}")
        if self.channels not in CHANNELS:
            raise ExtractorError(f"dct channels must be one of {', '.join(CHANNELS)}, not {self.channels!r}")
        return self.size, self.channels

    def key_params(self) -> dict[str, Any]:
        size, channels = self._checked()
        return {"size": size, "channels": channels}

    @property
    def num_features(self) -> int:
        size, channels = self._checked()
        return size * size * (1 if channels == "gray" else 3)

    def preprocessor(self) -> DCTFeatures:
        return DCTFeatures(*self._checked())

    def forward(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(batch, dtype=np.float32).reshape(len(batch), -1)

    def info(self) -> dict[str, Any]:
        import scipy

        return {"numpy_version": np.__version__, "scipy_version": scipy.__version__}
