"""What checking a shard on every read costs: ``FeatureStore.load`` with and without the checksum and finite checks.

Writes a store of ROWS x DIM float32 features (one merged shard, as every run
leaves), then times, side by side and alternating, the raw read of the shard's
arrays, the checked read, and a whole ``FeatureStore.load``, and prints the ratios.
Reads come from the page cache after the first round, which is the worst case for
the check's relative cost (a read from disk is slower, the hash is not).

    python benchmarks/read_checks.py                 # 20000 x 4096 (a VGG16 fc7 key of 20k images: 328 MB)
    python benchmarks/read_checks.py --rows 100000 --dim 1280
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from fdt.data import ImageRecord
    from fdt.features_store import FeatureStore
    from fdt.features_store.featureset import ExtractorKey
    from fdt.features_store.store import _CHECKED, Shard

    with tempfile.TemporaryDirectory() as folder:
        store = FeatureStore(Path(folder) / "store")
        key = ExtractorKey("vgg16", {"input_size": 224}, "random:seed=0", "64")
        rng = np.random.default_rng(0)
        hashes = [f"{i:064x}" for i in range(args.rows)]
        records = [ImageRecord(f"/data/{i}.png", "real" if i % 2 else "fake", i % 2 ^ 1) for i in range(args.rows)]
        store.write(key, hashes, rng.standard_normal((args.rows, args.dim), dtype=np.float32), records)
        (shard,) = store.live_shards(key.id)

        def unchecked() -> None:
            shard.read(check=False)

        def checked() -> None:
            _CHECKED.clear()  # measure the check itself, not the once-per-process memo
            shard.read(check=True)

        def load() -> None:
            _CHECKED.clear()
            store.load("vgg16", 64)

        def load_again() -> None:
            store.load("vgg16", 64)  # a second load in the same process (reports load a key per condition)

        original = Shard.read

        def load_unchecked() -> None:
            Shard.read = lambda self, check=True: original(self, check=False)  # type: ignore[method-assign]
            try:
                store.load("vgg16", 64)
            finally:
                Shard.read = original  # type: ignore[method-assign]

        jobs = {"read": unchecked, "read+check": checked, "load unchecked": load_unchecked, "load": load, "load again": load_again}
        timings: dict[str, list[float]] = {name: [] for name in jobs}
        for _ in range(args.rounds + 1):  # the first round warms the page cache and is dropped
            for name, job in jobs.items():
                started = time.perf_counter()
                job()
                timings[name].append(time.perf_counter() - started)
        median = {name: statistics.median(values[1:]) for name, values in timings.items()}
        size = args.rows * args.dim * 4 / 1e6
        print(f"{args.rows} rows x {args.dim} float32 ({size:.0f} MB), median of {args.rounds} rounds:")
        for name, seconds in median.items():
            print(f"  {name:15s} {seconds * 1000:8.1f} ms  {size / seconds:8.0f} MB/s")
        print(f"checked / unchecked shard read: {median['read+check'] / median['read']:.2f}x")
        print(f"FeatureStore.load checked / unchecked: {median['load'] / median['load unchecked']:.2f}x (first load in a process)")
        print(f"FeatureStore.load again / unchecked: {median['load again'] / median['load unchecked']:.2f}x (checked once per process)")


if __name__ == "__main__":
    main()
