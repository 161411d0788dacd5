"""Reading chosen feature rows out of shard files straight into one preallocated matrix.

Why not read whole shards and index: reading every shard into memory, joining
them and then picking rows holds three copies of the matrix at its peak (4.9 GB
for 100,000 × 4096 float32). Here the output is allocated once; runs of rows that
are contiguous on disk and in the output are read in place by HDF5
(``read_direct``), other rows go through a bounded slab. Peak memory is the
output plus one slab, and the bytes are read once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

SLAB_BYTES = 64 * 2**20
"""Most bytes read at once for rows that are not in order on disk."""


def gather_rows(parts: Sequence[tuple[Path, np.ndarray, np.ndarray]], rows: int, width: int, dtype=np.float32) -> np.ndarray:
    """A ``(rows, width)`` matrix filled from ``parts``: ``(shard path, source rows, output rows)`` each.

    Every output row must be named by exactly one part; source rows index the
    shard's ``features`` dataset.
    """
    out = np.empty((rows, width), dtype=dtype)
    slab_rows = max(1, SLAB_BYTES // max(1, width * np.dtype(dtype).itemsize))
    for path, source, target in parts:
        if not len(source):
            continue
        order = np.argsort(source, kind="stable")
        source, target = np.asarray(source)[order], np.asarray(target)[order]
        with h5py.File(path, "r", locking=False) as handle:
            dataset = handle["features"]
            for start, stop in _runs(source, target):
                run_source, run_target = source[start:stop], target[start:stop]
                if _contiguous(run_source) and _contiguous(run_target):
                    dataset.read_direct(out, np.s_[run_source[0] : run_source[-1] + 1], np.s_[run_target[0] : run_target[-1] + 1])
                    continue
                first = 0
                while first < len(run_source):  # slabs span at most slab_rows rows on disk
                    last = int(np.searchsorted(run_source, run_source[first] + slab_rows, side="left"))
                    src, dst = run_source[first:last], run_target[first:last]
                    block = dataset[int(src[0]) : int(src[-1]) + 1]
                    out[dst] = block[src - src[0]]
                    first = last
    return out


def _contiguous(index: np.ndarray) -> bool:
    return bool(len(index) and index[-1] - index[0] == len(index) - 1)


def _runs(source: np.ndarray, target: np.ndarray) -> list[tuple[int, int]]:
    """Split sorted source rows into stretches where source and target both step by one, merging short ones.

    Long in-order stretches become ``read_direct`` calls; anything else is left
    as one run for the slab reader, so scattered rows do not cost one HDF5 call each.
    """
    if len(source) == 1:
        return [(0, 1)]
    breaks = np.flatnonzero((np.diff(source) != 1) | (np.diff(target) != 1)) + 1
    edges = [0, *breaks.tolist(), len(source)]
    runs: list[tuple[int, int]] = []
    for start, stop in zip(edges[:-1], edges[1:]):
        long = stop - start >= 256
        if runs and not long and not runs[-1][2]:
            runs[-1] = (runs[-1][0], stop, False)
        else:
            runs.append((start, stop, long))
    return [(start, stop) for start, stop, _ in runs]
