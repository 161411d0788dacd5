"""The feature store: round trips, content addressing, format checks, locking, verification."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from fdt.data import ImageRecord
from fdt.features_store import (
    ExtractorKey,
    FeatureStore,
    MissingFeaturesError,
    StoreError,
    StoreFormatError,
    StoreLockedError,
    UnknownSourceError,
)
from fdt.features_store.verify import verify_store

KEY = ExtractorKey("fft", {"size": 2, "profile": False}, "none", "64")


def _rows(n: int, source: str, label: int, offset: int = 0):
    sha = [f"{i + offset:064x}" for i in range(n)]
    records = [ImageRecord(f"/img/{source}/{i}.png", source, label, group=f"g{(i + offset) // 2}") for i in range(n)]
    X = np.arange(n * 4, dtype=np.float32).reshape(n, 4) + offset
    return sha, X, records


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    store = FeatureStore(tmp_path / "store")
    for args in [(6, "coco", 0, 0), (4, "dcgan", 1, 100)]:
        sha, X, records = _rows(*args)
        store.write(KEY, sha, X, records)
    return store


def test_round_trip_gives_x_y_groups_and_metadata(store: FeatureStore):
    data = store.load("fft", resolution=64, sources=["coco", "dcgan"])
    assert data.X.shape == (10, 4) and data.X.dtype == np.float32
    assert data.y.tolist() == [0] * 6 + [1] * 4
    assert data.groups.tolist()[:2] == ["g0", "g0"]
    assert data.sources.tolist().count("dcgan") == 4
    row = data.sha256.tolist().index(f"{101:064x}")
    np.testing.assert_array_equal(data.X[row], np.arange(4, 8, dtype=np.float32) + 100)
    assert data.paths[row] == "/img/dcgan/1.png"


def test_load_selects_sources(store: FeatureStore):
    assert store.load("fft", 64, sources=["dcgan"]).y.tolist() == [1] * 4
    assert len(store.load("fft", 64)) == 10


def test_same_image_in_two_sources_shares_one_feature_row(store: FeatureStore):
    sha, X, records = _rows(2, "copies", 1, offset=100)  # the same content as two dcgan images
    store.write(KEY, [], np.zeros((0, 4)), [])
    with store.writer() as writer:
        writer.add_catalog(records, sha)
    data = store.load("fft", 64, sources=["copies", "dcgan"])
    assert len(data) == 6
    stored, _ = store.read_features(KEY)
    assert len(stored) == 10


def test_missing_features_name_the_extract_command(store: FeatureStore):
    with pytest.raises(MissingFeaturesError, match=r"run: fdt extract DATA --extractor vgg16 --resolution 256"):
        store.load("vgg16", 256)


def test_unknown_source_lists_the_known_ones(store: FeatureStore):
    with pytest.raises(UnknownSourceError, match="unknown source.*sd21.*known: coco, dcgan"):
        store.load("fft", 64, sources=["sd21"])


def test_source_without_features_for_the_key_is_missing(store: FeatureStore):
    other = ExtractorKey("fft", {"size": 2, "profile": False}, "none", "256")
    sha, X, records = _rows(2, "coco", 0)
    store.write(other, sha, X, records)
    with pytest.raises(MissingFeaturesError, match="source 'dcgan' has no fft.*fdt extract /img/dcgan"):
        store.load("fft", 256, sources=["coco", "dcgan"])


def test_ambiguous_key_asks_to_narrow(store: FeatureStore):
    other = ExtractorKey("fft", {"size": 2, "profile": True}, "none", "64")
    store.write(other, *_rows(1, "coco", 0)[:2], _rows(1, "coco", 0)[2])
    with pytest.raises(StoreError, match="2 stored keys match"):
        store.load("fft", 64)
    assert len(store.load("fft", 64, params={"profile": True})) == 1


def test_a_key_with_exactly_the_asked_params_wins_over_one_with_more(store: FeatureStore):
    """A fine-tuned CNN's features and its ``output=logit`` rows: the features' key is a subset of the logit's."""
    logit = ExtractorKey("fft", {**KEY.params, "output": "logit"}, "none", "64")
    store.write(logit, *_rows(1, "coco", 0)[:2], _rows(1, "coco", 0)[2])
    assert len(store.load("fft", 64, params=KEY.params)) == 10
    assert len(store.load("fft", 64, params=logit.params)) == 1
    with pytest.raises(StoreError, match="2 stored keys match"):
        store.load("fft", 64, params={"size": 2})


def test_unknown_store_version_is_refused_with_upgrade_hint(store: FeatureStore):
    marker = store.root / "fdt-store.json"
    marker.write_text(json.dumps({"encoding-type": "fdt.feature_store", "encoding-version": "2"}))
    with pytest.raises(StoreFormatError, match="version 2 store; this fdt reads version 1: upgrade fdt"):
        store.load("fft", 64)


def test_unknown_shard_version_is_refused(store: FeatureStore):
    shard = store.shard_paths()[0]
    with h5py.File(shard, "r+") as handle:
        handle.attrs["encoding-version"] = "9"
    with pytest.raises(StoreFormatError, match="version '9'.*upgrade fdt"):
        store.load("fft", 64)


def test_a_folder_that_is_not_a_store_is_refused(tmp_path: Path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "x.txt").write_text("mine")
    with pytest.raises(StoreFormatError, match="not an fdt feature store"):
        FeatureStore(tmp_path / "photos").writer().__enter__()
    assert (tmp_path / "photos" / "x.txt").read_text() == "mine"


def test_second_writer_fails_with_a_clear_message(store: FeatureStore):
    with store.writer():
        with pytest.raises(StoreLockedError, match=r"being written by pid \d+ .*--wait"):
            store.writer().__enter__()
    with store.writer():  # the lock is released afterwards
        pass


def test_second_writer_can_wait(store: FeatureStore, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from tests.sync import LockWait

    lock = LockWait().install(monkeypatch)
    first = store.writer().__enter__()

    def second() -> bool:
        with store.writer(wait=600):
            return True

    with ThreadPoolExecutor(1) as pool:
        got = pool.submit(second)
        assert lock.waiting.wait(60)  # the second writer found the lock taken and is waiting
        assert not got.done()
        first.__exit__(None, None, None)
        lock.released.set()
        assert got.result(timeout=60)


def test_compaction_merges_shards_and_readers_ignore_superseded(store: FeatureStore):
    assert len(store.shard_paths(KEY.id)) == 1  # the second write was merged with the first
    with h5py.File(store.shard_paths(KEY.id)[0]) as handle:
        assert len(json.loads(handle.attrs["supersedes"])) == 2


def test_interrupted_compaction_leaves_a_readable_store(store: FeatureStore, tmp_path: Path):
    # simulate a kill between writing a compacted shard and deleting the shards it supersedes
    sha, X, records = _rows(3, "sd21", 1, offset=200)
    with store.writer() as writer:
        writer.add_catalog(records, sha)
        writer.add_rows(KEY, 4, sha, X)
        writer.flush()
        writer._written.clear()  # no compaction on exit
    shards = store.shard_paths(KEY.id)
    from fdt.features_store.store import _write_shard

    all_sha, all_X = store.read_features(KEY)
    _write_shard(store.root, KEY, 4, all_sha, all_X, [], supersedes=[p.name for p in shards])
    assert len(store.shard_paths(KEY.id)) == 3
    assert len(store.load("fft", 64)) == 13
    report = verify_store(store)
    assert report.ok and any("superseded" in note for note in report.notes)
    with store.writer():
        pass
    assert len(store.shard_paths(KEY.id)) == 1 and len(store.load("fft", 64)) == 13


def test_verify_detects_tampering(store: FeatureStore):
    assert verify_store(store).ok
    with h5py.File(store.shard_paths()[0], "r+") as handle:
        handle["features"][0, 0] += 1
    report = verify_store(store)
    assert not report.ok and "checksum mismatch" in report.errors[0]


def test_verify_reports_leftover_temporary_files(store: FeatureStore):
    (store.root / ".tmp").mkdir(exist_ok=True)
    (store.root / ".tmp" / "half.h5.123.tmp").write_bytes(b"\x89HDF partial")
    report = verify_store(store)
    assert report.ok and "temporary" in report.notes[0]
    assert len(store.load("fft", 64)) == 10


def test_rewriting_the_same_catalog_adds_no_file(store: FeatureStore):
    before = sorted((store.root / "catalog").iterdir())
    sha, _, records = _rows(6, "coco", 0)
    with store.writer() as writer:
        assert writer.add_catalog(records, sha) == 0
    assert sorted((store.root / "catalog").iterdir()) == before


def test_load_rows_in_the_order_asked(store: FeatureStore):
    rows = store.load_rows(KEY, [f"{101:064x}", f"{0:064x}"])
    np.testing.assert_array_equal(rows[:, 0], [104.0, 0.0])
    with pytest.raises(MissingFeaturesError, match="1 image"):
        store.load_rows(KEY, [f"{999:064x}"])


def test_a_writer_keeps_rows_in_order_across_flushes_and_a_raised_flush_size(tmp_path: Path):
    # rows are copied into one matrix per key as they come; it is reused by the next shard and grows when the
    # flush size is raised after it was reserved
    from fdt.features_store.writer import StoreWriter

    store = FeatureStore(tmp_path / "s")
    blocks = [np.arange(n * 4, dtype=np.float64).reshape(n, 4) + 100 * i for i, n in enumerate([2, 3, 4, 1, 7, 5])]
    sha = [f"{i:064x}" for i in range(sum(len(b) for b in blocks))]
    with StoreWriter(store, flush_rows=5) as writer:
        writer._compact = lambda *args, **kwargs: False  # keep the shards as flushed
        start, reserved = 0, None
        for index, block in enumerate(blocks):
            if index == 3:
                writer.flush_rows = 100  # the matrix reserved for 5 rows (+ a block) must grow
            writer.add_rows(KEY, 4, sha[start : start + len(block)], block.tolist() if index % 2 else block)
            start += len(block)
            rows = writer._buffers[KEY.id].rows
            if index == 1:  # 5 rows: flushed; the matrix stays for the next shard
                reserved = rows
            if index == 2:
                assert rows is reserved
    assert [shard.rows for shard in store.live_shards(KEY.id)] == [5, 17]
    stored, features = store.read_features(KEY)
    assert stored.astype(str).tolist() == sha
    np.testing.assert_array_equal(features, np.concatenate(blocks).astype(np.float32))


def test_the_catalog_checksum_is_the_specs_for_many_and_non_ascii_names():
    import hashlib

    from fdt.features_store.catalog import _CHECKSUM_STRINGS, catalog_checksum

    n = 2 * _CHECKSUM_STRINGS + 3  # several updates per column, the last one short
    sha = np.array([f"{i:064x}".encode() for i in range(n)], dtype="S64")
    path = [f"/données/{i}/bild-ü{i}.png" if i % 3 else f"/img/{i}.png" for i in range(n)]
    source = np.array(["coco", "sd21 ✓"] * (n // 2) + ["coco"], dtype=object)
    group = [f"coco:{i // 2}" for i in range(n)]
    label = np.arange(n) % 2
    digest = hashlib.sha256(sha.tobytes() + label.astype("i1").tobytes())  # docs/store-format.md, string by string
    for column in (path, source, group):
        for text in column:
            digest.update(str(text).encode("utf-8") + b"\0")
    assert catalog_checksum(sha, path, source, label, group) == digest.hexdigest()
    assert catalog_checksum(sha[:0], [], [], label[:0], []) == hashlib.sha256(b"").hexdigest()


def _header(rows: int, num_features: int, name: str = "x.h5"):
    from fdt.features_store.shards import Shard

    return Shard(Path(name), KEY, rows, num_features, [])


@pytest.mark.parametrize(
    "sizes, merged",
    [
        ([(6, 4), (4, 4)], [0, 1]),  # tiny shards: merged whenever there are two
        ([(1024, 4096)] * 3, []),  # one run's three 16 MB flushes: not rewritten
        ([(1024, 4096)] * 7 + [(8192, 4096)], []),  # seven of one size and one larger: nothing to join yet
        ([(1024, 4096)] * 8, list(range(8))),  # eight of about one size: merged into one 128 MB shard
        ([(8192, 4096), (1024, 4096), (100, 4096), (10, 4096)], [2, 3]),  # the two under 4 MB, not the large ones
        ([(200_000, 4), (10, 4)], []),  # a shard of 200,000 rows is never merged by a writer
        ([(1024, 4096)] * 3 + [(256, 4096)] * 30, list(range(33))),  # over 32 mergeable shards: all of them (they fit under 200,000 rows)
        ([(60_000, 4096)] * 8, [0, 1, 2]),  # eight of 1 GB: only as many as make at most 200,000 rows (memory)
        ([(150_000, 4)] + [(120_000, 4)] * 8, []),  # no two fit under 200,000 rows: nothing, not a loop
        ([(120_000, 4096)] * 2 + [(20_000, 4096)] * 6, list(range(2, 8))),  # one tier: its smallest merge, the large ones wait
        ([(150_000, 4)] * 2 + [(100, 4)] * 32, [0, *range(2, 34)]),  # over 32: smallest first up to 200,000 rows, in age order
    ],
)
def test_the_merge_plan_joins_shards_of_about_one_size(sizes, merged):
    from fdt.features_store.writer import merge_plan

    shards = [_header(rows, width, f"{i}.h5") for i, (rows, width) in enumerate(sizes)]
    assert [int(shard.path.stem) for shard in merge_plan(shards)] == merged


def test_a_long_run_keeps_its_flushes_and_the_eighth_of_a_size_merges_them(tmp_path: Path):
    # 256 rows of 4096 float32 features make 4.2 MB shards, tier 1: a run of three flushes is not rewritten at its
    # end; a later run that brings the tier to eight merges those eight once, and the rows read back unchanged
    store = FeatureStore(tmp_path / "s")
    width, per = 4096, 256
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8 * per, width), dtype=np.float32)
    sha = [f"{i:064x}" for i in range(len(X))]
    records = [ImageRecord(f"/img/{i}.png", "coco", 0) for i in range(len(X))]

    def run(start: int, stop: int) -> None:
        with store.writer() as writer:
            writer.flush_rows = per
            writer.add_catalog(records[start:stop], sha[start:stop])
            for first in range(start, stop, 64):
                writer.add_rows(KEY, width, sha[first : first + 64], X[first : first + 64])

    run(0, 3 * per)
    first_run = store.shard_paths(KEY.id)
    assert [shard.rows for shard in store.live_shards(KEY.id)] == [per] * 3
    run(3 * per, 7 * per)
    assert store.shard_paths(KEY.id)[:3] == first_run and len(store.live_shards(KEY.id)) == 7
    np.testing.assert_array_equal(store.load("fft", 64).X, X[: 7 * per])
    run(7 * per, 8 * per)
    (merged,) = store.live_shards(KEY.id)
    assert merged.rows == 8 * per and set(first_run) <= {merged.path.parent / name for name in merged.supersedes}
    stored, features = store.read_features(KEY)
    assert stored.astype(str).tolist() == sha
    np.testing.assert_array_equal(features, X)
    assert store.compact() == 0  # nothing left to merge by hand either


def test_store_compact_merges_every_small_shard_the_writers_left(tmp_path: Path):
    store = FeatureStore(tmp_path / "s")
    X = np.random.default_rng(1).standard_normal((3 * 256, 4096), dtype=np.float32)
    sha = [f"{i:064x}" for i in range(len(X))]
    with store.writer() as writer:
        writer.flush_rows = 256
        writer.add_catalog([ImageRecord(f"/img/{i}.png", "coco", 0) for i in range(len(X))], sha)
        for first in range(0, len(X), 256):
            writer.add_rows(KEY, 4096, sha[first : first + 256], X[first : first + 256])
    assert len(store.live_shards(KEY.id)) == 3
    assert store.compact() == 1 and [s.rows for s in store.live_shards(KEY.id)] == [3 * 256]
    np.testing.assert_array_equal(store.load("fft", 64).X, X)


def test_a_shard_header_is_read_again_once_its_file_changes(store: FeatureStore, monkeypatch):
    from fdt.features_store.shards import Shard

    path = store.shard_paths(KEY.id)[0]
    assert Shard.open(path).attrs["fdt_version"] != "tampered"
    reads = []
    read_header = Shard._read_header.__func__
    monkeypatch.setattr(Shard, "_read_header", classmethod(lambda cls, p: reads.append(p) or read_header(cls, p)))
    Shard.open(path)
    assert reads == []  # an unchanged shard's header is not read again
    Shard.open(path).attrs["fdt_version"] = "changed by a caller"  # a caller's copy: the remembered header stays
    assert Shard.open(path).attrs["fdt_version"] != "changed by a caller"
    with h5py.File(path, "r+") as handle:
        handle.attrs["fdt_version"] = "tampered"
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000))  # another time, however coarse the clock
    assert Shard.open(path).attrs["fdt_version"] == "tampered" and reads == [path]


def test_store_compact_never_makes_a_shard_of_more_than_200000_rows(tmp_path: Path):
    # a merge holds its rows in memory twice: three shards of 80,000 rows become 80,000 + 160,000, not one of 240,000
    store = FeatureStore(tmp_path / "s")
    X = np.arange(240_000 * 4, dtype=np.float32).reshape(-1, 4)
    sha = [f"{i:064x}" for i in range(len(X))]
    with store.writer() as writer:
        writer.flush_rows = 80_000
        for first in range(0, len(X), 80_000):
            writer.add_rows(KEY, 4, sha[first : first + 80_000], X[first : first + 80_000])
    assert [s.rows for s in store.live_shards(KEY.id)] == [80_000] * 3  # 7.7 MB each, tier 1: the writer keeps them
    assert store.compact() == 1
    assert sorted(s.rows for s in store.live_shards(KEY.id)) == [80_000, 160_000]
    stored, features = store.read_features(KEY)
    order = np.argsort(stored)
    np.testing.assert_array_equal(features[order], X)
