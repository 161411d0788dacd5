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
