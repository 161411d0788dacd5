"""FeatureStore.load vs plain h5py reading the same shards' bytes: speed ratio and peak memory, side by side.

    python benchmarks/store_load.py [--rows 100000] [--dim 4096] [--shards 10] [--workdir DIR]

Writes a store of random float32 rows (written in ``--shards`` flushes; the writer
compacts them as an extraction's would), then times, each in a fresh subprocess so peak RSS
(``resource.getrusage``, and tracemalloc, which sees numpy's buffers) is that reader's alone: plain h5py reading every shard's
``features`` dataset, and ``FeatureStore.load`` (catalog, row order, every row).
Each reader runs ``--repeats`` times, alternating, and the fastest run counts; each
subprocess reads once untimed first, so the page cache is warm and imports are paid.
Peak RSS then includes the first read's freed pages; tracemalloc's peak is the one to read. Targets (issue 13): load at
>= 50 % of h5py's speed, peak memory <= 2x the float32 matrix.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build(root: Path, rows: int, dim: int, shards: int) -> None:
    from tqdm.auto import tqdm

    from fdt.data import ImageRecord
    from fdt.features_store.featureset import ExtractorKey
    from fdt.features_store.store import FeatureStore

    key = ExtractorKey("vgg16", {"layer": "fc7"}, "random:seed=0", "64")
    rng = np.random.default_rng(0)
    per = -(-rows // shards)
    from fdt.features_store.store import StoreWriter

    with StoreWriter(FeatureStore(root), flush_rows=per) as writer:
        for start in tqdm(range(0, rows, per), desc="writing shards", unit="shard"):
            stop = min(rows, start + per)
            sha = [f"{i:064x}" for i in range(start, stop)]
            records = [ImageRecord(f"/images/{'real' if i % 2 else 'fake'}/{i}.png", "real" if i % 2 else "fake", 1 - i % 2, f"g{i // 2}") for i in range(start, stop)]
            writer.add_catalog(records, sha)
            writer.add_rows(key, dim, sha, rng.standard_normal((stop - start, dim), dtype=np.float32))


def measure(mode: str, root: str) -> dict:
    """Run in a subprocess: one read, its seconds, and peak RSS above the RSS before reading."""
    import h5py

    from fdt.features_store.store import FeatureStore

    import tracemalloc

    store = FeatureStore(root)
    paths = store.shard_paths()

    def read() -> int:
        if mode == "h5py":
            blocks = []
            for path in paths:
                with h5py.File(path, "r") as handle:
                    blocks.append(handle["features"][()])
            return sum(b.nbytes for b in blocks)
        return store.load("vgg16", "64").X.nbytes

    read()  # imports and first-touch costs paid once, outside the timing
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    nbytes = read()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()  # a separate, untimed read: tracemalloc slows Python-level allocations several-fold
    read()
    traced = tracemalloc.get_traced_memory()[1]
    return {"seconds": seconds, "nbytes": nbytes, "peak_kib": peak, "before_kib": before, "traced": traced}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=4096)
    parser.add_argument("--shards", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None, help="Keep the store here between runs (default: a temporary folder).")
    parser.add_argument("--measure", choices=["h5py", "load"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, str(args.workdir))))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fdt-store-load-"))
    root = workdir / "features_store"
    try:
        if not root.exists():
            build(root, args.rows, args.dim, args.shards)
        best: dict[str, dict] = {}
        for _ in range(args.repeats):
            for mode in ("h5py", "load"):
                out = subprocess.run([sys.executable, __file__, "--measure", mode, "--workdir", str(root)], check=True, capture_output=True, text=True)
                result = json.loads(out.stdout)
                if mode not in best or result["seconds"] < best[mode]["seconds"]:
                    best[mode] = result
        matrix = best["load"]["nbytes"]
        from fdt.features_store.store import FeatureStore

        shards = len(FeatureStore(root).shard_paths())
        print(f"store: {args.rows:,} rows x {args.dim} float32 in {shards} shard file(s) ({matrix / 2**30:.2f} GiB); load average {os.getloadavg()[0]:.2f}")
        print(f"{'reader':8}{'seconds':>9}{'GiB/s':>8}{'peak RSS GiB':>14}{'RSS added GiB':>15}{'traced peak / matrix':>22}")
        for mode in ("h5py", "load"):
            r = best[mode]
            added = (r["peak_kib"] - r["before_kib"]) / 2**20
            print(f"{mode:8}{r['seconds']:>9.2f}{r['nbytes'] / r['seconds'] / 2**30:>8.2f}{r['peak_kib'] / 2**20:>14.2f}{added:>15.2f}{r['traced'] / matrix:>22.2f}")
        print(f"load speed / h5py speed: {best['h5py']['seconds'] / best['load']['seconds']:.2f} (target >= 0.50)")
        print(f"load peak memory / matrix (tracemalloc, numpy buffers included): {best['load']['traced'] / matrix:.2f} (target <= 2.00)")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
