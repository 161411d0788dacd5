"""Tune and evaluate one training condition: held-out split, Optuna tuning, mean ± std of every metric.

This is what ``fdt tune`` runs and what an analysis script calls::

    from fdt.features_store.store import FeatureStore
    from fdt.pipelines.evaluation import load_condition, tune_condition
    from fdt.pipelines.specs import get_spec

    data = load_condition(FeatureStore(), "vgg16", "64", real=["coco"], fake=["dcgan", "sd21"])
    result = tune_condition(data, get_spec("svm-rbf"), n_trials=50, cv=5, random_state=0)
    print(result.cv_summary["roc_auc"], result.test_metrics["eer"])
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from fdt.features_store.featureset import FeatureSet
from fdt.pipelines.errors import PipelineError
from fdt.pipelines.metrics import compute_metrics, summarise
from fdt.pipelines.specs import PipelineSpec
from fdt.pipelines.splits import DEFAULT_FRACTIONS, assign_groups, check_binary, grouped_folds, holdout_masks
from fdt.pipelines.tuning import OptunaSearchCV, make_tuner


def load_condition(
    store,
    extractor: str,
    resolution: str,
    real: Sequence[str],
    fake: Sequence[str],
    params: dict | None = None,
    weights: str | None = None,
) -> FeatureSet:
    """Rows of the ``real`` and ``fake`` sources for one extractor and resolution, labels checked.

    A source given as real but labelled fake in the store (or the reverse) is
    refused, since the labels would silently disagree with the command line.
    """
    wanted = list(real) + list(fake)
    if not real or not fake:
        raise PipelineError("name at least one real and one fake source (--real, --fake)")
    data = store.load(extractor, resolution, sources=wanted, params=params, weights=weights)
    labels = store.sources()
    for names, label, side in ((real, 0, "real"), (fake, 1, "fake")):
        for name in names:
            if labels.get(name) != label:
                raise PipelineError(f"source {name!r} is labelled {'real' if labels.get(name) == 0 else 'fake'} in the store, not {side}")
    return data


def fingerprint(data: FeatureSet) -> str:
    """SHA-256 over the rows' (image hash, source, label, group) and the extractor key: what the model saw."""
    digest = hashlib.sha256(data.key.id.encode())
    for row in sorted(zip(map(str, data.sha256), map(str, data.sources), map(str, data.y), map(str, data.groups))):
        digest.update("\t".join(row).encode() + b"\n")
    return digest.hexdigest()


def fit_predictor(estimator: Any, X: np.ndarray, y: np.ndarray, groups: np.ndarray, cv: int, random_state: int | None) -> OptunaSearchCV:
    """Fit fixed parameters with probabilities (calibrated on grouped folds where needed); no tuning."""
    return OptunaSearchCV(estimator, {}, n_trials=0, cv=cv, random_state=random_state).fit(X, y, groups)


def cross_validate_metrics(
    estimator: Any, X: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: list, cv: int, random_state: int | None, n_jobs: int = 1
) -> tuple[dict[str, dict[str, float]], list[dict[str, float]]]:
    """Every metric on every grouped fold for fixed parameters: ``(mean ± std summary, per-fold metrics)``.

    ``n_jobs`` folds run at once (joblib); each fold's result depends only on its rows, so any ``n_jobs`` gives the same numbers.
    """
    from joblib import Parallel, delayed

    def one(train: np.ndarray, test: np.ndarray) -> dict[str, float]:
        model = fit_predictor(estimator, X[train], y[train], groups[train], cv, random_state)
        return compute_metrics(y[test], model.predict_proba(X[test])[:, 1])

    per_fold = Parallel(n_jobs=n_jobs)(delayed(one)(train, test) for train, test in folds)
    return summarise(per_fold), per_fold


@dataclass
class TuneResult:
    """One tuned training condition: the fitted tuner and every number its model card records."""

    tuner: OptunaSearchCV
    cv_summary: dict[str, dict[str, float]]
    cv_folds: list[dict[str, float]]
    val_metrics: dict[str, float] | None
    test_metrics: dict[str, float]
    rows: dict[str, int]
    fractions: tuple[float, float, float]
    fingerprint: str


def tune_condition(
    data: FeatureSet,
    spec: PipelineSpec,
    n_trials: int = 20,
    cv: int = 5,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    random_state: int = 0,
    storage: str | None = None,
    study_name: str | None = None,
    progress: bool = False,
    before_tuning: Callable[[], None] | None = None,
    **tuning: Any,
) -> TuneResult:
    """Split by group, tune on the train part, report grouped-CV (mean ± std), validation and test metrics.

    Everything that can be refused (one class, too few groups for ``cv``) is
    checked before ``before_tuning`` runs and before the study is created, so
    a refused request writes nothing. ``before_tuning`` is where a caller creates
    output folders. ``tuning`` goes to :class:`~fdt.pipelines.tuning.OptunaSearchCV`
    (``pruner``, ``fidelity``, ``n_jobs``, ``trial_timeout``).
    """
    fractions = tuple(float(f) for f in fractions)
    check_binary(data.y, "data")
    masks = holdout_masks(data.groups, assign_groups(data.groups, data.sources, fractions, random_state))
    train = data.subset(masks["train"])
    check_binary(train.y)
    check_binary(data.y[masks["test"]], "held-out test split (add images or enlarge its share)")
    folds = grouped_folds(train.y, train.groups, cv, random_state)
    if before_tuning is not None:
        before_tuning()
    tuner = make_tuner(spec, random_state, n_trials=n_trials, cv=cv, storage=storage, study_name=study_name, progress=progress, **tuning)
    tuner.fit(train.X, train.y, train.groups)
    best = spec.build(random_state).set_params(**tuner.best_params_)
    cv_summary, cv_folds = cross_validate_metrics(best, train.X, train.y, train.groups, folds, cv, random_state, tuning.get("n_jobs", 1))
    scored = {}
    for part in ("val", "test"):
        rows = masks[part]
        scored[part] = compute_metrics(data.y[rows], tuner.predict_proba(data.X[rows])[:, 1]) if rows.any() else None
    return TuneResult(
        tuner=tuner,
        cv_summary=cv_summary,
        cv_folds=cv_folds,
        val_metrics=scored["val"],
        test_metrics=scored["test"],
        rows={part: int(mask.sum()) for part, mask in masks.items()},
        fractions=fractions,  # type: ignore[arg-type]
        fingerprint=fingerprint(data),
    )
