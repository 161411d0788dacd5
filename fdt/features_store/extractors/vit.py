"""Vision-transformer embeddings through ``transformers``: CLIP's image tower (UnivFD) and DINOv2.

UnivFD (Ojha et al., CVPR 2023) fits a linear probe on the embedding of CLIP
ViT-L/14's image tower and generalises from one GAN to many diffusion models.
Its code calls OpenAI's ``model.encode_image``, which returns the **projected**
embedding (768-d for ViT-L/14, the CLS token after the final layer norm and the
visual projection); ``output=cls`` gives the pre-projection CLS token instead
(1024-d). DINOv2 (Oquab et al. 2023) is evaluated with linear probes on its CLS
token, or on the CLS token concatenated with the mean of the patch tokens
(``pooling=cls+mean``), both after the final layer norm.

Preprocessing is the model's own, read from its ``preprocessor_config.json``
(resize of the shortest edge, centre crop, rescale, normalise) and done with PIL
as OpenAI's and DINOv2's reference code do (``transformers``' PIL backend).
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
from fdt.models import hub


@dataclass(frozen=True)
class ProcessorInput:
    """Picklable preprocessor: a ``transformers`` image processor's resize / centre crop / rescale / normalise, in PIL."""

    resize: tuple[str, int, int] | None  # ("shortest_edge", side, 0) or ("exact", height, width)
    resample: int
    crop: tuple[int, int] | None
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_config(cls, config: dict[str, Any], model: str) -> "ProcessorInput":
        try:
            # older configs (OpenAI's CLIP on the hub) give bare integers: a shortest edge and a square crop
            size = config.get("size") or {}
            size = {"shortest_edge": size} if isinstance(size, int) else size
            resize = None
            if config.get("do_resize", True):
                resize = ("shortest_edge", int(size["shortest_edge"]), 0) if "shortest_edge" in size else ("exact", int(size["height"]), int(size["width"]))
            crop = None
            if config.get("do_center_crop", False):
                crop_size = config["crop_size"]
                crop_size = {"height": crop_size, "width": crop_size} if isinstance(crop_size, int) else crop_size
                crop = (int(crop_size["height"]), int(crop_size["width"]))
            scale = float(config.get("rescale_factor", 1 / 255)) if config.get("do_rescale", True) else 1.0
            normalise = config.get("do_normalize", True)
            mean = tuple(float(v) for v in config["image_mean"]) if normalise else (0.0, 0.0, 0.0)
            std = tuple(float(v) for v in config["image_std"]) if normalise else (1.0, 1.0, 1.0)
            return cls(resize, int(config.get("resample", Image.Resampling.BICUBIC)), crop, scale, mean, std)
        except (KeyError, TypeError, ValueError) as error:
            raise ExtractorError(f"{model}: preprocessor_config.json lacks or garbles {error}") from None

    def __call__(self, image: Image.Image) -> np.ndarray:
        if self.resize is not None:
            width, height = image.size
            if self.resize[0] == "shortest_edge":
                side = self.resize[1]
                target = (side, int(side * height / width)) if width <= height else (int(side * width / height), side)
            else:
                target = (self.resize[2], self.resize[1])
            image = image.resize(target, Image.Resampling(self.resample))
        if self.crop is not None:
            crop_height, crop_width = self.crop
            width, height = image.size
            top, left = (height - crop_height) // 2, (width - crop_width) // 2
            image = image.crop((left, top, left + crop_width, top + crop_height))
        array = np.asarray(image, dtype=np.float32) * np.float32(self.scale)
        array = (array - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(array.transpose(2, 0, 1))


class HubViTExtractor(Extractor):
    """Shared by CLIP and DINOv2: config, preprocessing and weights of a Hugging Face vision transformer."""

    runs_network = True

    weights_filename: ClassVar[str] = "model.safetensors"
    model: str
    weights: str
    seed: int
    precision: str
    device: str

    def _configs(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if "_config" not in self.__dict__:
            self._config = self.architecture(hub.read_json(self.model, "config.json"))
            self._processor = hub.read_json(self.model, "preprocessor_config.json")
        return self._config, self._processor

    def architecture(self, config: dict[str, Any]) -> dict[str, Any]:
        """The vision tower's config out of the model's ``config.json``."""
        return config

    def key_params(self) -> dict[str, Any]:
        params = {k: v for k, v in super().key_params().items() if k not in ("model", "precision")}
        return {"model": self.model.rstrip("/"), **params, "config": hub.config_digest(*self._configs()), **numeric_key(self.precision)}

    def weights_identity(self) -> str:
        if "_identity" not in self.__dict__:
            self._identity, self._weights_file = hub.weights_choice(self.model, self.weights, self.seed, self.weights_filename)
        return self._identity

    def weights_note(self) -> str:
        identity = self.weights_identity()
        if identity.startswith("random"):
            return f"{self.name}: RANDOM weights ({identity}); these are not {self.model}'s published features"
        return ""

    def preprocessor(self) -> ProcessorInput:
        return ProcessorInput.from_config(self._configs()[1], self.model)

    def model_class(self) -> tuple[Any, Any]:
        """The ``transformers`` (model class, config class) of the tower."""
        raise NotImplementedError

    def _build(self) -> None:
        self.weights_identity()
        self.device_ = resolve_device(self.device)
        model_class, config_class = self.model_class()
        config = config_class.from_dict(self._configs()[0])
        if self._weights_file is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                net = model_class(config)
        else:
            net = hub.load_pretrained(model_class.from_pretrained, self._weights_file, self.weights_filename, self._configs()[0], config=config)
        self.net_ = net.eval().requires_grad_(False).to(self.device_)

    def embed(self, net: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, batch: np.ndarray) -> np.ndarray:
        self._fitted()
        with torch.inference_mode(), autocast(self.device_, self.precision):
            return self.embed(self.net_, torch.from_numpy(np.ascontiguousarray(batch)).to(self.device_)).float().cpu().numpy()

    def info(self) -> dict[str, Any]:
        from importlib.metadata import version

        # the version from the package metadata: importing transformers costs seconds a cached re-run does not need
        info = {"torch_version": torch.__version__, "transformers_version": version("transformers"), "model": self.model}
        file = self.__dict__.get("_weights_file")
        if file is not None:
            info["weights_file"] = str(Path(file))
        return info


@register_extractor("clip")
class CLIPExtractor(HubViTExtractor):
    """CLIP's image tower: the projected embedding UnivFD probes (default), or the pre-projection CLS token.

    Parameters
    ----------
    model : str
        Hugging Face id or local folder of a CLIP model (``openai/clip-vit-large-patch14``,
        UnivFD's; ``openai/clip-vit-base-patch16`` ...); a full CLIP checkpoint's text
        tower is not loaded.
    output : {"projected", "cls"}
        ``projected``: ``visual_projection`` of the final CLS token (``encode_image``,
        what UnivFD uses; ``projection_dim`` features). ``cls``: the CLS token after
        the final layer norm, before the projection (``hidden_size`` features).
    weights : {"published", "random"} or path
        ``published`` reads the model's own weights from the Hugging Face cache;
        ``random`` is a seeded init from the model's config, stated in every output;
        a path loads a local state-dict file.
    seed : int
        Seed of the random init (used only with ``weights="random"``).
    precision : {"fp32", "fp16", "bf16"}
        Autocast precision of the forward pass (part of the key when not ``fp32``).
    device : str
        ``auto``, ``cpu`` or ``cuda``; not part of the features' identity.
    """


    def __init__(
        self, model: str = "openai/clip-vit-large-patch14", output: str = "projected", weights: str = "published", seed: int = 0,
        precision: str = "fp32", device: str = "cpu",
    ) -> None:
        self.model = model
        self.output = output
        self.weights = weights
        self.seed = seed
        self.precision = precision
        self.device = device

    def _output(self) -> str:
        if self.output not in ("projected", "cls"):
            raise ExtractorError(f"clip output must be projected or cls, not {self.output!r}")
        return self.output

    def architecture(self, config: dict[str, Any]) -> dict[str, Any]:
        if "vision_config" not in config:
            return config
        # a full CLIP config keeps the projection's width at its top level
        return {**config["vision_config"], "projection_dim": config.get("projection_dim", config["vision_config"].get("projection_dim", 512))}

    @property
    def num_features(self) -> int:
        config = self._configs()[0]
        return int(config.get("projection_dim", 512) if self._output() == "projected" else config["hidden_size"])

    def model_class(self) -> tuple[Any, Any]:
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        return CLIPVisionModelWithProjection, CLIPVisionConfig

    def embed(self, net: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
        cls = net.vision_model(pixel_values=pixels).pooler_output
        return net.visual_projection(cls) if self._output() == "projected" else cls


@register_extractor("dinov2")
class DINOv2Extractor(HubViTExtractor):
    """DINOv2's CLS token, or CLS and mean patch token concatenated, after the final layer norm.

    Parameters
    ----------
    model : str
        Hugging Face id or local folder: ``facebook/dinov2-small`` (ViT-S/14),
        ``-base``, ``-large`` (default, ViT-L/14) or ``-giant``.
    pooling : {"cls", "cls+mean"}
        ``cls`` (``hidden_size`` features) or the CLS token followed by the mean
        of the patch tokens (``2 * hidden_size``), DINOv2's linear-probe input.
    weights, seed, precision, device
        As for ``clip``.
    """


    def __init__(
        self, model: str = "facebook/dinov2-large", pooling: str = "cls", weights: str = "published", seed: int = 0,
        precision: str = "fp32", device: str = "cpu",
    ) -> None:
        self.model = model
        self.pooling = pooling
        self.weights = weights
        self.seed = seed
        self.precision = precision
        self.device = device

    def _pooling(self) -> str:
        if self.pooling not in ("cls", "cls+mean"):
            raise ExtractorError(f"dinov2 pooling must be cls or cls+mean, not {self.pooling!r}")
        return self.pooling

    @property
    def num_features(self) -> int:
        hidden = int(self._configs()[0]["hidden_size"])
        return hidden if self._pooling() == "cls" else 2 * hidden

    def model_class(self) -> tuple[Any, Any]:
        from transformers import Dinov2Config, Dinov2Model

        return Dinov2Model, Dinov2Config

    def embed(self, net: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
        tokens = net(pixel_values=pixels).last_hidden_state
        if self._pooling() == "cls":
            return tokens[:, 0]
        return torch.cat([tokens[:, 0], tokens[:, 1:].mean(dim=1)], dim=1)
