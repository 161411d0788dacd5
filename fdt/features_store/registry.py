"""The extractor registry: one public constructor, :func:`create_extractor`, keyed by name.

Built-in extractors are registered by import path so that listing them costs
nothing; a user's own extractor registers with :func:`register_extractor`.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, TypeVar

from fdt.features_store.errors import ExtractorError, UnknownExtractorError

_BUILTINS: dict[str, str] = {
    "vgg16": "fdt.features_store.extractors.cnn:VGG16Extractor",
    "mobilenet_v2": "fdt.features_store.extractors.cnn:MobileNetV2Extractor",
    "xception": "fdt.features_store.extractors.cnn:XceptionExtractor",
    "fft": "fdt.features_store.extractors.fft:FFTExtractor",
    "autoencoder": "fdt.features_store.extractors.autoencoder:AutoencoderExtractor",
}
_REGISTERED: dict[str, Callable[..., Any]] = {}

T = TypeVar("T")


def register_extractor(name: str) -> Callable[[T], T]:
    """Class decorator: make an extractor available to :func:`create_extractor` and ``fdt extract``."""

    def decorate(cls: T) -> T:
        _REGISTERED[name] = cls
        return cls

    return decorate


def list_extractors() -> list[str]:
    """Names of every registered extractor, sorted."""
    return sorted(set(_BUILTINS) | set(_REGISTERED))


def extractor_class(name: str) -> Any:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in _BUILTINS:
        raise UnknownExtractorError(f"unknown extractor {name!r}; choose one of: {', '.join(list_extractors())}")
    module, attribute = _BUILTINS[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def create_extractor(name: str, **params: Any):
    """Build the extractor ``name`` with ``params``; unknown names and parameters are errors."""
    cls = extractor_class(name)
    try:
        return cls(**params)
    except TypeError as error:
        raise ExtractorError(f"extractor {name!r}: {error}; its parameters are {', '.join(cls.param_names())}") from None
