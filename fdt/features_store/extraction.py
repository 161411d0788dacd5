"""Extraction: image files on disk -> feature rows in the store, each image computed once.

1. Every file is hashed (threads; hashing is cheap next to decoding), and its
   image-set row goes to the store's catalog.
2. Hashes already stored for the extractor key (extracted or failed) are skipped.
3. The rest are read, decoded, resized or cropped and preprocessed in DataLoader worker
   processes while the main process runs the network on the previous batch.
4. Rows are flushed to the store as immutable shards every ``flush_rows`` rows,
   so a killed run keeps what it finished and a re-run computes only the rest.
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
from fdt.perturb import Chain, parse_chain


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
    """Map-style dataset over (sha256, path, levels): read, check the hash, decode once, then per level perturb, resize, preprocess.

    Each item is decoded once and every perturbation level it needs is applied in
    memory, so a sweep of five levels costs one read and one decode per image.
    Decoding and perturbation failures are returned, not raised, so one bad file
    never stops a run; any other exception is a bug and propagates.
    """

    def __init__(self, items: list[tuple[str, str, tuple[int, ...]]], resolution: str, prepare: Any, max_pixels: int, levels: Sequence[Chain] = (Chain(),)) -> None:
        self.items = items
        self.resolution = resolution
        self.prepare = prepare
        self.max_pixels = max_pixels
        self.levels = list(levels)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[str, str, list[tuple[int, np.ndarray | None, str]]]:
        sha, path, needed = self.items[index]
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as error:
            return sha, path, [(level, None, f"cannot read file ({error.strerror or error})") for level in needed]
        if hashlib.sha256(data).hexdigest() != sha:
            return sha, path, [(level, None, "file changed while it was being extracted") for level in needed]
        try:
            decoded = load_rgb(data, self.max_pixels)
        except ImageDecodeError as error:
            return sha, path, [(level, None, str(error)) for level in needed]
        outputs = []
        for level in needed:
            try:
                image = apply_resolution(self.levels[level].apply(decoded, sha), self.resolution, sha)
            except ImageDecodeError as error:
                outputs.append((level, None, str(error)))
                continue
            outputs.append((level, self.prepare(image), ""))
        return sha, path, outputs


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
    perturb: Chain | Sequence[str] | str | None = None,
    **options: Any,
) -> ExtractSummary:
    """Extract features of ``records`` with one extractor at one resolution (and perturbation) into the store.

    ``perturb`` is a :class:`fdt.perturb.Chain` or its specs (``["jpeg:quality=75"]``),
    applied after decoding and before the resolution step; it is part of the
    rows' key. Other options are those of :func:`extract_levels`.
    """
    chain = perturb if isinstance(perturb, Chain) else parse_chain(perturb)
    return extract_levels(records, extractor, params, resolution, store_root, levels=[chain], **options)[0]


def extract_levels(
    records: Sequence[ImageRecord],
    extractor: str,
    params: dict[str, Any] | None = None,
    resolution: str | int = "native",
    store_root: str | os.PathLike = "features_store",
    levels: Sequence[Chain] = (Chain(),),
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
) -> list[ExtractSummary]:
    """Extract features of ``records`` with one extractor at one resolution, at every perturbation level, into the store.

    ``levels`` are perturbation chains (a robustness sweep: ``parse_sweep(...).chains``);
    each image is read and decoded once and perturbed in memory per level, and
    each level's rows go under their own key. Returns one :class:`ExtractSummary`
    per level; unreadable images are recorded in the
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
    levels = list(levels) or [Chain()]
    keys = [ExtractorKey(extractor, model.key_params(), model.weights_identity(), resolution, chain.key) for chain in levels]
    if len({key.id for key in keys}) != len(keys):
        raise ValueError("perturbation levels repeat: " + ", ".join(key.perturb or "clean" for key in keys))
    num_features = model.num_features
    attrs = {"extractor_info": json.dumps(model.info(), sort_keys=True), "torch_version": torch.__version__}

    store = FeatureStore(store_root)
    paths = [str(r.path) for r in records]
    fresh: dict[int, hashcache.Stat] = {}
    if hashes is None:
        hashes, unreadable, fresh = hash_files(paths, cache_root=store.root if store.exists() and not rehash else None)
    else:
        hashes = list(hashes)
        unreadable = {i: "cannot read file" for i, h in enumerate(hashes) if not h}
    all_hashes = list(hashes)
    if shard is not None:
        # each shard's job reports the unreadable files of its share of the list, so N jobs report each once
        unreadable = {i: reason for i, reason in unreadable.items() if i % shard[1] == shard[0]}
        hashes = [h if h and shard_of(h, shard[1]) == shard[0] else "" for h in hashes]
    summaries = [ExtractSummary(key, hashes, dict(unreadable), weights_note=model.weights_note()) for key in keys]
    with store.writer(wait=wait, shared=shard is not None) as writer:
        if shard is not None:
            for key in keys:
                writer.claim(claim_name(key.id, shard))
        if fresh:
            hashcache.remember(store.root, [paths[i] for i in fresh], list(fresh.values()), [all_hashes[i] for i in fresh])
        writer.flush_rows = flush_rows
        if catalog:
            writer.add_catalog(records, hashes)
        todo: dict[str, tuple[str, list[int]]] = {}
        present = {h for h in hashes if h}
        for level, (key, summary) in enumerate(zip(keys, summaries)):
            extracted, failed_before = writer.stored_hashes(key)
            for record, sha in zip(records, hashes):
                if sha and sha not in extracted and sha not in failed_before:
                    needed = todo.setdefault(sha, (str(record.path), []))[1]
                    if level not in needed:
                        needed.append(level)
            summary.reused_rows = len(present & extracted)

        items = [(sha, path, tuple(needed)) for sha, (path, needed) in todo.items()]
        dataset = _DecodeDataset(items, resolution, model.preprocessor(), max_pixels, levels)
        count = default_workers() if workers is None else workers
        count = min(count, -(-len(dataset) // batch_size)) if len(dataset) > 1 else 0
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=count,
            collate_fn=_as_list,
            worker_init_fn=_worker_init if count else None,
            prefetch_factor=4 if count else None,
        )
        what = f"{extractor}@{resolution}" + (f" x{len(levels)} levels" if len(levels) > 1 else f" {keys[0].perturb}" if keys[0].perturb else "")
        with tqdm(total=len(dataset), unit="img", desc=what, disable=not progress) as bar:
            for batch in loader:
                for level, (key, summary) in enumerate(zip(keys, summaries)):
                    outputs = [(sha, path, array, reason) for sha, path, results in batch for at, array, reason in results if at == level]
                    ok = [(sha, array) for sha, _, array, _ in outputs if array is not None]
                    bad = [(sha, path, reason) for sha, path, array, reason in outputs if array is None]
                    for shape in {array.shape for _, array in ok}:
                        same = [(sha, array) for sha, array in ok if array.shape == shape]
                        for start in range(0, len(same), batch_size):
                            chunk = same[start : start + batch_size]
                            features = model.forward(np.stack([array for _, array in chunk]))
                            writer.add_rows(key, num_features, [sha for sha, _ in chunk], features, attrs)
                    if bad:
                        writer.add_failures(key, num_features, bad, attrs)
                    summary.new_rows += len(ok)
                bar.update(len(batch))
    for key, summary in zip(keys, summaries):
        recorded = {sha: reason for sha, _, reason in store.failures(key)}
        for index, sha in enumerate(hashes):
            if sha in recorded:
                summary.failures[index] = recorded[sha]
        summary.seconds = time.perf_counter() - started
    return summaries
