"""Extraction: image files on disk -> feature rows in the store, each image computed once.

1. Files whose hash the store remembers (unchanged path, size, mtime, inode and
   ctime: :mod:`fdt.features_store.hashcache`) and whose rows it holds for every
   level (extracted or failed) are skipped without being opened.
2. The rest are read once each, in DataLoader worker processes: the hash and the
   decoded image come from the same bytes. A file whose hash was not known and
   turns out to be stored already (or owned by another shard) is not decoded.
3. Each decoded image is perturbed per level, resized or cropped and
   preprocessed in the workers while the main process runs the network on the
   previous batch; a worker decodes a chunk of files, then preprocesses them
   (two passes keep each one's buffers in cache). Workers take chunks as they
   have room: up to 32 files while many remain (a chunk's trip through the
   queues has a fixed cost), at most 8 at the end, so when the files run out
   no worker still holds a long chunk while the others idle. Results of 1 MB
   or more per chunk (a CNN's 224 px inputs) cross to the main process in
   shared memory instead of being pickled through a pipe.
4. Rows are flushed to the store as immutable shards every ``flush_rows`` rows,
   so a killed run keeps what it finished and a re-run computes only the rest;
   the image-set rows go to the store's catalog, and the new hashes to the hash
   cache, once every hash is known: those two files and the last shard are
   written at once (each is renamed into place whole, so any subset is a
   consistent store), so their fsyncs overlap.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

import numpy as np

from fdt.data import (
    DEFAULT_MAX_PIXELS,
    RESIZES_PIXELS,
    ImageDecodeError,
    ImageRecord,
    apply_resolution,
    load_rgb,
    open_regular,
    parse_resolution,
    resolution_kind,
    resolution_size,
    sha256_file,
)
from fdt.features_store import hashcache
from fdt.features_store.errors import ExtractorError
from fdt.features_store.extractors.base import resolve_device
from fdt.features_store.featureset import ExtractorKey
from fdt.features_store.malloc_tuning import hold_freed_memory, reuse_freed_memory
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


def hash_files(paths: Sequence[str], threads: int = 4, cache_root: Path | None = None) -> tuple[list[str], dict[int, str], dict[int, hashcache.Stat]]:
    """SHA-256 of each file (``""`` where unreadable), the unreadable ones' reasons, and the files hashed afresh.

    With ``cache_root`` (an existing store), hashes remembered there for files whose
    path, size, mtime, inode and ctime are unchanged are reused; the third value maps
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


class _Item(NamedTuple):
    """One file to read: its position in the records, its hash when known (else ``""``), and the levels it lacks.

    ``needed`` is ``None`` when the hash is not known: the worker computes it from
    the bytes it reads and the per-level skip sets.
    """

    index: int
    expected: str
    path: str
    needed: tuple[int, ...] | None


class _Decoded(NamedTuple):
    """What a worker hands back for one file: its hash (``""`` if unreadable), each needed level's array or reason."""

    index: int
    sha: str
    path: str
    outputs: list[tuple[int, np.ndarray | None, str]]
    unreadable: str = ""


class _DecodeDataset:
    """Map-style dataset over :class:`_Item`: read once, hash, decode once, then per level perturb, resize, preprocess.

    The file's bytes are read once: the SHA-256 and the decoded image come from the
    same buffer. A known hash is checked against those bytes (a mismatch is the
    transient failure "file changed while it was being extracted"); an unknown
    one decides what is left to do: no level when the image is stored already
    (``skip[level]`` holds its hash), is read under another name in this run
    (``claimed``), or belongs to another shard. Each item is decoded once and every
    level it needs is applied in memory, so a sweep of five levels costs one read
    and one decode per image. A chunk is fetched at once (:meth:`__getitems__`)
    in two passes. Decoding and perturbation failures are returned, not
    raised, so one bad file never stops a run; any other exception is a bug and
    propagates.
    """

    def __init__(
        self,
        items: list[_Item],
        resolution: str,
        prepare: Any,
        max_pixels: int,
        levels: Sequence[Chain] = (Chain(),),
        skip: Sequence[frozenset[str]] = (),
        claimed: frozenset[str] = frozenset(),
        shard: tuple[int, int] | None = None,
        gate: Any = None,
    ) -> None:
        self.items = items
        self.gate = gate  # a multiprocessing Event, cleared while the main process runs a CPU network: see _forward_gate
        self.resolution = resolution
        self.prepare = prepare
        self.max_pixels = max_pixels
        self.levels = list(levels)
        self.skip = list(skip) or [frozenset()] * len(self.levels)
        self.claimed = claimed
        self.shard = shard

    def __len__(self) -> int:
        return len(self.items)

    def _needed(self, sha: str) -> tuple[int, ...]:
        if sha in self.claimed or (self.shard is not None and shard_of(sha, self.shard[1]) != self.shard[0]):
            return ()
        return tuple(level for level, stored in enumerate(self.skip) if sha not in stored)

    def __getitem__(self, index: int) -> _Decoded:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[_Decoded]:
        """A chunk of files in two passes, as the bound measures them: read, hash and decode; then preprocess.

        File by file, the decoder's buffers and the transform's evict each other from
        the cache: that cost a few per cent more CPU than two passes. Decoded images
        wait for the second pass only up to :data:`TWO_PASS_PIXELS`, so a chunk of
        large images holds no more memory than one of them did.
        """
        done: list[_Decoded | None] = [None] * len(indices)
        waiting: list[tuple[int, Any, str, tuple[int, ...]]] = []  # (slot in done, image, sha, levels)

        def second_pass() -> None:
            for at, image, sha, needed in waiting:
                done[at] = self._prepare(self.items[indices[at]], image, sha, needed)
            waiting.clear()

        pixels = 0
        for slot, index in enumerate(indices):
            if self.gate is not None:
                self.gate.wait()
            result = self._decode(self.items[index])
            if isinstance(result, _Decoded):
                done[slot] = result
                continue
            waiting.append((slot, *result))
            pixels += result[0].width * result[0].height
            if pixels >= TWO_PASS_PIXELS:
                second_pass()
                pixels = 0
        second_pass()
        return done  # type: ignore[return-value]

    def _prepare(self, item: _Item, image: Any, sha: str, needed: tuple[int, ...]) -> _Decoded:
        """Each needed level of one decoded image: perturbed, resized or cropped, preprocessed."""
        outputs = []
        for level in needed:
            try:
                level_image = apply_resolution(self.levels[level].apply(image, sha), self.resolution, sha)
            except ImageDecodeError as error:
                outputs.append((level, None, str(error)))
                continue
            outputs.append((level, self.prepare(level_image), ""))
        return _Decoded(item.index, sha, item.path, outputs)

    def _decode(self, item: _Item) -> _Decoded | tuple[Any, str, tuple[int, ...]]:
        """Read, hash and decode one file: its finished result (nothing to compute, or a failure), or ``(image, sha, levels)``."""
        position, expected, path, needed = item
        try:
            with open_regular(path) as handle:
                data = handle.read()
        except OSError as error:
            reason = f"cannot read file ({error.strerror or error})"
            if not expected:
                return _Decoded(position, "", path, [], reason)
            return _Decoded(position, expected, path, [(level, None, reason) for level in needed])
        sha = hashlib.sha256(data).hexdigest()
        if expected and sha != expected:
            return _Decoded(position, expected, path, [(level, None, "file changed while it was being extracted") for level in needed])
        if needed is None:
            needed = self._needed(sha)
        if not needed:
            return _Decoded(position, sha, path, [])
        try:
            return load_rgb(data, self.max_pixels), sha, needed
        except ImageDecodeError as error:
            return _Decoded(position, sha, path, [(level, None, str(error)) for level in needed])


TWO_PASS_PIXELS = 1 << 22  # decoded pixels a worker holds before preprocessing them (12 MB of RGB)
SHARED_MIN_BYTES = 1 << 20  # below this, pickling through the pipe costs less than passing a shared buffer


class _Shared(NamedTuple):
    """Where a packed array lies: row ``row`` of the chunk's shared buffer ``buffer``."""

    buffer: int
    row: int


class _Chunk(NamedTuple):
    """A worker's chunk as it crosses to the main process: the items, with their large arrays in shared memory.

    ``buffers`` are uint8 tensors in shared memory (torch passes them as file
    descriptors, not bytes) and ``layouts`` their arrays' dtype and shape.
    """

    items: list[_Decoded]
    buffers: list[Any]
    layouts: list[tuple[str, tuple[int, ...]]]


def _pack(items: list[_Decoded]) -> list[_Decoded] | _Chunk:
    """In a worker, move the chunk's arrays into shared memory, one buffer per shape and dtype.

    A pickled array crosses to the main process through a pipe: pickled, written
    in pipe-sized pieces (each one a wake-up of the reader), read and unpickled,
    four copies in all. For a CNN's 224 px input (600 KB) that cost about 1 CPU-ms
    in the main process and 1.7 in the worker per image; stacked into a shared
    buffer, the arrays are copied once, torch hands the buffer over as a file
    descriptor, and the main process reads them in place (0.25 and 0.8). Passing
    the descriptor has a fixed cost (a connection to the worker per buffer), so a
    chunk's results under :data:`SHARED_MIN_BYTES` (``fft``'s and ``dct``'s 16 KB
    rows) are left to pickle, as are all where shared memory is short.
    """
    import torch
    from torch.utils.data import get_worker_info

    if get_worker_info() is None:
        return items
    groups: dict[tuple[str, tuple[int, ...]], list[np.ndarray]] = {}
    for item in items:
        for _, array, _ in item.outputs:
            if array is not None:
                groups.setdefault((array.dtype.str, array.shape), []).append(array)
    layouts = [layout for layout, arrays in groups.items() if sum(a.nbytes for a in arrays) >= SHARED_MIN_BYTES]
    if not layouts or not _shared_memory_room(sum(a.nbytes for layout in layouts for a in groups[layout])):
        return items
    buffers, slots = [], {}
    for number, (dtype, shape) in enumerate(layouts):
        arrays = groups[(dtype, shape)]
        size = sum(a.nbytes for a in arrays)
        buffer = torch.empty(0, dtype=torch.uint8).set_(torch.UntypedStorage._new_shared(size), 0, (size,))
        np.stack(arrays, out=buffer.numpy().view(dtype).reshape(len(arrays), *shape))
        buffers.append(buffer)
        slots.update({id(array): _Shared(number, row) for row, array in enumerate(arrays)})
    packed = [
        item._replace(outputs=[(level, slots.get(id(array), array), reason) for level, array, reason in item.outputs]) for item in items
    ]
    return _Chunk(packed, buffers, layouts)


SHARED_MEMORY = "/dev/shm"  # where Linux's shm_open, and so torch's shared buffers, put their pages
SHARED_HEADROOM = 8  # buffers of this size that must fit: the queues' chunks and the main process's pending ones


def _shared_memory_room(size: int) -> bool:
    """Whether :data:`SHARED_MEMORY` has room for :data:`SHARED_HEADROOM` buffers of ``size`` bytes.

    A container's ``/dev/shm`` is often 64 MB; a shared buffer that outgrows it is
    not refused when made but kills the worker with SIGBUS when written. Where
    there is not ample room (or no such folder), results are pickled as before.
    """
    try:
        stats = os.statvfs(SHARED_MEMORY)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize >= SHARED_HEADROOM * size


def _unpack(part: list[_Decoded] | _Chunk) -> list[_Decoded]:
    """The main process's side of :func:`_pack`: each packed array becomes a view of its shared buffer."""
    if not isinstance(part, _Chunk):
        return part
    stacks = [buffer.numpy().view(dtype).reshape(-1, *shape) for buffer, (dtype, shape) in zip(part.buffers, part.layouts)]

    def array(value: Any) -> Any:
        return stacks[value.buffer][value.row] if isinstance(value, _Shared) else value

    return [item._replace(outputs=[(level, array(value), reason) for level, value, reason in item.outputs]) for item in part.items]


def _chunk_sizes(batch_size: int) -> tuple[int, int]:
    """The workers' small and large chunk sizes: divisors of the batch size, at most 8 and at most 32 files."""
    small = max(size for size in range(1, min(batch_size, 8) + 1) if batch_size % size == 0)
    return small, small * max(1, min(batch_size, 32) // small)


def _chunks(files: int, batch_size: int, workers: int) -> list[list[int]]:
    """The files' indices in the chunks the workers take: large ones while many files remain, small ones for the last.

    Every chunk costs a round trip through the DataLoader's queues in both
    processes (about 1 CPU-ms in all, a tenth of a cheap extractor's cost for 8
    files), so most files go in large chunks. A queued chunk stays with its
    worker, so the files that the workers' queues hold when the large chunks run
    out go in small ones: then no worker is left with a long chunk while the
    others idle.
    """
    small, large = _chunk_sizes(batch_size)
    tail = min(files, workers * _queued_chunks(batch_size, large, workers) * large) if workers else 0
    head = files - tail
    sizes = [large] * (head // large) + ([head % large] if head % large else []) + [small] * (-(-tail // small))
    chunks, start = [], 0
    for size in sizes:
        chunks.append(list(range(start, min(start + size, files))))
        start += size
    return chunks


def _queued_chunks(batch_size: int, chunk: int, workers: int) -> int:
    """Chunks queued per worker: two network batches in all, and at least two each.

    Enough that the next batch is decoded while the main process runs the network
    on this one; few enough that when the files run out no worker still holds a
    long queue while the others idle (a queued chunk stays with its worker).
    """
    return max(2, -(-2 * batch_size // (chunk * workers)))


def _worker_init(_: int, parent: int | None = None) -> None:
    import torch

    release_inherited_locks()
    die_with_parent(parent if parent is not None else os.getppid())
    reuse_freed_memory()
    torch.set_num_threads(1)


def _forward_gate(model: Any, device: str) -> Any:
    """An Event the decoding workers wait on before each file, cleared while a network runs on the CPU; else None.

    A CPU network uses every core (torch's intra-op threads). A worker decoding
    beside it takes one of them, and the network's thread left on the other
    waits for it at the next barrier: interleaved runs of ``mobilenet_v2`` on 2
    cores were faster with the workers paused during each batch's forward
    (55.9, 55.7, 49.6, 58.3 -> 58.5, 56.2, 56.6, 60.8 images/s), since they
    decode the next batch in the gap between two forwards instead: the bound's
    own model of sharing the cores. A file being decoded is finished first.
    Extractors without a network (``fft``, ``dct``) and GPU networks keep the
    workers running throughout.
    """
    import multiprocessing

    if not model.runs_network or resolve_device(device) != "cpu":
        return None
    gate = multiprocessing.get_context().Event()
    gate.set()
    return gate


@contextlib.contextmanager
def _paused(gate: Any) -> Iterator[None]:
    """The decoding workers wait while the block runs (``gate`` of :func:`_forward_gate`; None: they do not); reopened on error too."""
    if gate is None:
        yield
        return
    gate.clear()
    try:
        yield
    finally:
        gate.set()


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """End this process when ``parent`` dies, even by SIGKILL (which runs no clean-up in the parent).

    DataLoader workers otherwise outlive a killed ``fdt extract`` for ever, each
    holding hundreds of MB. Linux's ``PR_SET_PDEATHSIG`` has the kernel send SIGKILL;
    elsewhere, or if ``prctl`` is unavailable, a daemon thread polls the parent's pid.
    """
    import ctypes
    import signal
    import sys
    import threading

    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0:
                if os.getppid() != parent:  # the parent died before prctl took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="fdt-parent-watch", daemon=True).start()


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
    reuse_freed_memory()  # stacked batches and rows are freed and allocated again every batch (activations: see below)
    resolution = parse_resolution(resolution)
    if batch_size < 1:
        raise ExtractorError(f"batch size must be at least 1, not {batch_size}")
    if resolution != "native" and resolution_size(resolution) ** 2 > max_pixels:
        size = resolution_size(resolution)
        raise ExtractorError(f"--resolution {resolution} makes {size}x{size} = {size * size} pixels per image, above the limit of {max_pixels} (--max-pixels)")
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
    stats: list[hashcache.Stat | None] = [None] * len(paths)
    unreadable: dict[int, str] = {}
    if hashes is None:
        # "" is a hash the workers compute from the bytes they decode: one read per new file; stat before reading,
        # so a file that changes in between is remembered under its old stat, which no later stat matches
        stats = [hashcache.file_stat(path) for path in paths]
        all_hashes = hashcache.lookup(store.root, paths, stats) if store.exists() and not rehash else [""] * len(paths)
    else:
        all_hashes = list(hashes)
        unreadable = {i: "cannot read file" for i, h in enumerate(all_hashes) if not h}
    unknown = [i for i, h in enumerate(all_hashes) if not h and i not in unreadable]
    summaries = [ExtractSummary(key, [], weights_note=model.weights_note()) for key in keys]
    with store.writer(wait=wait, shared=shard is not None) as writer:
        if shard is not None:
            for key in keys:
                writer.claim_count(key.id, shard[1])
                writer.claim(claim_name(key.id, shard))
        writer.flush_rows = flush_rows
        stored = [writer.stored_hashes(key) for key in keys]
        skip = [frozenset(extracted | failed) for extracted, failed in stored]
        todo: dict[str, _Item] = {}
        for index, sha in enumerate(all_hashes):
            if sha and sha not in todo and (shard is None or shard_of(sha, shard[1]) == shard[0]):
                needed = tuple(level for level, stored_level in enumerate(skip) if sha not in stored_level)
                if needed:
                    todo[sha] = _Item(index, sha, paths[index], needed)
        items = list(todo.values()) + [_Item(index, "", paths[index], None) for index in unknown]
        count = default_workers() if workers is None else workers
        count = min(count, -(-len(items) // batch_size)) if len(items) > 1 else 0
        gate = _forward_gate(model, device) if count else None
        dataset = _DecodeDataset(items, resolution, model.preprocessor(), max_pixels, levels, skip, frozenset(todo), shard, gate)
        loader = DataLoader(
            dataset,
            batch_sampler=_chunks(len(dataset), batch_size, count),  # the main process gathers them into network batches
            num_workers=count,
            collate_fn=_pack,
            worker_init_fn=functools.partial(_worker_init, parent=os.getpid()) if count else None,
            prefetch_factor=_queued_chunks(batch_size, _chunk_sizes(batch_size)[1], count) if count else None,
            in_order=False,  # a chunk goes to whichever worker has room, and is taken as soon as it is done
        )

        def run(items: list[_Decoded]) -> None:
            for level, (key, summary) in enumerate(zip(keys, summaries)):
                outputs = [(item.sha, item.path, array, reason) for item in items for at, array, reason in item.outputs if at == level]
                ok = [(sha, array) for sha, _, array, _ in outputs if array is not None]
                bad = [(sha, path, reason) for sha, path, array, reason in outputs if array is None]
                for shape in {array.shape for _, array in ok}:
                    same = [(sha, array) for sha, array in ok if array.shape == shape]
                    for start in range(0, len(same), batch_size):
                        rows = same[start : start + batch_size]
                        stacked = np.stack([array for _, array in rows])
                        with _paused(gate):
                            features = model.forward(stacked)
                        writer.add_rows(key, num_features, [sha for sha, _ in rows], features, attrs)
                if bad:
                    writer.add_failures(key, num_features, bad, attrs)
                summary.new_rows += len(ok)

        done: set[str] = set()
        pending: list[_Decoded] = []
        what = f"{extractor}@{resolution}" + (f" x{len(levels)} levels" if len(levels) > 1 else f" {keys[0].perturb}" if keys[0].perturb else "")
        chunks = [iter(loader)]
        try:
            if todo:  # rows are known to be missing: the network is built (imports, weights) while the workers decode
                model.fit()  # the first chunks, not after the first batch has come; else it is built at its first batch, if any
            received = 0
            # a CPU network's activations (hundreds of MB each) are freed and allocated again every batch: held, they are
            # reused instead of faulted in as new pages (vgg16's forward: 28 % of its CPU time); given back when the loop ends
            with hold_freed_memory(), tqdm(total=len(dataset), unit="img", desc=what, disable=not progress) as bar:
                # one item comes back per file: counting them ends the loop without the exhausted iterator's last call,
                # which stops and joins the workers before returning
                while received < len(dataset):
                    part = _unpack(next(chunks[0]))
                    for item in part:
                        if item.sha:
                            all_hashes[item.index] = item.sha
                        elif item.unreadable:
                            unreadable[item.index] = item.unreadable
                        # two files of one content, neither hash known before, are both read; one row is kept
                        if item.outputs and item.sha not in done:
                            done.add(item.sha)
                            pending.append(item)
                    if len(pending) >= batch_size:
                        run(pending[:batch_size])
                        del pending[:batch_size]
                    received += len(part)
                    bar.update(len(part))
                if pending:
                    run(pending)
            hashed = [i for i in unknown if all_hashes[i] and stats[i] is not None]
            hashes = list(all_hashes)
            if shard is not None:
                # each shard's job reports the unreadable files of its share of the list, so N jobs report each once
                unreadable = {i: reason for i, reason in unreadable.items() if i % shard[1] == shard[0]}
                hashes = [h if h and shard_of(h, shard[1]) == shard[0] else "" for h in hashes]
            # the workers are stopped (their exits are joined: tens of ms) while the rows' shard, the hash cache and the
            # catalog file are written; those three are independent (each is written whole and renamed into place; any
            # subset of them is a consistent store), so they are written at once and their fsyncs overlap
            with ThreadPoolExecutor(max_workers=3) as pool:
                tasks = [pool.submit(chunks.clear), pool.submit(writer.flush)]  # clear: the iterator's finaliser stops them
                if hashed:
                    tasks.append(pool.submit(hashcache.remember, store.root, [paths[i] for i in hashed], [stats[i] for i in hashed], [all_hashes[i] for i in hashed]))
                if catalog:
                    writer.add_catalog(records, hashes)
                for task in tasks:
                    task.result()
        finally:
            chunks.clear()  # on an error, the workers are stopped here (after a run, it is done already)
    present = {h for h in hashes if h}
    for (key, summary), (extracted, _) in zip(zip(keys, summaries), stored):
        summary.hashes, summary.failures, summary.reused_rows = hashes, dict(unreadable), len(present & extracted)
        recorded = {sha: reason for sha, _, reason in store.failures(key)}
        for index, sha in enumerate(hashes):
            if sha in recorded:
                summary.failures[index] = recorded[sha]
        summary.seconds = time.perf_counter() - started
    return summaries
