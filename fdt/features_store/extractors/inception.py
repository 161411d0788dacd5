"""``inception_v3``: Inception-v3 pool3 features (2048-d), the feature space in which a Fréchet distance is the FID.

The FID's definition includes its preprocessing: every image is resized to
299×299 by bilinear interpolation (``torch.nn.functional.interpolate``,
``align_corners=False``, no antialiasing, as pytorch-fid and torchmetrics do)
and scaled to [-1, 1]. That resize is part of the metric, unlike fdt's other
extractors, which keep the pixels as the resolution setting leaves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from fdt.features_store.errors import ExtractorError
from fdt.features_store.extractors.base import MAX_SIDE
from fdt.features_store.extractors.cnn import CNNExtractor, Preprocessing
from fdt.features_store.registry import register_extractor
from fdt.models.backbones import Backbone, build_backbone
from fdt.models.inception import FID_INCEPTION, INCEPTION_V3
from fdt.models.weights import WeightsSource

FID_INPUT_SIZE = 299
MIN_INPUT_SIZE = 75  # the smallest input Inception-v3's stem and reductions accept
VARIANTS: dict[str, Backbone] = {"torchvision": INCEPTION_V3, "pytorch-fid": FID_INCEPTION}


@dataclass(frozen=True)
class BilinearResize:
    """RGB image -> ``(3, size, size)`` float32 in [-1, 1], resized as the FID implementations resize (see the module docstring)."""

    size: int

    def __call__(self, image: Image.Image) -> np.ndarray:
        pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
        if pixels.shape[-2:] != (self.size, self.size):
            pixels = torch.nn.functional.interpolate(pixels, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return np.ascontiguousarray((pixels[0] * 2 - 1).numpy())


@register_extractor("inception_v3")
class InceptionV3Extractor(CNNExtractor):
    """Inception-v3 cut at pool3, with torchvision's or pytorch-fid's weights.

    Parameters are those of :class:`CNNExtractor`, plus ``variant``:
    ``torchvision`` (default; ``weights=imagenet`` is ``IMAGENET1K_V1``,
    ``inception_v3_google-0cc3c7bd.pth``) or ``pytorch-fid`` (the FID Inception of
    published FIDs; ``weights=imagenet`` is ``pt_inception-2015-12-05-6726825d.pth``).
    Both read their file from the torch hub cache, or take ``weights=PATH``.
    ``input_size`` is 299 (the FID's) by default; smaller sizes (at least 75) only
    keep tests fast, and a report calls their Fréchet distance an FD, not an FID.
    """

    name = "inception_v3"

    def __init__(
        self, weights: str = "imagenet", seed: int = 0, input_size: int | None = None, variant: str = "torchvision", precision: str = "fp32",
        channels_last: bool = False, device: str = "cpu",
    ) -> None:
        super().__init__(
            weights=weights, seed=seed, input_size=input_size, precision=precision, channels_last=channels_last, device=device
        )
        self.variant = variant

    @property
    def backbone(self) -> Backbone:
        if self.variant not in VARIANTS:
            raise ExtractorError(f"inception_v3 variant must be one of {', '.join(VARIANTS)}, not {self.variant!r}")
        return VARIANTS[self.variant]

    def published_weights(self) -> WeightsSource:
        return self.backbone.published

    def preprocessing(self) -> Preprocessing:
        return Preprocessing(FID_INPUT_SIZE, self.backbone.mean, self.backbone.std)

    @property
    def num_features(self) -> int:
        return self.backbone.num_features

    def make_network(self, weights_file: Path | None) -> torch.nn.Module:
        return build_backbone(self.backbone, self.seed, weights_file)

    def _input_size(self) -> int:
        size = FID_INPUT_SIZE if self.input_size is None else self.input_size
        if isinstance(size, bool) or not isinstance(size, int) or not MIN_INPUT_SIZE <= size <= MAX_SIDE:
            raise ExtractorError(f"inception_v3 input_size must be an integer from {MIN_INPUT_SIZE} to {MAX_SIDE} (299 for FID), not {self.input_size!r}")
        return size

    def key_params(self) -> dict[str, Any]:
        self.backbone  # refuses an unknown variant before any key is made
        return {**super().key_params(), "variant": self.variant}

    def preprocessor(self) -> BilinearResize:
        return BilinearResize(self._input_size())

    def weights_note(self) -> str:
        note = super().weights_note()
        return f"{note}: the Fréchet distance on them is not an FID" if note else ""

    def info(self) -> dict[str, Any]:
        return {**super().info(), "variant": self.variant, "resize": "bilinear, align_corners=False, to input_size (the FID's preprocessing)"}
