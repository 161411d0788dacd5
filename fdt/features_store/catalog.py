"""The catalog: image-set rows (sha256, path, source, label, group) in immutable HDF5 files under ``catalog/``.

Files are only added; reading merges them, a later row for the same
(sha256, source) replacing an earlier one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from fdt import __version__
from fdt.features_store.errors import StoreFormatError
from fdt.features_store.fileformat import CATALOG_READS, CATALOG_TYPE, CATALOG_VERSION, HASH_DTYPE, STR_DTYPE
from fdt.features_store.fileformat import check_encoding, damaged, decode_strings, now, stamp, write_h5

Row = tuple[str, str, str, int, str]
"""One catalog row: ``(sha256, path, source, label, group)``."""


@dataclass
class Catalog:
    """Image-set rows, unique per (sha256, source); a later row replaces an earlier one."""

    sha256: np.ndarray
    path: np.ndarray
    source: np.ndarray
    label: np.ndarray
    group: np.ndarray

    def __len__(self) -> int:
        return len(self.sha256)


def read_catalog(root: Path) -> Catalog:
    """All image-set rows of the store at ``root``, one per (sha256, source), the latest record winning."""
    files = sorted((root / "catalog").glob("*.h5")) if (root / "catalog").is_dir() else []
    parts = [read_catalog_file(path) for path in files]
    if not parts:
        empty = np.array([], dtype=object)
        return Catalog(np.array([], dtype=HASH_DTYPE), empty, empty, np.array([], dtype=np.int64), empty)
    merged = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    # keep the last occurrence of each (sha256, source)
    pair = np.char.add(merged["sha256"].astype("U64"), np.asarray(merged["source"], dtype="U"))
    _, last_from_end = np.unique(pair[::-1], return_index=True)
    keep = np.sort(len(pair) - 1 - last_from_end)
    return Catalog(*(merged[name][keep] for name in ("sha256", "path", "source", "label", "group")))


def read_catalog_file(path: Path) -> dict[str, np.ndarray]:
    """One catalog file's columns, checked against its checksum (version 2) and for labels other than 0 and 1."""
    try:
        with h5py.File(path, "r", locking=False) as handle:
            check_encoding(handle.attrs, CATALOG_TYPE, CATALOG_READS, path)
            columns = {
                "sha256": handle["sha256"][()],
                "path": decode_strings(handle["path"][()]),
                "source": decode_strings(handle["source"][()]),
                "label": handle["label"][()],
                "group": decode_strings(handle["group"][()]),
            }
            stored = handle.attrs.get("checksum") if handle.attrs["encoding-version"] != "1" else None
            if handle.attrs["encoding-version"] != "1" and stored != catalog_checksum(**columns):
                raise damaged(path, "checksum mismatch")
    except StoreFormatError:
        raise
    except (OSError, KeyError, ValueError, UnicodeError) as error:
        raise StoreFormatError(f"{path} is not a readable catalog file ({error})") from None
    if not np.isin(columns["label"], (0, 1)).all():
        raise damaged(path, "a label is neither 0 nor 1")
    columns["label"] = columns["label"].astype(np.int64)
    return columns


def write_catalog_file(root: Path, rows: Sequence[Row]) -> None:
    """Write ``rows`` as a new catalog file of the store at ``root``."""
    folder = root / "catalog"
    folder.mkdir(exist_ok=True)
    columns = {
        "sha256": np.asarray([r[0] for r in rows], dtype=HASH_DTYPE),
        "path": [r[1] for r in rows],
        "source": [r[2] for r in rows],
        "label": np.asarray([r[3] for r in rows], dtype=np.int8),
        "group": [r[4] for r in rows],
    }

    def fill(handle: h5py.File) -> None:
        handle.attrs.update(
            {
                "encoding-type": CATALOG_TYPE,
                "encoding-version": CATALOG_VERSION,
                "checksum": catalog_checksum(**columns),
                "created": now(),
                "fdt_version": __version__,
            }
        )
        for name, values in columns.items():
            handle.create_dataset(name, data=values, dtype=STR_DTYPE if isinstance(values, list) else None)

    write_h5(root, folder / f"{stamp()}.h5", fill)


def catalog_checksum(sha256: np.ndarray, path: Sequence[str], source: Sequence[str], label: np.ndarray, group: Sequence[str]) -> str:
    """SHA-256 over ``sha256`` bytes, the int8 ``label`` bytes, then each string of ``path``, ``source`` and ``group`` as UTF-8 plus a NUL byte."""
    digest = hashlib.sha256(np.asarray(sha256, dtype=HASH_DTYPE).tobytes())
    digest.update(np.asarray(label, dtype=np.int8).tobytes())
    for column in (path, source, group):
        # UTF-8 of a concatenation is the concatenation of the UTF-8s: a few thousand strings are hashed in one update
        for start in range(0, len(column), _CHECKSUM_STRINGS):
            digest.update("".join(f"{text}\0" for text in column[start : start + _CHECKSUM_STRINGS]).encode("utf-8"))
    return digest.hexdigest()


_CHECKSUM_STRINGS = 4096  # strings joined per checksum update: one update each, without one copy of a whole column
