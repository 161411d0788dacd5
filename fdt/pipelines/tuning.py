"""Optuna tuning as a scikit-learn meta-estimator, with grouped folds and calibration.

:class:`OptunaSearchCV` follows the idea of Optuna's own ``OptunaSearchCV``
(one trial = one parameter set scored by cross-validation) but: folds are
grouped and computed once (every trial sees the same folds, so trials compare
fairly), the study can live in any Optuna storage and re-fitting continues it,
and a classifier without ``predict_proba`` is calibrated on grouped
out-of-fold scores so every model yields probabilities for the metrics.
"""

from __future__ import annotations

import os
import warnings

from typing import Any, Mapping

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import cross_val_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from fdt.pipelines.errors import PipelineError
from fdt.pipelines.splits import check_binary, grouped_folds

CALIBRATION_METHODS = ("sigmoid", "isotonic")


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
        Trials in the study after this fit.
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
        if self.n_trials:
            self._optimize(X, y, folds)
        completed = [t for t in self.study_.trials if t.state == optuna.trial.TrialState.COMPLETE]
        self.n_trials_ = len(completed)
        if completed:
            self.best_params_ = dict(self.study_.best_trial.params)
            self.best_score_ = float(self.study_.best_value)
        else:
            self.best_params_, self.best_score_ = {}, float("nan")

        best = clone(self.estimator).set_params(**self.best_params_)
        if hasattr(best, "predict_proba"):
            self.best_estimator_ = best.fit(X, y)
            self.calibrated_, self.calibration_ = None, "native"
        else:
            self.calibrated_ = CalibratedClassifierCV(best, method=self.calibration, cv=folds, ensemble=False).fit(X, y)
            self.best_estimator_ = self.calibrated_.calibrated_classifiers_[0].estimator
            self.calibration_ = self.calibration
        return self

    def _optimize(self, X: np.ndarray, y: np.ndarray, folds: list) -> None:
        from tqdm.auto import tqdm

        def objective(trial) -> float:
            params = {name: _suggest(trial, name, dist) for name, dist in self.param_distributions.items()}
            estimator = clone(self.estimator).set_params(**params)
            scores = cross_val_score(estimator, X, y, cv=folds, scoring=self.scoring, error_score="raise")
            trial.set_user_attr("cv_std", float(np.std(scores)))
            return float(np.mean(scores))

        with tqdm(total=self.n_trials, desc="trials", unit="trial", disable=not self.progress, leave=False) as bar:

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
                raise PipelineError(f"cannot open the study storage {url}: {str(error).splitlines()[0]}") from None
            time.sleep(0.2 + random.random() * 0.5 * (attempt + 1))


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


def make_tuner(spec, random_state: int | None = None, **params: Any) -> OptunaSearchCV:
    """An :class:`OptunaSearchCV` over a :class:`~fdt.pipelines.specs.PipelineSpec`'s pipeline and space."""
    return OptunaSearchCV(spec.build(random_state=random_state), spec.distributions(), random_state=random_state, **params)
