"""A CPU network's forward with and without ``hold_freed_memory``: time, CPU, page faults and peak memory per batch.

Each variant runs in a fresh child process (as every ``fdt extract`` is), in
turn, ``--rounds`` times: the extractor with random weights (speed does not
depend on the weights' values) on a batch of random preprocessed inputs, once
untimed, then ``--batches`` timed batches. "reuse" is the main process's
setting before ``hold_freed_memory`` (``reuse_freed_memory`` alone: blocks above
32 MB are mapped and unmapped per allocation); "hold" is what an extraction now
runs under. Printed: medians over rounds of the per-batch medians, the ratio
hold/reuse, and each variant's peak resident memory.

    python benchmarks/forward_memory.py                         # vgg16 and mobilenet_v2, batch 32, 3 rounds
    python benchmarks/forward_memory.py --only vgg16 --rounds 5 --batches 4
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
import torch
from fdt.features_store.malloc_tuning import hold_freed_memory, reuse_freed_memory
from fdt.features_store.registry import create_extractor

name, variant, batch, batches = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
reuse_freed_memory()
model = create_extractor(name, weights="random")
side = model._input_size()  # the preprocessing config's (224 for vgg16 and mobilenet_v2, 299 for xception)
x = np.random.default_rng(0).standard_normal((batch, 3, side, side)).astype(np.float32)

def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_stime, r.ru_minflt

def timed():
    model.forward(x)  # builds the network, grows the heap: untimed
    out = []
    for _ in range(batches):
        (cpu, system, faults), wall = usage(), time.perf_counter()
        model.forward(x)
        cpu2, system2, faults2 = usage()
        out.append({"wall": time.perf_counter() - wall, "cpu": cpu2 - cpu, "sys": system2 - system, "faults": faults2 - faults})
    return out

if variant == "hold":
    with hold_freed_memory():
        out = timed()
else:
    out = timed()
print(json.dumps({"batches": out, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "threads": torch.get_num_threads()}))
"""

VARIANTS = ("reuse", "hold")


def run(name: str, variant: str, batch: int, batches: int) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, name, variant, str(batch), str(batches)], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="vgg16,mobilenet_v2", help="comma-separated CNN extractors")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=3, help="timed batches per process")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per variant, interleaved")
    args = parser.parse_args()
    for name in args.only.split(","):
        results: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
        for round_ in range(args.rounds):
            for variant in VARIANTS if round_ % 2 == 0 else reversed(VARIANTS):  # alternate who runs first
                results[variant].append(run(name, variant, args.batch_size, args.batches))
        summary = {}
        for variant, runs in results.items():
            per = {field: statistics.median(statistics.median(b[field] for b in r["batches"]) for r in runs) for field in ("wall", "cpu", "sys", "faults")}
            per["peak_gb"] = statistics.median(r["peak_gb"] for r in runs)
            summary[variant] = per
            print(
                f"{name:13s} {variant:5s} batch {args.batch_size} ({runs[0]['threads']} threads): {per['wall']:6.2f} s wall "
                f"{per['cpu']:6.2f} s CPU ({per['sys']:5.2f} s system), {per['faults']:9.0f} page faults per batch; peak {per['peak_gb']:.2f} GiB"
            )
        hold, reuse = summary["hold"], summary["reuse"]
        print(
            f"{name:13s} hold/reuse: wall {hold['wall'] / reuse['wall']:.2f}, CPU {hold['cpu'] / reuse['cpu']:.2f}, "
            f"peak memory {hold['peak_gb'] / reuse['peak_gb']:.2f}  (medians of {args.rounds} processes x {args.batches} batches)"
        )


if __name__ == "__main__":
    main()
