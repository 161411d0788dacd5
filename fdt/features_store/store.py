"""The HDF5 feature store: an append-only log of immutable, atomically renamed shard files.

The on-disk format is specified in ``docs/store-format.md``; this module mirrors it.
In short::

    <root>/fdt-store.json                 format marker (encoding type and version)
    <root>/.lock                          held (flock) by the one writer
    <root>/.tmp/                          files being written; never read
    <root>/catalog/<stamp>-<id>.h5        image-set rows: sha256, path, source, label, group
    <root>/features/<key id>/<stamp>-<id>.h5   feature rows of one extractor key

Every file is written under ``.tmp/``, fsynced and ``os.replace``-d into place, so a
reader sees a whole file or none, and a writer killed at any moment (SIGKILL
included) loses at most the rows it had not yet flushed. A compacted shard names
the shards it *supersedes*; readers ignore those, and the next writer deletes them.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import h5py
import numpy as np

from fdt import __version__
from fdt.atomic import disk_full, fsync_folder, write_bytes, write_json
from fdt.data import ImageRecord, display_path
from fdt.features_store.errors import (
    MissingFeaturesError,
    StoreError,
    StoreFormatError,
    StoreLockedError,
    UnknownSourceError,
)
from fdt.features_store.gather import gather_rows
from fdt.features_store.featureset import ExtractorKey, FeatureSet, canonical_json

STORE_TYPE, STORE_VERSION = "fdt.feature_store", "1"
SHARD_TYPE, SHARD_VERSION = "fdt.feature_shard", "1"
CATALOG_TYPE, CATALOG_VERSION = "fdt.catalog", "2"
_CATALOG_READS = ("1", "2")  # version 1 files (fdt 0.1) have no checksum
MARKER = "fdt-store.json"
_HASH_DTYPE = "S64"
_STR_DTYPE = h5py.string_dtype("utf-8")
_COMPACT_ROWS = 200_000  # shards below this size are merged when a writer closes
_MAX_SHARDS = 16  # a key read by a writer with more live shards than this is merged even if nothing was written
_UPGRADE_HINT = "upgrade fdt (pip install -U fdt) to read it"
_COMPACTING = "compaction by "  # how a shard job that compacts names itself in the lock file
_HELD_LOCKS: set[int] = set()  # file descriptors of writer locks this process holds


def release_inherited_locks() -> None:
    """Close writer-lock descriptors inherited through ``fork``; call first thing in a child process.

    A ``flock`` belongs to the open file, which a forked child shares: without this,
    a DataLoader worker outliving its killed parent would keep the store locked.
    """
    for fd in list(_HELD_LOCKS):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD_LOCKS.clear()


TRANSIENT_REASONS = ("cannot read file", "file changed while it was being extracted")
"""Failure reasons that may not hold on the next run (an I/O error, a file replaced or vanished mid-read)."""


def is_transient(reason: str) -> bool:
    """Whether a recorded failure is worth retrying: the file, not its content, was the problem."""
    return reason.startswith(TRANSIENT_REASONS)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _stamp() -> str:
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


def _open_regular(path: Path, flags: int) -> int:
    """``os.open`` that never follows a final symbolic link (a race after :func:`refuse_symlinks`)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise StoreError(f"{path} is a symbolic link; fdt never writes through links inside a store: remove it") from None
        raise


def _check_encoding(attrs: h5py.AttributeManager, expected_type: str, expected_version: str | tuple[str, ...], path: Path) -> None:
    kind = attrs.get("encoding-type")
    version = attrs.get("encoding-version")
    versions = (expected_version,) if isinstance(expected_version, str) else expected_version
    if kind != expected_type:
        raise StoreFormatError(f"{path} is not an {expected_type} file (encoding-type={kind!r})")
    if version not in versions:
        raise StoreFormatError(f"{path} has {expected_type} version {version!r}; this fdt reads version {' and '.join(versions)}: {_UPGRADE_HINT}")


def _damaged(path: Path, what: str) -> StoreFormatError:
    return StoreFormatError(f"{path} is damaged ({what}); run fdt store verify --store {path.parents[2] if path.parent.parent.name == 'features' else path.parents[1]}")


def _decode(values: np.ndarray) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else v for v in values], dtype=object)


# --------------------------------------------------------------------------- shard files


class ShardVanishedError(StoreFormatError):
    """A listed shard was deleted before it was read: a compaction superseded it. Readers list again."""


_SNAPSHOT_TRIES = 20
_CHECKED: set[tuple] = set()  # (path, size, mtime, inode, ctime) of shards whose checksum this process verified


def consistent_read(read):
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


def _h5_open(path: Path) -> h5py.File:
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
        try:
            with _h5_open(path) as handle:
                _check_encoding(handle.attrs, SHARD_TYPE, SHARD_VERSION, path)
                attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in handle.attrs.items()}
                key = ExtractorKey.from_dict(json.loads(attrs["key"]))
                return cls(path, key, int(handle["sha256"].shape[0]), int(attrs["num_features"]), json.loads(attrs["supersedes"]), attrs)
        except StoreFormatError:
            raise
        except (OSError, KeyError, ValueError) as error:
            raise StoreFormatError(f"{path} is not a readable feature shard ({error})") from None

    def read_hashes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(sha256, failed_sha256)`` without reading the feature matrix."""
        with _h5_open(self.path) as handle:
            return handle["sha256"][()], handle["failed"]["sha256"][()]

    def read_failures(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(failed_sha256, failed_path, failed_reason)`` without reading the feature matrix."""
        with _h5_open(self.path) as handle:
            failed = handle["failed"]
            return failed["sha256"][()], _decode(failed["path"][()]), _decode(failed["reason"][()])

    def read(self, check: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(sha256, features, failed_sha256, failed_path, failed_reason)``, hashes as ``S64`` bytes.

        The rows are checked against the shard's checksum (and for NaN or infinity)
        before anyone uses them: a flipped bit would otherwise become a feature of
        1e38 in a tuned model. ``check=False`` is for ``verify``, which reports all problems.
        """
        with _h5_open(self.path) as handle:
            failed = handle["failed"]
            rows = (
                handle["sha256"][()],
                handle["features"][()],
                failed["sha256"][()],
                _decode(failed["path"][()]),
                _decode(failed["reason"][()]),
            )
        if check and not self._checked():
            self._check(rows[0], rows[1])
        return rows

    def _identity(self) -> tuple | None:
        try:
            info = self.path.stat()
        except OSError:
            return None
        return (str(self.path), info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns)

    def _checked(self) -> bool:
        """Whether this process already verified this (immutable) shard: once per process is enough."""
        identity = self._identity()
        return identity is not None and identity in _CHECKED

    def _check(self, sha256: np.ndarray, features: np.ndarray) -> None:
        if shard_checksum(sha256, features) != self.attrs.get("checksum"):
            raise _damaged(self.path, "checksum mismatch")
        if not np.isfinite(features.sum(dtype=np.float64)):  # one pass, no mask; float64 cannot overflow on finite float32 rows
            raise _damaged(self.path, "features contain NaN or infinity")
        if (identity := self._identity()) is not None:
            _CHECKED.add(identity)

    def ensure_checked(self) -> None:
        """Verify the shard's checksum (reading it whole) unless this process already did."""
        if not self._checked():
            with _h5_open(self.path) as handle:
                self._check(handle["sha256"][()], handle["features"][()])


def _write_shard(
    root: Path,
    key: ExtractorKey,
    num_features: int,
    sha256: np.ndarray,
    features: np.ndarray,
    failed: Sequence[tuple[str, str, str]],
    supersedes: Sequence[str] = (),
    extra_attrs: dict[str, object] | None = None,
) -> Path:
    folder = root / "features" / key.id
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{_stamp()}.h5"
    features = np.ascontiguousarray(features, dtype=np.float32).reshape(len(sha256), num_features)
    sha256 = np.asarray(sha256, dtype=_HASH_DTYPE)
    attrs: dict[str, object] = {
        "encoding-type": SHARD_TYPE,
        "encoding-version": SHARD_VERSION,
        "key": canonical_json(key.to_dict()),
        "key_id": key.id,
        "num_features": num_features,
        "supersedes": json.dumps(list(supersedes)),
        "checksum": shard_checksum(sha256, features),
        "created": _now(),
        "fdt_version": __version__,
    }
    # h5py stores plain str; str subclasses such as torch's version string would become numpy unicode
    attrs.update({name: str(value) if isinstance(value, str) else value for name, value in (extra_attrs or {}).items()})

    def fill(handle: h5py.File) -> None:
        handle.attrs.update(attrs)
        handle.create_dataset("sha256", data=sha256)
        handle.create_dataset("features", data=features)
        group = handle.create_group("failed")
        group.create_dataset("sha256", data=np.asarray([f[0] for f in failed], dtype=_HASH_DTYPE))
        group.create_dataset("path", data=[display_path(f[1]) for f in failed], dtype=_STR_DTYPE)
        group.create_dataset("reason", data=[display_path(f[2]) for f in failed], dtype=_STR_DTYPE)

    _atomic_h5(root, final, fill)
    return final


def shard_checksum(sha256: np.ndarray, features: np.ndarray) -> str:
    """SHA-256 over the row hashes and the little-endian float32 feature bytes."""
    import hashlib

    digest = hashlib.sha256(np.ascontiguousarray(sha256, dtype=_HASH_DTYPE))
    digest.update(np.ascontiguousarray(features, dtype="<f4"))  # hashed in place: no copy of the matrix
    return digest.hexdigest()


def full_disk_error(reason: str, path: Path) -> StoreError:
    """The one-line error of a write cut short by a full disk; rows saved before are kept."""
    return StoreError(f"{reason} while writing {path}: the run was cut short; rows already saved are kept, free space and run again to resume")


def _atomic_h5(root: Path, final: Path, fill) -> None:
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


# --------------------------------------------------------------------------- catalog


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


def _read_catalog_file(path: Path) -> dict[str, np.ndarray]:
    try:
        with h5py.File(path, "r", locking=False) as handle:
            _check_encoding(handle.attrs, CATALOG_TYPE, _CATALOG_READS, path)
            columns = {
                "sha256": handle["sha256"][()],
                "path": _decode(handle["path"][()]),
                "source": _decode(handle["source"][()]),
                "label": handle["label"][()],
                "group": _decode(handle["group"][()]),
            }
            stored = handle.attrs.get("checksum") if handle.attrs["encoding-version"] != "1" else None
            if handle.attrs["encoding-version"] != "1" and stored != catalog_checksum(**columns):
                raise _damaged(path, "checksum mismatch")
    except StoreFormatError:
        raise
    except (OSError, KeyError, ValueError, UnicodeError) as error:
        raise StoreFormatError(f"{path} is not a readable catalog file ({error})") from None
    if not np.isin(columns["label"], (0, 1)).all():
        raise _damaged(path, "a label is neither 0 nor 1")
    columns["label"] = columns["label"].astype(np.int64)
    return columns


def catalog_checksum(sha256: np.ndarray, path: Sequence[str], source: Sequence[str], label: np.ndarray, group: Sequence[str]) -> str:
    """SHA-256 over ``sha256`` bytes, the int8 ``label`` bytes, then each string of ``path``, ``source`` and ``group`` as UTF-8 plus a NUL byte."""
    import hashlib

    digest = hashlib.sha256(np.asarray(sha256, dtype=_HASH_DTYPE).tobytes())
    digest.update(np.asarray(label, dtype=np.int8).tobytes())
    for column in (path, source, group):
        for text in column:
            digest.update(str(text).encode("utf-8") + b"\0")
    return digest.hexdigest()


def _stored_rows(shards: list[Shard]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sha256, shard index, row in shard)`` of every stored row, reading hashes only; a hash twice keeps its first row.

    An interrupted compaction can leave one row in two shards; shards come oldest first.
    """
    if not shards:
        return np.array([], dtype=_HASH_DTYPE), np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    hashes = [shard.read_hashes()[0] for shard in shards]
    sha = np.concatenate(hashes)
    shard_of = np.concatenate([np.full(len(h), i) for i, h in enumerate(hashes)])
    row_of = np.concatenate([np.arange(len(h)) for h in hashes])
    _, first = np.unique(sha, return_index=True)
    if len(first) != len(sha):
        first.sort()
        sha, shard_of, row_of = sha[first], shard_of[first], row_of[first]
    return sha, shard_of, row_of


# --------------------------------------------------------------------------- the store


class FeatureStore:
    """Read access to a feature store, and the door to its one writer (:meth:`writer`).

    Parameters
    ----------
    root : path
        The store folder (default ``features_store``). A missing folder reads as an
        empty store; writing creates it.
    """

    def __init__(self, root: str | os.PathLike = "features_store") -> None:
        self.root = Path(root)

    # ---- format marker

    def exists(self) -> bool:
        return (self.root / MARKER).is_file()

    def check_format(self) -> None:
        """Refuse a folder that is not a store, or a store of an unknown version."""
        marker = self.root / MARKER
        if self.root.exists() and not self.root.is_dir():
            raise StoreFormatError(f"{self.root} is not a folder, so it cannot be a feature store")
        if not marker.is_file():
            # a store being created by another writer holds only lock and temporary files so far
            if self.root.exists() and any(not p.name.startswith(".") for p in self.root.iterdir()):
                raise StoreFormatError(f"{self.root} is not empty and is not an fdt feature store (no {MARKER})")
            return
        try:
            info = json.loads(marker.read_text())
        except (OSError, ValueError) as error:
            raise StoreFormatError(f"{marker} is damaged ({error})") from None
        if not isinstance(info, dict):
            raise StoreFormatError(f"{marker} is damaged (a JSON {type(info).__name__}, not an object)")
        if info.get("encoding-type") != STORE_TYPE:
            raise StoreFormatError(f"{marker} does not describe an fdt feature store")
        if info.get("encoding-version") != STORE_VERSION:
            raise StoreFormatError(
                f"{self.root} is a version {info.get('encoding-version')} store; this fdt reads version {STORE_VERSION}: {_UPGRADE_HINT}"
            )

    # ---- listing

    def shard_paths(self, key_id: str | None = None) -> list[Path]:
        base = self.root / "features"
        pattern = f"{key_id}/*.h5" if key_id else "*/*.h5"
        return sorted(base.glob(pattern)) if base.is_dir() else []

    def live_shards(self, key_id: str | None = None) -> list[Shard]:
        """Shards not superseded by a compacted shard, oldest first (listed again if one vanishes meanwhile)."""

        def listing() -> list[Shard]:
            shards = [Shard.open(path) for path in self.shard_paths(key_id)]
            superseded = {name for shard in shards for name in shard.supersedes}
            return [shard for shard in shards if shard.path.name not in superseded]

        return consistent_read(listing)

    def extractor_info(self, key: ExtractorKey) -> dict[str, Any]:
        """What the extractor said of itself (``extractor_info``) in the newest live shard of ``key``."""
        for shard in reversed(self.live_shards(key.id)):
            if "extractor_info" in shard.attrs:
                return json.loads(shard.attrs["extractor_info"])
        return {}

    def keys(self) -> list[ExtractorKey]:
        """Every extractor key with at least one shard."""
        self.check_format()
        found: dict[str, ExtractorKey] = {}
        for shard in self.live_shards():
            found.setdefault(shard.key.id, shard.key)
        return sorted(found.values(), key=lambda k: (k.extractor, k.resolution, k.weights, k.params_json, k.perturb))

    def catalog(self) -> Catalog:
        """All image-set rows, one per (sha256, source), the latest record winning."""
        self.check_format()
        files = sorted((self.root / "catalog").glob("*.h5")) if (self.root / "catalog").is_dir() else []
        parts = [_read_catalog_file(path) for path in files]
        if not parts:
            empty = np.array([], dtype=object)
            return Catalog(np.array([], dtype=_HASH_DTYPE), empty, empty, np.array([], dtype=np.int64), empty)
        merged = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
        # keep the last occurrence of each (sha256, source)
        pair = np.char.add(merged["sha256"].astype("U64"), np.asarray(merged["source"], dtype="U"))
        _, last_from_end = np.unique(pair[::-1], return_index=True)
        keep = np.sort(len(pair) - 1 - last_from_end)
        return Catalog(*(merged[name][keep] for name in ("sha256", "path", "source", "label", "group")))

    def sources(self) -> dict[str, int]:
        """Source name -> label, over every image set in the store."""
        catalog = self.catalog()
        return {str(s): int(l) for s, l in zip(catalog.source, catalog.label)}

    # ---- reading features

    def find_key(
        self, extractor: str, resolution: str = "native", params: dict | None = None, weights: str | None = None, perturb: str = ""
    ) -> ExtractorKey:
        """The one stored key matching the request; params and weights narrow the match.

        ``perturb`` is a chain's canonical key (:attr:`fdt.perturb.Chain.key`) and
        matches exactly; the default ``""`` asks for features of clean images.

        ``weights`` matches a prefix of the identity, so ``"random"`` or ``"imagenet"``
        is enough. Raises :class:`MissingFeaturesError` with the command that would
        extract them, or :class:`StoreError` if several keys match.
        """
        resolution = str(resolution)
        candidates = [
            key
            for key in self.keys()
            if key.extractor == extractor
            and key.resolution == resolution
            and all(key.params.get(name) == value for name, value in (params or {}).items())
            and (weights is None or key.weights.startswith(weights))
            and key.perturb == perturb
        ]
        if not candidates:
            what = f" perturbed by {perturb}" if perturb else ""
            raise MissingFeaturesError(
                f"no {extractor} features at resolution {resolution}{what} in {self.root}; run: "
                f"{self.extract_command(extractor, resolution, params, perturb=perturb)}"
            )
        if len(candidates) > 1:
            listing = "; ".join(key.describe() for key in candidates)
            raise StoreError(f"{len(candidates)} stored keys match {extractor} at {resolution}; narrow with params or weights: {listing}")
        return candidates[0]

    def extract_command(self, extractor: str, resolution: str, params: dict | None = None, data: str = "DATA", perturb: str = "") -> str:
        parts = ["fdt extract", data, f"--extractor {extractor}", f"--resolution {resolution}"]
        parts += [f"--param {name}={value}" for name, value in sorted((params or {}).items())]
        parts += [f"--perturb {operation}" for operation in filter(None, perturb.split("|"))]
        if self.root != Path("features_store"):
            parts.append(f"--store {self.root}")
        return " ".join(parts)

    def read_features(self, key: ExtractorKey) -> tuple[np.ndarray, np.ndarray]:
        """All rows of a key: ``(sha256 as S64, features float32)``, one row per image, from one consistent set of shards."""
        return consistent_read(lambda: self._read_features(key))

    def _read_features(self, key: ExtractorKey) -> tuple[np.ndarray, np.ndarray]:
        shards = self.live_shards(key.id)
        hashes, blocks = [], []
        for shard in shards:
            sha, features, *_ = shard.read()
            hashes.append(sha)
            blocks.append(features)
        if not hashes:
            return np.array([], dtype=_HASH_DTYPE), np.zeros((0, 0), dtype=np.float32)
        sha = np.concatenate(hashes)
        features = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
        unique, first = np.unique(sha, return_index=True)
        if len(unique) != len(sha):  # an interrupted compaction can leave the same row twice
            first.sort()
            sha, features = sha[first], features[first]
        return sha, features

    def failures(self, key: ExtractorKey) -> list[tuple[str, str, str]]:
        """``(sha256, path, reason)`` of every image that could not be extracted for a key."""
        def read() -> list[tuple[str, str, str]]:
            rows: dict[str, tuple[str, str, str]] = {}
            extracted: set[bytes] = set()
            for shard in self.live_shards(key.id):
                sha, _ = shard.read_hashes()
                extracted.update(sha.tolist())
                for s, p, r in zip(*shard.read_failures()):
                    rows.setdefault(s.decode(), (s.decode(), str(p), str(r)))
            return [row for sha, row in rows.items() if sha.encode() not in extracted]

        return consistent_read(read)

    def load_rows(self, key: ExtractorKey, sha256: Sequence[str]) -> np.ndarray:
        """Feature rows for given image hashes, in that order; a missing hash is an error."""
        stored, features = self.read_features(key)
        index = {h: i for i, h in enumerate(stored)}
        wanted = [h.encode() if isinstance(h, str) else h for h in sha256]
        missing = [h.decode() for h in wanted if h not in index]
        if missing:
            raise MissingFeaturesError(f"{len(missing)} image(s) have no {key.describe()} features in {self.root}, e.g. {missing[0]}")
        return features[[index[h] for h in wanted]]

    def load(
        self,
        extractor: str,
        resolution: str | int = "native",
        sources: Sequence[str] | None = None,
        params: dict | None = None,
        weights: str | None = None,
        perturb: str = "",
    ) -> FeatureSet:
        """``X, y, groups`` (and row metadata) for an extractor, resolution and sources.

        One row per (image, source) that has features for the key; images that
        failed extraction are left out (``failures`` lists them). With ``sources``
        unset, every source that has features for the key is included.
        """
        key = self.find_key(extractor, str(resolution), params, weights, perturb)
        catalog = self.catalog()
        known = set(catalog.source.tolist())
        if sources is not None:
            unknown = [s for s in sources if s not in known]
            if unknown:
                raise UnknownSourceError(
                    f"unknown source(s) {', '.join(unknown)} in {self.root}; known: {', '.join(sorted(known)) or 'none'}"
                )
        shards = self.live_shards(key.id)
        for shard in shards:  # gather_rows reads slices; damage is found on the whole shard, once per process
            shard.ensure_checked()
        stored, shard_of, row_of = _stored_rows(shards)
        order = np.argsort(stored)
        found = np.searchsorted(stored, catalog.sha256, sorter=order)
        has_features = stored[order[np.minimum(found, len(stored) - 1)]] == catalog.sha256 if len(stored) else np.zeros(len(catalog), bool)
        if sources is not None:
            for source in sources:
                in_source = catalog.source == source
                if not has_features[in_source].any():
                    folder = os.path.commonpath([str(p) for p in catalog.path[in_source]]) or "DATA"
                    raise MissingFeaturesError(
                        f"source {source!r} has no {key.describe()} features; run: "
                        f"{self.extract_command(extractor, key.resolution, key.params, folder, key.perturb)}"
                    )
            rows = has_features & np.isin(catalog.source, list(sources))
        else:
            rows = has_features
        position = order[found[rows]]
        width = shards[0].num_features if shards else 0
        parts = [(shard.path, row_of[position][shard_of[position] == i], np.flatnonzero(shard_of[position] == i)) for i, shard in enumerate(shards)]
        return FeatureSet(
            X=gather_rows(parts, len(position), width),
            y=catalog.label[rows].astype(np.int64),
            groups=catalog.group[rows],
            sources=catalog.source[rows],
            sha256=catalog.sha256[rows].astype("U64").astype(object),
            paths=catalog.path[rows],
            key=key,
            info=self.extractor_info(key),
        )

    # ---- writing

    def writer(self, wait: float = 0.0, shared: bool = False) -> "StoreWriter":
        """A writer of the store; waits up to ``wait`` seconds for a conflicting writer to finish.

        By default the writer is exclusive: one at a time. ``shared=True`` writers
        (the jobs of a sharded extraction) run side by side; each claims what it
        writes with :meth:`StoreWriter.claim`, and the last to finish compacts.
        """
        return StoreWriter(self, wait=wait, shared=shared)

    def write(self, key: ExtractorKey, sha256: Sequence[str], X: np.ndarray, records: Sequence[ImageRecord]) -> None:
        """Write feature rows and their image-set rows in one go (analysis scripts, tests, imports)."""
        X = np.asarray(X, dtype=np.float32)
        with self.writer() as writer:
            writer.add_catalog(records, sha256)
            writer.add_rows(key, X.shape[1], list(sha256), X)

    def clear_failures(self, wait: float = 0.0) -> int:
        """Forget every recorded failure, so the next extraction tries those images again; returns the keys changed."""
        with self.writer(wait=wait) as writer:
            return sum(writer._compact(key_id, clear_failures=True) for key_id in sorted({p.parent.name for p in self.shard_paths()}))

    def compact(self, wait: float = 0.0) -> int:
        """Merge every key's small shards and delete leftovers; returns the number of keys merged."""
        with self.writer(wait=wait) as writer:
            before = {path.parent.name for path in self.shard_paths()}
            merged = sum(writer._compact(key_id) for key_id in sorted(before))
        return merged


class StoreWriter:
    """Holds a writer lock; buffers rows and flushes them as immutable shards.

    Use as a context manager. An exclusive writer flushes on exit, merges small
    shards and deletes superseded and temporary files while still holding the
    lock. A shared writer flushes, lets go, and does that housekeeping only if it
    can then get the lock alone (so the last of several concurrent jobs does it).
    """

    def __init__(self, store: FeatureStore, wait: float = 0.0, flush_rows: int = 1024, shared: bool = False) -> None:
        self.store = store
        self.root = store.root
        self.wait = wait
        self.flush_rows = flush_rows
        self.shared = shared
        self._handles: list = []
        self._buffers: dict[str, _Buffer] = {}
        self._written: set[str] = set()
        self._crowded: set[str] = set()

    def __enter__(self) -> "StoreWriter":
        try:
            return self._enter()
        except OSError as error:
            self._release()
            if reason := disk_full(error):
                raise full_disk_error(reason, self.root) from None
            raise

    def _enter(self) -> "StoreWriter":
        self.store.check_format()
        self.root.mkdir(parents=True, exist_ok=True)
        refuse_symlinks(self.root)
        self._lock(self.root / ".lock", fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX, self.wait, self._store_busy)
        marker = self.root / MARKER
        if not marker.exists():
            write_json(
                marker, {"encoding-type": STORE_TYPE, "encoding-version": STORE_VERSION, "created": _now()}, indent=None,
                full=lambda reason, _: full_disk_error(reason, self.root),
            )
        if not self.shared:
            self._clean()
        return self

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                self.flush()
                if self.shared:
                    self._release()
                    if not self._try_exclusive():
                        return
                for key_id in sorted(self._written | self._crowded):
                    self._compact(key_id)
                self._clean()
        finally:
            self._release()

    # ---- locks

    def _store_busy(self, holder: str) -> str:
        holder = holder or "sharded extraction jobs"
        return f"feature store {self.root} is being written by {holder}; wait for it to finish or pass --wait SECONDS"

    def _lock(self, path: Path, mode: int, wait: float, message, role: str = "") -> None:
        """Take ``flock`` ``mode`` on ``path``, waiting up to ``wait`` seconds, or raise ``message(holder)``.

        A writer that holds the lock only to compact (the last of several shard jobs)
        is always waited for: it is brief, and refusing would fail shard jobs that
        merely started a moment late.
        """
        handle = os.fdopen(_open_regular(path, os.O_RDWR | os.O_CREAT | os.O_APPEND), "a+")
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.seek(0)
                holder = "; ".join(handle.read().split("\n")).strip("; ")
                if time.monotonic() >= deadline and not holder.startswith(_COMPACTING):
                    handle.close()
                    raise StoreLockedError(message(holder)) from None
                time.sleep(0.2)
        if mode == fcntl.LOCK_EX:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{role}pid {os.getpid()} on {os.uname().nodename} since {_now()}")
            handle.flush()
        self._handles.append(handle)
        _HELD_LOCKS.add(handle.fileno())

    def _try_exclusive(self) -> bool:
        try:
            self._lock(self.root / ".lock", fcntl.LOCK_EX, 0.0, str, role=_COMPACTING)
        except StoreLockedError:
            return False
        return True

    def claim(self, name: str) -> None:
        """Hold the lock named ``name`` (e.g. one shard of one key) until exit; refuse if another process holds it."""
        folder = self.root / ".locks"
        folder.mkdir(exist_ok=True)
        self._lock(folder / name, fcntl.LOCK_EX, self.wait, lambda holder: f"{name} is already being written by {holder or 'another process'}")

    def claim_count(self, key_id: str, count: int) -> None:
        """Hold a shared claim on "key ``key_id`` in ``count`` shards"; refuse if live jobs split it into another count.

        Shards of different counts overlap (image ``h`` is in shard ``h mod 2`` of 2
        and ``h mod 3`` of 3), so jobs of ``--shard I/2`` and ``--shard J/3`` at once
        would write the same rows twice.
        """
        from fdt.features_store.errors import ShardSpecError

        folder = self.root / ".locks"
        folder.mkdir(exist_ok=True)
        mine = f"{key_id}-of-{count}"
        self._lock(folder / mine, fcntl.LOCK_SH, self.wait, str)
        for other in sorted(folder.glob(f"{key_id}-of-*")):
            if other.name == mine:
                continue
            with os.fdopen(_open_regular(other, os.O_RDWR), "r+") as probe:
                try:
                    fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise ShardSpecError(
                        f"--shard I/{count}: other jobs are writing this key as {other.name.rpartition('-of-')[2]} shards; "
                        f"every job of one store and key must use the same N"
                    ) from None
                fcntl.flock(probe, fcntl.LOCK_UN)

    def _release(self) -> None:
        for handle in self._handles:
            _HELD_LOCKS.discard(handle.fileno())
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        self._handles = []

    # ---- rows

    def stored_hashes(self, key: ExtractorKey) -> tuple[set[str], set[str]]:
        """Hashes already stored for a key: ``(extracted, recorded as failed for good)``.

        A failure whose reason is transient (:func:`is_transient`) is not counted,
        so the next run tries that image again.
        """
        extracted: set[str] = set()
        failed: set[str] = set()
        shards = self.store.live_shards(key.id)
        if len(shards) > _MAX_SHARDS:  # e.g. killed runs' shards, and a resume that finds nothing new to write
            self._crowded.add(key.id)
        for shard in shards:
            sha, _ = shard.read_hashes()
            extracted.update(s.decode() for s in sha)
            failed_sha, _, reasons = shard.read_failures()
            failed.update(s.decode() for s, reason in zip(failed_sha, reasons) if not is_transient(str(reason)))
        return extracted, failed

    def add_catalog(self, records: Sequence[ImageRecord], sha256: Sequence[str]) -> int:
        """Record image-set rows (the hash of each record); rows already stored are not written again."""
        # names that are not UTF-8 are stored as printable text (\xNN): HDF5 strings are UTF-8
        rows = [(h, display_path(r.path), display_path(r.source), int(r.label), display_path(r.group) or f"sha256:{h}") for r, h in zip(records, sha256) if h]
        existing = self.store.catalog()
        seen = set(zip(existing.sha256.astype("U64").tolist(), existing.path.tolist(), existing.source.tolist(), existing.label.tolist(), existing.group.tolist()))
        new = list(dict.fromkeys(row for row in rows if row not in seen))
        if not new:
            return 0
        folder = self.root / "catalog"
        folder.mkdir(exist_ok=True)

        columns = {
            "sha256": np.asarray([r[0] for r in new], dtype=_HASH_DTYPE),
            "path": [r[1] for r in new],
            "source": [r[2] for r in new],
            "label": np.asarray([r[3] for r in new], dtype=np.int8),
            "group": [r[4] for r in new],
        }

        def fill(handle: h5py.File) -> None:
            handle.attrs.update(
                {
                    "encoding-type": CATALOG_TYPE,
                    "encoding-version": CATALOG_VERSION,
                    "checksum": catalog_checksum(**columns),
                    "created": _now(),
                    "fdt_version": __version__,
                }
            )
            for name, values in columns.items():
                handle.create_dataset(name, data=values, dtype=_STR_DTYPE if isinstance(values, list) else None)

        _atomic_h5(self.root, folder / f"{_stamp()}.h5", fill)
        return len(new)

    def add_rows(
        self,
        key: ExtractorKey,
        num_features: int,
        sha256: Sequence[str],
        features: np.ndarray,
        attrs: dict[str, object] | None = None,
    ) -> None:
        buffer = self._buffer(key, num_features, attrs)
        buffer.sha.extend(sha256)
        buffer.blocks.append(np.asarray(features, dtype=np.float32).reshape(len(sha256), num_features))
        if len(buffer.sha) >= self.flush_rows:
            self._flush_one(buffer)

    def add_failures(self, key: ExtractorKey, num_features: int, failures: Iterable[tuple[str, str, str]], attrs: dict | None = None) -> None:
        self._buffer(key, num_features, attrs).failed.extend(failures)

    def _buffer(self, key: ExtractorKey, num_features: int, attrs: dict | None) -> "_Buffer":
        buffer = self._buffers.get(key.id)
        if buffer is None:
            buffer = self._buffers[key.id] = _Buffer(key, num_features, dict(attrs or {}))
        elif buffer.num_features != num_features:
            raise StoreError(f"{key.describe()} has {buffer.num_features} features per row, not {num_features}")
        return buffer

    def flush(self) -> None:
        for buffer in self._buffers.values():
            self._flush_one(buffer)

    def _flush_one(self, buffer: "_Buffer") -> None:
        if not buffer.sha and not buffer.failed:
            return
        features = np.concatenate(buffer.blocks) if buffer.blocks else np.zeros((0, buffer.num_features), np.float32)
        _write_shard(self.root, buffer.key, buffer.num_features, np.asarray(buffer.sha, dtype=_HASH_DTYPE), features, buffer.failed, extra_attrs=buffer.attrs)
        self._written.add(buffer.key.id)
        buffer.sha, buffer.blocks, buffer.failed = [], [], []

    # ---- housekeeping

    def _compact(self, key_id: str, clear_failures: bool = False) -> bool:
        """Merge a key's small live shards into one, so reading costs one file open.

        Failure records of images that now have a row (a transient failure retried
        with success) are dropped; ``clear_failures`` drops them all, rewriting
        every shard that holds one.
        """
        live = self.store.live_shards(key_id)
        if clear_failures:
            small = [s for s in live if s.rows < _COMPACT_ROWS or len(s.read_failures()[0])]
            if not small or not any(len(s.read_failures()[0]) for s in small):
                return False
        else:
            small = [s for s in live if s.rows < _COMPACT_ROWS]
            if len(small) < 2:
                return False
        sha, blocks, failed = [], [], {}
        seen: set[bytes] = set()
        for shard in small:
            s, features, fs, fp, fr = shard.read()
            fresh = np.array([h not in seen for h in s], dtype=bool)
            seen.update(s.tolist())
            sha.append(s[fresh])
            blocks.append(features[fresh])
            for h, p, r in zip(fs, fp, fr):
                failed.setdefault(h.decode(), (h.decode(), str(p), str(r)))
        if clear_failures:
            failed = {}
        for h in seen:
            failed.pop(h.decode(), None)
        first = small[0]
        extra = {k: v for k, v in small[-1].attrs.items() if k in ("torch_version", "extractor_info")}
        _write_shard(
            self.root, first.key, first.num_features, np.concatenate(sha), np.concatenate(blocks),
            list(failed.values()), supersedes=[s.path.name for s in small], extra_attrs=extra,
        )
        for shard in small:
            shard.path.unlink(missing_ok=True)
        fsync_folder(self.root / "features" / key_id)
        return True

    def _clean(self) -> None:
        """Delete leftovers of interrupted writers: temporary files and superseded shards."""
        refuse_symlinks(self.root)
        tmp = self.root / ".tmp"
        if tmp.is_dir():
            for leftover in tmp.iterdir():
                leftover.unlink(missing_ok=True)
        for folder in (self.root / "features").glob("*") if (self.root / "features").is_dir() else []:
            shards = [Shard.open(p) for p in sorted(folder.glob("*.h5"))]
            superseded = {name for shard in shards for name in shard.supersedes}
            for shard in shards:
                if shard.path.name in superseded:
                    shard.path.unlink(missing_ok=True)


@dataclass
class _Buffer:
    key: ExtractorKey
    num_features: int
    attrs: dict[str, object]
    sha: list[str] = field(default_factory=list)
    blocks: list[np.ndarray] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
