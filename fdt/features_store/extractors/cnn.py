"""CNN backbones as extractors: VGG16 fc7, MobileNetV2, Xception, ResNet50 and DenseNet121 pooled embeddings.

With ``weights=PATH`` of a detector ``fdt models finetune`` trained, the same
extractors give the fine-tuned network's features, or (``output=logit``) its own
score; such features carry a reference to the network's training record, so
evaluation refuses to score the groups it trained on.
"""

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
from fdt.grouping import record_path
from fdt.models.backbones import BACKBONES, build_backbone, weights_identity
from fdt.models.inputs import INPUTS, NetworkInput


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
    output : {"features", "logit"}
        ``features``: the backbone's feature layer. ``logit``: the one-number score
        of a fine-tuned detector (``weights=PATH`` of ``fdt models finetune``),
        positive for fake; part of the key when ``logit``.
    input : {"pixels", "spectrum"} or None
        What the network sees: the pixels, or the centred log-magnitude spectrum
        of the grey image (:mod:`fdt.models.inputs`); ``None`` (default) means what
        a fine-tuned file was trained on, else pixels. Part of the key when ``spectrum``.
    device : str
        ``auto``, ``cpu`` or ``cuda``; not part of the features' identity.
    """

    backbone: str = ""

    def __init__(
        self, weights: str = "imagenet", seed: int = 0, input_size: int | str | None = None, precision: str = "fp32",
        channels_last: bool = False, output: str = "features", input: str | None = None, device: str = "cpu",
    ) -> None:
        self.weights = weights
        self.seed = seed
        self.input_size = input_size
        self.precision = precision
        self.channels_last = channels_last
        self.output = output
        self.input = input
        self.device = device

    def _reset(self) -> None:
        for attribute in ("_net", "_identity", "_detector"):
            self.__dict__.pop(attribute, None)

    def _finetuned(self) -> dict[str, Any] | None:
        """The metadata of the fine-tuned detector file ``weights`` names, or ``None`` for other weights."""
        if "_detector" not in self.__dict__:
            from fdt.models.detector import is_detector_file, read_detector_file

            meta = None
            if self.weights not in ("imagenet", "random") and is_detector_file(Path(self.weights).expanduser()):
                meta = {k: v for k, v in read_detector_file(Path(self.weights).expanduser()).items() if k != "state_dict"}
                if meta["backbone"] != self.backbone:
                    raise ExtractorError(f"{self.weights} is a fine-tuned {meta['backbone']}, not {self.backbone}: use the {meta['backbone']} extractor")
            self._detector = meta
        return self._detector

    def _output(self) -> str:
        finetuned = self._finetuned()  # also refuses a file of another backbone before anything is built
        if self.output not in ("features", "logit"):
            raise ExtractorError(f"output must be features or logit, not {self.output!r}")
        if self.output == "logit" and finetuned is None:
            raise ExtractorError("output=logit needs a fine-tuned detector: weights=PATH of a file fdt models finetune wrote")
        return self.output

    def _input_kind(self) -> str:
        trained = (self._finetuned() or {}).get("input")
        if self.input is not None and self.input not in INPUTS:
            raise ExtractorError(f"input must be one of {', '.join(INPUTS)}, not {self.input!r}")
        if trained is not None and self.input is not None and self.input != trained:
            raise ExtractorError(f"{self.weights} was fine-tuned on {trained} input, not {self.input}; leave input unset or pass input={trained}")
        return trained or self.input or "pixels"

    @property
    def _spec(self):
        return BACKBONES[self.backbone]

    def _input_size(self) -> int | str:
        if self.input_size is None:
            return (self._finetuned() or {}).get("input_size") or self._spec.input_size
        if self.input_size == "native" or (isinstance(self.input_size, int) and self.input_size >= 32):
            return self.input_size
        raise ExtractorError(f"input_size must be an integer of at least 32 or 'native', not {self.input_size!r}")

    def key_params(self) -> dict[str, Any]:
        # output and input join the key only off their defaults, so earlier rows keep their keys
        extra = {"output": "logit"} if self._output() == "logit" else {}
        extra |= {"input": "spectrum"} if self._input_kind() == "spectrum" else {}
        return {"input_size": self._input_size(), **numeric_key(self.precision, self.channels_last), **extra}

    @property
    def num_features(self) -> int:
        return 1 if self._output() == "logit" else self._spec.num_features

    def weights_identity(self) -> str:
        if "_identity" not in self.__dict__:
            self._identity, self._weights_file = weights_identity(self.backbone, self.weights, self.seed)
        return self._identity

    def preprocessor(self) -> ResizeNormalize | NetworkInput:
        size = self._input_size()
        size = None if size == "native" else size
        meta = self._finetuned() or {}
        mean, std = tuple(meta.get("mean", self._spec.mean)), tuple(meta.get("std", self._spec.std))
        if self._input_kind() == "spectrum":
            return NetworkInput("spectrum", size, mean, std)
        return ResizeNormalize(size, mean, std)

    def network(self) -> torch.nn.Module:
        if "_net" not in self.__dict__:
            self.weights_identity()
            self._device = resolve_device(self.device)
            if self._finetuned() is not None:
                from fdt.models.detector import load_detector

                detector, _ = load_detector(self._weights_file, self._device)
                net = detector if self._output() == "logit" else detector.body
            else:
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
        meta = self._finetuned()
        if meta is not None:
            # the file's own fingerprint of what it trained on: a swapped or missing record is refused at evaluation
            reference = {"path": str(record_path(Path(self.weights).expanduser()).resolve()), "trained_sha256": meta["trained_sha256"]}
            info |= {"weights_file": str(Path(self.weights)), "trained_from_data": True, "training_record": reference, "start_weights": meta["start_weights"]}
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


@register_extractor("resnet50")
class ResNet50Extractor(CNNExtractor):
    """ResNet50's 2048-d global-average-pooled embedding (seed 004's alternative to VGG16)."""

    name = "resnet50"
    backbone = "resnet50"


@register_extractor("densenet121")
class DenseNet121Extractor(CNNExtractor):
    """DenseNet121's 1024-d pooled embedding (seed 002's network for spectra: input=spectrum)."""

    name = "densenet121"
    backbone = "densenet121"


@register_extractor("xception")
class XceptionExtractor(CNNExtractor):
    """timm ``legacy_xception``'s 2048-d pooled embedding (299 px, mean/std 0.5)."""

    name = "xception"
    backbone = "xception"
