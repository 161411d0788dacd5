"""Causes 3 and 4: transient failures are retried; recorded failures are listed and cleared; a same-stat overwrite is seen."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from fdt.cli import cli
from fdt.data import load_image_set
from fdt.features_store import FeatureStore
from fdt.features_store.extraction import extract_records
from tests.conftest import write_images


def _extract(data: Path, store: Path, **options):
    return extract_records(load_image_set(data), "fft", {"size": 2}, "native", store, workers=0, progress=False, **options)


def test_a_file_that_changed_during_extraction_is_retried_on_the_next_run(tmp_path, monkeypatch):
    data = tmp_path / "data"
    write_images(data / "real", 3, seed=1)
    write_images(data / "fake", 3, seed=2)
    victim = data / "fake" / "img0001.png"
    original = victim.read_bytes()
    from fdt.features_store import extraction

    real_read = extraction._DecodeDataset._decode

    def changed_mid_read(self, item):  # the file is replaced between hashing and decoding
        if item.path == str(victim):
            return extraction._Decoded(item.index, hashlib.sha256(original).hexdigest(), item.path, [(0, None, "file changed while it was being extracted")])
        return real_read(self, item)

    monkeypatch.setattr(extraction._DecodeDataset, "_decode", changed_mid_read)
    first = _extract(data, tmp_path / "s")
    assert first.failed == 1 and first.new_rows == 5
    monkeypatch.undo()
    assert victim.read_bytes() == original
    listed = CliRunner().invoke(cli, ["store", "failures", "--store", str(tmp_path / "s")])
    assert listed.exit_code == 0 and str(victim) in listed.stdout and "retried by the next fdt extract" in listed.stdout
    second = _extract(data, tmp_path / "s")
    assert second.new_rows == 1 and second.failed == 0
    store = FeatureStore(tmp_path / "s")
    assert store.failures(store.keys()[0]) == []
    assert len(store.load("fft").X) == 6


def test_failures_are_listed_and_cleared(tmp_path):
    data = tmp_path / "data"
    write_images(data / "real", 2, seed=1)
    (data / "real" / "broken.png").write_bytes(b"not an image")
    write_images(data / "fake", 2, seed=2)
    first = _extract(data, tmp_path / "s")
    assert first.failed == 1
    again = _extract(data, tmp_path / "s")
    assert again.new_rows == 0 and again.failed == 1  # a decoding failure is not retried
    listed = CliRunner().invoke(cli, ["store", "failures", "--store", str(tmp_path / "s")])
    assert "broken.png\tnot an image file of a known format" in listed.stdout and "retried" not in listed.stdout
    cleared = CliRunner().invoke(cli, ["store", "failures", "--clear", "--store", str(tmp_path / "s")])
    assert cleared.exit_code == 0 and "cleared the failures of 1 key(s)" in cleared.stdout
    store = FeatureStore(tmp_path / "s")
    assert store.failures(store.keys()[0]) == []
    assert len(store.load("fft").X) == 4
    third = _extract(data, tmp_path / "s")
    assert third.failed == 1 and third.new_rows == 0  # tried again, and recorded again


def _overwrite_keeping_stat(target: Path, source: Path) -> None:
    """``cp -p`` of an equal-size file: same inode, size and mtime; only the ctime moves."""
    before = target.stat()
    assert source.stat().st_size == before.st_size
    with open(target, "r+b") as handle:
        handle.write(source.read_bytes())
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = target.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)


def test_an_in_place_overwrite_that_keeps_size_mtime_and_inode_is_hashed_again(tmp_path):
    import time

    from fdt.data import sha256_file

    data = tmp_path / "data"
    write_images(data / "real", 2, seed=1)
    write_images(data / "fake", 2, seed=2)
    target, other = data / "real" / "img0000.png", tmp_path / "other.png"
    write_images(tmp_path / "o", 1, seed=9)
    shutil.copy(tmp_path / "o" / "img0000.png", other)
    if other.stat().st_size != target.stat().st_size:  # PNGs of equal-size noise may differ by a few bytes
        other.write_bytes(other.read_bytes()[: target.stat().st_size].ljust(target.stat().st_size, b"\0"))
    _extract(data, tmp_path / "s")
    time.sleep(0.05)
    _overwrite_keeping_stat(target, other)
    again = _extract(data, tmp_path / "s")
    index = [str(r.path) for r in load_image_set(data)].index(str(target))
    assert again.hashes[index] == sha256_file(target)
