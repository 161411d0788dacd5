"""Extraction throughput on a Dask LocalCluster with 1 vs 2 workers (one thread each), side by side.

    python benchmarks/scale.py [--images 600] [--extractor mobilenet_v2] [--resolution 64]

Both runs use the same files and a fresh store each; the ratio is what a second
worker buys on this machine. CNN weights are random (no downloads here), which
costs the same as ImageNet weights.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def corpus(folder: Path, count: int, size: int = 128) -> None:
    """Random crops of photos bundled with scikit-image, as PNG files."""
    from skimage import data as skdata

    photos = [getattr(skdata, name)() for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")]
    rng = np.random.default_rng(0)
    (folder / "real").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        photo = photos[index % len(photos)]
        y = rng.integers(0, photo.shape[0] - size)
        x = rng.integers(0, photo.shape[1] - size)
        Image.fromarray(photo[y : y + size, x : x + size]).save(folder / "real" / f"{index:05d}.png")


def run(workers: int, images: Path, store: Path, extractor: str, params: dict, resolution: str) -> tuple[float, int]:
    from distributed import Client, LocalCluster

    from fdt.data import load_image_set
    from fdt.features_store.distributed import extract_on_dask

    records = load_image_set(images)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        client.run(lambda: __import__("torch").set_num_threads(1))
        started = time.perf_counter()
        summary = extract_on_dask(records, extractor, params, resolution, store, client, shards=workers, progress=False)
        seconds = time.perf_counter() - started
    return seconds, summary.new_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--extractor", default="mobilenet_v2")
    parser.add_argument("--resolution", default="64")
    parser.add_argument("--workdir", type=Path, default=None, help="Keep the image corpus here between runs.")
    args = parser.parse_args()
    params = {"weights": "random", "input_size": 64} if args.extractor in ("vgg16", "mobilenet_v2", "xception") else {}

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fdt-scale-"))
    images = workdir / f"images-{args.images}"
    if not images.is_dir():
        corpus(images, args.images)
    print(f"machine: {len(os.sched_getaffinity(0))} cores; {args.images} PNG files; {args.extractor} {params} at {args.resolution}")
    results = {}
    for workers in (1, 2):
        store = workdir / f"store-{workers}"
        shutil.rmtree(store, ignore_errors=True)
        seconds, rows = run(workers, images, store, args.extractor, params, args.resolution)
        results[workers] = rows / seconds
        print(f"{workers} Dask worker(s), 1 thread each: {rows} rows in {seconds:.1f} s = {results[workers]:.1f} images/s")
    print(f"speed-up 2 vs 1 workers: {results[2] / results[1]:.2f}x")


if __name__ == "__main__":
    main()
