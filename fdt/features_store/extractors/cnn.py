"""ImageNet CNN backbones as extractors: VGG16 fc7, MobileNetV2 and Xception pooled embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from fdt.features_store.errors import ExtractorError
from fdt.features_store.extractors.base import Extractor, resolve_device
from fdt.features_store.extractors.precision import autocast, numeric_key
from fdt.features_store.registry import register_extractor
from fdt.models.backbones import BACKBONES, build_backbone, weights_identity


@dataclass(frozen=True)
class ResizeNormalize:
    """Resize to ``size``×``size`` (bilinear, antialiased; none if ``size`` is None), scale to [0,1], normalise; HWC -> CHW.

    The whole image is resized, never cropped: a crop would discard the border
    regions where inpainting and GAN artefacts often sit.
    """

    size: int | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, image: Image.Image) -> np.ndarray:
        if self.size is not None and image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.float32) / 255.0
        array = (array - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(array.transpose(2, 0, 1))


class CNNExtractor(Extractor):
    """A frozen ImageNet backbone cut at its feature layer.

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

    backbone: str = ""

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

    def _reset(self) -> None:
        self.__dict__.pop("_net", None)
        self.__dict__.pop("_identity", None)

    @property
    def _spec(self):
        return BACKBONES[self.backbone]

    def _input_size(self) -> int | str:
        if self.input_size is None:
            return self._spec.input_size
        if self.input_size == "native" or (isinstance(self.input_size, int) and self.input_size >= 32):
            return self.input_size
        raise ExtractorError(f"input_size must be an integer of at least 32 or 'native', not {self.input_size!r}")

    def key_params(self) -> dict[str, Any]:
        return {"input_size": self._input_size(), **numeric_key(self.precision, self.channels_last)}

    @property
    def num_features(self) -> int:
        return self._spec.num_features

    def weights_identity(self) -> str:
        if "_identity" not in self.__dict__:
            self._identity, self._weights_file = weights_identity(self.backbone, self.weights, self.seed)
        return self._identity

    def preprocessor(self) -> ResizeNormalize:
        size = self._input_size()
        return ResizeNormalize(None if size == "native" else size, self._spec.mean, self._spec.std)

    def network(self) -> torch.nn.Module:
        if "_net" not in self.__dict__:
            self.weights_identity()
            self._device = resolve_device(self.device)
            net = build_backbone(self.backbone, self.weights, self.seed, self._weights_file).to(self._device)
            self._net = net.to(memory_format=torch.channels_last) if self.channels_last else net
        return self._net

    def forward(self, batch: np.ndarray) -> np.ndarray:
        net = self.network()
        with torch.inference_mode(), autocast(self._device, self.precision):
            pixels = torch.from_numpy(np.ascontiguousarray(batch)).to(self._device)
            features = net(pixels.contiguous(memory_format=torch.channels_last) if self.channels_last else pixels)
        return features.float().cpu().numpy()

    def info(self) -> dict[str, Any]:
        info = {"torch_version": torch.__version__, "backbone": self.backbone}
        file = self.__dict__.get("_weights_file")
        if file is not None:
            info["weights_file"] = str(Path(file))
        return info


@register_extractor("vgg16")
class VGG16Extractor(CNNExtractor):
    """VGG16 fc7: the 4096-d penultimate layer, as in the seed study's VGG16 + SVM."""

    name = "vgg16"
    backbone = "vgg16"


@register_extractor("mobilenet_v2")
class MobileNetV2Extractor(CNNExtractor):
    """MobileNetV2's 1280-d global-average-pooled embedding."""

    name = "mobilenet_v2"
    backbone = "mobilenet_v2"


@register_extractor("xception")
class XceptionExtractor(CNNExtractor):
    """timm ``legacy_xception``'s 2048-d pooled embedding (299 px, mean/std 0.5)."""

    name = "xception"
    backbone = "xception"
