"""Causes 10, 19 (folders): only regular files are read; FIFOs, devices and bad links are reported, never hung on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from fdt.cli import cli
from fdt.data import ImageDecodeError, from_folder, load_rgb, sha256_file
from tests.conftest import write_images


def _manifest(folder: Path, paths: list[str]) -> Path:
    manifest = folder / "m.csv"
    manifest.write_text("path,source,label,group\n" + "".join(f"{p},real,0,\n" for p in paths[:2]) + "".join(f"{p},fake,1,\n" for p in paths[2:]))
    return manifest


def test_a_fifo_and_dev_zero_in_a_manifest_are_refused_not_hung_on(tmp_path):
    images = [str(p) for p in write_images(tmp_path / "imgs", 3)]
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    manifest = _manifest(tmp_path, [images[0], str(fifo), images[1], "/dev/zero", images[2]])
    result = CliRunner().invoke(cli, ["extract", str(manifest), "-e", "fft", "-p", "size=2", "--store", str(tmp_path / "s"), "--workers", "0", "-q"])
    assert result.exit_code == 0, result.output
    assert f"skipped {fifo}: cannot read file (not a regular file (a FIFO))" in result.output
    assert "skipped /dev/zero: cannot read file (not a regular file (a character device))" in result.output
    assert "3 new rows" in result.output


def test_hashing_and_decoding_refuse_non_regular_files(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="a FIFO"):
        sha256_file(fifo)
    with pytest.raises(ImageDecodeError, match="a FIFO"):
        load_rgb(fifo)


def test_a_folder_reports_dangling_and_looping_links_and_fifos(tmp_path):
    folder = tmp_path / "data"
    write_images(folder / "real", 2, seed=1)
    write_images(folder / "fake", 2, seed=2)
    os.symlink(tmp_path / "gone.png", folder / "fake" / "dangling.png")
    os.symlink(folder / "fake" / "loop.png", folder / "fake" / "loop.png")
    os.mkfifo(folder / "fake" / "pipe.png")
    names = sorted(Path(r.path).name for r in from_folder(folder))
    assert {"dangling.png", "loop.png", "pipe.png"} <= set(names)
    result = CliRunner().invoke(cli, ["extract", str(folder), "-e", "fft", "-p", "size=2", "--store", str(tmp_path / "s"), "--workers", "0", "-q"])
    assert result.exit_code == 0, result.output
    for name, reason in (("dangling.png", "No such file"), ("loop.png", "Too many levels of symbolic links"), ("pipe.png", "a FIFO")):
        assert any(line.startswith("skipped") and name in line and reason in line for line in result.output.splitlines()), result.output
