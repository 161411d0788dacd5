"""The cost of a 5-level JPEG sweep relative to one clean extraction (target <= 5.5x).

Side by side in one run, over the same PNG files (crops of the photos bundled
with scikit-image, scikit-learn and matplotlib, as ``benchmarks/extract.py``
builds them), each into a fresh store, interleaved over ``--repeats`` rounds:

(a) clean: ``extract_records`` with no perturbation;
(b) sweep: ``extract_levels`` with ``jpeg:quality=100,90,75,50,30`` (each image
    read and decoded once, JPEG-re-encoded in memory per level);
(c) naive: five ``extract_records`` runs, one per level (each decodes again).

Printed: medians of wall seconds, (b)/(a) (the target) and (c)/(a), plus the
load average, because the figures are only comparable within one run. CNNs use
``weights="random"`` (speed does not depend on the weights' values).

    python benchmarks/robustness.py                                   # 200 images, mobilenet_v2@64 and fft@native (256 px files)
    python benchmarks/robustness.py --images 500 --extractors fft --repeats 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from extract import build_corpus  # noqa: E402

CONFIGS = {"mobilenet_v2": ("64", {"weights": "random", "input_size": 224}), "fft": ("native", {"size": 64})}
SWEEP = "jpeg:quality=100,90,75,50,30"


def timed(function, store: Path) -> float:
    shutil.rmtree(store, ignore_errors=True)
    started = time.perf_counter()
    function(store)
    seconds = time.perf_counter() - started
    shutil.rmtree(store, ignore_errors=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--extractors", default=",".join(CONFIGS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", default=None, help="Keep the corpus here between runs (default: a temporary folder).")
    args = parser.parse_args()

    from fdt.data import from_folder
    from fdt.features_store.extraction import extract_levels, extract_records
    from fdt.perturb import parse_sweep

    work = Path(args.workdir or tempfile.mkdtemp(prefix="fdt-robust-bench-"))
    build_corpus(work / "corpus" / "real", args.images)
    records = from_folder(work / "corpus", label=0)
    levels = list(parse_sweep(SWEEP).chains)
    print(f"{len(records)} PNG files of 256x256, {SWEEP}; load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    print("| extractor | (a) clean s | (b) sweep, decode once s | (c) 5 separate runs s | (b)/(a) target <= 5.5 | (c)/(a) |")
    print("|---|---|---|---|---|---|")
    for name in args.extractors.split(","):
        resolution, params = CONFIGS[name]
        common = dict(progress=False, workers=None)
        runs = {
            "clean": lambda store: extract_records(records, name, params, resolution, store, **common),
            "sweep": lambda store: extract_levels(records, name, params, resolution, store, levels=levels, **common),
            "naive": lambda store: [extract_records(records, name, params, resolution, store, perturb=chain, **common) for chain in levels],
        }
        times: dict[str, list[float]] = {kind: [] for kind in runs}
        for _ in range(args.repeats):
            for kind, function in runs.items():
                times[kind].append(timed(function, work / f"store-{kind}"))
        clean, sweep, naive = (statistics.median(times[kind]) for kind in ("clean", "sweep", "naive"))
        print(f"| `{name}` @ {resolution} | {clean:.1f} | {sweep:.1f} | {naive:.1f} | {sweep / clean:.2f} | {naive / clean:.2f} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
