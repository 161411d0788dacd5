"""What a CNN sees of an image: its pixels, or the log-magnitude spectrum of its grey levels.

One picklable transform, :class:`NetworkInput`, maps a decoded RGB image (after
the resolution step) to the float array a backbone takes. Fine-tuning
(:mod:`fdt.models.finetune`) and the CNN extractors use the same object, so a
fine-tuned network is fed at extraction exactly what it learnt from.

``spectrum`` follows seed study 002's "Fourier approach": grey levels, 2-D FFT,
zero frequency moved to the centre (``fftshift``), log of the magnitude. The
spectrum is taken of the pixels as given, at the size the resolution step left
them; only the finished spectrum is resized to the network's input side (a
resize of the image would be a low-pass filter that erases the up-sampling
artefacts the spectrum is read for). Each spectrum is standardised on its own
(zero mean, unit variance) and repeated over the three input channels, so its
scale does not depend on the image's brightness or size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

INPUTS = ("pixels", "spectrum")


def log_magnitude_spectrum(image: Image.Image) -> np.ndarray:
    """Centred ``log(1 + |FFT2(grey)|)`` of an image's 8-bit grey levels (PIL ``L``, ITU-R 601), float32 ``(h, w)``."""
    grey = np.asarray(image.convert("L"), dtype=np.float64)
    return np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(grey)))).astype(np.float32)


@dataclass(frozen=True)
class NetworkInput:
    """Picklable image -> ``(3, size, size)`` float32 array transform for a backbone.

    Parameters
    ----------
    kind : {"pixels", "spectrum"}
        ``pixels``: the RGB image resized (bilinear, whole image, never cropped),
        scaled to [0, 1] and normalised by ``mean``/``std``. ``spectrum``: see the
        module docstring; ``mean``/``std`` do not apply (each spectrum is standardised).
    size : int or None
        Side of the network input; ``None`` keeps the size the image (or its spectrum) has.
    interpolation : str
        PIL filter of the pixels' resize (the network's pretrained config names it); spectra are resized bilinearly.
    """

    kind: str
    size: int | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"

    def __call__(self, image: Image.Image) -> np.ndarray:
        if self.kind == "spectrum":
            return self._spectrum(image)
        if self.size is not None and image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), Image.Resampling[self.interpolation.upper()])
        array = np.asarray(image, dtype=np.float32) / 255.0
        array = (array - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(array.transpose(2, 0, 1))

    def _spectrum(self, image: Image.Image) -> np.ndarray:
        spectrum = log_magnitude_spectrum(image)
        if self.size is not None and spectrum.shape != (self.size, self.size):
            spectrum = np.asarray(Image.fromarray(spectrum, mode="F").resize((self.size, self.size), Image.Resampling.BILINEAR), np.float32)
        spectrum = (spectrum - spectrum.mean()) / max(float(spectrum.std()), 1e-6)
        return np.ascontiguousarray(np.broadcast_to(spectrum, (3, *spectrum.shape)), dtype=np.float32)
