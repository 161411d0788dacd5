"""fdt.atomic: a failed write leaves the old file and no temporary; concurrent writers never share a temporary."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fdt import atomic
from fdt.errors import DiskFullError, FdtError


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_writes_bytes_text_and_json_and_leaves_nothing_else(tmp_path):
    atomic.write_bytes(tmp_path / "a.bin", b"\x00\x01")
    atomic.write_text(tmp_path / "b.txt", "héllo\n")
    atomic.write_json(tmp_path / "c.json", {"x": [1, 2]})
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo\n"
    assert json.loads((tmp_path / "c.json").read_text()) == {"x": [1, 2]}
    assert _leftovers(tmp_path, {"a.bin", "b.txt", "c.json"}) == []


def test_a_failing_writer_leaves_the_old_target_and_no_temporary(tmp_path):
    target = tmp_path / "model.pt"
    target.write_bytes(b"old")
    with pytest.raises(ZeroDivisionError):
        with atomic.atomic_path(target) as temporary:
            temporary.write_bytes(b"half of the n")
            1 / 0
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path, {"model.pt"}) == []


def test_an_interrupt_mid_write_leaves_no_partial_target(tmp_path):
    target = tmp_path / "new.json"
    with pytest.raises(KeyboardInterrupt):
        with atomic.atomic_path(target) as temporary:
            temporary.write_text("{")
            raise KeyboardInterrupt
    assert not target.exists() and _leftovers(tmp_path, set()) == []


def test_the_temporary_goes_in_the_named_folder_and_the_target_keeps_the_umask_mode(tmp_path):
    scratch = tmp_path / ".tmp"
    scratch.mkdir()
    with atomic.atomic_path(tmp_path / "x.h5", temp_dir=scratch) as temporary:
        assert temporary.parent == scratch and temporary.exists()
        temporary.write_bytes(b"data")
    assert (tmp_path / "x.h5").read_bytes() == b"data" and list(scratch.iterdir()) == []
    mode = (tmp_path / "x.h5").stat().st_mode & 0o777
    assert mode & 0o044, "the target must be readable like any file open() creates, not 0600 like mkstemp's"


def test_a_full_disk_is_a_one_line_fdt_error_or_the_callers_own(tmp_path):
    def fill_disk(_):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError, match=r"no space left on device while writing .*out\.txt: free space"):
        with atomic.atomic_path(tmp_path / "out.txt") as temporary:
            fill_disk(temporary)
    assert _leftovers(tmp_path, set()) == []

    class MineError(FdtError):
        pass

    # HDF5 reports it as text with the errno in it, not as OSError.errno
    with pytest.raises(MineError, match="file size limit exceeded at out.h5"):
        with atomic.atomic_path(tmp_path / "out.h5", full=lambda reason, target: MineError(f"{reason} at {target.name}")):
            raise RuntimeError("Can't write data (file write failed: errno = 27, error message = 'File too large')")
    assert _leftovers(tmp_path, set()) == []


def test_other_os_errors_keep_their_type(tmp_path):
    with pytest.raises(PermissionError):
        with atomic.atomic_path(tmp_path / "out.txt"):
            raise PermissionError(errno.EACCES, "Permission denied")


def test_a_symbolic_link_at_a_temporary_name_is_never_written_through(tmp_path, monkeypatch):
    precious = tmp_path / "precious"
    precious.write_text("mine")
    names = iter(["aaaa0000", "bbbb1111"])
    monkeypatch.setattr(atomic.secrets, "token_hex", lambda _: next(names))
    (tmp_path / f".t.txt.{os.getpid()}.aaaa0000.tmp").symlink_to(precious)
    atomic.write_text(tmp_path / "t.txt", "new")
    assert precious.read_text() == "mine" and (tmp_path / "t.txt").read_text() == "new"


def _write_many(args: tuple[str, int]) -> None:
    target, writer = args
    for round_ in range(20):
        atomic.write_bytes(target, bytes([writer]) * 50_000 + round_.to_bytes(1, "big"))


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_concurrent_writers_never_collide_and_the_target_is_always_whole(tmp_path, kind):
    target = tmp_path / "shared.bin"
    jobs = [(str(target), w) for w in range(4)]
    if kind == "threads":  # one pid: a pid-only temporary name would be shared
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(_write_many, jobs))
    else:
        with multiprocessing.get_context("fork").Pool(4) as pool:
            pool.map(_write_many, jobs)
    data = target.read_bytes()
    assert len(data) == 50_001 and len(set(data[:-1])) == 1, "one writer's whole file, never a mix"
    assert _leftovers(tmp_path, {"shared.bin"}) == []
