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
    "inception_v3": "fdt.features_store.extractors.inception:InceptionV3Extractor",
    "fft": "fdt.features_store.extractors.fft:FFTExtractor",
    "autoencoder": "fdt.features_store.extractors.autoencoder:AutoencoderExtractor",
    "dct": "fdt.features_store.extractors.dct:DCTExtractor",
    "clip": "fdt.features_store.extractors.vit:CLIPExtractor",
    "dinov2": "fdt.features_store.extractors.vit:DINOv2Extractor",
    "vae": "fdt.features_store.extractors.vae:VAEExtractor",
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
        extractor = cls(**params)
    except TypeError as error:
        raise ExtractorError(f"extractor {name!r}: {error}; its parameters are {', '.join(cls.param_names())}") from None
    check_param_types(cls, params, name)
    return extractor


def check_param_types(cls: type, params: dict[str, Any], name: str) -> None:
    """Refuse a parameter whose value does not have its annotated type (``size = "abc"``), before any work starts.

    An extractor checks its values' meaning lazily (when the key is made); a wrong
    type caught here gives one line up front instead of a traceback mid-run.
    """
    import os
    import types
    import typing

    try:
        hints = typing.get_type_hints(cls.__init__)
    except (NameError, TypeError):  # an annotation this module cannot resolve: nothing to check against
        return
    for param, value in params.items():
        hint = hints.get(param)
        if hint is None or hint is Any:
            continue
        options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        accepted = tuple(o for o in (type(None) if o is None else o for o in options) if isinstance(o, type))
        if len(accepted) < len(options):
            continue  # Literal, generics: left to the extractor
        if float in accepted:
            accepted += (int,)
        if str in accepted:
            accepted += (os.PathLike,)
        wrong_bool = isinstance(value, bool) and bool not in accepted
        if wrong_bool or not isinstance(value, accepted):
            names = " or ".join("none" if o is type(None) else o.__name__ for o in options)
            raise ExtractorError(f"extractor {name!r} parameter {param!r} must be {names}, not {value!r}")
