"""Causes 12 and 19 (manifests, splits, sources): each bad input is one line naming the file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fdt.cli import cli
from fdt.data import DataError, from_manifest
from fdt.features_store import FeatureStore
from fdt.data import ImageRecord
from fdt.features_store.featureset import ExtractorKey
from tests.conftest import write_images

HEADER = b"path,source,label,group\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (HEADER + b"a.png,real,0,\nb.png\n", r"m.csv:3: a row needs path, source and label; this one has 1 field"),
        (HEADER + b'a.png,real,0,\n"b.png,fake,1,\n', r"m.csv:\d+: not valid CSV"),
        (HEADER + b"a.png,real,0,\ncaf\xe9.png,fake,1,\n", r"m.csv:3: not UTF-8 text \(byte 0xe9\)"),
        (HEADER + b"a.png,real,0,\nb\x00.png,fake,1,\n", r"m.csv:3: a NUL byte"),
        (HEADER + b"a.png,real,0,\nb.png,,1,\n", r"m.csv:3: empty source"),
        (HEADER + b"a.png,real,0,\n,fake,1,\n", r"m.csv:3: empty path"),
    ],
    ids=["only-a-path", "unterminated-quote", "latin-1", "nul", "empty-source", "empty-path"],
)
def test_a_bad_manifest_row_is_one_line_with_its_line_number(tmp_path, body, message):
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(body)
    with pytest.raises(DataError, match=message):
        from_manifest(manifest)
    result = CliRunner().invoke(cli, ["extract", str(manifest), "-e", "fft", "--store", str(tmp_path / "s")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "s").exists()


def test_an_excel_bom_is_read(tmp_path):
    write_images(tmp_path, 1)
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(b"\xef\xbb\xbf" + HEADER + b"img0000.png,real,0,\n")
    (record,) = from_manifest(manifest)
    assert record.source == "real" and Path(record.path).name == "img0000.png"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    fs = FeatureStore(tmp_path / "store")
    rng = np.random.default_rng(0)
    records = [ImageRecord(f"/d/{i}.png", "real" if i < 10 else "fake", int(i >= 10), f"g{i}") for i in range(20)]
    fs.write(ExtractorKey("fft", {"size": 2}, "none", "native"), [f"{i:064x}" for i in range(20)], rng.normal(size=(20, 4)), records)
    return fs.root


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--split", "50/50/50"], "must add up to 100"),
        (["--fake", "fake,fake"], "--fake names fake twice"),
        (["--real", "fake"], "both --real and --fake"),
    ],
    ids=["split-over-100", "duplicate-fake", "real-is-fake"],
)
def test_tune_refuses_contradictory_choices(store, tmp_path, args, message):
    base = {"--real": "real", "--fake": "fake"}
    options = dict(zip(args[::2], args[1::2]))
    argv = ["tune", "--extractor", "fft", "--trials", "1", "--cv", "2", "--no-progress", "--store", str(store), "--models", str(tmp_path / "m")]
    for name, value in {**base, **options}.items():
        argv += [name, value]
    if "--split" in options:
        argv += ["--split", options["--split"]]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "m").exists()
