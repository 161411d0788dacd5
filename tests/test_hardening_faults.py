"""Faults from outside: Ctrl-C mid-extraction, unreadable images, read-only output folders.

Permission checks need a process without root's override of file modes: as root,
the commands run under ``setpriv`` with CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
dropped, so ``chmod 000`` means to them what it means to any user.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_images
from tests.sync import start_fdt_stopping_after_shards, wait_for_shards, wait_until_exited

ROOT = Path(__file__).parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                children.append(int(entry.name))
        except OSError:
            continue
    return children


def test_ctrl_c_mid_extraction_keeps_a_readable_store_that_a_rerun_completes(tmp_path):
    write_images(tmp_path / "data" / "real", 12, seed=1)
    write_images(tmp_path / "data" / "fake", 12, seed=2)
    args = ["extract", str(tmp_path / "data"), "-e", "fft", "-p", "size=8", "--store", str(tmp_path / "s"),
            "--batch-size", "4", "--flush-every", "4", "--workers", "1", "-q"]
    process, pipe = start_fdt_stopping_after_shards(args, 2, ENV)
    wait_for_shards(process, pipe, 2)  # two shards written, a decoding worker alive
    workers = _children(process.pid)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and stderr.decode().strip() == "Aborted!"  # 128 + SIGINT, as shells report it; no traceback
    assert workers and wait_until_exited(workers, timeout=30) == []
    run = lambda *a: subprocess.run([sys.executable, "-m", "fdt", *a], capture_output=True, text=True, env=ENV)  # noqa: E731
    verify = run("store", "verify", "--store", str(tmp_path / "s"))
    assert verify.returncode == 0 and "8 feature rows" in verify.stdout, verify.stdout + verify.stderr
    resumed = run(*args)
    assert resumed.returncode == 0 and "16 new rows, 8 reused, 0 failed" in resumed.stdout, resumed.stderr


def _as_a_user() -> list[str]:
    """The command prefix that makes file modes bind (nothing for a non-root user)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file modes cannot be made to bind")
    drop = "-dac_override,-dac_read_search"
    return [setpriv, "--bounding-set", drop, "--inh-caps", drop, "--"]


def _fdt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*_as_a_user(), sys.executable, "-m", "fdt", *args], capture_output=True, text=True, env=ENV, timeout=300)


def test_an_unreadable_image_is_skipped_with_its_reason(tmp_path):
    write_images(tmp_path / "data" / "real", 3, seed=1)
    write_images(tmp_path / "data" / "fake", 3, seed=2)
    locked = tmp_path / "data" / "fake" / "img0001.png"
    locked.chmod(0)
    result = _fdt("extract", str(tmp_path / "data"), "-e", "fft", "-p", "size=4", "--store", str(tmp_path / "s"), "--workers", "0", "-q")
    assert result.returncode == 0, result.stderr
    assert f"skipped {locked}: cannot read file (Permission denied)" in result.stderr
    assert "5 new rows, 0 reused, 1 failed" in result.stdout


@pytest.fixture(scope="module")
def read_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``data`` (6 real, 6 fake), a store of their fft features, and ``locked/``, a folder no one may write in."""
    from fdt.data import load_image_set
    from fdt.features_store.extraction import extract_records

    root = tmp_path_factory.mktemp("read_only")
    write_images(root / "data" / "real", 6, seed=1)
    write_images(root / "data" / "fake", 6, seed=2)
    extract_records(load_image_set(root / "data"), "fft", {"size": 4}, "native", root / "store", workers=0, progress=False)
    (root / "locked").mkdir()
    (root / "locked").chmod(0o555)
    return root


@pytest.mark.parametrize(
    "command",
    [
        ["audit", "{data}", "--out", "{locked}/audit"],
        ["report", "quality", "--extractor", "fft", "--store", "{store}", "--real", "real", "--fake", "fake", "--cv", "2", "--k", "2",
         "--kid-subsets", "2", "--kid-subset-size", "4", "--resamples", "10", "--no-progress", "--out", "{locked}/quality"],
        ["models", "train-autoencoder", "{data}", "--size", "16", "--epochs", "1", "--device", "cpu", "--out", "{locked}/ae.pt"],
    ],
    ids=["audit", "report-quality", "train-autoencoder"],
)
def test_a_read_only_output_folder_is_one_line(read_only, command):
    places = {"data": read_only / "data", "store": read_only / "store", "locked": read_only / "locked"}
    before = sorted(p.name for p in read_only.rglob("*"))
    result = _fdt(*(part.format(**places) for part in command))
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: {read_only / 'locked'}") and last.endswith("Permission denied"), result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in read_only.rglob("*")) == before
