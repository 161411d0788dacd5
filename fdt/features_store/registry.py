"""The extractor registry: one public constructor, :func:`create_extractor`, keyed by name.

An extractor is registered once, where it is defined, as timm registers models::

    @register_extractor("fft")
    class FFTExtractor(Extractor): ...

Adding an extractor is one module in :mod:`fdt.features_store.extractors` with one
such line; nothing else names it. Three sources of names, looked at in this order:

1. classes already registered in this process (a script's own, or a module imported before);
2. the modules of :mod:`fdt.features_store.extractors`. Importing them all would import
   torch, transformers and diffusers, seconds that ``fdt --help`` and listing names must
   not cost, so the registry reads each module's source instead and finds its
   ``register_extractor("...")`` calls (a cheap syntax scan, no import). Looking a name
   up imports its module, whose decorator then registers the class; a scan that found a
   name the import did not register is a bug and says so;
3. plugins: ``fdt.extractors`` entry points of installed packages (:mod:`fdt.plugins`),
   listed from their metadata and imported on lookup. A built-in name wins over a plugin's.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import pkgutil
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from fdt import plugins
from fdt.features_store.errors import ExtractorError, UnknownExtractorError

if TYPE_CHECKING:
    from fdt.features_store.extractors.base import Extractor

PACKAGE = "fdt.features_store.extractors"
PLUGIN_GROUP = "fdt.extractors"

_REGISTERED: dict[str, type] = {}

T = TypeVar("T", bound=type)


def register_extractor(name: str) -> Callable[[T], T]:
    """Class decorator: make an extractor available as ``name`` to :func:`create_extractor` and ``fdt extract``.

    The name is set on the class (``cls.name``), so it is written once.
    """

    def decorate(cls: T) -> T:
        cls.name = name
        _REGISTERED[name] = cls
        return cls

    return decorate


@functools.cache
def builtin_modules() -> dict[str, str]:
    """``name -> module`` of every extractor registered in :mod:`fdt.features_store.extractors`, found without importing them."""
    package = importlib.import_module(PACKAGE)
    found: dict[str, str] = {}
    for module in pkgutil.iter_modules(package.__path__):
        full = f"{PACKAGE}.{module.name}"
        spec = importlib.util.find_spec(full)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue
        with open(spec.origin, encoding="utf-8") as file:
            source = file.read()
        if "register_extractor(" not in source:
            continue
        for name in _registered_names(ast.parse(source, spec.origin)):
            found.setdefault(name, full)
    return found


def _registered_names(tree: ast.AST) -> list[str]:
    """String arguments of every ``register_extractor("...")`` call in a module's syntax tree."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            function = node.func
            called = function.id if isinstance(function, ast.Name) else function.attr if isinstance(function, ast.Attribute) else ""
            if called == "register_extractor":
                names.append(node.args[0].value)
    return names


def list_extractors() -> list[str]:
    """Names of every registered extractor (built in, registered by a script, or a plugin's), sorted; imports none of them."""
    return sorted(set(_REGISTERED) | set(builtin_modules()) | set(plugins.plugin_names(PLUGIN_GROUP)))


def extractor_class(name: str) -> type["Extractor"]:
    """The class registered as ``name``, importing its module (or plugin) on first use.

    A built-in (or a script's registered) extractor wins over a plugin of the same
    name; the plugin is then never used, and a warning line says so.
    """
    if name in _REGISTERED:
        _warn_if_shadowed(name)
        return _REGISTERED[name]
    module = builtin_modules().get(name)
    if module is not None:
        importlib.import_module(module)
        if name not in _REGISTERED:
            raise RuntimeError(f"{module} mentions register_extractor({name!r}) but importing it registered no such extractor")
        _warn_if_shadowed(name)
        return _REGISTERED[name]
    if name in plugins.plugin_names(PLUGIN_GROUP):
        return _plugin_class(name)
    raise UnknownExtractorError(f"unknown extractor {name!r}; choose one of: {', '.join(list_extractors())}")


_SHADOW_CHECKED: set[str] = set()
"""Names already checked against the plugins (listing entry points reads every installed package's metadata)."""
_FROM_PLUGINS: set[str] = set()
"""Names registered from a plugin's entry point."""


def _warn_if_shadowed(name: str) -> None:
    """Warn, once per process, when a plugin declares ``name`` that a built-in or registered extractor already holds."""
    if name in _SHADOW_CHECKED:
        return
    _SHADOW_CHECKED.add(name)
    if name in _FROM_PLUGINS:  # the plugin's own class, registered on its first use
        return
    if name in plugins.plugin_names(PLUGIN_GROUP):
        plugins.report_broken(PLUGIN_GROUP, name, "it would shadow the built-in extractor of that name")


def _plugin_class(name: str) -> type["Extractor"]:
    from fdt.features_store.extractors.base import Extractor

    cls = plugins.load_plugin(PLUGIN_GROUP, name)
    if cls is not None and not (isinstance(cls, type) and issubclass(cls, Extractor)):
        plugins.report_broken(PLUGIN_GROUP, name, f"it names {cls!r}, not an Extractor subclass")
        cls = None
    if cls is None:
        raise ExtractorError(f"extractor {name!r} comes from a plugin that does not load (see the warning above)")
    _FROM_PLUGINS.add(name)
    return register_extractor(name)(cls)


def create_extractor(name: str, **params: Any) -> "Extractor":
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
