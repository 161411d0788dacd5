"""Frozen ImageNet networks as extractors: the shared machinery, and torchvision's VGG16 fc7 and MobileNetV2.

:class:`CNNExtractor` is what every frozen image network shares: the weights
choice (:func:`fdt.models.weights.resolve_weights`), the whole-image resize and
normalisation, autocast precision and channels-last. A subclass says which
network, through three hooks: :meth:`~CNNExtractor.published_weights`,
:meth:`~CNNExtractor.preprocessing` and :meth:`~CNNExtractor.make_network`.
Networks timm knows need no subclass of their own: see
:mod:`fdt.features_store.extractors.timm_models`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from fdt.features_store.errors import ExtractorError
from fdt.features_store.extractors.base import Extractor, resolve_device
from fdt.features_store.extractors.precision import autocast, numeric_key
from fdt.features_store.registry import register_extractor
from fdt.models.backbones import MOBILENET_V2, VGG16, Backbone, build_backbone
from fdt.models.weights import WeightsSource, resolve_published, resolve_weights

RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
"""PIL filters by the names timm's pretrained configs use."""


@dataclass(frozen=True)
class Preprocessing:
    """What a network expects: the side it was trained at, the resize filter, and per-channel mean and std."""

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"


@dataclass(frozen=True)
class ResizeNormalize:
    """Resize to ``size``×``size`` (antialiased; none if ``size`` is None), scale to [0,1], normalise; HWC -> CHW.

    The whole image is resized, never cropped: a crop would discard the border
    regions where inpainting and GAN artefacts often sit.
    """

    size: int | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"

    def __call__(self, image: Image.Image) -> np.ndarray:
        if self.size is not None and image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), RESAMPLING[self.interpolation])
        array = np.asarray(image, dtype=np.float32) / 255.0
        array = (array - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(array.transpose(2, 0, 1))


class CNNExtractor(Extractor):
    """A frozen image network cut at its feature layer.

    Parameters
    ----------
    weights : {"imagenet", "random"} or path
        ``imagenet`` reads the published weights from the library cache (no silent
        fallback); ``random`` is a seeded init, stated in every output; a path loads
        a local state-dict file.
    seed : int
        Seed of the random init (used only with ``weights="random"``).
    input_size : int, "native" or None
        Side the image is resized to before the network; ``None`` (default) means the
        size the weights were trained at; ``"native"`` feeds the image at its stored
        resolution (the resolution setting then decides what the network sees).
    precision : {"fp32", "fp16", "bf16"}
        Autocast precision of the forward pass (part of the key when not ``fp32``).
    channels_last : bool
        Run the network in channels-last memory format (part of the key when true).
    device : str
        ``auto``, ``cpu`` or ``cuda``; not part of the features' identity.
    """

    published_words: ClassVar[tuple[str, ...]] = ("imagenet",)
    """The ``weights`` values meaning the published file; the first names it in the weights identity."""

    def __init__(
        self, weights: str = "imagenet", seed: int = 0, input_size: int | str | None = None, precision: str = "fp32",
        channels_last: bool = False, device: str = "cpu",
    ) -> None:
        self.weights = weights
        self.seed = seed
        self.input_size = input_size
        self.precision = precision
        self.channels_last = channels_last
        self.device = device

    # ---- what a subclass says about its network

    def published_weights(self) -> WeightsSource:
        """Where the published weights file lives (never fetched here)."""
        raise NotImplementedError

    def preprocessing(self) -> Preprocessing:
        """The input size, resize filter, mean and std the published weights were trained with."""
        raise NotImplementedError

    def make_network(self, weights_file: Path | None) -> torch.nn.Module:
        """The feature network in eval mode, with ``weights_file`` loaded, or seeded from ``self.seed`` if ``None``."""
        raise NotImplementedError

    # ---- shared

    def _input_size(self) -> int | str:
        if self.input_size is None:
            return self.preprocessing().input_size
        if self.input_size == "native" or (isinstance(self.input_size, int) and not isinstance(self.input_size, bool) and self.input_size >= 32):
            return self.input_size
        raise ExtractorError(f"input_size must be an integer of at least 32 or 'native', not {self.input_size!r}")

    def key_params(self) -> dict[str, Any]:
        return {"input_size": self._input_size(), **numeric_key(self.precision, self.channels_last)}

    def resolve_weights(self) -> tuple[str, Path | None]:
        """``(identity, file)`` of the ``weights`` parameter: the one step that turns it into a file to load."""
        return resolve_weights(self.weights, self.seed, lambda: resolve_published(self.published_weights()), self.published_words)

    def weights_identity(self) -> str:
        if "_identity" not in self.__dict__:
            self._identity, self._weights_file = self.resolve_weights()
        return self._identity

    def preprocessor(self) -> ResizeNormalize:
        size, config = self._input_size(), self.preprocessing()
        return ResizeNormalize(None if size == "native" else size, config.mean, config.std, config.interpolation)

    def _build(self) -> None:
        self.weights_identity()
        self.device_ = resolve_device(self.device)
        net = self.make_network(self._weights_file).to(self.device_)
        self.net_ = net.to(memory_format=torch.channels_last) if self.channels_last else net

    def forward(self, batch: np.ndarray) -> np.ndarray:
        self._fitted()
        with torch.inference_mode(), autocast(self.device_, self.precision):
            pixels = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device_)
            features = self.net_(pixels.contiguous(memory_format=torch.channels_last) if self.channels_last else pixels)
        return features.float().cpu().numpy()

    def info(self) -> dict[str, Any]:
        info = {"torch_version": torch.__version__}
        file = self.__dict__.get("_weights_file")
        if file is not None:
            info["weights_file"] = str(Path(file))
        return info


class TorchvisionExtractor(CNNExtractor):
    """A torchvision network described by a :class:`~fdt.models.backbones.Backbone`."""

    backbone: ClassVar[Backbone]

    def published_weights(self) -> WeightsSource:
        return self.backbone.published

    def preprocessing(self) -> Preprocessing:
        return Preprocessing(self.backbone.input_size, self.backbone.mean, self.backbone.std)

    @property
    def num_features(self) -> int:
        return self.backbone.num_features

    def make_network(self, weights_file: Path | None) -> torch.nn.Module:
        return build_backbone(self.backbone, self.seed, weights_file)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "backbone": self.name}


@register_extractor("vgg16")
class VGG16Extractor(TorchvisionExtractor):
    """VGG16 fc7: the 4096-d penultimate layer, as in the seed study's VGG16 + SVM (a special head, not a pooled embedding)."""

    backbone = VGG16


@register_extractor("mobilenet_v2")
class MobileNetV2Extractor(TorchvisionExtractor):
    """MobileNetV2's 1280-d global-average-pooled embedding (torchvision's weights, as fdt always used)."""

    backbone = MOBILENET_V2
