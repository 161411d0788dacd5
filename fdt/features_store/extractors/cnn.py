"""Frozen ImageNet networks as extractors: the shared machinery, and torchvision's VGG16 fc7 and MobileNetV2.

:class:`CNNExtractor` is what every frozen image network shares: the weights
choice (:func:`fdt.models.weights.resolve_weights`), the whole-image resize and
normalisation, autocast precision and channels-last. A subclass says which
network, through three hooks: :meth:`~CNNExtractor.published_weights`,
:meth:`~CNNExtractor.preprocessing` and :meth:`~CNNExtractor.make_network`.
Networks timm knows need no subclass of their own: see
:mod:`fdt.features_store.extractors.timm_models`.

With ``weights=PATH`` of a detector ``fdt models finetune`` trained on this
extractor's network (:mod:`fdt.models.detector`), the extractor gives the
fine-tuned network's features, or with ``output=logit`` its own score; such
features carry a reference to the network's training record, so evaluation
refuses to score the groups it trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from fdt.features_store.errors import ExtractorError
from fdt.features_store.extractors.base import MAX_SIDE, Extractor, resolve_device
from fdt.features_store.extractors.precision import autocast, numeric_key
from fdt.features_store.registry import register_extractor
from fdt.grouping import record_path
from fdt.models.backbones import MOBILENET_V2, VGG16, Backbone, build_backbone
from fdt.models.inputs import INPUTS, NetworkInput
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
    output : {"features", "logit"}
        ``features``: the feature layer. ``logit``: the one-number score of a
        fine-tuned detector (``weights=PATH`` of ``fdt models finetune``), positive
        for fake; part of the key when ``logit``.
    input : {"pixels", "spectrum"} or None
        What the network sees: the pixels, or the centred log-magnitude spectrum of
        the grey image (:mod:`fdt.models.inputs`); ``None`` (default) means what a
        fine-tuned file was trained on, else pixels. Part of the key when ``spectrum``.
    device : str
        ``auto``, ``cpu`` or ``cuda``; not part of the features' identity.
    """

    runs_network = True

    published_words: ClassVar[tuple[str, ...]] = ("imagenet",)
    """The ``weights`` values meaning the published file; the first names it in the weights identity."""

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

    # ---- a fine-tuned detector file as weights

    def finetuned(self) -> dict[str, Any] | None:
        """The metadata of the fine-tuned detector file ``weights`` names, or ``None`` for other weights."""
        if "_detector" not in self.__dict__:
            from fdt.models.detector import is_detector_file, read_detector_file

            meta = None
            path = Path(str(self.weights)).expanduser()
            if self.weights not in self.published_words + ("random",) and is_detector_file(path):
                meta = {k: v for k, v in read_detector_file(path).items() if k != "state_dict"}
                mine = self._model() if hasattr(self, "_model") else None
                if (meta["backbone"], meta.get("model")) != (self.name, mine):
                    theirs = meta["backbone"] + (f" (model {meta['model']})" if meta.get("model") else "")
                    raise ExtractorError(f"{self.weights} is a fine-tuned {theirs}, not {self.name}" + (f" (model {mine})" if mine else "") + f": use the {meta['backbone']} extractor")
            self._detector = meta
        return self._detector

    def _output(self) -> str:
        finetuned = self.finetuned()  # also refuses a file of another network before anything is built
        if self.output not in ("features", "logit"):
            raise ExtractorError(f"output must be features or logit, not {self.output!r}")
        if self.output == "logit" and finetuned is None:
            raise ExtractorError("output=logit needs a fine-tuned detector: weights=PATH of a file fdt models finetune wrote")
        return self.output

    def _input_kind(self) -> str:
        trained = (self.finetuned() or {}).get("input")
        if self.input is not None and self.input not in INPUTS:
            raise ExtractorError(f"input must be one of {', '.join(INPUTS)}, not {self.input!r}")
        if trained is not None and self.input is not None and self.input != trained:
            raise ExtractorError(f"{self.weights} was fine-tuned on {trained} input, not {self.input}; leave input unset or pass input={trained}")
        return trained or self.input or "pixels"

    def _width(self, features: int) -> int:
        """``num_features`` of this configuration: ``features`` wide, or 1 for a detector's logit."""
        return 1 if self._output() == "logit" else features

    # ---- shared

    def _input_size(self) -> int | str:
        if self.input_size is None:
            return (self.finetuned() or {}).get("input_size") or self.preprocessing().input_size
        if self.input_size == "native" or (isinstance(self.input_size, int) and not isinstance(self.input_size, bool) and 32 <= self.input_size <= MAX_SIDE):
            return self.input_size
        raise ExtractorError(f"input_size must be an integer from 32 to {MAX_SIDE} or 'native', not {self.input_size!r}")

    def key_params(self) -> dict[str, Any]:
        # output and input join the key only off their defaults, so earlier rows keep their keys
        extra = {"output": "logit"} if self._output() == "logit" else {}
        extra |= {"input": "spectrum"} if self._input_kind() == "spectrum" else {}
        return {"input_size": self._input_size(), **numeric_key(self.precision, self.channels_last), **extra}

    def resolve_weights(self) -> tuple[str, Path | None]:
        """``(identity, file)`` of the ``weights`` parameter: the one step that turns it into a file to load."""
        if self.finetuned() is not None:
            from fdt.models.detector import detector_identity

            path = Path(str(self.weights)).expanduser()
            return detector_identity(path), path
        return resolve_weights(self.weights, self.seed, lambda: resolve_published(self.published_weights()), self.published_words)

    def weights_identity(self) -> str:
        if "_identity" not in self.__dict__:
            self._identity, self._weights_file = self.resolve_weights()
        return self._identity

    def preprocessor(self) -> ResizeNormalize | NetworkInput:
        size, config, meta = self._input_size(), self.preprocessing(), self.finetuned()
        size = None if size == "native" else size
        if meta is not None:  # exactly the transform it was trained with
            return NetworkInput(meta["input"], size, tuple(meta["mean"]), tuple(meta["std"]), meta.get("interpolation", "bilinear"))
        if self._input_kind() == "spectrum":
            return NetworkInput("spectrum", size, config.mean, config.std)
        return ResizeNormalize(size, config.mean, config.std, config.interpolation)

    def _build(self) -> None:
        self.weights_identity()
        self.device_ = resolve_device(self.device)
        if self.finetuned() is not None:
            from fdt.models.detector import load_detector

            # the architecture (randomly initialised), then every weight from the file
            detector, _ = load_detector(self._weights_file, self.make_network(None), self.device_)
            net = detector if self._output() == "logit" else detector.body
        else:
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
        meta = self.finetuned()
        if meta is not None:
            # the file's own fingerprint of what it trained on: a swapped or missing record is refused at evaluation
            reference = {"path": str(record_path(Path(str(self.weights)).expanduser()).resolve()), "trained_sha256": meta["trained_sha256"]}
            info |= {"weights_file": str(Path(str(self.weights))), "trained_from_data": True, "training_record": reference, "start_weights": meta["start_weights"]}
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
        return self._width(self.backbone.num_features)

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
