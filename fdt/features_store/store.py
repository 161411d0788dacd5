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

This module reads; the rest of the store lives in modules named after their job:
:mod:`~fdt.features_store.fileformat` (names, encodings, the atomic HDF5 write),
:mod:`~fdt.features_store.shards`, :mod:`~fdt.features_store.catalog`,
:mod:`~fdt.features_store.locking` and :mod:`~fdt.features_store.writer`
(buffering, flushing, compaction). Their public names are importable from here too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fdt.atomic import disk_full
from fdt.data import ImageRecord
from fdt.features_store.catalog import Catalog, catalog_checksum, read_catalog, read_catalog_file
from fdt.features_store.errors import (
    MissingFeaturesError,
    StoreError,
    StoreFormatError,
    StoreLockedError,
    UnknownSourceError,
)
from fdt.features_store.featureset import ExtractorKey, FeatureSet
from fdt.features_store.fileformat import (
    CATALOG_TYPE,
    CATALOG_VERSION,
    HASH_DTYPE,
    MARKER,
    SHARD_TYPE,
    SHARD_VERSION,
    STORE_TYPE,
    STORE_VERSION,
    TRANSIENT_REASONS,
    UPGRADE_HINT,
    full_disk_error,
    is_transient,
    refuse_symlinks,
    store_symlinks,
)
from fdt.features_store.gather import gather_rows
from fdt.features_store.locking import COMPACTING, release_inherited_locks
from fdt.features_store import shards as _shards
from fdt.features_store.shards import Shard, ShardVanishedError, consistent_read, shard_checksum, stored_rows, write_shard
from fdt.features_store.writer import StoreWriter

# Private names tests and benchmarks imported from here before the split, kept importable.
_CHECKED, _COMPACTING, _read_catalog_file, _write_shard = _shards._CHECKED, COMPACTING, read_catalog_file, write_shard
__all__ = [
    "CATALOG_TYPE", "CATALOG_VERSION", "MARKER", "SHARD_TYPE", "SHARD_VERSION", "STORE_TYPE", "STORE_VERSION", "TRANSIENT_REASONS",
    "Catalog", "FeatureStore", "MissingFeaturesError", "Shard", "ShardVanishedError", "StoreError", "StoreFormatError",
    "StoreLockedError", "StoreWriter", "UnknownSourceError", "catalog_checksum", "consistent_read", "disk_full",
    "full_disk_error", "is_transient", "refuse_symlinks", "release_inherited_locks", "shard_checksum", "store_symlinks",
]


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
                f"{self.root} is a version {info.get('encoding-version')} store; this fdt reads version {STORE_VERSION}: {UPGRADE_HINT}"
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
        return read_catalog(self.root)

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
        is enough. A key whose params are exactly ``params`` wins over keys with
        more (a fine-tuned CNN's features beside its ``output=logit`` rows).
        Raises :class:`MissingFeaturesError` with the command that would extract
        them, or :class:`StoreError` if several keys match.
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
        if len(candidates) > 1 and params:
            candidates = [key for key in candidates if key.params == params] or candidates
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
            return np.array([], dtype=HASH_DTYPE), np.zeros((0, 0), dtype=np.float32)
        sha = np.concatenate(hashes)
        features = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
        unique, first = np.unique(sha, return_index=True)
        if len(unique) != len(sha):  # ``write`` of rows already stored adds them again: the oldest wins
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
        stored, shard_of, row_of = stored_rows(shards)
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
        """Merge every key's shards under 200,000 rows, smallest first, into shards of at most that many; delete leftovers; returns the keys merged."""
        with self.writer(wait=wait) as writer:
            before = {path.parent.name for path in self.shard_paths()}
            merged = sum(writer._compact(key_id, everything=True) for key_id in sorted(before))
        return merged
