"""Cost of the quality metrics, side by side: the FD's trace term by sqrtm vs by symmetric eigendecompositions, KID, PRDC.

    python benchmarks/quality.py                       # n = 1000 images per set, d = 512 and 2048 (Inception pool3)
    python benchmarks/quality.py --n 2000 --dims 2048 --resamples 20

Features are SYNTHETIC standard normal rows (fakes shifted by 0.1), drawn with a
fixed seed; only the cost matters here, and both FD routes print their value so
a reader sees they agree. ``sqrtm`` is pytorch-fid's route (fdt's point
estimate); ``eigh`` is what each bootstrap resample of ``fdt report quality``
uses. CPU seconds (``resource.getrusage``) are printed next to wall seconds: on a
shared machine CPU time is what the work costs, wall time is what the load lets
it have.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np


def _clock() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), usage.ru_utime + usage.ru_stime


def timed(function, *args, **kwargs):
    wall, cpu = _clock()
    value = function(*args, **kwargs)
    wall_end, cpu_end = _clock()
    return value, wall_end - wall, cpu_end - cpu


def main() -> None:
    from fdt.pipelines.quality import frechet_from_moments, frechet_from_moments_eigh, kernel_inception_distance, measure_quality, moments, prdc

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="images per set")
    parser.add_argument("--dims", default="512,2048", help="feature widths, comma-separated")
    parser.add_argument("--resamples", type=int, default=0, help="also time measure_quality with this many bootstrap resamples (0: skip)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, n = {args.n} per set")
    print(f"{'d':>6} {'step':<28} {'wall s':>8} {'cpu s':>8}  value")
    for d in (int(v) for v in args.dims.split(",")):
        rng = np.random.default_rng(0)
        real, fake = rng.normal(size=(args.n, d)), rng.normal(0.1, 1.0, size=(args.n, d))
        (m1, m2), wall, cpu = timed(lambda: (moments(real), moments(fake)))
        print(f"{d:>6} {'moments (both sets)':<28} {wall:8.2f} {cpu:8.2f}")
        by_sqrtm, wall_s, cpu_s = timed(frechet_from_moments, *m1, *m2)
        print(f"{d:>6} {'FD, sqrtm (point estimate)':<28} {wall_s:8.2f} {cpu_s:8.2f}  {by_sqrtm.value:.6f}")
        by_eigh, wall_e, cpu_e = timed(frechet_from_moments_eigh, *m1, *m2)
        print(f"{d:>6} {'FD, eigh (per resample)':<28} {wall_e:8.2f} {cpu_e:8.2f}  {by_eigh:.6f}   sqrtm/eigh cpu ratio {cpu_s / max(cpu_e, 1e-9):.1f}")
        kid, wall, cpu = timed(kernel_inception_distance, real, fake, 10, 1000)
        print(f"{d:>6} {'KID, 10 subsets':<28} {wall:8.2f} {cpu:8.2f}  {kid[0]:.6f} ± {kid[1]:.6f}")
        knn, wall, cpu = timed(prdc, real, fake, 5)
        print(f"{d:>6} {'PRDC, k = 5':<28} {wall:8.2f} {cpu:8.2f}  " + ", ".join(f"{k} {v:.3f}" for k, v in knn.items()))
        if args.resamples:
            _, wall, cpu = timed(measure_quality, real, fake, kid_subsets=10, n_resamples=args.resamples)
            print(f"{d:>6} {f'measure_quality, {args.resamples} resamples':<28} {wall:8.2f} {cpu:8.2f}")


if __name__ == "__main__":
    main()
