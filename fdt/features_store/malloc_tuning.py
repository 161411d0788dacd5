"""glibc ``malloc`` settings for extraction, where buffers of the same sizes are freed and allocated again per image or batch.

Why it matters: glibc hands a freed block above its mmap threshold (128 KB in a
fresh process, rising with use to at most 32 MB) back to the kernel at once, and
trims free heap above a second threshold. The next block of that size is then
new pages, each faulted in and zeroed by the kernel: for a CPU network that is
most of the system time of every batch (vgg16 at 224 px, batch 32: 1.2 million
page faults, 4.8 of 21.8 CPU-seconds, on the 2-vCPU build VM).

Two levels:

* :func:`reuse_freed_memory` (decoding workers, and any extracting process): the
  ceilings glibc's dynamic rule converges to (mmap above 32 MB, trim above twice
  that) from the start. Permanent: up to 64 MB of freed memory is kept for reuse.
* :func:`hold_freed_memory` (the process running a network, for the duration of
  an extraction): no mmap at all and no trimming, so activations of hundreds of
  MB (vgg16's first convolutions: 411 MB each at batch 32) are reused from the
  heap every batch; on exit, settings return to :func:`reuse_freed_memory`'s and
  ``malloc_trim`` gives the held memory back.

Elsewhere than glibc on Linux both do nothing: only speed depends on them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from typing import Any, Iterator

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4  # malloc.h
MMAP_THRESHOLD = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: the most its dynamic threshold reaches
_DEFAULT_MMAP_MAX = 65536  # glibc's DEFAULT_MMAP_MAX
_INT_MAX = 2**31 - 1  # mallopt takes an int

_lock = threading.Lock()
_holders = 0


def _glibc() -> Any | None:
    """The C library, if it is glibc on Linux (``mallopt`` and ``malloc_trim``); else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018  (musl has neither)
    except (OSError, AttributeError):
        return None
    return libc


def reuse_freed_memory() -> None:
    """Have glibc's malloc keep freed image buffers for the next image instead of handing them back to the kernel.

    Decoding and spectra allocate and free buffers of 0.2 to tens of MB per image.
    In a decoding worker forked from a process that had not yet freed large
    blocks, every image faulted in new zeroed pages: in a fresh ``fdt extract``,
    a third of the workers' CPU time for ``fft`` at 256 px was page faults. The
    setting is process-wide and stays: up to 64 MB of freed memory is kept for
    reuse. Within a :func:`hold_freed_memory` block (another thread's
    extraction), the block's settings stay until it ends.
    """
    libc = _glibc()
    if libc is None:
        return
    with _lock:
        if not _holders:
            _reuse(libc)


def _reuse(libc: Any) -> None:
    libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
    libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    libc.mallopt(_M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD)


@contextlib.contextmanager
def hold_freed_memory() -> Iterator[None]:
    """Within the block, freed memory of any size stays in the process for reuse; after it, it is given back.

    For the process that runs a network on the CPU: its activations are freed
    and allocated again every batch, and those above 32 MB would otherwise be new
    pages every time (``benchmarks/forward_memory.py``, batch 32 at 224 px, 2
    threads: vgg16 12.2 -> 8.1 s per batch, 1.2 million page faults -> none;
    mobilenet_v2 1.63 -> 0.54 s). The cost is memory: the heap keeps its
    high-water mark while the block runs (vgg16's peak 2.5 -> 3.4 GiB).
    Re-entrant and thread-safe (the settings are process-wide: the outermost
    block restores them); a process forked within a block does not inherit it.
    Leaves the process as :func:`reuse_freed_memory` sets it.
    """
    global _holders
    libc = _glibc()
    if libc is None:
        yield
        return
    with _lock:
        _holders += 1
        if _holders == 1:
            libc.mallopt(_M_MMAP_MAX, 0)  # large blocks come from the heap; glibc still maps what the heap cannot grow to
            libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX)
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                _reuse(libc)
                libc.malloc_trim(0)  # free pages anywhere in the heap, not only at its top, go back to the kernel


def _after_fork_in_child() -> None:
    """A forked child runs none of its parent's blocks: it starts from :func:`reuse_freed_memory`'s settings."""
    global _holders, _lock
    _lock = threading.Lock()  # another thread may have held it at the fork
    if _holders:
        _holders = 0
        libc = _glibc()
        if libc is not None:
            _reuse(libc)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
