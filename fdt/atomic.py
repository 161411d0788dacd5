"""Atomic file writes: a reader, or a run resumed after a kill, sees the old file or the new one, never half of one.

Every file fdt writes for later use (store shards, model files and cards, stamps,
checkpoints, manifests rewritten whole, plots) goes through here. The recipe:
write under a temporary name unique to this writer (pid and a random token, so
two writers of one target never share a temporary file), ``fsync`` it,
``os.replace`` it over the target, then ``fsync`` the folder so the rename itself
survives a power cut. On any failure the temporary file is removed and the
target is left as it was.

A full disk (or quota, or file-size limit) is a condition the user can fix, so
it is raised as an :class:`~fdt.errors.FdtError` (one line from the CLI) rather
than a traceback; callers with their own error family pass ``full=`` to raise
theirs instead.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from fdt.errors import DiskFullError, FdtError

_FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded", errno.EFBIG: "file size limit exceeded"}


def disk_full(error: BaseException) -> str | None:
    """``"no space left on device"`` (or quota, or file-size limit) if ``error`` says so, else ``None``.

    HDF5 reports a failed write as an ``OSError`` or ``RuntimeError`` without ``errno``
    whose text holds ``errno = 28``; the operating system's errors carry it in ``errno``.
    """
    if isinstance(error, OSError) and error.errno in _FULL:
        return _FULL[error.errno]
    found = re.search(r"errno = (\d+)", str(error))
    return _FULL.get(int(found.group(1))) if found else None


def _disk_full_error(reason: str, target: Path) -> Exception:
    return DiskFullError(f"{reason} while writing {target}: free space and run again")


def fsync_folder(folder: str | os.PathLike) -> None:
    """Flush a folder's entries to disk, so a rename or deletion in it survives a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _reserve(folder: Path, name: str) -> Path:
    """Create an empty temporary file with a name no other writer uses; never through a symbolic link."""
    while True:
        temporary = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666))
        except FileExistsError:
            continue
        return temporary


@contextmanager
def atomic_path(
    target: str | os.PathLike,
    *,
    temp_dir: str | os.PathLike | None = None,
    full: Callable[[str, Path], Exception] = _disk_full_error,
) -> Iterator[Path]:
    """Yield a temporary path for a writer that needs a file name (h5py, ``savefig``, ``torch.save``, PIL).

    When the block ends without an exception the file is fsynced and renamed over
    ``target``; otherwise it is removed and ``target`` is untouched.

    Parameters
    ----------
    target : path
        The file to write; its folder must exist.
    temp_dir : path, optional
        Where the temporary file goes (default: ``target``'s folder). It must be on
        the same file system as ``target``; the feature store uses its ``.tmp/``.
    full : callable, optional
        ``full(reason, target)`` builds the exception raised when the write fails
        for lack of space (default :class:`DiskFullError`).
    """
    target = Path(target)
    temporary = _reserve(Path(temp_dir) if temp_dir is not None else target.parent, target.name)
    try:
        yield temporary
        _fsync_file(temporary)
        os.replace(temporary, target)
        fsync_folder(target.parent)
    except (OSError, RuntimeError) as error:  # HDF5 raises either when a write fails
        temporary.unlink(missing_ok=True)
        reason = disk_full(error)
        if reason and not isinstance(error, FdtError):
            raise full(reason, target) from None
        raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_bytes(target: str | os.PathLike, data: bytes | bytearray | memoryview, **options: Any) -> Path:
    """Write ``data`` to ``target`` atomically; ``options`` are :func:`atomic_path`'s. Returns ``target`` as a path."""
    with atomic_path(target, **options) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
    return Path(target)


def write_text(target: str | os.PathLike, text: str, encoding: str = "utf-8", **options: Any) -> Path:
    """Write ``text`` to ``target`` atomically (``newline`` untranslated); returns ``target`` as a path."""
    return write_bytes(target, text.encode(encoding), **options)


def write_json(target: str | os.PathLike, value: Any, *, indent: int | None = 2, default: Callable[[Any], Any] | None = None, **options: Any) -> Path:
    """Write ``value`` as JSON (with a final newline) to ``target`` atomically; returns ``target`` as a path."""
    return write_text(target, json.dumps(value, indent=indent, default=default) + "\n", **options)
