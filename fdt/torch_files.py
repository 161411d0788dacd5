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
