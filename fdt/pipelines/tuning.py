"""Optuna tuning as a scikit-learn meta-estimator, with grouped folds and calibration.

:class:`OptunaSearchCV` follows the idea of Optuna's own ``OptunaSearchCV``
(one trial = one parameter set scored by cross-validation) but: folds are
grouped and computed once (every trial sees the same folds, so trials compare
fairly), the study can live in any Optuna storage and re-fitting continues it,
and a classifier without ``predict_proba`` is calibrated on grouped
out-of-fold scores so every model yields probabilities for the metrics.
"""

from __future__ import annotations

import contextlib

import os
import time
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from fdt.errors import one_line
from fdt.extras import postgres_driver
from fdt.pipelines.errors import PipelineError
from fdt.pipelines.folds import FoldRunner, TrialTimeout
from fdt.pipelines.logs import quiet_optuna
from fdt.pipelines.solvers import configure
from fdt.pipelines.splits import check_binary, grouped_folds

CALIBRATION_METHODS = ("sigmoid", "isotonic")
PRUNERS = ("wilcoxon", "median", "halving")
"""Pruners by name: ``wilcoxon`` (Optuna's ``WilcoxonPruner``: a signed-rank test of this
trial's fold scores against the best trial's, made for cross-validation), ``median``
(the running mean is below the median of earlier trials at the same fold) and
``halving`` (asynchronous successive halving over folds). None of them draws random
numbers, so with a seeded sampler the same seed prunes the same trials."""


def _delegate_has(method: str):
    def check(self: "OptunaSearchCV") -> bool:
        estimator = self.best_estimator_ if hasattr(self, "best_estimator_") else self.estimator
        return hasattr(estimator, method)

    return check


class OptunaSearchCV(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Tune a binary classifier's hyper-parameters with Optuna TPE over grouped cross-validation.

    Parameters
    ----------
    estimator : classifier
        The pipeline to tune; its current parameters are the defaults used when
        no trial has run.
    param_distributions : dict
        Parameter name (``step__param``) -> ``optuna.distributions`` object.
    n_trials : int, default=20
        Trials to add to the study on each ``fit`` (0 keeps the study's best, or the defaults).
    cv : int, default=5
        Number of stratified, grouped folds.
    scoring : str, default="roc_auc"
        A scikit-learn scorer name; the study maximises its mean over folds.
    calibration : {"sigmoid", "isotonic"}, default="sigmoid"
        How to turn decision values into probabilities when the tuned estimator
        has no ``predict_proba``; fitted on grouped out-of-fold decision values.
    storage : str or None, default=None
        Optuna storage URL (``sqlite:///models/optuna.db``, ``postgresql://...``);
        None keeps the study in memory.
    study_name : str or None, default=None
        Study to create or continue in ``storage``.
    random_state : int or None, default=None
        Seeds the folds and the TPE sampler: the same seed gives the same trials.
    progress : bool, default=False
        Show a tqdm bar over trials.
    pruner : {"wilcoxon", "median", "halving"} or None, default=None
        Stop a trial after a fold when it is unlikely to beat the best one
        (:data:`PRUNERS`); every fold's score is reported to Optuna as it comes.
    fidelity : float or None, default=None
        Multi-fidelity: each trial first fits every fold on this share of the
        fold's training groups; only trials the pruner lets through get the full
        rows. Needs a ``pruner``.
    n_jobs : int, default=1
        Folds fitted at once, in worker processes; results equal ``n_jobs=1``.
    trial_timeout : float or None, default=None
        Seconds a trial may take. Folds then run in worker processes, and a trial
        past its budget has its fit killed and is recorded as pruned with the
        reason (user attribute ``stopped``). None: no budget.

    Attributes
    ----------
    best_params_ : dict
        Parameters of the best trial (empty when no trial has run).
    best_score_ : float
        Mean CV score of the best trial (NaN when no trial has run).
    best_estimator_ : estimator
        ``estimator`` with ``best_params_``, fitted on all of ``X``.
    calibrated_ : CalibratedClassifierCV or None
        The probability model when ``best_estimator_`` has no ``predict_proba``.
    calibration_ : str
        ``"native"`` or the calibration method used; recorded in model cards.
    study_ : optuna.Study
        The study, holding every trial of this and earlier fits.
    n_trials_ : int
        Completed trials in the study after this fit.
    trial_counts_ : dict
        Trials in the study by state (``complete``, ``pruned``, ``fail``, ...) plus
        ``timed_out`` (pruned by the time budget) and ``not_converged`` (a fold's
        solver hit its iteration cap).
    refit_converged_ : bool
        Whether the final refit's solver converged.
    solver_ : dict
        Solver parameters chosen for the final refit's shape (:mod:`fdt.pipelines.solvers`).
    classes_ : ndarray of shape (2,)
    n_features_in_ : int
    """

    def __init__(
        self,
        estimator: Any,
        param_distributions: Mapping[str, Any],
        *,
        n_trials: int = 20,
        cv: int = 5,
        scoring: str = "roc_auc",
        calibration: str = "sigmoid",
        storage: str | None = None,
        study_name: str | None = None,
        random_state: int | None = None,
        progress: bool = False,
        pruner: str | None = None,
        fidelity: float | None = None,
        n_jobs: int = 1,
        trial_timeout: float | None = None,
    ) -> None:
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.n_trials = n_trials
        self.cv = cv
        self.scoring = scoring
        self.calibration = calibration
        self.storage = storage
        self.study_name = study_name
        self.random_state = random_state
        self.progress = progress
        self.pruner = pruner
        self.fidelity = fidelity
        self.n_jobs = n_jobs
        self.trial_timeout = trial_timeout

    @quiet_optuna()
    def fit(self, X: Any, y: Any, groups: Any = None) -> "OptunaSearchCV":
        """Run ``n_trials`` more trials, then refit the best parameters on all rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Two classes (0 real, 1 fake in fdt).
        groups : array-like of shape (n_samples,), default=None
            Rows of one group stay in one fold; None makes each row its own group.
        """
        import optuna

        if self.calibration not in CALIBRATION_METHODS:
            raise ValueError(f"calibration must be one of {CALIBRATION_METHODS}, not {self.calibration!r}")
        if not isinstance(self.n_trials, int | np.integer) or self.n_trials < 0:
            raise ValueError(f"n_trials must be a non-negative integer, not {self.n_trials!r}")
        if self.pruner is not None and self.pruner not in PRUNERS:
            raise PipelineError(f"pruner must be one of {', '.join(PRUNERS)} or None, not {self.pruner!r}")
        if self.fidelity is not None and not (0 < self.fidelity < 1 and self.pruner is not None):
            raise PipelineError(f"fidelity must be a share in (0, 1) and needs a pruner, not {self.fidelity!r} with pruner {self.pruner!r}")
        if not isinstance(self.n_jobs, int | np.integer) or self.n_jobs < 1:
            raise PipelineError(f"n_jobs must be a positive integer, not {self.n_jobs!r}")
        if self.trial_timeout is not None and not self.trial_timeout > 0:
            raise PipelineError(f"trial_timeout must be positive seconds or None, not {self.trial_timeout!r}")
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        check_binary(y)
        target = type_of_target(y, input_name="y")
        if target != "binary":
            raise ValueError(f"Only binary classification is supported. The type of the target is {target}.")
        self.classes_ = np.unique(y)
        groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        folds = grouped_folds(y, groups, self.cv, self.random_state)

        self.study_ = optuna.create_study(
            storage=open_storage(self.storage), study_name=self.study_name, direction="maximize", load_if_exists=True
        )
        self.study_.sampler = optuna.samplers.TPESampler(seed=sampler_seed(self.random_state, self.storage, len(self.study_.trials)))
        self.study_.pruner = make_pruner(self.pruner)
        if self.n_trials:
            rungs = [folds]
            if self.fidelity is not None:
                rungs.insert(0, subsample_folds(folds, y, groups, self.fidelity, self.random_state))
            self._optimize(X, y, rungs)
        self.trial_counts_ = count_trials(self.study_.trials)
        completed = [t for t in self.study_.trials if t.state == optuna.trial.TrialState.COMPLETE]
        self.n_trials_ = len(completed)
        if completed:
            self.best_params_ = dict(self.study_.best_trial.params)
            self.best_score_ = float(self.study_.best_value)
        else:
            self.best_params_, self.best_score_ = {}, float("nan")

        best = clone(self.estimator).set_params(**self.best_params_)
        self.solver_ = configure(best, len(y), X.shape[1], self.random_state)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            if hasattr(best, "predict_proba"):
                self.best_estimator_ = best.fit(X, y)
                self.calibrated_, self.calibration_ = None, "native"
            else:
                calibrated = CalibratedClassifierCV(best, method=self.calibration, cv=folds, ensemble=False, n_jobs=self.n_jobs)
                self.calibrated_ = calibrated.fit(X, y)
                self.best_estimator_ = self.calibrated_.calibrated_classifiers_[0].estimator
                self.calibration_ = self.calibration
        self.refit_converged_ = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        for warning in caught:
            if not issubclass(warning.category, ConvergenceWarning):
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        return self

    def _optimize(self, X: np.ndarray, y: np.ndarray, rungs: list[list]) -> None:
        import optuna
        from tqdm.auto import tqdm

        per_fold = self.pruner == "wilcoxon"  # Wilcoxon pairs fold scores; the others expect a running mean
        warm: dict[tuple[int, int], Any] = {}
        total = sum(len(folds) for folds in rungs)

        def objective(trial) -> float:
            params = {name: _suggest(trial, name, dist) for name, dist in self.param_distributions.items()}
            estimator = clone(self.estimator).set_params(**params)
            deadline = None if self.trial_timeout is None else time.monotonic() + self.trial_timeout
            step, not_converged, seconds = 0, 0, []
            try:
                for rung, folds in enumerate(rungs):
                    scores: list[float] = []
                    states = [warm.get((rung, i)) for i in range(len(folds))]
                    results = runner.run(estimator, folds, self.scoring, states, deadline, self.random_state)
                    try:
                        for index, result in enumerate(results):
                            scores.append(result.score)
                            not_converged += not result.converged
                            seconds.append(round(result.seconds, 3))
                            if result.warm is not None:
                                warm[rung, index] = result.warm
                            if step == 0:
                                trial.set_user_attr("solver", result.solver)
                            trial.report(result.score if per_fold else float(np.mean(scores)), step)
                            step += 1
                            if step < total and trial.should_prune():  # a trial with every fold scored is complete
                                trial.set_user_attr("stopped", f"pruned after {step} fold fit(s)")
                                raise optuna.TrialPruned(f"pruned after {step} fold fit(s)")
                    finally:
                        results.close()
            except TrialTimeout as error:
                trial.set_user_attr("stopped", str(error))
                raise optuna.TrialPruned(str(error)) from None
            finally:
                trial.set_user_attr("not_converged_folds", not_converged)
                trial.set_user_attr("fit_seconds", seconds)
            trial.set_user_attr("cv_std", float(np.std(scores)))
            return float(np.mean(scores))

        with FoldRunner(X, y, self.n_jobs, self.trial_timeout) as runner, tqdm(
            total=self.n_trials, desc="trials", unit="trial", disable=not self.progress, leave=False
        ) as bar:

            def advance(study, trial) -> None:
                bar.update(1)
                if study.best_trials:
                    bar.set_postfix({self.scoring: f"{study.best_value:.4f}"})

            self.study_.optimize(objective, n_trials=self.n_trials, callbacks=[advance])

    @property
    def predictor_(self) -> Any:
        """The fitted estimator whose ``predict_proba`` this one returns: what a model file stores."""
        check_is_fitted(self, "best_estimator_")
        return self.calibrated_ if self.calibrated_ is not None else self.best_estimator_

    def predict(self, X: Any) -> np.ndarray:
        """Class labels from the tuned estimator (consistent with ``decision_function`` when it has one)."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, native or calibrated (see ``calibration_``)."""
        return self.predictor_.predict_proba(X)

    @available_if(_delegate_has("decision_function"))
    def decision_function(self, X: Any) -> np.ndarray:
        """The tuned estimator's decision values, where it has them."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.decision_function(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.sparse = False
        return tags


HEARTBEAT_SECONDS = 10  # how often a running trial tells the study it is alive
STALE_AFTER_SECONDS = 60  # a RUNNING trial silent this long belongs to a killed process


def open_storage(url: str | None, attempts: int = 8) -> Any:
    """An Optuna storage for ``url`` (None: in memory), robust to workers starting together.

    Two processes that open a fresh database at the same moment both try to create
    Optuna's tables, and one fails on the other's half-made schema; the loser
    retries after a short random pause and then finds the schema complete.

    Running trials send a heartbeat: a trial whose process was killed stops
    beating, and the next ``optimize`` on the study marks it failed instead of
    leaving it RUNNING for ever.
    """
    if url is None:
        return None
    postgres_driver(url)
    _refuse_foreign_sqlite(url)
    import random
    import time

    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: stable since Optuna 2.9
                return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=STALE_AFTER_SECONDS)
        except SQLAlchemyError as error:
            if attempt == attempts - 1:
                raise PipelineError(f"cannot open the study storage {url}: {one_line(error)}") from None
            time.sleep(0.2 + random.random() * 0.5 * (attempt + 1))


def _refuse_foreign_sqlite(url: str) -> None:
    """Refuse a SQLite storage file that is not an Optuna database: Optuna would write its tables into it (or over it)."""
    import sqlite3

    path = sqlite_file(url)
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb") as handle:
        if handle.read(16) != b"SQLite format 3\x00":
            raise PipelineError(f"study storage {path} exists and is not a SQLite database; name a new file or an Optuna study database")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as error:
        raise PipelineError(f"study storage {path}: cannot read it as SQLite ({error})") from None
    if tables and not {"studies", "version_info"} <= tables:
        raise PipelineError(f"study storage {path} is a SQLite database without Optuna's tables; fdt will not write into it: name a new file")


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite storage URL (``sqlite:///models/optuna.db``), else ``None`` (another database, or in memory)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:  # not a URL: open_storage says so
        return None
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def sampler_seed(random_state: int | None, storage: str | None, trials_before: int) -> int | None:
    """The TPE seed of one ``fit``: reproducible alone, distinct between workers sharing a study.

    A continued study gets a seed that depends on how many trials it already
    holds, so continuing does not replay the first fit's random start-up trials.
    On a shared database (any storage URL but SQLite) several processes may fit
    at once; their samplers must differ or they would propose the same trials,
    so the process id is mixed in. As Optuna's own documentation says, parallel
    optimisation is not reproducible; a single worker on SQLite is.
    """
    if random_state is None:
        return None
    seed = random_state + 1_000_003 * trials_before
    if storage is not None and not storage.startswith("sqlite"):
        seed += 7_919 * os.getpid()
    return seed % (2**32)


def _suggest(trial, name: str, distribution) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log, step=distribution.step)
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, distribution.low, distribution.high, log=distribution.log, step=distribution.step)
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    raise TypeError(f"{name}: unsupported distribution {distribution!r}")


def make_pruner(name: str | None):
    """The Optuna pruner called ``name`` (:data:`PRUNERS`), or one that never prunes."""
    import optuna

    if name == "wilcoxon":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=2)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def subsample_folds(folds: list, y: np.ndarray, groups: np.ndarray, share: float, random_state: int | None) -> list:
    """The same folds with each training side cut to ``share`` of its groups (whole groups, seeded); test sides kept.

    A cut that would lose a class keeps the fold's full training side.
    """
    rng = np.random.default_rng(random_state)
    cut = []
    for train, test in folds:
        names = np.unique(groups[train])
        keep = rng.choice(names, size=max(2, int(round(share * len(names)))), replace=False)
        rows = train[np.isin(groups[train], keep)]
        cut.append((rows if len(np.unique(y[rows])) == 2 else train, test))
    return cut


def count_trials(trials: list) -> dict[str, int]:
    """Trials by state, plus those the time budget stopped and those with a non-converged fold."""
    from collections import Counter

    counts = Counter(trial.state.name.lower() for trial in trials)
    counts["timed_out"] = sum("time budget" in str(trial.user_attrs.get("stopped", "")) for trial in trials)
    counts["not_converged"] = sum(bool(trial.user_attrs.get("not_converged_folds")) for trial in trials)
    return dict(counts)


def tuning_settings(jobs: int = 1, trial_timeout: float | None = 600.0, pruner: str | None = "wilcoxon", fidelity: float | None = None) -> dict[str, Any]:
    """:class:`OptunaSearchCV` settings from the way people write them (``fdt tune`` options, ``fdt run`` keys).

    ``pruner="none"`` and ``trial_timeout=0`` switch those off. Everything is
    checked here, so a bad experiment file fails before any stage runs.
    """
    pruner = None if pruner in (None, "none") else pruner
    if pruner is not None and pruner not in PRUNERS:
        raise PipelineError(f"pruner must be one of {', '.join(PRUNERS)} or none, not {pruner!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise PipelineError(f"jobs must be a positive integer, not {jobs!r}")
    if trial_timeout is not None and trial_timeout < 0:
        raise PipelineError(f"trial_timeout must be seconds >= 0 (0: no budget), not {trial_timeout!r}")
    if fidelity is not None and not 0 < fidelity < 1:
        raise PipelineError(f"fidelity must be a share in (0, 1), not {fidelity!r}")
    if fidelity is not None and pruner is None:
        raise PipelineError("fidelity needs a pruner to decide which trials get all rows; drop pruner = none")
    return {"n_jobs": jobs, "trial_timeout": trial_timeout or None, "pruner": pruner, "fidelity": fidelity}


def make_tuner(spec, random_state: int | None = None, **params: Any) -> OptunaSearchCV:
    """An :class:`OptunaSearchCV` over a :class:`~fdt.pipelines.specs.PipelineSpec`'s pipeline and space."""
    return OptunaSearchCV(spec.build(random_state=random_state), spec.distributions(), random_state=random_state, **params)
