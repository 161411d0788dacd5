"""Tuning time vs rows, per pipeline spec, side by side: wall time, fits, best grouped-CV ROC AUC, fitted exponent.

    python benchmarks/tune_scale.py                                  # every default spec, n = 1k..32k, d = 4096 and 1280
    python benchmarks/tune_scale.py --specs svm-linear,logreg --sizes 2000,4000,8000,16000,32000 --dims 4096 --budget 120
    python benchmarks/tune_scale.py --specs svm-linear --sizes 8000 --dims 4096 --jobs 2      # issue 17's 60-second target
    python benchmarks/tune_scale.py --specs logreg --sizes 32000 --dims 4096 --trials 30 --cv 5 --threads 1   # issue 13's 15 minutes
    python benchmarks/tune_scale.py --specs svm-nystroem,svm-rbf --sizes 1000,2000,4000 --dims 4096     # approximation vs exact

Features are SYNTHETIC, read back from a feature store this script writes to a
temporary folder: rows in groups of two near-duplicates (a real image and its
resized copy, say), standard normal noise, and fakes shifted by a weak signal
spread over 512 of the d dimensions (0.05 standard deviations each) plus a
non-linear part (the product of two more dimensions), so no single feature
separates the classes and a kernel has something to find. The first n rows of
one generated set are used at each size, so sizes are nested.

For each spec and n: one ``OptunaSearchCV.fit`` (TPE, ``--trials`` trials,
grouped ``--cv``-fold CV, the ``--pruner``, then the refit and, for models
without probabilities, the calibration fits) is timed. ``fits`` counts every
fold fit the trials made plus the refit and calibration. A spec stops growing n
once one point takes longer than ``--budget`` seconds (CPU seconds when the fits
run in this process: on a shared machine CPU time is what the work costs, wall
time is what the load lets it have; both are printed). The exponent is the
least-squares slope of log(time) against log(n) over a spec's points.

``svm-linear@v0`` and ``logreg@v0`` are the specs as they were before issue 17
(C up to 100, sklearn's default tolerance, no shape-aware solver choice), for
the before/after comparison.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_SPECS = "svm-linear,logreg,sgd-hinge,sgd-log,svm-nystroem,logreg-rff,hgb,svm-rbf,svm-linear@v0,logreg@v0"


def legacy_specs() -> dict:
    """The linear specs as they were before issue 17, for a side-by-side comparison."""
    from fdt.pipelines.specs import PipelineSpec, _float

    return {
        "svm-linear@v0": PipelineSpec("svm-linear@v0", "linear-svc", {"C": 1.0, "max_iter": 5000, "dual": "auto"}, {"classifier__C": _float(1e-4, 1e2)}),
        "logreg@v0": PipelineSpec("logreg@v0", "logistic-regression", {"C": 1.0, "max_iter": 2000, "solver": "lbfgs"}, {"classifier__C": _float(1e-4, 1e2)}),
    }


def synthetic_store(root: Path, rows: int, dim: int, seed: int = 0):
    """Write ``rows`` synthetic rows (see the module docstring) to a store at ``root``; return them loaded back."""
    from fdt.data import ImageRecord
    from fdt.features_store.featureset import ExtractorKey
    from fdt.features_store.store import FeatureStore

    rng = np.random.default_rng(seed)
    images = rows // 2
    y_images = rng.integers(0, 2, images)
    X = rng.standard_normal((images, dim), dtype=np.float32)
    signal = min(512, dim - 2)
    X[:, :signal] += 0.05 * (2 * y_images[:, None] - 1)
    X[:, signal] += 0.6 * (2 * y_images - 1) * np.sign(X[:, signal + 1])  # a non-linear part: sign(x_a · x_b) follows the label
    X = np.repeat(X, 2, axis=0)
    X += rng.normal(0, 0.05, X.shape).astype(np.float32)
    y = np.repeat(y_images, 2)
    sha = [f"{i:064x}" for i in range(len(y))]
    records = [ImageRecord(f"/synthetic/{i}.png", "fake" if label else "real", int(label), f"g{i // 2}") for i, label in enumerate(y)]
    key = ExtractorKey("synthetic", {"dim": dim}, "none", "native")
    store = FeatureStore(root)
    store.write(key, sha, X, records)
    del X
    data = store.load("synthetic", "native", params={"dim": dim})
    order = np.argsort(data.sha256.astype(str))  # back to generation order, so sizes are nested prefixes
    return data.X[order], data.y[order], data.groups[order]


def children_cpu() -> float:
    """CPU seconds of this process's finished (reaped) children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stop_joblib_workers() -> None:
    from joblib.externals.loky import reusable_executor

    if reusable_executor._executor is not None:
        reusable_executor._executor.shutdown(wait=True)


def tune_once(
    spec, X, y, groups, trials: int, cv: int, pruner: str | None, seed: int, jobs: int, timeout: float | None, storage: str | None = None
) -> tuple[float, float, int, float, dict]:
    """One timed ``OptunaSearchCV.fit``: wall seconds, CPU seconds (this process plus its fold workers), fits, best score, trial counts.

    The fold workers (``--jobs`` > 1 or a ``--trial-timeout``) are stopped after
    the fit so the operating system accounts their CPU time to this process's children.
    """
    from fdt.pipelines import folds
    from fdt.pipelines.tuning import make_tuner

    folds.stop_workers()
    started, cpu = time.perf_counter(), time.process_time() + children_cpu()
    study = f"{spec.name}-n{len(y)}-d{X.shape[1]}-{time.time_ns()}" if storage else None
    tuner = make_tuner(spec, seed, n_trials=trials, cv=cv, pruner=pruner, n_jobs=jobs, trial_timeout=timeout, storage=storage, study_name=study).fit(X, y, groups)
    seconds = time.perf_counter() - started
    folds.stop_workers()
    stop_joblib_workers()  # the calibration's folds ran there with --jobs > 1
    cpu = time.process_time() + children_cpu() - cpu
    fold_fits = sum(len(t.intermediate_values) for t in tuner.study_.trials)
    fits = fold_fits + 1 + (cv if tuner.calibration_ != "native" else 0)
    return seconds, cpu, fits, tuner.best_score_, tuner.trial_counts_


def exponent(points: list[tuple[int, float]]) -> float:
    if len(points) < 2:
        return float("nan")
    n, t = np.log([p[0] for p in points]), np.log([p[1] for p in points])
    return float(np.polyfit(n, t, 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--specs", default=DEFAULT_SPECS)
    parser.add_argument("--sizes", default="1000,2000,4000,8000,16000,32000")
    parser.add_argument("--dims", default="4096,1280", help="feature widths, comma-separated: VGG16 fc7 is 4096-d, MobileNetV2 1280-d")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--pruner", default="wilcoxon", help="wilcoxon, median, halving or none")
    parser.add_argument("--budget", type=float, default=120.0, help="stop growing n for a spec once a point takes longer (CPU seconds; wall with workers)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--trial-timeout", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="cap BLAS/OpenMP threads (threadpoolctl); OpenMP spins badly on a loaded machine")
    parser.add_argument("--plot", type=Path, default=None, help="write a log-log PNG of time vs n here")
    parser.add_argument("--storage", default=None, help="keep each point's study here (e.g. sqlite:///tune-scale.db) to watch a long run's trials as they finish")
    args = parser.parse_args()

    import optuna
    from threadpoolctl import threadpool_limits

    from fdt.pipelines.specs import get_spec

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    names = [s for s in args.specs.split(",") if s]
    legacy = legacy_specs()
    specs = {name: legacy[name] if name in legacy else get_spec(name) for name in names}
    pruner = None if args.pruner == "none" else args.pruner
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores); features: SYNTHETIC (see --help), via a feature store")
    print(f"each point: {args.trials} TPE trials, grouped {args.cv}-fold CV, pruner {args.pruner}, jobs {args.jobs}, threads {args.threads or 'all'}; budget {args.budget:g} s per point")
    results: dict[tuple[int, str], list[tuple[int, float, int, float]]] = {}
    for dim in (int(d) for d in args.dims.split(",")):
        folder = Path(tempfile.mkdtemp(prefix="fdt-tune-scale-"))
        try:
            X_all, y_all, g_all = synthetic_store(folder / "features_store", max(sizes), dim, args.seed)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        for name, spec in specs.items():
            points = results.setdefault((dim, name), [])
            for n in sizes:
                X, y, groups = X_all[:n], y_all[:n], g_all[:n]
                with threadpool_limits(args.threads):
                    seconds, cpu, fits, auc, states = tune_once(spec, X, y, groups, args.trials, args.cv, pruner, args.seed, args.jobs, args.trial_timeout, args.storage)
                points.append((n, seconds, cpu, fits, auc))
                print(f"d={dim} {name:14} n={n:>6}: {seconds:8.1f} s wall {cpu:8.1f} s CPU  {fits:4d} fits  best CV AUC {auc:.4f}  "
                      f"trials {states}  load {os.getloadavg()[0]:.2f}", flush=True)
                if (cpu if args.jobs == 1 and not args.trial_timeout else seconds) > args.budget:
                    break
        del X_all

    print()
    for dim in sorted({d for d, _ in results}):
        header = "".join(f"{n:>24}" for n in sizes)
        print(f"d = {dim}: wall s / CPU s / fits / best grouped-CV ROC AUC (blank: a smaller n was over budget); exponents of wall and CPU time")
        print(f"{'spec':16}{header}{'exp wall':>10}{'exp CPU':>9}")
        rbf = {p[0]: p[4] for p in results.get((dim, "svm-rbf"), [])}
        for (d, name), points in results.items():
            if d != dim:
                continue
            by_n = {p[0]: p for p in points}
            cells = "".join(f"{f'{by_n[n][1]:.0f}/{by_n[n][2]:.1f}/{by_n[n][3]}/{by_n[n][4]:.3f}':>24}" if n in by_n else f"{'':>24}" for n in sizes)
            print(f"{name:16}{cells}{exponent([(p[0], p[1]) for p in points]):>10.2f}{exponent([(p[0], p[2]) for p in points]):>9.2f}")
        if rbf:
            print("best CV AUC minus exact svm-rbf's on the same folds (target >= -0.01):")
            for (d, name), points in results.items():
                if d == dim and name != "svm-rbf":
                    diffs = [f"n={p[0]}: {p[4] - rbf[p[0]]:+.4f}" for p in points if p[0] in rbf]
                    if diffs:
                        print(f"  {name:16}" + "  ".join(diffs))
        print()
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    if args.plot:
        plot(results, args.plot)
        print(f"wrote {args.plot}")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for (dim, name), points in results.items():
        ax.loglog([p[0] for p in points], [p[2] for p in points], marker="o", label=f"{name} (d={dim}, n^{exponent([(p[0], p[2]) for p in points]):.2f})")
    ax.set_xlabel("rows n")
    ax.set_ylabel("tuning CPU time (s)")
    ax.set_title("fdt tuning time vs rows (synthetic features)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
