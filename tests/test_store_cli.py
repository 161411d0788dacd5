"""``fdt store ls``, ``info`` and ``compact``: what they print about a store the test wrote, and what compaction changes."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from fdt.cli import cli
from fdt.features_store import FeatureStore
from fdt.features_store.verify import verify_store
from tests.conftest import write_images
from tests.sync import start_fdt_stopping_after_shards, wait_for_shards


def fdt(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """4 real and 3 fake PNGs plus one file that is not an image, as ``fft`` (size 4) features."""
    root = tmp_path_factory.mktemp("store-cli")
    write_images(root / "data" / "real", 4, seed=1)
    write_images(root / "data" / "fake", 3, seed=2)
    (root / "data" / "fake" / "broken.png").write_bytes(b"not a png")
    result = fdt("extract", str(root / "data"), "-e", "fft", "-p", "size=4", "--workers", "0", "-q", "--store", str(root / "fs"))
    assert result.exit_code == 0, result.output
    return root / "fs"


def test_ls_lists_each_key_with_its_rows_and_failures_and_the_sources(store):
    (key,) = FeatureStore(store).keys()
    result = fdt("store", "ls", "--store", str(store))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{key.id}         7 rows     1 failed  {key.describe()}",
        "sources: fake (fake, 4), real (real, 4)",  # the catalog lists the unreadable file too
    ]


def test_info_describes_the_store_and_a_key_by_its_id_prefix(store):
    (key,) = FeatureStore(store).keys()
    result = fdt("store", "info", key.id[:6], "--store", str(store))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert re.fullmatch(rf"store: {re.escape(str(store))} \(fdt\.feature_store v\S+, created \S+, \d+\.\d MB\)", lines[0]), lines[0]
    assert lines[1] == "catalog rows: 8"
    assert lines[3:11] == [
        f"key {key.id}",
        "  extractor:  fft",
        f"  params:     {{\"grid\": \"band-mean\", \"profile\": \"none\", \"size\": 4}}",
        "  weights:    none",
        "  resolution: native",
        "  perturb:    none (clean images)",
        "  rows:       7 in 1 shard(s), 1 failed images",
        "  features:   16 per row",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [(("store", "info", "zzzz"), "no key 'zzzz'"), (("store", "ls", "--store", "nowhere"), "no fdt feature store at nowhere")],
)
def test_a_wrong_key_or_store_is_one_line_with_exit_code_2(store, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = fdt(*args, *(("--store", str(store)) if "--store" not in args else ()))
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_compact_merges_the_shards_a_killed_writer_left(tmp_path):
    write_images(tmp_path / "data" / "real", 6, seed=3)
    write_images(tmp_path / "data" / "fake", 6, seed=4)
    root = tmp_path / "fs"
    args = ["extract", str(tmp_path / "data"), "-e", "fft", "-p", "size=4", "--workers", "0", "-q", "--batch-size", "2", "--flush-every", "2", "--store", str(root)]
    process, pipe = start_fdt_stopping_after_shards(args, 3, {**os.environ, "OMP_NUM_THREADS": "1"})
    wait_for_shards(process, pipe, 3)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    store = FeatureStore(root)
    (key,) = store.keys()
    assert len(store.live_shards(key.id)) == 3 and len(store.read_features(key)[0]) == 6
    result = fdt("store", "compact", "--store", str(root))
    assert (result.exit_code, result.output) == (0, "merged the shards of 1 key(s)\n")
    assert len(store.live_shards(key.id)) == 1 and len(store.read_features(key)[0]) == 6
    assert "  rows:       6 in 1 shard(s), 0 failed images" in fdt("store", "info", "--store", str(root)).output
    assert verify_store(store).ok
    assert fdt("store", "compact", "--store", str(root)).output == "merged the shards of 0 key(s)\n"
