"""Remembered file hashes, so a re-run does not read every image again.

Like git's index, a file's SHA-256 is reused while its path, size, modification
time (ns), inode and status-change time (ns) are unchanged. The ctime matters:
``cp -p`` of an equal-size file keeps size, mtime and inode, but the kernel sets
the ctime of every write and no user call can set it back. The cache lives in the store folder
(``.hash-cache.sqlite``, ignored by readers of the format) and is only a speed-up:
whatever is extracted is hashed again from the bytes the decoder reads, so a
stale entry can never put wrong features in the store.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Sequence

CACHE_NAME = ".hash-cache.sqlite"
Stat = tuple[int, int, int, int]  # size, mtime_ns, inode, ctime_ns
_TABLE = "files_v2"  # v1 (fdt 0.1) had no ctime and text paths; it is left unread


def file_stat(path: str) -> Stat | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns


def _connect(store_root: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(store_root / CACHE_NAME, timeout=60)
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {_TABLE} (path BLOB PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER, ctime_ns INTEGER, sha256 TEXT)"
    )
    return connection


def _key(path: str) -> bytes:
    """A path as the bytes the OS knows it by: names that are not UTF-8 (surrogate escapes) round-trip."""
    return os.fsencode(path)


def lookup(store_root: Path, paths: Sequence[str], stats: Sequence[Stat | None]) -> list[str]:
    """The remembered hash of each path whose stat still matches, else ``""``; nothing when the store does not exist yet."""
    if not (store_root / CACHE_NAME).is_file():
        return [""] * len(paths)
    with _connect(store_root) as connection:
        rows = {bytes(row[0]): row[1:] for row in connection.execute(f"SELECT path, size, mtime_ns, inode, ctime_ns, sha256 FROM {_TABLE}")}
    found = []
    for path, stat in zip(paths, stats):
        row = rows.get(_key(path))
        found.append(row[4] if row is not None and stat is not None and tuple(row[:4]) == stat else "")
    return found


def remember(store_root: Path, paths: Sequence[str], stats: Sequence[Stat | None], hashes: Sequence[str]) -> None:
    """Store the hashes of readable files; called by a writer of the store."""
    rows = [(_key(path), *stat, sha) for path, stat, sha in zip(paths, stats, hashes) if stat is not None and sha]
    try:
        connection = _connect(store_root)
        try:
            with connection:
                connection.executemany(f"INSERT OR REPLACE INTO {_TABLE} VALUES (?, ?, ?, ?, ?, ?)", rows)
        finally:
            connection.close()
    except sqlite3.OperationalError as error:
        if "full" not in str(error):
            raise
        from fdt.features_store.errors import StoreError

        raise StoreError(f"no space left on device while writing {store_root / CACHE_NAME}: the run was cut short; free space and run again") from None
