"""Opening torch files without running code, and saying in a few words why a file is not one.

Every ``.pt`` fdt reads (weights, checkpoints, model files) goes through
:func:`load_tensors`: ``torch.load(weights_only=True)``, so a pickle that names
code is refused, never run. torch reports a file that is not its own with
whatever its unpickler or zip reader met (``KeyError: 101`` for a text file,
``EOFError`` for an empty one, a paragraph about ``weights_only`` for a foreign
pickle); :class:`TorchFileError` says the same in terms a user can act on.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any

from fdt.errors import FdtError, one_line


class TorchFileError(FdtError, ValueError):
    """A file torch cannot read as tensors and plain data; the message is the reason, without the path (callers add it)."""


def load_tensors(path: str | os.PathLike, map_location: Any = "cpu", mmap: bool = False) -> Any:
    """The contents of a torch file, read with ``weights_only=True``; :class:`TorchFileError` for a file that is not one.

    An :class:`OSError` (a missing or unreadable file) is not translated: it is
    about the path, and the command line reports it as such.
    """
    import torch

    try:
        with warnings.catch_warnings():
            # a foreign pickle's protocol draws this warning just before weights_only refuses the file
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except OSError:
        raise
    except Exception as error:  # torch raises unpickling, zip, key, EOF and runtime errors for files that are not its own
        raise TorchFileError(reason(error)) from None


def read_format_file(
    path: str | os.PathLike, fmt: str, version: int | str, what: str, retrain: str, error: type[FdtError], mmap: bool = False
) -> dict[str, Any]:
    """A torch file fdt wrote with a ``format`` tag and ``format_version``; ``error`` (one line ending in ``retrain``) if it is not one.

    ``what`` names the file in messages ("fine-tuned model", "autoencoder model").
    """
    from fdt import __version__

    path = Path(path)
    if not path.is_file():
        raise error(f"{what} file does not exist: {path}; {retrain}")
    try:
        state = load_tensors(path, mmap=mmap)
    except (TorchFileError, OSError) as failure:
        raise error(f"{path} is not an fdt {what} file ({one_line(failure)}); {retrain}") from None
    found = state.get("format") if isinstance(state, dict) else None
    if found != fmt:
        raise error(f"{path} is not an fdt {what} file (format {found!r}, expected {fmt!r}); {retrain}")
    if state.get("format_version") != version:
        raise error(
            f"{path} is an fdt {what} of format_version {state.get('format_version')!r}, but fdt {__version__} reads version {version}; "
            f"upgrade fdt or {retrain}"
        )
    return state


def reason(error: BaseException) -> str:
    """Why torch could not read a file, in a few words."""
    text = str(error)
    if isinstance(error, EOFError) or (isinstance(error, RuntimeError) and "zip archive" in text):
        return "empty or cut short: not a whole torch file"
    if isinstance(error, pickle.UnpicklingError) and "Weights only load failed" in text:
        return "not a tensors-only torch file: fdt never unpickles Python objects (that could run code)"
    if isinstance(error, (KeyError, UnicodeDecodeError)):  # what torch's unpickler meets in a text or other foreign file
        return "not a torch file"
    if isinstance(error, pickle.UnpicklingError):
        return f"not a torch file ({one_line(error)})"
    return one_line(error)
