"""The convolutional autoencoder that ``fdt models train-autoencoder`` trains on real images: its latents or its reconstruction error."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from fdt.data import sha256_file
from fdt.features_store.errors import ExtractorError
from fdt.features_store.extractors.base import Extractor, resolve_device
from fdt.features_store.extractors.precision import autocast
from fdt.features_store.extractors.reconstruction import ERROR_FEATURES, error_features, l2_map
from fdt.features_store.registry import register_extractor
from fdt.grouping import read_training_record, record_path
from fdt.models.autoencoder import load_autoencoder, preprocess, read_autoencoder_file


@dataclass(frozen=True)
class AutoencoderInput:
    """Picklable preprocessor: exactly the autoencoder's training preprocessing."""

    size: int

    def __call__(self, image: Image.Image) -> np.ndarray:
        return preprocess(image, self.size).numpy()


@register_extractor("autoencoder")
class AutoencoderExtractor(Extractor):
    """The latent vector, or the reconstruction error, of an fdt autoencoder model file.

    Parameters
    ----------
    model : path
        The model file written by ``fdt models train-autoencoder``; its SHA-256 is
        the weights identity, so retraining gives new store rows, never stale ones.
    output : {"latent", "error"}
        ``latent``: the encoder's ``latent_dim`` vector. ``error``: statistics of the
        per-pixel squared error between the image and its reconstruction (see
        :data:`~fdt.features_store.extractors.reconstruction.ERROR_FEATURES`): an
        autoencoder trained on real images reconstructs them better than fakes.
    device : str
        ``auto``, ``cpu`` or ``cuda``.
    """

    runs_network = True

    # `fdt run` trains the model with this function on an experiment's `train_on` images and passes it as `model`
    trainer = "fdt.models.autoencoder:train_autoencoder"
    trained_param = "model"

    def __init__(self, model: str = "models/ae.pt", output: str = "latent", device: str = "cpu") -> None:
        self.model = model
        self.output = output
        self.device = device

    def _output(self) -> str:
        if self.output not in ("latent", "error"):
            raise ExtractorError(f"autoencoder output must be latent or error, not {self.output!r}")
        return self.output

    def key_params(self) -> dict[str, Any]:
        params = {"latent_dim": self._file_config()["latent_dim"], "size": self._file_config()["size"]}
        # latent rows keep the key they had before ``output`` existed
        return params if self._output() == "latent" else {**params, "output": "error"}

    def _file_config(self) -> dict[str, Any]:
        if "_config" not in self.__dict__:
            self._config = dict(read_autoencoder_file(self.model)["config"])
        return self._config

    @property
    def num_features(self) -> int:
        return int(self._file_config()["latent_dim"]) if self._output() == "latent" else len(ERROR_FEATURES)

    def weights_identity(self) -> str:
        if "_identity" not in self.__dict__:
            self._identity = f"file:sha256:{sha256_file(self.model)[:16]}"
        return self._identity

    def preprocessor(self) -> AutoencoderInput:
        return AutoencoderInput(int(self._file_config()["size"]))

    def _build(self) -> None:
        self.device_ = resolve_device(self.device)
        self.net_ = load_autoencoder(self.model, device=self.device_)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        self._fitted()
        with torch.inference_mode(), autocast(self.device_, "fp32"):  # IEEE float32 on a GPU too
            pixels = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device_)
            if self._output() == "latent":
                return self.net_.encode(pixels).float().cpu().numpy()
            reconstructions = self.net_(pixels)
            return error_features(pixels, reconstructions, l2_map(pixels, reconstructions)).cpu().numpy()

    def info(self) -> dict[str, Any]:
        """Also where the record of the images the network trained on lives, so evaluation can refuse them."""
        record = record_path(self.model)
        reference = None
        if record.is_file():
            reference = {"path": str(record.resolve()), "trained_sha256": read_training_record(record)["trained_sha256"]}
        return {"torch_version": torch.__version__, "weights_file": str(Path(self.model)), "trained_from_data": True, "training_record": reference}
