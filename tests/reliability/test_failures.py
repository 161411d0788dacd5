"""Causes 3 and 4: transient failures are retried; recorded failures are listed and cleared; a same-stat overwrite is seen."""

from __future__ import annotations

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

    real_read = extraction._DecodeDataset.__getitem__

    def changed_mid_read(self, index):  # the file is replaced between hashing and decoding
        sha, path = self.items[index]
        if path == str(victim):
            return sha, path, None, "file changed while it was being extracted"
        return real_read(self, index)

    monkeypatch.setattr(extraction._DecodeDataset, "__getitem__", changed_mid_read)
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
