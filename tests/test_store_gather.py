"""Rows gathered from shards straight into one matrix: any order, duplicates, several shards, bounded slabs."""

import h5py
import numpy as np
import pytest

from fdt.features_store import gather


def shard(path, rows):
    with h5py.File(path, "w") as handle:
        handle.create_dataset("features", data=rows)
    return path


@pytest.mark.parametrize("slab_bytes", [4 * 3, 4 * 3 * 7, 2**20])
def test_gather_rows_matches_fancy_indexing(tmp_path, monkeypatch, slab_bytes):
    monkeypatch.setattr(gather, "SLAB_BYTES", slab_bytes)
    rng = np.random.default_rng(0)
    blocks = [rng.standard_normal((n, 3)).astype(np.float32) for n in (700, 50)]
    paths = [shard(tmp_path / f"{i}.h5", b) for i, b in enumerate(blocks)]
    # output rows: an in-order run of 400 (read in place), then shuffled rows, a duplicate, and rows of the second shard
    wanted = [(0, i) for i in range(400)] + [(0, int(i)) for i in rng.permutation(np.arange(400, 700))[:200]] + [(0, 5), (1, 49), (1, 0)]
    order = rng.permutation(len(wanted))
    wanted = [wanted[i] for i in order]
    parts = [(p, np.array([r for s, r in wanted if s == i]), np.array([k for k, (s, _) in enumerate(wanted) if s == i])) for i, p in enumerate(paths)]
    got = gather.gather_rows(parts, len(wanted), 3)
    np.testing.assert_array_equal(got, np.stack([blocks[s][r] for s, r in wanted]))


def test_in_order_rows_are_read_in_place(tmp_path, monkeypatch):
    rows = np.arange(3000, dtype=np.float32).reshape(1000, 3)
    path = shard(tmp_path / "s.h5", rows)
    calls = []
    real = h5py.Dataset.read_direct
    monkeypatch.setattr(h5py.Dataset, "read_direct", lambda self, *a, **k: calls.append(a) or real(self, *a, **k))
    got = gather.gather_rows([(path, np.arange(1000), np.arange(1000))], 1000, 3)
    np.testing.assert_array_equal(got, rows)
    assert len(calls) == 1
