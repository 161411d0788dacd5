"""The root of fdt's exception families.

Every error a user can fix (a bad input, a missing file they named, a damaged
store) derives from :class:`FdtError`; the command line prints those as one line
with exit code 2. Anything else that escapes a command is a bug in fdt or a
library and keeps its traceback, so narrowing the mapping to this one type is
what keeps a numpy or h5py bug from passing for a user mistake.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable


class FdtError(Exception):
    """A mistake in what the user asked for or gave fdt; the message says why in one line."""


def one_line(error: BaseException) -> str:
    """An error's message as one line: its first line (a ``KeyError``'s without the quotes ``str`` adds), else its type's name.

    For fdt's own messages, and for quoting a library's error inside one.
    """
    message = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    return message.strip().splitlines()[0] if message.strip() else type(error).__name__


class DiskFullError(FdtError, OSError):
    """A write failed for lack of space (a full disk, a quota, a file-size limit); what was written before is kept."""


class DeviceError(FdtError, ValueError):
    """A ``--device`` that torch does not know, or that this machine does not have."""


class MissingExtraError(FdtError, ImportError):
    """An optional package is not installed; the message names the ``pip install 'fdt[EXTRA]'`` that brings it."""


class UnsafeNameError(FdtError, ValueError):
    """A name that becomes part of a file path (a model, an image set, an extractor label) holds a separator or ``..``."""


class OutputInInputError(FdtError, ValueError):
    """An output folder inside an input image folder: the PNGs fdt writes there would be read back as input images."""


def check_outside(output: str | os.PathLike, inputs: Iterable[str | os.PathLike], what: str) -> None:
    """Refuse ``output`` if it is, or lies inside, one of the ``inputs`` that are folders.

    Model folders, reports and perturbed copies hold PNGs (sample grids, plots);
    inside a folder of images, the next ``fdt extract`` of that folder would read
    them as a source of its own.
    """
    target = Path(output).resolve()
    for folder in inputs:
        base = Path(folder).resolve()
        if base.is_dir() and (target == base or base in target.parents):
            raise OutputInInputError(
                f"{what} {output} is inside the input folder {folder}: the PNGs written there would be read as its images; choose a folder outside it"
            )


_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+=@-")


def check_name(name: str, what: str) -> str:
    """Return ``name`` if it is safe as one path component: letters, digits and ``._+=@-``, not starting with ``.``.

    Names become folder and file names (``models/NAME.skops``, ``data/NAME/``);
    a separator or ``..`` would put outputs outside the folder the user named.
    """
    if not isinstance(name, str) or not name or name[0] == "." or len(name) > 200 or not set(name) <= _NAME_CHARACTERS:
        raise UnsafeNameError(
            f"{what} {name!r} is not a safe name: use letters, digits and . _ + = @ - (not starting with a dot, at most 200 characters)"
        )
    return name


def check_inside(folder: str | os.PathLike, path: str | os.PathLike, what: str) -> Path:
    """``path`` resolved, if it lies inside ``folder`` (resolved); else :class:`UnsafeNameError`."""
    base, target = Path(folder).resolve(), Path(path).resolve()
    if target != base and base not in target.parents:
        raise UnsafeNameError(f"{what} {path} would be written outside {folder}")
    return target
