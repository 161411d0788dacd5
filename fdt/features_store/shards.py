"""Feature shards: immutable HDF5 files of one extractor key's rows, checked against their checksum before use.

A shard is never changed once renamed into place; a compaction writes a merged
shard naming the ones it *supersedes*, then deletes them. A reader that finds a
listed shard gone lists again (:func:`consistent_read`).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import h5py
import numpy as np

from fdt import __version__
from fdt.data import display_path
from fdt.features_store.errors import StoreFormatError
from fdt.features_store.featureset import ExtractorKey, canonical_json
from fdt.features_store.fileformat import HASH_DTYPE, SHARD_TYPE, SHARD_VERSION, STR_DTYPE
from fdt.features_store.fileformat import check_encoding, damaged, decode_strings, now, stamp, write_h5

T = TypeVar("T")


class ShardVanishedError(StoreFormatError):
    """A listed shard was deleted before it was read: a compaction superseded it. Readers list again."""


_SNAPSHOT_TRIES = 20
_CHECKED: set[tuple] = set()  # (path, size, mtime, inode, ctime) of shards whose checksum this process verified
_HEADERS: dict[tuple, "Shard"] = {}  # the same identity -> the shard's header, as Shard.open read it
_HEADERS_KEPT = 65_536


def _identity(path: Path) -> tuple | None:
    """What changes if a file is replaced or written to: its path, size, times and inode; None if it is gone."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (str(path), info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns)


def consistent_read(read: Callable[[], T]) -> T:
    """Call ``read()`` until it sees no shard vanish under it (a concurrent compaction), at most a few times.

    A compaction writes the merged shard before it deletes the ones it supersedes,
    so listing again after a vanished shard always finds the rows in the merged one.
    """
    for attempt in range(_SNAPSHOT_TRIES):
        try:
            return read()
        except ShardVanishedError:
            if attempt == _SNAPSHOT_TRIES - 1:
                raise
            time.sleep(0.01 * (attempt + 1))


def open_shard_file(path: Path) -> h5py.File:
    """Open a shard for reading; a shard deleted since it was listed raises :class:`ShardVanishedError`."""
    try:
        return h5py.File(path, "r", locking=False)
    except OSError:
        if not path.exists():
            raise ShardVanishedError(f"{path} was removed while it was being read (by a compaction)") from None
        raise


@dataclass
class Shard:
    """One feature shard file's header (its arrays are read on demand)."""

    path: Path
    key: ExtractorKey
    rows: int
    num_features: int
    supersedes: list[str]
    attrs: dict[str, object] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path) -> "Shard":
        """The shard's header; remembered per file identity, since a shard is never changed once in place.

        A load lists a key's shards several times (the key, its extractor info,
        its rows), and with up to about 29 shards a key, opening each file for its
        attributes every time cost more than reading the rows of a small key.
        """
        identity = _identity(path)
        if identity is not None and (known := _HEADERS.get(identity)) is not None:
            return replace(known, supersedes=list(known.supersedes), attrs=dict(known.attrs))
        shard = cls._read_header(path)
        if identity is not None:
            if len(_HEADERS) >= _HEADERS_KEPT:
                _HEADERS.clear()
            _HEADERS[identity] = replace(shard, supersedes=list(shard.supersedes), attrs=dict(shard.attrs))
        return shard

    @classmethod
    def _read_header(cls, path: Path) -> "Shard":
        try:
            with open_shard_file(path) as handle:
                check_encoding(handle.attrs, SHARD_TYPE, SHARD_VERSION, path)
                attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in handle.attrs.items()}
                key = ExtractorKey.from_dict(json.loads(attrs["key"]))
                return cls(path, key, int(handle["sha256"].shape[0]), int(attrs["num_features"]), json.loads(attrs["supersedes"]), attrs)
        except StoreFormatError:
            raise
        except (OSError, KeyError, ValueError) as error:
            raise StoreFormatError(f"{path} is not a readable feature shard ({error})") from None

    def read_hashes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(sha256, failed_sha256)`` without reading the feature matrix."""
        with open_shard_file(self.path) as handle:
            return handle["sha256"][()], handle["failed"]["sha256"][()]

    def read_failures(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(failed_sha256, failed_path, failed_reason)`` without reading the feature matrix."""
        with open_shard_file(self.path) as handle:
            failed = handle["failed"]
            return failed["sha256"][()], decode_strings(failed["path"][()]), decode_strings(failed["reason"][()])

    def read(self, check: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(sha256, features, failed_sha256, failed_path, failed_reason)``, hashes as ``S64`` bytes.

        The rows are checked against the shard's checksum (and for NaN or infinity)
        before anyone uses them: a flipped bit would otherwise become a feature of
        1e38 in a tuned model. ``check=False`` is for ``verify``, which reports all problems.
        """
        with open_shard_file(self.path) as handle:
            failed = handle["failed"]
            rows = (
                handle["sha256"][()],
                handle["features"][()],
                failed["sha256"][()],
                decode_strings(failed["path"][()]),
                decode_strings(failed["reason"][()]),
            )
        if check and not self._checked():
            self._check(rows[0], rows[1])
        return rows

    def _identity(self) -> tuple | None:
        return _identity(self.path)

    def _checked(self) -> bool:
        """Whether this process already verified this (immutable) shard: once per process is enough."""
        identity = self._identity()
        return identity is not None and identity in _CHECKED

    def _check(self, sha256: np.ndarray, features: np.ndarray) -> None:
        if shard_checksum(sha256, features) != self.attrs.get("checksum"):
            raise damaged(self.path, "checksum mismatch")
        if not np.isfinite(features.sum(dtype=np.float64)):  # one pass, no mask; float64 cannot overflow on finite float32 rows
            raise damaged(self.path, "features contain NaN or infinity")
        if (identity := self._identity()) is not None:
            _CHECKED.add(identity)

    def ensure_checked(self) -> None:
        """Verify the shard's checksum (reading it whole) unless this process already did."""
        if not self._checked():
            with open_shard_file(self.path) as handle:
                self._check(handle["sha256"][()], handle["features"][()])


def write_shard(
    root: Path,
    key: ExtractorKey,
    num_features: int,
    sha256: np.ndarray,
    features: np.ndarray | Sequence[np.ndarray],
    failed: Sequence[tuple[str, str, str]],
    supersedes: Sequence[str] = (),
    extra_attrs: dict[str, object] | None = None,
) -> Path:
    """Write one immutable shard; ``features`` is the row matrix, or its consecutive blocks of rows.

    Blocks are written as they are, never joined into one matrix first: a writer's
    buffer of a thousand spectra is tens of MB, and a copy of it in a fresh thread
    cost ten times the copy itself in page faults.
    """
    folder = root / "features" / key.id
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{stamp()}.h5"
    blocks = [features] if isinstance(features, np.ndarray) else list(features)
    blocks = [np.ascontiguousarray(block, dtype=np.float32).reshape(-1, num_features) for block in blocks] or [np.zeros((0, num_features), np.float32)]
    sha256 = np.asarray(sha256, dtype=HASH_DTYPE)
    if sum(len(block) for block in blocks) != len(sha256):
        raise ValueError(f"{sum(len(block) for block in blocks)} feature rows for {len(sha256)} hashes")
    attrs: dict[str, object] = {
        "encoding-type": SHARD_TYPE,
        "encoding-version": SHARD_VERSION,
        "key": canonical_json(key.to_dict()),
        "key_id": key.id,
        "num_features": num_features,
        "supersedes": json.dumps(list(supersedes)),
        "checksum": shard_checksum(sha256, *blocks),
        "created": now(),
        "fdt_version": __version__,
    }
    # h5py stores plain str; str subclasses such as torch's version string would become numpy unicode
    attrs.update({name: str(value) if isinstance(value, str) else value for name, value in (extra_attrs or {}).items()})

    def fill(handle: h5py.File) -> None:
        handle.attrs.update(attrs)
        handle.create_dataset("sha256", data=sha256)
        if len(blocks) == 1:
            handle.create_dataset("features", data=blocks[0])
        else:
            rows = handle.create_dataset("features", shape=(len(sha256), num_features), dtype=np.float32)
            start = 0
            for block in blocks:
                rows[start : start + len(block)] = block
                start += len(block)
        group = handle.create_group("failed")
        group.create_dataset("sha256", data=np.asarray([f[0] for f in failed], dtype=HASH_DTYPE))
        group.create_dataset("path", data=[display_path(f[1]) for f in failed], dtype=STR_DTYPE)
        group.create_dataset("reason", data=[display_path(f[2]) for f in failed], dtype=STR_DTYPE)

    write_h5(root, final, fill)
    return final


def shard_checksum(sha256: np.ndarray, *features: np.ndarray) -> str:
    """SHA-256 over the row hashes and the little-endian float32 feature bytes (the matrix, or its blocks of rows in order)."""
    digest = hashlib.sha256(np.ascontiguousarray(sha256, dtype=HASH_DTYPE))
    for block in features:
        digest.update(np.ascontiguousarray(block, dtype="<f4"))  # hashed in place: no copy of the matrix
    return digest.hexdigest()


def stored_rows(shards: list[Shard]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sha256, shard index, row in shard)`` of every stored row, reading hashes only; a hash twice keeps its first row.

    One image can have a row in two live shards (``FeatureStore.write`` of rows already
    stored); shards come oldest first, so the oldest row wins.
    """
    if not shards:
        return np.array([], dtype=HASH_DTYPE), np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    hashes = [shard.read_hashes()[0] for shard in shards]
    sha = np.concatenate(hashes)
    shard_of = np.concatenate([np.full(len(h), i) for i, h in enumerate(hashes)])
    row_of = np.concatenate([np.arange(len(h)) for h in hashes])
    _, first = np.unique(sha, return_index=True)
    if len(first) != len(sha):
        first.sort()
        sha, shard_of, row_of = sha[first], shard_of[first], row_of[first]
    return sha, shard_of, row_of
