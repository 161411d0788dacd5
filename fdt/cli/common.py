"""What every command shares: user errors as one line with exit code 2, and ``key=value`` parameters.

This is the one place that turns exceptions into what a user sees: the group's
``invoke`` (:mod:`fdt.cli`) runs every command inside :func:`user_errors`, and a
command adds the paths the user named so OS errors about them read as one line too.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import click

from fdt.errors import FdtError, one_line

USER_ERROR_EXIT = 2
"""The exit code of every mistake of the user's: fdt's own errors and click's usage, parameter and file errors alike."""


class UserError(click.ClickException):
    """A mistake in what the user asked for: printed as one line, exit code 2, no traceback."""

    exit_code = USER_ERROR_EXIT


REPORT_BUG = "fdt: this is a bug, not a mistake of yours; please report it with the traceback above (https://github.com/fdt/fdt/issues)"


@contextlib.contextmanager
def user_errors(*paths: str | os.PathLike | None) -> Iterator[None]:
    """Turn fdt's own errors, and OS errors about ``paths`` (those the user named) or files in them, into :class:`UserError`.

    Nothing else is mapped: an ``OSError`` about a file fdt chose, or a
    ``ValueError`` from numpy, is a bug and must keep its traceback.
    """
    try:
        yield
    except FdtError as error:
        raise UserError(one_line(error)) from None
    except OSError as error:
        named = _named_path(error, paths)
        if named is None:
            raise
        raise UserError(f"{named}: {error.strerror or one_line(error)}") from None


def _named_path(error: OSError, paths: tuple[str | os.PathLike | None, ...]) -> str | None:
    """The file of ``error`` if it is one of ``paths`` or inside one of them, else ``None``."""
    roots = [os.path.abspath(os.fsdecode(p)) for p in paths if p is not None and os.fspath(p) != ""]
    for name in (error.filename, error.filename2):
        if name is None or isinstance(name, int):
            continue
        full = os.path.abspath(os.fsdecode(name))
        if any(full == root or full.startswith(root.rstrip(os.sep) + os.sep) for root in roots):
            return os.fsdecode(name)
    return None


def parse_value(text: str) -> Any:
    """``none``/``true``/``false``, integers and floats become Python values; anything else stays a string."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_params(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``("size=64", "profile=true")`` -> ``{"size": 64, "profile": True}``."""
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--param takes key=value, not {pair!r}")
        params[name.strip()] = parse_value(value)
    return params


def param_paths(pairs: tuple[str, ...] | list[str]) -> list[str]:
    """The values of ``key=value`` parameters, as paths the user may have named (``weights=PATH``, ``model=PATH``)."""
    return [value for value in (pair.partition("=")[2] for pair in pairs) if value]


def split_list(text: str | None) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def equalise_key(operations: tuple[str, ...] | list[str]) -> str:
    """The feature key's chain for ``--equalise`` operations (``""`` for none), checked as ``fdt extract`` checks them."""
    if not operations:
        return ""
    from fdt.perturb import PerturbError, parse_chain

    try:
        return parse_chain(list(operations)).key
    except PerturbError as error:
        raise UserError(f"--equalise: {error}") from None
