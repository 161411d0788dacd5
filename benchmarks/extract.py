"""fdt extraction throughput against this machine's bound, for vgg16@64, mobilenet_v2@64 and fft@256.

For each extractor, measured side by side in one run over the same PNG files:

(a) end-to-end: ``extract_records`` from files on disk to rows in a fresh store;
(b) the bare forward: ``extractor.forward`` on preprocessed arrays already in memory;
(c) decode only: read, sha256, ``load_rgb``, ``apply_resolution`` of the same files;
(p) the extractor's preprocessor on decoded images in memory (the CNNs' resize to
    their input size and normalisation; the whole FFT for ``fft``);
(d) the bound: cores / (CPU-s per image of (c) + (p) + (b)), with process CPU
    time, so work that runs on several threads is counted in full;

then (a)/(d) (target >= 0.8) and a fully cached re-run's wall time as a fraction
of the first run's (target < 5%). Figures are medians over ``--repeats``
interleaved rounds. The CNNs use ``weights="random"`` (no ImageNet weights are
needed); speed does not depend on the weights' values.

    python benchmarks/extract.py                          # 1000 images, all three
    python benchmarks/extract.py --images 2000 --extractors fft,mobilenet_v2 --workdir /tmp/fdt-bench
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CONFIGS = {"vgg16": "64", "mobilenet_v2": "64", "fft": "256"}
CORPUS_SIDE = 256


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def machine_busy() -> float:
    """CPU seconds every process on the machine has spent (``/proc/stat``; 0 where it does not exist)."""
    try:
        with open("/proc/stat") as handle:
            fields = handle.readline().split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cpu_with_children() -> float:
    """CPU seconds of this process's threads plus its reaped children (DataLoader workers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


# --------------------------------------------------------------------------- corpus


def photos() -> list[np.ndarray]:
    """The colour photos that ship inside installed packages, as RGB uint8 arrays."""
    import matplotlib.cbook
    import skimage.data
    from PIL import Image
    from sklearn.datasets import load_sample_images

    names = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina"]
    images = [getattr(skimage.data, name)() for name in names]
    images += list(load_sample_images().images)
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as hopper:
        images.append(np.asarray(hopper.convert("RGB")))
    return [image[..., :3] for image in images]


def build_corpus(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` 256x256 PNG crops (random photo, scale, position, flip); kept for later runs."""
    from PIL import Image

    done = folder / ".complete"
    paths = [folder / f"{index:05d}.png" for index in range(count)]
    if done.is_file():
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sources = [Image.fromarray(image) for image in photos()]
    for path in paths:
        photo = sources[rng.integers(len(sources))]
        width, height = photo.size
        side = int(rng.integers(CORPUS_SIDE, min(width, height) + 1))
        left, top = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        crop = photo.crop((left, top, left + side, top + side)).resize((CORPUS_SIDE, CORPUS_SIDE), Image.Resampling.BICUBIC)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        crop.save(path)
    done.write_text("ok\n")
    return paths


# --------------------------------------------------------------------------- measurements


@dataclass
class Timing:
    """One measurement: images, wall seconds, process CPU seconds, and other processes' CPU seconds meanwhile."""

    images: int
    wall: float
    cpu: float
    others: float = 0.0

    @property
    def other_cores(self) -> float:
        """Cores the machine's other processes kept busy during the measurement."""
        return max(self.others, 0.0) / self.wall

    @property
    def rate(self) -> float:
        return self.images / self.wall

    @property
    def cpu_per_image(self) -> float:
        return self.cpu / self.images


def measure(fn, images: int) -> Timing:
    wall, cpu, busy = time.perf_counter(), cpu_with_children(), machine_busy()
    fn()
    cpu = cpu_with_children() - cpu
    return Timing(images, time.perf_counter() - wall, cpu, machine_busy() - busy - cpu)


def decode_only(paths: list[Path], resolution: str) -> list:
    """What a DataLoader worker does before the extractor's preprocessor, one core."""
    from fdt.data import apply_resolution, load_rgb

    images = []
    for path in paths:
        with open(path, "rb") as handle:
            data = handle.read()
        hashlib.sha256(data).hexdigest()
        images.append(apply_resolution(load_rgb(data), resolution))
    return images


def forward_for(model, arrays: np.ndarray, batch_size: int, seconds: float) -> Timing:
    """Batches of the bare forward until ``seconds`` have passed (at least two batches)."""
    model.forward(arrays[:batch_size])  # builds the network; not part of the per-image cost
    done, batches = 0, 0
    wall, cpu, busy = time.perf_counter(), time.process_time(), machine_busy()
    while batches < 2 or time.perf_counter() - wall < seconds:
        start = (batches * batch_size) % len(arrays)
        batch = arrays[start : start + batch_size]
        model.forward(batch)
        done += len(batch)
        batches += 1
    cpu = time.process_time() - cpu
    return Timing(done, time.perf_counter() - wall, cpu, machine_busy() - busy - cpu)


@dataclass
class Row:
    extractor: str
    resolution: str
    decode: list[Timing] = field(default_factory=list)
    prep: list[Timing] = field(default_factory=list)
    forward: list[Timing] = field(default_factory=list)
    e2e: list[Timing] = field(default_factory=list)
    cached: list[float] = field(default_factory=list)
    weights: str = ""


def median(values) -> float:
    return statistics.median(values)


def run_extractor(name: str, resolution: str, paths: list[Path], args, work: Path) -> Row:
    from fdt.data import ImageRecord
    from fdt.features_store.extraction import extract_records
    from fdt.features_store.registry import create_extractor

    params = {"weights": "random"} if name != "fft" else {}
    row = Row(name, resolution)
    records = [ImageRecord(str(p), "real", 0) for p in paths]
    model = create_extractor(name, **params)
    prepare = model.preprocessor()
    row.weights = model.weights_identity()
    e2e_spent = 0.0
    for round_ in range(args.repeats):
        images: list = []
        row.decode.append(measure(lambda: images.extend(decode_only(paths, resolution)), len(paths)))
        arrays: list = []
        row.prep.append(measure(lambda: arrays.extend(prepare(image) for image in images), len(images)))
        stacked = np.stack(arrays)
        del images, arrays
        row.forward.append(forward_for(model, stacked, args.batch_size, args.forward_seconds))
        del stacked
        # a long end-to-end run is not repeated past the budget: its own length averages the noise
        if round_ == 0 or e2e_spent + row.e2e[-1].wall <= args.e2e_budget:
            store = work / f"store-{name}-{round_}"
            shutil.rmtree(store, ignore_errors=True)
            run = lambda: extract_records(
                records, name, params, resolution, store, batch_size=args.batch_size, workers=args.workers, progress=False
            )
            row.e2e.append(measure(run, len(paths)))
            e2e_spent += row.e2e[-1].wall
            for _ in range(3):
                started = time.perf_counter()
                summary = run()
                row.cached.append(time.perf_counter() - started)
                if summary.new_rows or summary.reused_rows != len(paths):
                    raise SystemExit(f"cached re-run of {name} computed {summary.new_rows} rows, reused {summary.reused_rows}")
            shutil.rmtree(store, ignore_errors=True)
        print(f"  {name}@{resolution} round {round_ + 1}/{args.repeats} done", flush=True)
    return row


def rate(value: float, width: int) -> str:
    """A rate in a fixed-width column; the FFT's stack-only forward runs at millions per second."""
    return f"{value:>{width}.1f}" if value < 1e5 else f"{value:>{width}.1e}"


def report(rows: list[Row], args, n: int) -> None:
    k = cores()
    head = (
        f"{'extractor':<16}{'(a) e2e/s':>10}{'(b) fwd/s':>11}{'(p) prep/s':>11}{'(c) dec/s':>10}"
        f"{'dec ms':>8}{'prep ms':>8}{'fwd ms':>8}{'(d) bound/s':>12}{'(a)/(d)':>9}"
        f"{'e2e ms':>8}{'cached':>8}{'others':>8}{'adj':>7}{'runs':>6}"
    )
    print()
    print(
        f"machine: {k} cores; {n} PNG files {CORPUS_SIDE}x{CORPUS_SIDE} on disk; batch size {args.batch_size}; "
        f"workers {args.workers if args.workers is not None else 'default (one per core)'}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        dec = median(t.cpu_per_image for t in row.decode)
        prep = median(t.cpu_per_image for t in row.prep)
        fwd = median(t.cpu_per_image for t in row.forward)
        bound = k / (dec + prep + fwd)
        e2e = median(t.rate for t in row.e2e)
        others = median(t.other_cores for t in row.e2e)
        free = max(k - others, 0.1)
        print(
            f"{row.extractor + '@' + row.resolution:<16}{rate(e2e, 10)}{rate(median(t.rate for t in row.forward), 11)}"
            f"{rate(median(t.rate for t in row.prep), 11)}{rate(median(t.rate for t in row.decode), 10)}"
            f"{dec * 1e3:>8.2f}{prep * 1e3:>8.2f}{fwd * 1e3:>8.2f}{bound:>12.1f}{e2e / bound:>9.2f}"
            f"{median(t.cpu_per_image for t in row.e2e) * 1e3:>8.2f}"
            f"{median(row.cached) / median(t.wall for t in row.e2e):>8.1%}{others:>8.2f}{e2e / (bound * free / k):>7.2f}{len(row.e2e):>6}"
        )
    print(
        """
rates are images/s of wall time; 'ms' columns are CPU-ms per image (process CPU time: all threads, and
DataLoader workers through os.times' children times)
(a) end-to-end: files on disk -> rows in a fresh store (extract_records: hashing, catalog, decode in
    workers, forward, shard writes; torch is imported beforehand, as it is in any run that has a model)
(b) bare forward on preprocessed arrays in memory, torch's default thread count (fft: stacking only)
(p) the extractor's preprocessor on decoded images in memory, 1 core (for fft the whole FFT runs here)
(c) read + sha256 + decode + resize to the resolution, 1 core
(d) bound = cores / (dec ms + prep ms + fwd ms); (a)/(d) target >= 0.80
e2e ms: CPU-ms per image the end-to-end run spent in all its processes
cached: a fully cached re-run's wall time / the first run's (median of 3 re-runs each); target < 5%
others: cores that other processes on this machine kept busy during the end-to-end runs (/proc/stat);
adj: (a)/(d) with the bound scaled to the cores left free, (a) / ((d) * (cores - others) / cores)
runs: end-to-end runs in the medians (a long run is not repeated past --e2e-budget)"""
    )
    for row in rows:
        if row.weights.startswith("random"):
            print(f"note: {row.extractor} uses RANDOM weights ({row.weights}): not ImageNet features; the cost is the same")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="PNG files on disk for the end-to-end runs (default 1000)")
    parser.add_argument("--extractors", default=",".join(CONFIGS), help="comma-separated subset of vgg16,mobilenet_v2,fft")
    parser.add_argument("--workdir", default=None, help="keeps the image corpus between runs (default: a folder in the temp dir)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; figures are medians (default 3)")
    parser.add_argument("--e2e-budget", type=float, default=120.0, help="no further end-to-end round once an extractor's runs would pass this many seconds (default 120)")
    parser.add_argument("--forward-seconds", type=float, default=8.0, help="seconds each bare-forward measurement runs")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: fdt's, one per core)")
    args = parser.parse_args()

    names = [name.strip() for name in args.extractors.split(",") if name.strip()]
    unknown = [name for name in names if name not in CONFIGS]
    if unknown:
        parser.error(f"unknown extractor(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    if args.images < 1 or args.repeats < 1:
        parser.error("--images and --repeats must be at least 1")

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.gettempdir()) / "fdt-bench-extract"
    started = time.perf_counter()
    paths = build_corpus(workdir / f"corpus-{args.images}", args.images)
    print(f"corpus: {len(paths)} files in {paths[0].parent} ({time.perf_counter() - started:.1f}s)", flush=True)
    import torch.utils.data  # noqa: F401  (a one-off import, not a per-image cost)

    decode_only(paths, "native")  # warm the page cache so every measurement reads the same way
    rows = [run_extractor(name, CONFIGS[name], paths, args, workdir) for name in names]
    report(rows, args, len(paths))
    print(f"total benchmark time {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
