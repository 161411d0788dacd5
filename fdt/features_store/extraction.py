"""Extraction: image files on disk -> feature rows in the store, each image computed once.

1. Files whose hash the store remembers (unchanged path, size, mtime, inode) and
   whose features it holds (extracted or failed) are skipped without being read.
2. The rest are read once each, in DataLoader worker processes: the hash and the
   decoded image come from the same bytes. A file whose hash was not known and
   turns out to be stored already is not decoded.
3. Decoded images are resized or cropped and preprocessed in the workers while
   the main process runs the network on the previous batch.
4. Rows are flushed to the store as immutable shards every ``flush_rows`` rows,
   so a killed run keeps what it finished and a re-run computes only the rest;
   the image-set rows go to the store's catalog once every hash is known.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fdt.data import (
    DEFAULT_MAX_PIXELS,
    RESIZES_PIXELS,
    ImageDecodeError,
    ImageRecord,
    apply_resolution,
    load_rgb,
    parse_resolution,
    resolution_kind,
    resolution_size,
    sha256_file,
)
from fdt.features_store import hashcache
from fdt.features_store.extractors.base import resolve_device
from fdt.features_store.featureset import ExtractorKey
from fdt.features_store.registry import create_extractor, extractor_class
from fdt.features_store.sharding import claim_name, shard_of
from fdt.features_store.store import FeatureStore, release_inherited_locks


@dataclass
class ExtractSummary:
    """What one extraction run did, per image and in total."""

    key: ExtractorKey
    hashes: list[str]
    failures: dict[int, str] = field(default_factory=dict)
    new_rows: int = 0
    reused_rows: int = 0
    seconds: float = 0.0
    weights_note: str = ""

    @property
    def failed(self) -> int:
        return len(self.failures)

    def line(self) -> str:
        text = f"{self.new_rows} new rows, {self.reused_rows} reused, {self.failed} failed images ({self.key.describe()}, {self.seconds:.1f}s)"
        return f"{text}\nwarning: {self.weights_note}" if self.weights_note else text


class SpectralResizeWarning(UserWarning):
    """A spectral extractor asked for resized images: the resize removes the frequencies it reads."""


def spectral_resize_warning(extractor: str, resolution: str) -> str | None:
    """The one-line warning for a spectral extractor at a resize resolution, else ``None``."""
    if resolution_kind(resolution) != RESIZES_PIXELS or not getattr(extractor_class(extractor), "reads_spectrum", False):
        return None
    size = resolution_size(resolution)
    return (
        f"{extractor} at --resolution {resolution} sees resized images: resizing is a low-pass filter that erases "
        f"the high-frequency artefacts a spectrum is read for; use crop:{size} or native to compare spectra"
    )


def default_workers() -> int:
    """One decoding process per core: the main process's forward pass overlaps with them."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def hash_files(paths: Sequence[str], threads: int = 4, cache_root: Path | None = None) -> tuple[list[str], dict[int, str], dict[int, Stat]]:
    """SHA-256 of each file (``""`` where unreadable), the unreadable ones' reasons, and the files hashed afresh.

    With ``cache_root`` (an existing store), hashes remembered there for files whose
    path, size, mtime and inode are unchanged are reused; the third value maps
    the index of every file that was read to its stat, for :func:`hashcache.remember`.
    """
    stats = [hashcache.file_stat(path) for path in paths]
    hashes = hashcache.lookup(cache_root, paths, stats) if cache_root is not None else [""] * len(paths)

    def one(path: str) -> tuple[str, str]:
        try:
            return sha256_file(path), ""
        except OSError as error:
            return "", f"cannot read file ({error.strerror or error})"

    todo = [i for i, sha in enumerate(hashes) if not sha]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(one, [paths[i] for i in todo]))
    unreadable = {}
    for index, (sha, reason) in zip(todo, results):
        hashes[index] = sha
        if reason:
            unreadable[index] = reason
    return hashes, unreadable, {i: stats[i] for i in todo if hashes[i] and stats[i] is not None}


class _DecodeDataset:
    """Map-style dataset over (record index, sha256 or ``""``, path): read once, hash, decode, resize, preprocess.

    A known hash is checked against the bytes read; an unknown one is computed
    from them, and the file is not decoded when ``skip`` holds its hash or another
    shard owns it. Decoding failures are returned, not raised, so one bad file
    never stops a run; any other exception is a bug and propagates. An item comes
    back as ``(index, sha256, path, array, reason)``: an array, a failure reason,
    or neither (nothing to do).
    """

    def __init__(
        self, items: list[tuple[int, str, str]], resolution: str, prepare: Any, max_pixels: int,
        skip: frozenset[str] = frozenset(), shard: tuple[int, int] | None = None,
    ) -> None:
        self.items = items
        self.resolution = resolution
        self.prepare = prepare
        self.max_pixels = max_pixels
        self.skip = skip
        self.shard = shard

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[int, str, str, np.ndarray | None, str]:
        position, expected, path = self.items[index]
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as error:
            return position, expected, path, None, f"cannot read file ({error.strerror or error})"
        sha = hashlib.sha256(data).hexdigest()
        if expected and sha != expected:
            return position, expected, path, None, "file changed while it was being extracted"
        if not expected and (sha in self.skip or (self.shard is not None and shard_of(sha, self.shard[1]) != self.shard[0])):
            return position, sha, path, None, ""
        try:
            image = apply_resolution(load_rgb(data, self.max_pixels), self.resolution, sha)
            return position, sha, path, self.prepare(image), ""
        except ImageDecodeError as error:
            return position, sha, path, None, str(error)


def _as_list(batch: list) -> list:
    return batch


def _worker_init(_: int) -> None:
    import torch

    release_inherited_locks()
    torch.set_num_threads(1)


def extract_records(
    records: Sequence[ImageRecord],
    extractor: str,
    params: dict[str, Any] | None = None,
    resolution: str | int = "native",
    store_root: str | os.PathLike = "features_store",
    batch_size: int = 32,
    device: str = "auto",
    workers: int | None = None,
    progress: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    wait: float = 0.0,
    flush_rows: int = 1024,
    catalog: bool = True,
    shard: tuple[int, int] | None = None,
    hashes: Sequence[str] | None = None,
    rehash: bool = False,
) -> ExtractSummary:
    """Extract features of ``records`` with one extractor at one resolution into the store.

    Returns an :class:`ExtractSummary`; unreadable images are recorded in the
    store with their reason and skipped, never fatal. With ``catalog=False`` the
    records' source and label are not recorded (images of unknown origin, as in
    ``fdt predict``): their features are cached and read back by hash.

    ``shard=(I, N)`` extracts only the images of shard I of N (by content hash,
    see :mod:`fdt.features_store.sharding`) as a shared writer, so N such runs can
    write into one store at once; their summaries count only their shard.
    ``hashes`` passes the files' SHA-256 when the caller already has them;
    otherwise hashes remembered in the store for unchanged files are reused
    (:mod:`fdt.features_store.hashcache`) unless ``rehash`` is set.
    """
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    started = time.perf_counter()
    resolution = parse_resolution(resolution)
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, not {batch_size}")
    resolve_device(device)  # a bad device is reported before any weights are looked up
    if note := spectral_resize_warning(extractor, resolution):
        warnings.warn(note, SpectralResizeWarning, stacklevel=2)
    params = dict(params or {})
    model = create_extractor(extractor, **params)
    if "device" in model.param_names():
        model.set_params(device=device)
    key = ExtractorKey(extractor, model.key_params(), model.weights_identity(), resolution)
    num_features = model.num_features
    attrs = {"extractor_info": json.dumps(model.info(), sort_keys=True), "torch_version": torch.__version__}

    store = FeatureStore(store_root)
    paths = [str(r.path) for r in records]
    stats: list[hashcache.Stat | None] = []
    if hashes is None:
        # unknown hashes ("") are computed by the workers from the bytes they decode: one read per file
        stats = [hashcache.file_stat(path) for path in paths]
        use_cache = store.exists() and not rehash
        all_hashes = hashcache.lookup(store.root, paths, stats) if use_cache else [""] * len(paths)
        unreadable: dict[int, str] = {}
    else:
        all_hashes = list(hashes)
        unreadable = {i: "cannot read file" for i, h in enumerate(all_hashes) if not h}
    unknown = [i for i, h in enumerate(all_hashes) if not h and i not in unreadable]
    summary = ExtractSummary(key, [], weights_note=model.weights_note())
    with store.writer(wait=wait, shared=shard is not None) as writer:
        if shard is not None:
            writer.claim(claim_name(key.id, shard))
        writer.flush_rows = flush_rows
        extracted, failed_before = writer.stored_hashes(key)
        todo: dict[str, tuple[int, str, str]] = {}
        for index, sha in enumerate(all_hashes):
            mine = shard is None or (sha and shard_of(sha, shard[1]) == shard[0])
            if sha and mine and sha not in extracted and sha not in failed_before:
                todo.setdefault(sha, (index, sha, paths[index]))
        items = list(todo.values()) + [(index, "", paths[index]) for index in unknown]
        skip = frozenset(extracted | failed_before)
        dataset = _DecodeDataset(items, resolution, model.preprocessor(), max_pixels, skip, shard)
        count = default_workers() if workers is None else workers
        count = min(count, -(-len(dataset) // batch_size)) if len(dataset) > 1 else 0
        # workers hand over small chunks, so the last images of a run are not left to one worker while the
        # others idle; chunks divide the batch, so the network sees the batches it would see without them
        chunk = max(size for size in range(1, min(batch_size, 8) + 1) if batch_size % size == 0)
        loader = DataLoader(
            dataset,
            batch_size=chunk,
            num_workers=count,
            collate_fn=_as_list,
            worker_init_fn=_worker_init if count else None,
            prefetch_factor=4 * batch_size // chunk if count else None,
        )
        done: set[str] = set()

        def run(batch: list) -> None:
            for index, sha, _, _, reason in batch:
                if sha:
                    all_hashes[index] = sha
                elif reason:
                    unreadable[index] = reason
            # two files of one content whose hash was not known are both decoded; one row is kept
            fresh = []
            for item in batch:
                if item[1] and item[1] not in done and (item[3] is not None or item[4]):
                    done.add(item[1])
                    fresh.append(item)
            ok = [(sha, array) for _, sha, _, array, _ in fresh if array is not None]
            bad = [(sha, path, reason) for _, sha, path, array, reason in fresh if array is None]
            for shape in {array.shape for _, array in ok}:
                same = [(sha, array) for sha, array in ok if array.shape == shape]
                features = model.forward(np.stack([array for _, array in same]))
                writer.add_rows(key, num_features, [sha for sha, _ in same], features, attrs)
            if bad:
                writer.add_failures(key, num_features, bad, attrs)
            summary.new_rows += len(ok)

        with tqdm(total=len(dataset), unit="img", desc=f"{extractor}@{resolution}", disable=not progress) as bar:
            batch: list = []
            for part in loader:
                batch += part
                bar.update(len(part))
                if len(batch) >= batch_size:
                    run(batch)
                    batch = []
            if batch:
                run(batch)
        hashed = [i for i in unknown if all_hashes[i] and stats[i] is not None]
        if hashed:
            hashcache.remember(store.root, [paths[i] for i in hashed], [stats[i] for i in hashed], [all_hashes[i] for i in hashed])
        hashes = list(all_hashes)
        if shard is not None:
            # each shard's job reports the unreadable files of its share of the list, so N jobs report each once
            unreadable = {i: reason for i, reason in unreadable.items() if i % shard[1] == shard[0]}
            hashes = [h if h and shard_of(h, shard[1]) == shard[0] else "" for h in hashes]
        if catalog:
            writer.add_catalog(records, hashes)
        summary.hashes, summary.failures = hashes, dict(unreadable)
        summary.reused_rows = len({h for h in hashes if h} & extracted)
    recorded = {sha: reason for sha, _, reason in store.failures(key)}
    for index, sha in enumerate(hashes):
        if sha in recorded:
            summary.failures[index] = recorded[sha]
    summary.seconds = time.perf_counter() - started
    return summary
