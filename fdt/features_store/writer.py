"""Writing a feature store: buffered rows flushed as immutable shards, compaction, clean-up of leftovers.

A writer holds the store's lock (:mod:`~fdt.features_store.locking`) from
``__enter__`` to ``__exit__``; everything it writes goes through
:func:`~fdt.features_store.fileformat.write_h5`, so a kill at any moment leaves
whole files only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from fdt.atomic import disk_full, fsync_folder, write_json
from fdt.data import ImageRecord, display_path
from fdt.features_store.catalog import write_catalog_file
from fdt.features_store.errors import StoreError
from fdt.features_store.featureset import ExtractorKey
from fdt.features_store.fileformat import HASH_DTYPE, MARKER, STORE_TYPE, STORE_VERSION
from fdt.features_store.fileformat import full_disk_error, is_transient, now, refuse_symlinks
from fdt.features_store.locking import WriterLocks
from fdt.features_store.shards import Shard, write_shard

if TYPE_CHECKING:
    from fdt.features_store.store import FeatureStore

_COMPACT_ROWS = 200_000  # shards of this many rows or more are never merged by a writer (``fdt store compact`` neither)
_TINY_BYTES = 4 << 20  # shards below this size are merged as soon as there are two: rewriting them costs little
_TIER_GROWTH = 8  # larger shards are merged once this many of about the same size (within this factor) pile up
_MAX_SHARDS = 32  # more mergeable live shards than this, and the smallest are merged, whatever their tiers (tiers hold at most 29)


def merge_plan(shards: Sequence[Shard]) -> list[Shard]:
    """Which of a key's live shards a writer merges now; none if the key can stay as it is.

    Why tiers: merging every small shard at the end of every run rewrote the
    whole key each time (a run adding 1,000 rows to 100,000 rewrote 101,000),
    and a long run rewrote all it had just written (0.53-0.67 s of 8.6-9.8 s
    runs of 3,000 ``fft`` files). Here a shard is rewritten only when it joins shards
    of about its own size, so a row is rewritten about log8(rows / 1024) times
    over a key's life and a run of up to seven flushes is not rewritten at all;
    apart from shards of over 100,000 rows (no two of which merge), a key keeps
    at most about 29 shards, each read in one call.
    Shards under 4 MB (small runs, narrow features) are merged whenever there are two.
    """
    mergeable = [shard for shard in shards if shard.rows < _COMPACT_ROWS]
    if len(mergeable) > _MAX_SHARDS:  # e.g. killed runs' flushes, or another layout than the tiers make
        return smallest_first(mergeable)
    tiers: dict[int, list[Shard]] = {}
    for shard in mergeable:
        tiers.setdefault(_tier(shard), []).append(shard)
    for tier, members in sorted(tiers.items()):
        if len(members) >= (2 if tier == 0 else _TIER_GROWTH) and (group := smallest_first(members)):
            return group
    return []


def smallest_first(shards: Sequence[Shard]) -> list[Shard]:
    """The smallest of ``shards`` under ``_COMPACT_ROWS`` rows that merge into at most that many, if two or more do, oldest first.

    A merge holds its shards' rows in memory twice (read, then joined): eight
    shards of a large tier could hold tens of GB, so no merge makes a shard
    larger than writers ever merge (3.3 GB at 4096 float32 features). Oldest
    first, as a merge keeps a hash's first row.
    """
    chosen: set[int] = set()
    rows = 0
    for shard in sorted((shard for shard in shards if shard.rows < _COMPACT_ROWS), key=lambda shard: shard.rows):
        if rows + shard.rows > _COMPACT_ROWS:
            break
        chosen.add(id(shard))
        rows += shard.rows
    return [shard for shard in shards if id(shard) in chosen] if len(chosen) >= 2 else []


def _tier(shard: Shard) -> int:
    """0 under ``_TINY_BYTES``; above, 1 + how many times ``_TIER_GROWTH`` fits into its size over ``_TINY_BYTES``."""
    size = shard.rows * (4 * shard.num_features + 64)  # float32 features and the 64-byte hash
    return 0 if size < _TINY_BYTES else 1 + int(math.log(size / _TINY_BYTES, _TIER_GROWTH))


class StoreWriter:
    """Holds a writer lock; buffers rows and flushes them as immutable shards.

    Use as a context manager. An exclusive writer flushes on exit, merges small
    shards and deletes superseded and temporary files while still holding the
    lock. A shared writer flushes, lets go, and does that housekeeping only if it
    can then get the lock alone (so the last of several concurrent jobs does it).
    """

    def __init__(self, store: "FeatureStore", wait: float = 0.0, flush_rows: int = 1024, shared: bool = False) -> None:
        self.store = store
        self.root = store.root
        self.wait = wait
        self.flush_rows = flush_rows
        self.shared = shared
        self._locks = WriterLocks(self.root)
        self._buffers: dict[str, _Buffer] = {}
        self._written: set[str] = set()
        self._crowded: set[str] = set()

    def __enter__(self) -> "StoreWriter":
        try:
            return self._enter()
        except OSError as error:
            self._locks.release()
            if reason := disk_full(error):
                raise full_disk_error(reason, self.root) from None
            raise

    def _enter(self) -> "StoreWriter":
        self.store.check_format()
        self.root.mkdir(parents=True, exist_ok=True)
        refuse_symlinks(self.root)
        self._locks.take_store(self.shared, self.wait)
        marker = self.root / MARKER
        if not marker.exists():
            write_json(
                marker, {"encoding-type": STORE_TYPE, "encoding-version": STORE_VERSION, "created": now()}, indent=None,
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
                    self._locks.release()
                    if not self._locks.try_exclusive():
                        return
                for key_id in sorted(self._written | self._crowded):
                    self._compact(key_id)
                self._clean()
        finally:
            self._locks.release()

    # ---- claims

    def claim(self, name: str) -> None:
        """Hold the lock named ``name`` (e.g. one shard of one key) until exit; refuse if another process holds it."""
        self._locks.claim(name, self.wait)

    def claim_count(self, key_id: str, count: int) -> None:
        """Hold a shared claim on "key ``key_id`` in ``count`` shards"; refuse if live jobs split it into another count."""
        self._locks.claim_count(key_id, count, self.wait)

    # ---- rows

    def stored_hashes(self, key: ExtractorKey) -> tuple[set[str], set[str]]:
        """Hashes already stored for a key: ``(extracted, recorded as failed for good)``.

        A failure whose reason is transient (:func:`is_transient`) is not counted,
        so the next run tries that image again.
        """
        extracted: set[str] = set()
        failed: set[str] = set()
        shards = self.store.live_shards(key.id)
        if merge_plan(shards):  # e.g. killed runs' shards, and a resume that finds nothing new to write
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
        write_catalog_file(self.root, new)
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
        buffer.add(sha256, features, self.flush_rows)
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
        rows = buffer.rows[: len(buffer.sha)] if buffer.rows is not None else np.zeros((0, buffer.num_features), np.float32)
        write_shard(self.root, buffer.key, buffer.num_features, np.asarray(buffer.sha, dtype=HASH_DTYPE), rows, buffer.failed, extra_attrs=buffer.attrs)
        self._written.add(buffer.key.id)
        buffer.sha, buffer.failed = [], []  # the rows' memory is kept: the next shard's rows are copied into it

    # ---- housekeeping

    def _compact(self, key_id: str, clear_failures: bool = False, everything: bool = False) -> bool:
        """Merge the live shards of a key that :func:`merge_plan` picks (``everything``: :func:`smallest_first`, until none are left).

        A merged shard can complete the next tier, so plans are followed until
        none is left. Failure records of images that now have a row (a transient
        failure retried with success) are dropped from the merged shards;
        ``clear_failures`` drops them all, rewriting every shard that holds one.
        """
        if clear_failures:
            return self._merge(key_id, clear_failures)
        plan = smallest_first if everything else merge_plan
        merged = False
        while small := plan(self.store.live_shards(key_id)):
            merged = self._merge(key_id, small=small) or merged
        return merged

    def _merge(self, key_id: str, clear_failures: bool = False, small: list[Shard] | None = None) -> bool:
        if small is None:  # clear_failures: every shard that holds a failure, and the small ones with them
            live = self.store.live_shards(key_id)
            failing = [len(s.read_failures()[0]) > 0 for s in live]  # each shard's failures read once
            if not any(failing):
                return False
            small = [s for s, fails in zip(live, failing) if s.rows < _COMPACT_ROWS or fails]
        elif len(small) < 2:
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
        write_shard(
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


_RESERVED_BYTES = 256 << 20  # a key's row buffer is reserved up to its flush size, at most this much; beyond, it grows


@dataclass
class _Buffer:
    """One key's rows until they are flushed: one float32 matrix (its first ``len(sha)`` rows), hashes and failures.

    Rows are copied into one matrix as they come, not kept as the caller's blocks:
    a shard is then written, and its checksum taken, from one array in one call
    each, not one per block of 32 rows. The matrix is
    reserved up to the flush size at once; its pages are touched only as rows
    arrive, and it is reused by the next shard of the key.
    """

    key: ExtractorKey
    num_features: int
    attrs: dict[str, object]
    sha: list[str] = field(default_factory=list)
    rows: np.ndarray | None = None
    failed: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, sha256: Sequence[str], features: np.ndarray, flush_rows: int) -> None:
        count, new = len(self.sha), len(sha256)
        block = np.asarray(features).reshape(new, self.num_features)
        if self.rows is None or count + new > len(self.rows):
            # the flush size plus one block: a last block that passes the flush size fits without a copy
            reserve = min(flush_rows, _RESERVED_BYTES // max(1, 4 * self.num_features)) + new
            grown = np.empty((max(reserve, 2 * count + new), self.num_features), dtype=np.float32)
            if self.rows is not None:
                grown[:count] = self.rows[:count]
            self.rows = grown
        self.rows[count : count + new] = block
        self.sha.extend(sha256)
