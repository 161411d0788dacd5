"""Reconstruction error through a latent-diffusion autoencoder (diffusers ``AutoencoderKL``), as AEROBLADE does.

AEROBLADE (Ricker et al., CVPR 2024) needs no training: a latent diffusion
model's images pass through its autoencoder's decoder, so that autoencoder
reconstructs them more faithfully than real photos. The image goes through
``encode`` (the latent distribution's mean, so features are deterministic) and
``decode``; the distance between image and reconstruction is a per-pixel map,
summarised by :func:`~fdt.features_store.extractors.reconstruction.error_features`.
AEROBLADE's best distance is LPIPS restricted to the second VGG layer
(``lpips_2``); ``lpips`` sums all five layers and ``l2`` is the squared pixel error.
Where fdt differs: the reconstruction is compared in floating point (AEROBLADE
saves it as an 8-bit image first), and the map is summarised by several
statistics rather than AEROBLADE's single mean (the ``mean`` feature).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from fdt.data import ImageDecodeError
from fdt.features_store.errors import ExtractorError
from fdt.features_store.extractors.base import Extractor, resolve_device
from fdt.features_store.extractors.precision import autocast
from fdt.features_store.extractors.reconstruction import ERROR_FEATURES, error_features, l2_map
from fdt.features_store.registry import register_extractor
from fdt.models import hub

DISTANCES = ("l2", "lpips", "lpips_2")
VAE_WEIGHTS = "diffusion_pytorch_model.safetensors"


@dataclass(frozen=True)
class VAEInput:
    """Picklable preprocessor: RGB -> [-1, 1] CHW, centre-cropped to a multiple of the VAE's downsampling factor (never resized)."""

    multiple: int

    def __call__(self, image: Image.Image) -> np.ndarray:
        width, height = image.size
        keep_width, keep_height = width - width % self.multiple, height - height % self.multiple
        if keep_width < self.multiple or keep_height < self.multiple:
            raise ImageDecodeError(f"image of {width}x{height} pixels is smaller than the VAE's {self.multiple}-pixel step")
        if (keep_width, keep_height) != (width, height):
            left, top = (width - keep_width) // 2, (height - keep_height) // 2
            image = image.crop((left, top, left + keep_width, top + keep_height))
        array = np.asarray(image, dtype=np.float32) / np.float32(127.5) - np.float32(1.0)
        return np.ascontiguousarray(array.transpose(2, 0, 1))


def lpips_network() -> tuple[torch.nn.Module, str]:
    """LPIPS-VGG (the ``lpips`` package's calibrated layer weights) on the cached ImageNet VGG16; and its identity.

    The backbone comes from fdt's own VGG16 weight file (``$TORCH_HOME``), so an
    absent file gives fdt's one-line message instead of a download attempt.
    """
    import lpips

    from fdt.models.backbones import VGG16
    from fdt.models.weights import file_identity, load_state_dict, resolve_published

    path = resolve_published(VGG16.published)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # lpips calls torchvision's deprecated ``pretrained=`` argument
        metric = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, spatial=True, verbose=False)
    state = load_state_dict(path)
    for name, tensor in metric.net.named_parameters():
        slice_name, index, kind = name.split(".")
        tensor.data.copy_(state[f"features.{index}.{kind}"])
    identity = f"lpips-vgg-v0.1:{file_identity(path)}"
    return metric.eval().requires_grad_(False), identity


@register_extractor("vae")
class VAEExtractor(Extractor):
    """Reconstruction-error statistics of a diffusers ``AutoencoderKL`` (AEROBLADE's detector).

    Parameters
    ----------
    model : str
        Hugging Face id (a third part is the subfolder, default
        ``stabilityai/stable-diffusion-2-1/vae``, the VAE of fdt's default Stable
        Diffusion) or a local folder with ``config.json`` and ``diffusion_pytorch_model.safetensors``.
    distance : {"lpips_2", "lpips", "l2"}
        ``lpips_2``: LPIPS of the second VGG layer (AEROBLADE's choice); ``lpips``: all
        layers; ``l2``: squared pixel error. LPIPS needs ImageNet VGG16 weights in
        the torch cache and the ``lpips`` package's layer weights.
    weights : {"published", "random"} or path
        As for ``clip``: the model's own file, a seeded init, or a local state dict.
    seed : int
        Seed of the random init (used only with ``weights="random"``).
    device : str
        ``auto``, ``cpu`` or ``cuda``; not part of the features' identity.
    """

    runs_network = True

    def __init__(
        self, model: str = "stabilityai/stable-diffusion-2-1/vae", distance: str = "lpips_2", weights: str = "published", seed: int = 0, device: str = "cpu"
    ) -> None:
        self.model = model
        self.distance = distance
        self.weights = weights
        self.seed = seed
        self.device = device

    def _distance(self) -> str:
        if self.distance not in DISTANCES:
            raise ExtractorError(f"vae distance must be one of {', '.join(DISTANCES)}, not {self.distance!r}")
        return self.distance

    def _vae_config(self) -> dict[str, Any]:
        if "_config" not in self.__dict__:
            self._config = hub.read_json(self.model, "config.json")
        return self._config

    def key_params(self) -> dict[str, Any]:
        return {"model": self.model.rstrip("/"), "distance": self._distance(), "config": hub.config_digest(self._vae_config())}

    @property
    def num_features(self) -> int:
        self._distance()
        return len(ERROR_FEATURES)

    def weights_identity(self) -> str:
        if "_identity" not in self.__dict__:
            identity, self._weights_file = hub.weights_choice(self.model, self.weights, self.seed, VAE_WEIGHTS)
            if self._distance() != "l2":
                self._metric, metric_identity = lpips_network()
                identity = f"{identity}+{metric_identity}"
            self._identity = identity
        return self._identity

    def weights_note(self) -> str:
        identity = self.weights_identity()
        if identity.startswith("random"):
            return f"vae: RANDOM weights ({identity.split('+')[0]}); these are not {self.model}'s reconstructions"
        return ""

    def preprocessor(self) -> VAEInput:
        blocks = self._vae_config().get("block_out_channels") or [0]
        return VAEInput(2 ** (len(blocks) - 1))

    def _build(self) -> None:
        from diffusers import AutoencoderKL

        self.weights_identity()
        self.device_ = resolve_device(self.device)
        if self._weights_file is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                net = AutoencoderKL.from_config(self._vae_config())
        else:
            net = hub.load_pretrained(AutoencoderKL.from_pretrained, self._weights_file, VAE_WEIGHTS, self._vae_config())
        self.net_ = net.eval().requires_grad_(False).to(self.device_)
        if "_metric" in self.__dict__:
            self._metric = self._metric.to(self.device_)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        self._fitted()
        net = self.net_
        with torch.inference_mode(), autocast(self.device_, "fp32"):  # IEEE float32 on a GPU too
            images = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device_)
            reconstructions = net.decode(net.encode(images).latent_dist.mode()).sample.clamp(-1.0, 1.0)
            distance = self._distance()
            if distance == "l2":
                maps = l2_map(images, reconstructions)
            else:
                total, layers = self._metric(images, reconstructions, retPerLayer=True)
                maps = (layers[1] if distance == "lpips_2" else total)[:, 0]
            return error_features(images, reconstructions, maps).cpu().numpy()

    def info(self) -> dict[str, Any]:
        from importlib.metadata import version

        # the version from the package metadata: importing diffusers costs seconds a cached re-run does not need
        info = {"torch_version": torch.__version__, "diffusers_version": version("diffusers"), "model": self.model}
        file = self.__dict__.get("_weights_file")
        if file is not None:
            info["weights_file"] = str(Path(file))
        return info
