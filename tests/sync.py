"""Synchronisation points for tests that kill a process or hold a lock: events and pipes, never a sleep.

A test that sleeps "long enough" and then acts races with the code it tests: on a
loaded machine the extraction may finish before the kill, or the lock may be
released before the second writer ever waited, and the test passes without
testing anything. These helpers make the code under test tell the test when it
has reached the point the test needs.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterable

# Runs the fdt CLI with StoreWriter's shard flush instrumented: after each shard file
# is in place it writes one byte to the pipe; after the Nth it holds there (the writer
# lock taken, DataLoader workers alive) until the test kills the process.
_CHILD = r"""
import os, sys, threading
from fdt.features_store.writer import StoreWriter

fd, stop_after = int(sys.argv[1]), int(sys.argv[2])
flush_one, written = StoreWriter._flush_one, [0]

def reporting(self, buffer):
    has_rows = bool(buffer.sha or buffer.failed)
    flush_one(self, buffer)
    if has_rows:
        written[0] += 1
        os.write(fd, b"s")
        if written[0] >= stop_after:
            threading.Event().wait()

StoreWriter._flush_one = reporting
from fdt.cli import cli
cli.main(sys.argv[3:], prog_name="fdt")
"""


def start_fdt_stopping_after_shards(args: list[str], shards: int, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, int]:
    """Start ``fdt ARGS`` in a child that stops for good once it has written ``shards`` shard files; returns it and the pipe to read."""
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(write_end), str(shards), *args], env=env, pass_fds=(write_end,),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    os.close(write_end)
    return process, read_end


def wait_for_shards(process: subprocess.Popen, pipe: int, shards: int, timeout: float = 180) -> None:
    """Block until the child reports ``shards`` written shards; fail with its stderr if it ends first."""
    deadline, seen = time.monotonic() + timeout, 0
    while seen < shards:
        ready, _, _ = select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no shard written within {timeout} s")
        data = os.read(pipe, shards - seen)
        if not data:  # the child closed the pipe: it ended
            raise AssertionError(f"fdt ended after {seen} shard(s): {process.communicate()[1].decode()}")
        seen += len(data)
    os.close(pipe)


def wait_until_exited(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait (on pidfds, not by polling) until every pid has exited; returns those still alive after ``timeout``."""
    deadline, alive = time.monotonic() + timeout, []
    for pid in pids:
        try:
            handle = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            ready, _, _ = select.select([handle], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                alive.append(pid)
        finally:
            os.close(handle)
    return alive


class LockWait:
    """Replaces the store lock's retry pause: the first pause sets :attr:`waiting`, and every pause returns once :attr:`released` is set.

    So a test knows a writer is really waiting before it lets go of the lock, and the
    writer retries as soon as it does.
    """

    def __init__(self, timeout: float = 60) -> None:
        self.waiting = threading.Event()
        self.released = threading.Event()
        self.timeout = timeout

    def pause(self, seconds: float) -> None:
        self.waiting.set()
        if not self.released.wait(self.timeout):
            raise AssertionError("the lock was never released")

    def install(self, monkeypatch) -> "LockWait":
        clock = types.SimpleNamespace(monotonic=time.monotonic, sleep=self.pause)
        monkeypatch.setattr("fdt.features_store.locking.time", clock)
        return self
