"""Deterministic, disjoint shards of an image set, by image content.

Image ``h`` (hex SHA-256) belongs to shard ``int(h[:16], 16) % N``. N jobs of any
scheduler (a SLURM array, a Kubernetes indexed job, Dask tasks) that each take
one shard cover the set exactly once, whatever order the files are listed in
and however many copies of an image the set holds.
"""

from __future__ import annotations

from fdt.features_store.errors import ShardSpecError


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)``, with ``0 <= I < N``."""
    index, sep, count = text.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        shard = None
    if not sep or shard is None or shard[1] < 1 or not 0 <= shard[0] < shard[1]:
        raise ShardSpecError(f"--shard takes I/N with 0 <= I < N (e.g. 0/4), not {text!r}")
    return shard


def shard_of(sha256: str, count: int) -> int:
    """The shard an image belongs to among ``count``."""
    return int(sha256[:16], 16) % count


def claim_name(key_id: str, shard: tuple[int, int]) -> str:
    """The lock a shard's job holds in the store, so two jobs never write the same shard at once."""
    return f"{key_id}-shard-{shard[0]}-of-{shard[1]}"
