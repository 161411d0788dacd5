"""Fitting and scoring a trial's folds, in this process or in worker processes that can be stopped.

Why workers: liblinear, libsvm and friends hold the interpreter until a fit
returns, so nothing inside the process can stop a pathological fit; ending the
process that runs it can. With a time budget or ``n_jobs > 1``, folds run in a
pool of loky worker processes (fork-safe, unlike a bare ``fork``); a fold that
runs past the budget gets its workers killed and :class:`TrialTimeout` raised.
The rows travel once per fit, as ``.npy`` files the workers memory-map, never
pickled per fold.

A daemonic process (a Dask worker) cannot start workers; there folds run inline
and the budget is checked between folds instead, each fit bounded by its
iteration cap. Results come back in fold order whatever the number of workers, and a fold's
result depends only on its inputs, so ``n_jobs=2`` gives the same scores as
``n_jobs=1``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from fdt.pipelines.errors import PipelineError
from fdt.pipelines.solvers import configure, features_reaching_classifier

WORKER_IDLE_SECONDS = 60
"""Idle workers exit after this long, so a finished study leaves no process behind."""


class TrialTimeout(PipelineError):
    """A trial ran past its time budget; its workers were killed."""


@dataclass
class FoldResult:
    """One fitted and scored fold."""

    score: float
    converged: bool
    seconds: float
    solver: dict[str, Any] = field(default_factory=dict)
    warm: tuple[np.ndarray, np.ndarray] | None = None
    iterations: int | None = None


def fit_fold(
    estimator: Any, X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, scoring: str, warm: tuple | None = None,
    random_state: int | None = None,
) -> FoldResult:
    """Fit a clone of ``estimator`` on ``train`` rows, score ``test`` rows; note non-convergence and solver choice.

    ``warm`` is a previous fit's ``(coef_, intercept_)`` on the same fold: a
    classifier with ``warm_start=True`` starts from it (the solver path from the
    last trial's C to this one's is shorter than from zero).
    """
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import get_scorer

    estimator = clone(estimator)
    solver = configure(estimator, len(train), X.shape[1], random_state)
    classifier = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    width = features_reaching_classifier(estimator, len(train), X.shape[1])
    if warm is not None and getattr(classifier, "warm_start", False) and np.shape(warm[0])[-1] == width:
        classifier.coef_, classifier.intercept_ = (np.array(a, copy=True) for a in warm)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(X[train], y[train])
    seconds = time.perf_counter() - started
    converged = True
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            converged = False
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    score = float(get_scorer(scoring)(estimator, X[test], y[test]))
    state = None
    if getattr(classifier, "warm_start", False) and hasattr(classifier, "coef_"):
        state = (classifier.coef_, classifier.intercept_)
    iterations = int(np.max(classifier.n_iter_)) if hasattr(classifier, "n_iter_") else None
    return FoldResult(score, converged, seconds, solver, state, iterations)


_OPENED: dict[str, np.ndarray] = {}
_POOL: tuple[int, Any] | None = None
"""``(n_jobs, executor)`` kept between fits so workers start once per process (about two seconds)."""


def _stop_pool(kill: bool) -> None:
    global _POOL
    if _POOL is not None:
        _POOL[1].shutdown(wait=True, kill_workers=kill)
        _POOL = None


def stop_workers() -> None:
    """Let the fold workers finish and exit now rather than after :data:`WORKER_IDLE_SECONDS` idle.

    For callers that must see them gone: a benchmark counting its children's CPU
    time (the system reports it once they are reaped), a test checking for leftovers.
    """
    _stop_pool(kill=False)


def _ready() -> None:
    import sklearn.base  # noqa: F401  (what every fold needs, imported once per worker)


def _fit_fold_in_worker(estimator: Any, files: tuple[str, str], train, test, scoring: str, warm, random_state) -> FoldResult:
    if files[0] not in _OPENED:
        _OPENED.clear()  # one fit's rows at a time: an older memory map would pin a deleted file
        _OPENED.update({path: np.load(path, mmap_mode="r") for path in files})
    return fit_fold(estimator, _OPENED[files[0]], _OPENED[files[1]], train, test, scoring, warm, random_state)


class FoldRunner:
    """Runs a trial's folds for one ``fit``: inline, or in stoppable workers (see the module docstring).

    Use as a context manager; it removes its row files on exit. Workers stay for
    the next fit and exit after :data:`WORKER_IDLE_SECONDS` idle (or with Python).

    Parameters
    ----------
    X, y : arrays
        All rows of the fit; folds index into them.
    n_jobs : int
        Folds fitted at once.
    timeout : float or None
        Seconds a trial may take; None runs folds inline when ``n_jobs`` is 1.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, n_jobs: int = 1, timeout: float | None = None) -> None:
        import multiprocessing

        self.X, self.y, self.n_jobs, self.timeout = X, y, n_jobs, timeout
        # A daemonic process (a Dask worker) may not start children: folds then run
        # inline and the budget is checked between folds, with the iteration caps
        # bounding each fit. The timeout message says which.
        self.workers = (n_jobs > 1 or timeout is not None) and not multiprocessing.current_process().daemon
        self._folder: Path | None = None

    def __enter__(self) -> "FoldRunner":
        if self.workers:
            self._folder = Path(tempfile.mkdtemp(prefix="fdt-folds-"))
            self._files = (str(self._folder / "X.npy"), str(self._folder / "y.npy"))
            np.save(self._files[0], np.ascontiguousarray(self.X))
            np.save(self._files[1], np.asarray(self.y))
            # Start the workers now so their start-up (seconds) is not charged to the first trial's budget.
            pool = self._pool()
            for future in [pool.submit(_ready) for _ in range(self.n_jobs)]:
                future.result()
        return self

    def __exit__(self, *exc) -> None:
        self._stop(kill=exc[0] is not None)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    def _pool(self):
        global _POOL
        if _POOL is not None and _POOL[0] != self.n_jobs:
            _stop_pool(kill=False)
        if _POOL is None:
            from joblib.externals.loky import ProcessPoolExecutor

            threads = str(max(1, (os.cpu_count() or 1) // self.n_jobs))
            env = {name: threads for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
            _POOL = (self.n_jobs, ProcessPoolExecutor(max_workers=self.n_jobs, timeout=WORKER_IDLE_SECONDS, env=env))
        return _POOL[1]

    def _stop(self, kill: bool) -> None:
        if kill:
            _stop_pool(kill=True)

    def run(
        self, estimator: Any, folds: Sequence[tuple], scoring: str, warm: Sequence[Any], deadline: float | None, random_state: int | None = None
    ) -> Iterator[FoldResult]:
        """Yield each fold's :class:`FoldResult` in fold order; raise :class:`TrialTimeout` past ``deadline`` (``time.monotonic``)."""
        if not self.workers:
            for index, ((train, test), state) in enumerate(zip(folds, warm)):
                if deadline is not None and time.monotonic() > deadline:
                    raise TrialTimeout(
                        f"time budget of {self.timeout:g} s exceeded after fold {index}/{len(folds)} "
                        "(checked between folds: this process cannot start workers to kill a fit)"
                    )
                yield fit_fold(estimator, self.X, self.y, train, test, scoring, state, random_state)
            return
        pool = self._pool()
        futures = [
            pool.submit(_fit_fold_in_worker, estimator, self._files, train, test, scoring, state, random_state) for (train, test), state in zip(folds, warm)
        ]
        try:
            for index, future in enumerate(futures):
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    result = future.result(timeout=wait)
                except FutureTimeout:
                    self._stop(kill=True)
                    raise TrialTimeout(f"time budget of {self.timeout:g} s exceeded at fold {index + 1}/{len(futures)}; its fit was killed") from None
                yield result
        finally:
            for future in futures:
                future.cancel()
