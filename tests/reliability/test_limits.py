"""Causes 13 and 14: an output size beyond --max-pixels is refused up front; a full disk is one line, keeping saved rows."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fdt.cli import cli
from tests.conftest import write_images


def test_a_huge_resolution_is_refused_before_any_work(image_tree, tmp_path):
    result = CliRunner().invoke(cli, ["extract", str(image_tree), "-e", "fft", "-r", "40000", "--store", str(tmp_path / "s"), "-q"])
    assert result.exit_code == 2 and "40000x40000 = 1600000000 pixels per image, above the limit" in result.output
    assert not (tmp_path / "s").exists()
    small = CliRunner().invoke(cli, ["extract", str(image_tree), "-e", "fft", "-p", "size=2", "-r", "64", "--max-pixels", "1000", "--store", str(tmp_path / "s"), "-q"])
    assert small.exit_code == 2 and "64x64 = 4096 pixels" in small.output


_CHILD = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, as a full disk fails with ENOSPC
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
from fdt.cli import cli
cli(sys.argv[1:], prog_name="fdt")
"""


def _fdt_with_file_limit(limit: int, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", _CHILD.format(limit=limit), *args], capture_output=True, text=True, env=env, timeout=300)


def test_a_full_disk_cuts_the_run_short_with_one_line_and_keeps_saved_rows(tmp_path):
    data = tmp_path / "data"
    write_images(data / "real", 12, seed=1)
    write_images(data / "fake", 12, seed=2)
    store = tmp_path / "s"
    # shards of 4 rows of 32x32 fft features (16 KB) fit under the limit; the merged shard of 24 rows (96 KB) does not
    result = _fdt_with_file_limit(40_000, "extract", str(data), "-e", "fft", "-p", "size=32", "--store", str(store), "--workers", "0", "--batch-size", "4", "--flush-every", "4", "-q")
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "file size limit exceeded while writing" in line and str(store) in line and "rows already saved are kept" in line
    verify = subprocess.run([sys.executable, "-m", "fdt", "store", "verify", "--store", str(store)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "24 feature rows" in verify.stdout
    compact = _fdt_with_file_limit(40_000, "store", "compact", "--store", str(store))
    assert compact.returncode == 2 and "file size limit exceeded" in compact.stderr and "Traceback" not in compact.stderr
    resumed = subprocess.run([sys.executable, "-m", "fdt", "extract", str(data), "-e", "fft", "-p", "size=32", "--store", str(store), "--workers", "0", "-q"], capture_output=True, text=True)
    assert resumed.returncode == 0 and "0 new rows, 24 reused" in resumed.stdout, resumed.stderr


def test_no_space_left_on_a_small_tmpfs(tmp_path):
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("unprivileged user and mount namespaces are not available here: the RLIMIT_FSIZE test covers the same path")
    data = tmp_path / "data"
    write_images(data / "real", 6, seed=1)
    write_images(data / "fake", 6, seed=2)
    mount = tmp_path / "small"
    mount.mkdir()
    script = (
        f"mount -t tmpfs -o size=64k tmpfs {mount} && "
        f"{sys.executable} -m fdt extract {data} -e fft -p size=64 --store {mount}/s --workers 0 --batch-size 2 --flush-every 2 -q; echo rc=$?"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert "rc=2" in result.stdout, result.stdout + result.stderr
    (line,) = [l for l in result.stderr.splitlines() if l.strip()]
    assert "no space left on device while writing" in line and "Traceback" not in result.stderr
