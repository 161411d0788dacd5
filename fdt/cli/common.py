"""What every command shares: user errors as one line with exit code 2, and ``key=value`` parameters."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import click


class UserError(click.ClickException):
    """A mistake in what the user asked for: printed as one line, exit code 2, no traceback."""

    exit_code = 2


@contextlib.contextmanager
def user_errors(*kinds: type[BaseException]) -> Iterator[None]:
    """Turn the given exception types (user mistakes, not bugs) into :class:`UserError`."""
    try:
        yield
    except kinds as error:
        message = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
        raise UserError(message.splitlines()[0] if message else type(error).__name__) from None


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
