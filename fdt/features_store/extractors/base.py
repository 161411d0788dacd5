"""The extractor contract, shared by every registered extractor.

scikit-learn style: ``__init__`` only stores parameters; the network is built
lazily on first use; ``transform(images) -> ndarray[n, num_features]``;
``num_features`` is known before the first image. Work is split in two so that
decoding can run in DataLoader workers: :meth:`preprocessor` returns a small
picklable callable (PIL image -> float32 array) and :meth:`forward` maps a stacked
batch of those arrays to features.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, ClassVar, Iterable

import numpy as np
from PIL import Image

from fdt.devices import resolve_device  # noqa: F401  (extractors import it from here)
from fdt.features_store.errors import ExtractorError

# parameters that change how fast features come, never what they are
RUNTIME_PARAMS = frozenset({"device"})
# parameters that are part of the weights identity rather than of the key's params
WEIGHT_PARAMS = frozenset({"weights", "seed"})


class Extractor:
    """Base class: subclasses set ``name`` and implement the four abstract methods below."""

    name: ClassVar[str] = ""
    reads_spectrum: ClassVar[bool] = False
    """True for extractors of frequency content, which a resize (a low-pass filter) distorts."""

    @classmethod
    def param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p for p in signature.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.param_names()}

    def set_params(self, **params: Any) -> "Extractor":
        for name, value in params.items():
            if name not in self.param_names():
                raise ExtractorError(f"extractor {self.name!r} has no parameter {name!r}; its parameters are {', '.join(self.param_names())}")
            setattr(self, name, value)
        self._reset()
        return self

    def key_params(self) -> dict[str, Any]:
        """Parameters that change the features: the store key's ``params``."""
        return {k: v for k, v in self.get_params().items() if k not in RUNTIME_PARAMS | WEIGHT_PARAMS}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # ---- the contract

    @property
    def num_features(self) -> int:
        raise NotImplementedError

    def weights_identity(self) -> str:
        """``none`` for weight-free extractors; see :class:`fdt.features_store.ExtractorKey`."""
        return "none"

    def weights_note(self) -> str:
        """A plain-language warning for outputs when the weights are not the published ones, else ``""``."""
        identity = self.weights_identity()
        if identity.startswith("random"):
            return f"{self.name}: RANDOM weights ({identity}); these are not ImageNet features"
        return ""

    def preprocessor(self) -> Callable[[Image.Image], np.ndarray]:
        raise NotImplementedError

    def forward(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """Self-description stored with the features (versions of the libraries that computed them)."""
        return {}

    # ---- sklearn-style use from analysis scripts

    def fit(self, images: Any = None, y: Any = None) -> "Extractor":
        return self

    def transform(self, images: Iterable[Image.Image], batch_size: int = 32) -> np.ndarray:
        """Features of RGB PIL images, ``(n, num_features)`` float32, in input order."""
        prepare = self.preprocessor()
        arrays = [prepare(image) for image in images]
        out = np.empty((len(arrays), self.num_features), dtype=np.float32)
        for shape_indices in _group_by_shape(arrays):
            for start in range(0, len(shape_indices), batch_size):
                chosen = shape_indices[start : start + batch_size]
                out[chosen] = self.forward(np.stack([arrays[i] for i in chosen]))
        return out

    def _reset(self) -> None:
        """Forget built state after a parameter change."""


def _group_by_shape(arrays: list[np.ndarray]) -> list[list[int]]:
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, array in enumerate(arrays):
        groups.setdefault(array.shape, []).append(index)
    return list(groups.values())


