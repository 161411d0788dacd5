"""Remembered file hashes, so a re-run does not read every image again.

Like git's index, a file's SHA-256 is reused while its path, size, modification
time (ns) and inode are unchanged. The cache lives in the store folder
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
Stat = tuple[int, int, int]  # size, mtime_ns, inode


def file_stat(path: str) -> Stat | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns, info.st_ino


def _connect(store_root: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(store_root / CACHE_NAME, timeout=60)
    connection.execute("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER, sha256 TEXT)")
    return connection


def lookup(store_root: Path, paths: Sequence[str], stats: Sequence[Stat | None]) -> list[str]:
    """The remembered hash of each path whose stat still matches, else ``""``; nothing when the store does not exist yet."""
    if not (store_root / CACHE_NAME).is_file():
        return [""] * len(paths)
    with _connect(store_root) as connection:
        rows = {row[0]: row[1:] for row in connection.execute("SELECT path, size, mtime_ns, inode, sha256 FROM files")}
    found = []
    for path, stat in zip(paths, stats):
        row = rows.get(path)
        found.append(row[3] if row is not None and stat is not None and tuple(row[:3]) == stat else "")
    return found


def remember(store_root: Path, paths: Sequence[str], stats: Sequence[Stat | None], hashes: Sequence[str]) -> None:
    """Store the hashes of readable files; called by a writer of the store."""
    rows = [(path, *stat, sha) for path, stat, sha in zip(paths, stats, hashes) if stat is not None and sha]
    connection = _connect(store_root)
    try:
        with connection:
            connection.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)", rows)
    finally:
        connection.close()
