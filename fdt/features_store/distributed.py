"""Extraction on a Dask cluster: one task per shard, all writing into one store on a shared filesystem.

fdt does not schedule anything itself: Dask places the tasks, and the store's
shared writers (see ``docs/store-format.md``) make concurrent shards safe. The
client hashes the files once and sends each task its shard's hashes, so the
workers only read the images they extract.
"""

from __future__ import annotations

import os
import time
from typing import Any, Sequence

from fdt.data import ImageRecord
from fdt.errors import one_line
from fdt.extras import require
from fdt.features_store.errors import StoreError
from fdt.features_store.extraction import ExtractSummary, extract_records, hash_files


def _extract_shard(args: tuple, kwargs: dict[str, Any]) -> ExtractSummary:
    """Run one shard on a Dask worker, with as many torch threads as the worker has task slots.

    Arguments come packed because ``Client.submit`` keeps keywords such as
    ``workers`` for itself.
    """
    import torch
    from distributed import get_worker  # a Dask worker runs this: distributed is there

    torch.set_num_threads(max(1, get_worker().state.nthreads))
    return extract_records(*args, **kwargs)


def connect(address: str):
    """A Dask client of the scheduler at ``address``; an unreachable scheduler is a :class:`StoreError`, one line."""
    Client = require("distributed", "fdt extract --scheduler (extraction on a Dask cluster)").Client
    try:
        return Client(address)
    except (OSError, ValueError) as error:  # a refused or timed-out connection; a malformed address
        raise StoreError(f"cannot reach the Dask scheduler at {address}: {one_line(error)}") from None


def extract_on_dask(
    records: Sequence[ImageRecord],
    extractor: str,
    params: dict[str, Any] | None,
    resolution: str,
    store_root: str | os.PathLike,
    scheduler: Any,
    shards: int | None = None,
    batch_size: int = 32,
    device: str = "auto",
    progress: bool = True,
    **options: Any,
) -> ExtractSummary:
    """Extract ``records`` as ``shards`` Dask tasks (default: one per worker thread) and combine their summaries.

    ``scheduler`` is an address (``tcp://host:8786``) or a ``distributed.Client``.
    Paths in ``records`` and ``store_root`` must be the same on the workers (a
    shared filesystem). Decoding runs inside each task (``workers=0``): Dask's
    own processes are the parallelism.
    """
    from tqdm.auto import tqdm

    distributed = require("distributed", "fdt extract --scheduler (extraction on a Dask cluster)")
    Client, as_completed, wait = distributed.Client, distributed.as_completed, distributed.wait

    started = time.perf_counter()
    client = scheduler if isinstance(scheduler, Client) else connect(scheduler)
    try:
        count = shards or max(1, sum(client.nthreads().values()))
        store_root = os.path.abspath(store_root)
        hashes, unreadable, _ = hash_files([str(r.path) for r in records])
        futures = [
            client.submit(
                _extract_shard,
                (list(records), extractor, params, resolution, store_root),
                dict(batch_size=batch_size, device=device, workers=0, progress=False, shard=(index, count), hashes=hashes, **options),
                key=f"fdt-extract-{extractor}-{resolution}-{index}-of-{count}-{time.time_ns()}",
            )
            for index in range(count)
        ]
        summaries = []
        with tqdm(total=count, unit="shard", desc=f"{extractor}@{resolution} on dask", disable=not progress) as bar:
            try:
                for future in as_completed(futures):
                    summaries.append(future.result())
                    bar.update(1)
            except Exception:
                # the other shards' tasks run on regardless: report the failure once they are done, so the
                # store is quiet and a re-run does not find their claims still held
                wait(futures)
                raise
    finally:
        if client is not scheduler:
            client.close()
    combined = ExtractSummary(summaries[0].key, hashes, dict(unreadable), weights_note=summaries[0].weights_note)
    for summary in summaries:
        combined.new_rows += summary.new_rows
        combined.reused_rows += summary.reused_rows
        combined.failures.update(summary.failures)
    combined.seconds = time.perf_counter() - started
    return combined
