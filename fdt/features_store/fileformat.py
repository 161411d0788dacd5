"""The feature store's files as ``docs/store-format.md`` specifies them: names, encodings, checks, the atomic HDF5 write.

Everything here is about one file at a time; :mod:`~fdt.features_store.shards`,
:mod:`~fdt.features_store.catalog`, :mod:`~fdt.features_store.locking` and
:mod:`~fdt.features_store.writer` build the store's behaviour on it.
"""

from __future__ import annotations

import io
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from fdt.atomic import disk_full, write_bytes
from fdt.features_store.errors import StoreError, StoreFormatError

STORE_TYPE, STORE_VERSION = "fdt.feature_store", "1"
SHARD_TYPE, SHARD_VERSION = "fdt.feature_shard", "1"
CATALOG_TYPE, CATALOG_VERSION = "fdt.catalog", "2"
CATALOG_READS = ("1", "2")  # version 1 files (fdt 0.1) have no checksum
MARKER = "fdt-store.json"
HASH_DTYPE = "S64"
STR_DTYPE = h5py.string_dtype("utf-8")
UPGRADE_HINT = "upgrade fdt (pip install -U fdt) to read it"

TRANSIENT_REASONS = ("cannot read file", "file changed while it was being extracted")
"""Failure reasons that may not hold on the next run (an I/O error, a file replaced or vanished mid-read)."""


def is_transient(reason: str) -> bool:
    """Whether a recorded failure is worth retrying: the file, not its content, was the problem."""
    return reason.startswith(TRANSIENT_REASONS)


def now() -> str:
    """The current UTC time as ISO 8601 seconds: the ``created`` attribute of every file."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def stamp() -> str:
    """A file name stem that sorts by creation time and never repeats: ``<ns since epoch>-<random>``."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"


_OWN_NAMES = (".tmp", ".lock", ".locks", "catalog", "features", MARKER, ".hash-cache.sqlite")


def store_symlinks(root: Path) -> list[Path]:
    """Symbolic links among the store's own files and folders (the root itself may be one).

    A link there would let a writer empty, truncate or write the folder or file
    it points to (``.tmp`` -> a home folder, ``.lock`` -> a document), so writers
    refuse such a store and ``verify`` reports it.
    """
    found = []
    for name in _OWN_NAMES:
        path = root / name
        if path.is_symlink():
            found.append(path)
        elif path.is_dir():
            for child in path.iterdir():
                if child.is_symlink():
                    found.append(child)
                elif child.is_dir() and name == "features":
                    found += [leaf for leaf in child.iterdir() if leaf.is_symlink()]
    return found


def refuse_symlinks(root: Path) -> None:
    """Raise :class:`StoreError` naming the first symbolic link inside the store's own folders."""
    links = store_symlinks(root)
    if links:
        raise StoreError(
            f"{links[0]} is a symbolic link; fdt never writes or deletes through links inside a store: "
            f"remove it (fdt store verify lists {'them' if len(links) > 1 else 'it'})"
        )


def check_encoding(attrs: h5py.AttributeManager, expected_type: str, expected_version: str | tuple[str, ...], path: Path) -> None:
    """Refuse a file of another encoding type, or of a version this fdt cannot read (with an upgrade hint)."""
    kind = attrs.get("encoding-type")
    version = attrs.get("encoding-version")
    versions = (expected_version,) if isinstance(expected_version, str) else expected_version
    if kind != expected_type:
        raise StoreFormatError(f"{path} is not an {expected_type} file (encoding-type={kind!r})")
    if version not in versions:
        raise StoreFormatError(f"{path} has {expected_type} version {version!r}; this fdt reads version {' and '.join(versions)}: {UPGRADE_HINT}")


def damaged(path: Path, what: str) -> StoreFormatError:
    """The error for a damaged store file, naming the ``verify`` command of its store."""
    return StoreFormatError(f"{path} is damaged ({what}); run fdt store verify --store {path.parents[2] if path.parent.parent.name == 'features' else path.parents[1]}")


def decode_strings(values: np.ndarray) -> np.ndarray:
    """HDF5 strings (``bytes`` from h5py) as a numpy object array of ``str``."""
    return np.array([v.decode() if isinstance(v, bytes) else v for v in values], dtype=object)


def full_disk_error(reason: str, path: Path) -> StoreError:
    """The one-line error of a write cut short by a full disk; rows saved before are kept."""
    return StoreError(f"{reason} while writing {path}: the run was cut short; rows already saved are kept, free space and run again to resume")


def write_h5(root: Path, final: Path, fill: Callable[[h5py.File], None]) -> None:
    """Write an HDF5 file through ``.tmp/`` and rename it into place; a full disk is a :class:`StoreError`."""
    tmp_dir = root / ".tmp"
    try:
        tmp_dir.mkdir(exist_ok=True)
    except OSError as error:
        if reason := disk_full(error):
            raise full_disk_error(reason, final.parent) from None
        raise
    if tmp_dir.is_symlink() or final.parent.is_symlink():
        refuse_symlinks(root)
    # HDF5 builds the file in memory and fdt writes the bytes: a write that fails (a
    # full disk) is then a plain OSError here, not a half-closed HDF5 file whose
    # clean-up fails again later and crashes the interpreter at exit.
    image = io.BytesIO()
    with h5py.File(image, "w") as handle:
        fill(handle)
    write_bytes(final, image.getbuffer(), temp_dir=tmp_dir, full=lambda reason, _: full_disk_error(reason, final.parent))
