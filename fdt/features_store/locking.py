"""Who may write a feature store: ``flock`` on ``<root>/.lock`` and on named claims under ``<root>/.locks/``.

One exclusive writer at a time, or several shared ones (the jobs of a sharded
extraction), each claiming what it writes. A lock file holds a line naming its
holder, so a refused writer can say who is in the way.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path
from typing import Callable

from fdt.features_store.errors import ShardSpecError, StoreError, StoreLockedError
from fdt.features_store.fileformat import now

COMPACTING = "compaction by "  # how a shard job that compacts names itself in the lock file
_HELD_LOCKS: set[int] = set()  # file descriptors of writer locks this process holds


def release_inherited_locks() -> None:
    """Close writer-lock descriptors inherited through ``fork``; call first thing in a child process.

    A ``flock`` belongs to the open file, which a forked child shares: without this,
    a DataLoader worker outliving its killed parent would keep the store locked.
    """
    for fd in list(_HELD_LOCKS):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD_LOCKS.clear()


def open_regular(path: Path, flags: int) -> int:
    """``os.open`` that never follows a final symbolic link (a race after :func:`refuse_symlinks`)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise StoreError(f"{path} is a symbolic link; fdt never writes through links inside a store: remove it") from None
        raise


class WriterLocks:
    """The locks one store writer holds, taken one by one and released together."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._handles: list = []

    def take_store(self, shared: bool, wait: float) -> None:
        """The store lock: exclusive, or shared with other shard jobs; waits up to ``wait`` seconds for a conflicting writer."""
        self._take(self.root / ".lock", fcntl.LOCK_SH if shared else fcntl.LOCK_EX, wait, self._store_busy)

    def try_exclusive(self) -> bool:
        """Take the store lock alone, to compact, if no other writer holds it now."""
        try:
            self._take(self.root / ".lock", fcntl.LOCK_EX, 0.0, str, role=COMPACTING)
        except StoreLockedError:
            return False
        return True

    def claim(self, name: str, wait: float) -> None:
        """Hold the lock named ``name`` (e.g. one shard of one key) until released; refuse if another process holds it."""
        folder = self.root / ".locks"
        folder.mkdir(exist_ok=True)
        self._take(folder / name, fcntl.LOCK_EX, wait, lambda holder: f"{name} is already being written by {holder or 'another process'}")

    def claim_count(self, key_id: str, count: int, wait: float) -> None:
        """Hold a shared claim on "key ``key_id`` in ``count`` shards"; refuse if live jobs split it into another count.

        Shards of different counts overlap (image ``h`` is in shard ``h mod 2`` of 2
        and ``h mod 3`` of 3), so jobs of ``--shard I/2`` and ``--shard J/3`` at once
        would write the same rows twice.
        """
        folder = self.root / ".locks"
        folder.mkdir(exist_ok=True)
        mine = f"{key_id}-of-{count}"
        self._take(folder / mine, fcntl.LOCK_SH, wait, str)
        for other in sorted(folder.glob(f"{key_id}-of-*")):
            if other.name == mine:
                continue
            with os.fdopen(open_regular(other, os.O_RDWR), "r+") as probe:
                try:
                    fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise ShardSpecError(
                        f"--shard I/{count}: other jobs are writing this key as {other.name.rpartition('-of-')[2]} shards; "
                        f"every job of one store and key must use the same N"
                    ) from None
                fcntl.flock(probe, fcntl.LOCK_UN)

    def release(self) -> None:
        """Let go of every lock held."""
        for handle in self._handles:
            _HELD_LOCKS.discard(handle.fileno())
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        self._handles = []

    def _store_busy(self, holder: str) -> str:
        holder = holder or "sharded extraction jobs"
        return f"feature store {self.root} is being written by {holder}; wait for it to finish or pass --wait SECONDS"

    def _take(self, path: Path, mode: int, wait: float, message: Callable[[str], str], role: str = "") -> None:
        """Take ``flock`` ``mode`` on ``path``, waiting up to ``wait`` seconds, or raise ``message(holder)``.

        A writer that holds the lock only to compact (the last of several shard jobs)
        is always waited for: it is brief, and refusing would fail shard jobs that
        merely started a moment late.
        """
        handle = os.fdopen(open_regular(path, os.O_RDWR | os.O_CREAT | os.O_APPEND), "a+")
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.seek(0)
                holder = "; ".join(handle.read().split("\n")).strip("; ")
                if time.monotonic() >= deadline and not holder.startswith(COMPACTING):
                    handle.close()
                    raise StoreLockedError(message(holder)) from None
                time.sleep(0.2)
        if mode == fcntl.LOCK_EX:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{role}pid {os.getpid()} on {os.uname().nodename} since {now()}")
            handle.flush()
        self._handles.append(handle)
        _HELD_LOCKS.add(handle.fileno())
