"""The extractor contract, shared by every registered extractor.

scikit-learn transformers: ``__init__`` only stores parameters; the network is
built by ``fit`` or on first use; ``transform(images) -> ndarray[n, num_features]``;
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
from sklearn.base import BaseEstimator, TransformerMixin

from fdt.devices import resolve_device  # noqa: F401  (extractors import it from here)
from fdt.features_store.errors import ExtractorError

# parameters that change how fast features come, never what they are
RUNTIME_PARAMS = frozenset({"device"})
# parameters that are part of the weights identity rather than of the key's params
WEIGHT_PARAMS = frozenset({"weights", "seed"})

MAX_SIDE = 4096
"""The largest spectrum grid or network input side an extractor accepts: 4096² floats are 64 MB a row.

A typo such as ``size=100000`` would otherwise ask for 40 GB per image and be
ended by the kernel's out-of-memory killer instead of a message.
"""


class Extractor(TransformerMixin, BaseEstimator):
    """Base class: subclasses register a name and implement the contract below.

    A scikit-learn transformer: ``get_params``/``set_params``/``repr``/``clone``
    come from :class:`~sklearn.base.BaseEstimator`. :meth:`fit` learns nothing from
    the images (the network is frozen); it checks the parameters and builds the
    network into ``_``-suffixed attributes, so ``check_is_fitted`` says whether the
    network is built. :meth:`transform` fits on first use.
    """

    name: ClassVar[str] = ""
    """Set by :func:`~fdt.features_store.registry.register_extractor`."""
    reads_spectrum: ClassVar[bool] = False
    """True for extractors of frequency content, which a resize (a low-pass filter) distorts."""
    runs_network: ClassVar[bool] = False
    """True where :meth:`forward` runs a network (on every core, on a CPU), not only stacking what the preprocessor made:
    an extraction then pauses its decoding workers during each CPU forward (``extraction._forward_gate``)."""

    @classmethod
    def param_names(cls) -> list[str]:
        """Parameter names in signature order (the order people read in messages)."""
        signature = inspect.signature(cls.__init__)
        return [p for p in signature.parameters if p != "self"]

    def set_params(self, **params: Any) -> "Extractor":
        """As scikit-learn's, with fdt's error for an unknown name; the built network and cached state are dropped."""
        for name in params:
            if name not in self.param_names():
                raise ExtractorError(f"extractor {self.name!r} has no parameter {name!r}; its parameters are {', '.join(self.param_names())}")
        super().set_params(**params)
        self._reset()
        return self

    def key_params(self) -> dict[str, Any]:
        """Parameters that change the features: the store key's ``params``."""
        return {k: v for k, v in self.get_params().items() if k not in RUNTIME_PARAMS | WEIGHT_PARAMS}

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
        """Features of a stacked batch of preprocessed arrays; a network extractor fits on first use."""
        raise NotImplementedError

    def _build(self) -> None:
        """Build the network into ``_``-suffixed attributes (networks override this; weight-free extractors need nothing)."""

    def _fitted(self) -> "Extractor":
        """``self``, fitted first if it was not: what ``forward`` calls before it needs the network."""
        return self if self.__sklearn_is_fitted__() else self.fit()

    def info(self) -> dict[str, Any]:
        """Self-description stored with the features (versions of the libraries that computed them)."""
        return {}

    # ---- scikit-learn's transformer contract

    def fit(self, images: Any = None, y: Any = None) -> "Extractor":
        """Check the parameters and build the network; ``images`` and ``y`` are ignored (nothing is learnt)."""
        self.n_features_out_ = self.num_features
        self._build()
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return "n_features_out_" in self.__dict__

    def transform(self, images: Iterable[Image.Image], batch_size: int = 32) -> np.ndarray:
        """Features of RGB PIL images, ``(n, num_features)`` float32, in input order."""
        self._fitted()
        prepare = self.preprocessor()
        arrays = [prepare(image) for image in images]
        out = np.empty((len(arrays), self.num_features), dtype=np.float32)
        for shape_indices in _group_by_shape(arrays):
            for start in range(0, len(shape_indices), batch_size):
                chosen = shape_indices[start : start + batch_size]
                out[chosen] = self.forward(np.stack([arrays[i] for i in chosen]))
        return out

    def _reset(self) -> None:
        """Forget the built network and cached state: every ``_``-prefixed or ``_``-suffixed attribute, by scikit-learn's convention."""
        for attribute in [a for a in self.__dict__ if a.startswith("_") or a.endswith("_")]:
            del self.__dict__[attribute]


def _group_by_shape(arrays: list[np.ndarray]) -> list[list[int]]:
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, array in enumerate(arrays):
        groups.setdefault(array.shape, []).append(index)
    return list(groups.values())


