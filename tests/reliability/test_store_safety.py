"""Causes 1, 5, 6, 7, 17, 18, 20, 23: the store never writes through links, never serves damaged rows, reads consistent snapshots."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fdt.cli import cli
from fdt.data import ImageRecord
from fdt.features_store import FeatureStore, StoreError
from fdt.features_store.featureset import ExtractorKey
from fdt.features_store.verify import verify_store

KEY = ExtractorKey("fft", {"size": 2}, "none", "native")


def _store(tmp_path: Path, rows: int = 4) -> FeatureStore:
    store = FeatureStore(tmp_path / "store")
    hashes = [f"{i:064x}" for i in range(rows)]
    records = [ImageRecord(f"/data/{i}.png", "real" if i % 2 else "fake", i % 2 ^ 1) for i in range(rows)]
    store.write(KEY, hashes, np.arange(rows * 4, dtype=np.float32).reshape(rows, 4), records)
    return store


def test_a_tmp_symlink_is_refused_and_its_target_kept(tmp_path):
    store = _store(tmp_path)
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    (store.root / ".tmp").rmdir()
    os.symlink(precious, store.root / ".tmp")
    with pytest.raises(StoreError, match=r"\.tmp is a symbolic link"):
        store.compact()
    with pytest.raises(StoreError, match="symbolic link"):
        _store(tmp_path)
    assert (precious / "thesis.tex").read_text() == "years of work"
    assert not verify_store(store).ok


def test_a_lock_symlink_is_never_truncated(tmp_path):
    store = _store(tmp_path)
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    (store.root / ".lock").unlink()
    os.symlink(target, store.root / ".lock")
    result = CliRunner().invoke(cli, ["store", "compact", "--store", str(store.root)])
    assert result.exit_code == 2 and "symbolic link" in result.output
    assert target.read_text() == "keep me"
    verify = CliRunner().invoke(cli, ["store", "verify", "--store", str(store.root)])
    assert verify.exit_code == 1 and ".lock: a symbolic link" in verify.output


def test_a_shard_symlink_is_reported_by_verify(tmp_path):
    store = _store(tmp_path)
    shard = store.shard_paths()[0]
    elsewhere = tmp_path / "elsewhere.h5"
    shard.rename(elsewhere)
    os.symlink(elsewhere, shard)
    assert any("symbolic link" in e for e in verify_store(store).errors)
    with pytest.raises(StoreError, match="symbolic link"):
        store.compact()


def test_a_resume_with_nothing_new_merges_a_crowd_of_shards(tmp_path, image_tree):
    from fdt.data import load_image_set
    from fdt.features_store.extraction import extract_records

    records = load_image_set(image_tree)
    store = FeatureStore(tmp_path / "crowd")
    extract_records(records, "fft", {"size": 2}, "native", store.root, workers=0, progress=False)
    key = store.keys()[0]
    # split the rows into one shard per image, as killed runs with --flush-every 1 leave them
    sha, features = store.read_features(key)
    for shard in store.live_shards(key.id):
        shard.path.unlink()
    with store.writer() as writer:
        writer.flush_rows = 1
        for h, row in zip(sha, features):
            writer.add_rows(key, features.shape[1], [h.decode()], row[None])
        writer._written.clear()  # as if a killed writer never got to merge
    assert len(store.live_shards(key.id)) == len(records)
    summary = extract_records(records, "fft", {"size": 2}, "native", store.root, workers=0, progress=False)
    assert summary.new_rows == 0
    assert len(store.live_shards(key.id)) == 1
    np.testing.assert_array_equal(store.read_features(key)[1], features)


def _flip(path: Path, dataset: str, index, value) -> None:
    import h5py

    with h5py.File(path, "r+") as handle:
        data = handle[dataset][()]
        data[index] = value
        handle[dataset][...] = data


@pytest.mark.parametrize("value", [1e38, np.nan], ids=["huge", "nan"])
def test_a_damaged_shard_is_refused_on_read_with_one_line(tmp_path, value):
    store = _store(tmp_path)
    shard = store.shard_paths()[0]
    _flip(shard, "features", (1, 2), value)
    with pytest.raises(StoreError, match=rf"{shard.name} is damaged \(checksum mismatch\); run fdt store verify"):
        store.load("fft")
    result = CliRunner().invoke(cli, ["tune", "--extractor", "fft", "--real", "real", "--fake", "fake", "--store", str(store.root),
                                      "--models", str(tmp_path / "models"), "--trials", "1", "--cv", "2", "--no-progress"])
    assert result.exit_code == 2 and "checksum mismatch" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "models").exists()


def test_a_flipped_catalog_label_is_refused(tmp_path):
    store = _store(tmp_path)
    (catalog,) = (store.root / "catalog").glob("*.h5")
    _flip(catalog, "label", 0, 1 - int(store.catalog().label[0]))
    result = CliRunner().invoke(cli, ["store", "ls", "--store", str(store.root)])
    assert result.exit_code == 2 and "checksum mismatch" in result.output
    assert any("checksum mismatch" in e for e in verify_store(store).errors)


def test_version_1_catalog_files_are_still_read(tmp_path):
    import h5py

    store = _store(tmp_path)
    (catalog,) = (store.root / "catalog").glob("*.h5")
    with h5py.File(catalog, "r+") as handle:  # what fdt 0.1 wrote: version 1, no checksum
        handle.attrs["encoding-version"] = "1"
        del handle.attrs["checksum"]
    assert len(store.catalog()) == 4 and verify_store(store).ok


def _crowded(tmp_path: Path) -> tuple[FeatureStore, np.ndarray]:
    """A key of three small shards that a writer has not merged yet."""
    store = _store(tmp_path, rows=6)
    key = store.keys()[0]
    sha, features = store.read_features(key)
    for shard in store.live_shards(key.id):
        shard.path.unlink()
    with store.writer() as writer:
        writer.flush_rows = 2
        for start in range(0, 6, 2):
            writer.add_rows(key, 4, [h.decode() for h in sha[start : start + 2]], features[start : start + 2])
        writer._written.clear()
    assert len(store.live_shards(key.id)) == 3
    return store, features


@pytest.mark.parametrize("reader", ["load", "verify", "failures"])
def test_readers_see_a_consistent_snapshot_while_a_compaction_runs(tmp_path, monkeypatch, reader):
    store, features = _crowded(tmp_path)
    listing = FeatureStore.shard_paths
    compacted = []

    def list_then_compact(self, key_id=None):
        paths = listing(self, key_id)
        if not compacted:  # another process compacts between this reader's listing and its reads
            compacted.append("running")
            compacted[0] = FeatureStore(self.root).compact()
        return paths

    monkeypatch.setattr(FeatureStore, "shard_paths", list_then_compact)
    if reader == "load":
        np.testing.assert_array_equal(np.sort(store.load("fft").X, axis=0), np.sort(features, axis=0))
    elif reader == "verify":
        report = verify_store(store)
        assert report.ok, report.errors
        assert report.rows == 6
    else:
        assert store.failures(store.keys()[0]) == []
    assert compacted == [1]


@pytest.mark.parametrize("command", [["store", "ls"], ["store", "info"], ["store", "compact"], ["tune", "--extractor", "fft", "--real", "a", "--fake", "b"]])
@pytest.mark.parametrize("marker", ["[]", '"x"', "{"])
def test_a_marker_that_is_not_an_object_is_one_line(tmp_path, command, marker):
    store = _store(tmp_path)
    (store.root / "fdt-store.json").write_text(marker)
    result = CliRunner().invoke(cli, [*command, "--store", str(store.root)])
    assert result.exit_code == 2 and "fdt-store.json is damaged" in result.output, result.output


def test_store_commands_agree_on_what_is_not_a_store(tmp_path, image_tree):
    missing = tmp_path / "nonexistent"
    result = CliRunner().invoke(cli, ["store", "verify", "--store", str(missing)])
    assert result.exit_code == 2 and "no store here" in result.output and "DAMAGED" not in result.output
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    ls = CliRunner().invoke(cli, ["store", "ls", "--store", str(foreign)])
    extract = CliRunner().invoke(cli, ["extract", str(image_tree), "-e", "fft", "--store", str(foreign), "-q"])
    assert ls.exit_code == extract.exit_code == 2
    assert "is not empty and is not an fdt feature store" in ls.output and "is not empty and is not an fdt feature store" in extract.output


def test_a_store_path_that_is_a_file_is_one_line(tmp_path, image_tree):
    path = tmp_path / "file"
    path.write_text("x")
    for command in (["store", "ls"], ["extract", str(image_tree), "-e", "fft", "-q"]):
        result = CliRunner().invoke(cli, [*command, "--store", str(path)])
        assert result.exit_code == 2 and ("is not a folder" in result.output or "is a file" in result.output), result.output


def test_shard_jobs_of_different_counts_at_once_are_refused(tmp_path, image_tree):
    from fdt.data import load_image_set
    from fdt.features_store.extraction import extract_records
    from fdt.features_store.errors import ShardSpecError

    store = FeatureStore(tmp_path / "s")
    records = load_image_set(image_tree)
    key = extract_records(records[:1], "fft", {"size": 2}, "native", store.root, workers=0, progress=False).key
    with store.writer(shared=True) as job:  # a 0/2 job, still running
        job.claim_count(key.id, 2)
        with pytest.raises(ShardSpecError, match="other jobs are writing this key as 2 shards"):
            extract_records(records, "fft", {"size": 2}, "native", store.root, workers=0, progress=False, shard=(0, 3))
        same_count = extract_records(records, "fft", {"size": 2}, "native", store.root, workers=0, progress=False, shard=(1, 2))
        assert same_count.new_rows > 0
    later = extract_records(records, "fft", {"size": 2}, "native", store.root, workers=0, progress=False, shard=(0, 3))
    assert later.key == key  # once the 2-shard jobs are gone, another count is fine
