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
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from fdt.features_store.featureset import FeatureSet
from fdt.pipelines.errors import PipelineError
from fdt.pipelines.intervals import DEFAULT_RESAMPLES, bootstrap_metrics, choose_thresholds
from fdt.pipelines.leakage import check_scored_rows, optimistic_cv_note
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
    perturb: str = "",
) -> FeatureSet:
    """Rows of the ``real`` and ``fake`` sources for one extractor and resolution, labels checked.

    ``perturb`` selects rows extracted after a chain of operations (an equalisation
    such as ``jpeg:quality=95,backend=pil``: :attr:`fdt.perturb.Chain.key`); ``""`` is clean.

    A source given as real but labelled fake in the store (or the reverse) is
    refused, since the labels would silently disagree with the command line.
    """
    wanted = list(real) + list(fake)
    if not real or not fake:
        raise PipelineError("name at least one real and one fake source (--real, --fake)")
    for names, option in ((real, "--real"), (fake, "--fake")):
        twice = sorted({name for name in names if list(names).count(name) > 1})
        if twice:
            raise PipelineError(f"{option} names {', '.join(twice)} twice: its rows would count double")
    both = sorted(set(real) & set(fake))
    if both:
        raise PipelineError(f"source(s) {', '.join(both)} in both --real and --fake")
    data = store.load(extractor, resolution, sources=wanted, params=params, weights=weights, perturb=perturb)
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


def study_name(name: str, data: FeatureSet, spec: PipelineSpec, random_state: int, fractions: Sequence[float], cv: int) -> str:
    """The Optuna study of one protocol: the data, the spec, the seed, the split and the folds.

    Trials of a study are compared with one another, so two protocols must never
    share one: trials scored on seed 0's folds would compete with trials scored on
    seed 1's, whose test rows sat in seed 0's training folds.
    """
    protocol = {"data": fingerprint(data), "spec": spec.to_dict(), "seed": int(random_state), "split": [float(f) for f in fractions], "cv": int(cv)}
    return f"{name}:{hashlib.sha256(json.dumps(protocol, sort_keys=True).encode()).hexdigest()[:16]}"


def fit_predictor(estimator: Any, X: np.ndarray, y: np.ndarray, groups: np.ndarray, cv: int, random_state: int | None) -> OptunaSearchCV:
    """Fit fixed parameters with probabilities (calibrated on grouped folds where needed); no tuning."""
    return OptunaSearchCV(estimator, {}, n_trials=0, cv=cv, random_state=random_state).fit(X, y, groups)


def cross_validate_metrics(
    estimator: Any, X: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: list, cv: int, random_state: int | None, n_jobs: int = 1
) -> tuple[dict[str, dict[str, float]], list[dict[str, float]], np.ndarray]:
    """Every metric on every grouped fold for fixed parameters: ``(mean ± std, per-fold metrics, out-of-fold scores)``.

    Metrics that pick an operating point use thresholds chosen on the other folds'
    out-of-fold scores, never on the fold they score. ``n_jobs`` folds are fitted at
    once (joblib); a fold's scores depend only on its rows, so any ``n_jobs`` gives the same numbers.
    """
    from joblib import Parallel, delayed

    def fold_scores(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        return fit_predictor(estimator, X[train], y[train], groups[train], cv, random_state).predict_proba(X[test])[:, 1]

    scores = np.full(len(y), np.nan)
    fitted = Parallel(n_jobs=n_jobs)(delayed(fold_scores)(train, test) for train, test in folds)
    for (_, test), fold in zip(folds, fitted):
        scores[test] = fold
    per_fold = []
    for _, test in folds:
        others = np.ones(len(y), bool)
        others[test] = False
        others &= ~np.isnan(scores)
        per_fold.append(compute_metrics(y[test], scores[test], thresholds=choose_thresholds(y[others], scores[others])))
    return summarise(per_fold), per_fold, scores


def evaluate_rows(
    y: np.ndarray, scores: np.ndarray, groups: np.ndarray, sources: np.ndarray, thresholds: dict[str, float], random_state: int, n_resamples: int
) -> dict[str, Any]:
    """Metrics with bootstrap intervals, pooled and per fake source, plus the shortcut flags of a scored set."""
    pooled = _scored(y, scores, groups, thresholds, random_state, n_resamples)
    fakes = sorted(set(sources[y == 1].tolist()))
    if len(fakes) > 1:
        pooled["per_source"] = {
            source: _scored(y[keep], scores[keep], groups[keep], thresholds, random_state, n_resamples)
            for source in fakes
            for keep in [(y == 0) | (sources == source)]
        }
    return pooled


def _scored(y: np.ndarray, scores: np.ndarray, groups: np.ndarray, thresholds: dict[str, float], random_state: int, n_resamples: int) -> dict[str, Any]:
    metrics = compute_metrics(y, scores, thresholds=thresholds)
    intervals = bootstrap_metrics(y, scores, groups, thresholds=thresholds, n_resamples=n_resamples, random_state=random_state)
    return {
        "metrics": metrics,
        "intervals": {name: list(interval) for name, interval in intervals.items()},
        "rows": int(len(y)),
        "groups": {"real": int(np.unique(groups[y == 0]).size), "fake": int(np.unique(groups[y == 1]).size)},
        "flags": shortcut_flags(metrics, groups, y, intervals.get("roc_auc")),
    }


def shortcut_flags(metrics: dict[str, float], groups: np.ndarray, y: np.ndarray, interval: Any = None) -> list[str]:
    """What a reader must know before comparing this number: an inverted detector, too few groups.

    A detector is called inverted only when its whole ROC AUC interval lies below
    0.5: a point estimate below 0.5 whose interval holds 0.5 is chance, not a
    reversed signal, and crying shortcut there would be as wrong as ignoring one.
    """
    flags = []
    upper = metrics["roc_auc"] if interval is None else float(interval[1])
    if metrics["roc_auc"] < 0.5 and upper < 0.5:
        flags.append(INVERTED)
    if min(np.unique(groups[y == 0]).size, np.unique(groups[y == 1]).size) < MIN_GROUPS:
        flags.append(TOO_FEW)
    return flags


INVERTED = "inverted: a shortcut or a label mix-up (ROC AUC and its whole interval below 0.5)"
TOO_FEW = "too few groups to compare (fewer than 10 real or 10 fake groups)"
SEEN_SOURCE = "not a cross-generator result: the extractor's network trained on this fake source (on other groups)"
MIN_GROUPS = 10


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
    test: dict[str, Any] = field(default_factory=dict)
    """Test metrics with intervals, per fake source, and flags (see :func:`evaluate_rows`)."""
    cv_pooled: dict[str, Any] = field(default_factory=dict)
    """Metrics of the pooled out-of-fold scores of the train share, with intervals."""
    thresholds: dict[str, Any] = field(default_factory=dict)
    """Thresholds the test metrics used, and the rows they were chosen on."""
    notes: list[str] = field(default_factory=list)
    """Warnings every report of this condition must carry (leaks, optimistic CV)."""


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
    allow_trained_groups: bool = False,
    n_resamples: int = DEFAULT_RESAMPLES,
    **tuning: Any,
) -> TuneResult:
    """Split by group, tune on the train part, report grouped-CV (mean ± std), validation and test metrics.

    Everything that can be refused (one class, too few groups for ``cv``, features
    of a network trained on the groups to be scored) is checked before
    ``before_tuning`` runs and before the study is created, so a refused request
    writes nothing. ``before_tuning`` is where a caller creates output folders.

    Test metrics carry 95 % bootstrap intervals over groups and are given per fake
    source as well as pooled; the thresholds of ``best_threshold_accuracy`` and
    ``tpr_at_fpr_K`` are chosen on the validation rows (or, without them, on the
    out-of-fold scores of the train part), never on the test rows. ``tuning`` goes to
    :class:`~fdt.pipelines.tuning.OptunaSearchCV` (``pruner``, ``fidelity``, ``n_jobs``, ``trial_timeout``).
    """
    fractions = tuple(float(f) for f in fractions)
    check_binary(data.y, "data")
    masks = holdout_masks(data.groups, assign_groups(data.groups, data.sources, fractions, random_state, data.y))
    train = data.subset(masks["train"])
    check_binary(train.y)
    check_binary(data.y[masks["test"]], "held-out test split (add images or enlarge its share)")
    folds = grouped_folds(train.y, train.groups, cv, random_state)
    notes = [note for note in (
        check_scored_rows(data, masks["val"] | masks["test"], "validation and test", allow_trained_groups),
        optimistic_cv_note(data, masks["train"]),
    ) if note]
    if before_tuning is not None:
        before_tuning()
    tuner = make_tuner(spec, random_state, n_trials=n_trials, cv=cv, storage=storage, study_name=study_name, progress=progress, **tuning)
    tuner.fit(train.X, train.y, train.groups)
    best = spec.build(random_state).set_params(**tuner.best_params_)
    cv_summary, cv_folds, oof = cross_validate_metrics(best, train.X, train.y, train.groups, folds, cv, random_state, tuning.get("n_jobs", 1))
    oof_thresholds = choose_thresholds(train.y, oof)
    cv_pooled = _scored(train.y, oof, train.groups, oof_thresholds, random_state, n_resamples)
    scores = {part: tuner.predict_proba(data.X[masks[part]])[:, 1] for part in ("val", "test") if masks[part].any()}
    val_y = data.y[masks["val"]]
    if "val" in scores and np.unique(val_y).size == 2:
        thresholds, chosen_on = choose_thresholds(val_y, scores["val"]), "validation rows"
    else:
        thresholds, chosen_on = oof_thresholds, "out-of-fold scores of the train part (no validation rows of both classes)"
    rows = masks["test"]
    test = evaluate_rows(data.y[rows], scores["test"], data.groups[rows], data.sources[rows], thresholds, random_state, n_resamples)
    val_metrics = compute_metrics(val_y, scores["val"], thresholds=oof_thresholds) if "val" in scores else None
    return TuneResult(
        tuner=tuner,
        cv_summary=cv_summary,
        cv_folds=cv_folds,
        val_metrics=val_metrics,
        test_metrics=test["metrics"],
        rows={part: int(mask.sum()) for part, mask in masks.items()},
        fractions=fractions,  # type: ignore[arg-type]
        fingerprint=fingerprint(data),
        test=test,
        cv_pooled=cv_pooled,
        thresholds={"values": thresholds, "chosen_on": chosen_on},
        notes=notes,
    )
