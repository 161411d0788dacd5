"""The one exception family of :mod:`fdt.gen`: user errors the CLI prints as one line."""

from __future__ import annotations

from fdt.errors import FdtError


class GenError(FdtError, ValueError):
    """A generator cannot run with what it was given; the message says why in one line."""


class ModelNotFoundError(GenError):
    """A model id or folder cannot be found locally and cannot be downloaded."""
