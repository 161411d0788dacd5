"""The Optuna meta-estimator: sklearn's contract, tuning that helps, determinism and persistence."""

import numpy as np
import pytest
from optuna.distributions import FloatDistribution
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.utils.estimator_checks import parametrize_with_checks

from fdt.pipelines.errors import SplitError
from fdt.pipelines.metrics import compute_metrics
from fdt.pipelines.tuning import OptunaSearchCV

SPACE = {"C": FloatDistribution(1e-2, 1e2, log=True)}

# Skipped checks: none fail. `check_array_api_input` and `check_classifier_data_not_an_array`
# (pandas) skip themselves when SciPy array-API support or pandas are absent, as here;
# multiclass checks are not yielded because the tuner declares itself binary-only
# (real vs fake), which `check_classifier_not_supporting_multiclass` verifies.


@parametrize_with_checks(
    [
        OptunaSearchCV(LogisticRegression(), SPACE, n_trials=2, cv=3, random_state=0),
        OptunaSearchCV(LinearSVC(), SPACE, n_trials=2, cv=3, random_state=0),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def separable(seed=0, n=80):
    """Two classes far apart on the first of 20 features; the other 19 are noise of large scale."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    X = rng.normal(0, 1, (n, 20)) * 10
    X[:, 0] = y * 4 + rng.normal(0, 1, n)
    return X, y


def test_tuned_beats_a_deliberately_bad_default():
    X, y = separable()
    X_test, y_test = separable(seed=1)
    bad = make_pipeline(StandardScaler(), SVC(gamma=1e3))  # so narrow a kernel that every test point looks alike
    space = {"svc__gamma": FloatDistribution(1e-4, 1e3, log=True)}
    tuned = OptunaSearchCV(bad, space, n_trials=12, cv=4, random_state=0).fit(X, y)
    untuned = OptunaSearchCV(bad, {}, n_trials=0, cv=4, random_state=0).fit(X, y)
    tuned_acc = compute_metrics(y_test, tuned.predict_proba(X_test)[:, 1])["accuracy"]
    bad_acc = compute_metrics(y_test, untuned.predict_proba(X_test)[:, 1])["accuracy"]
    assert tuned.best_params_["svc__gamma"] < 1
    assert tuned_acc >= 0.9 and bad_acc <= 0.6
    assert untuned.best_params_ == {} and np.isnan(untuned.best_score_)


def test_same_seed_gives_identical_results():
    X, y = separable()
    fits = [OptunaSearchCV(LinearSVC(), SPACE, n_trials=6, cv=3, random_state=7).fit(X, y) for _ in range(2)]
    assert fits[0].best_params_ == fits[1].best_params_
    assert [t.value for t in fits[0].study_.trials] == [t.value for t in fits[1].study_.trials]
    np.testing.assert_array_equal(fits[0].predict_proba(X), fits[1].predict_proba(X))
    other = OptunaSearchCV(LinearSVC(), SPACE, n_trials=6, cv=3, random_state=8).fit(X, y)
    assert [t.params for t in other.study_.trials] != [t.params for t in fits[0].study_.trials]


def test_persistent_study_continues(tmp_path):
    X, y = separable()
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = OptunaSearchCV(LogisticRegression(), SPACE, n_trials=3, cv=3, random_state=0, storage=storage, study_name="s").fit(X, y)
    again = OptunaSearchCV(LogisticRegression(), SPACE, n_trials=2, cv=3, random_state=0, storage=storage, study_name="s").fit(X, y)
    assert (first.n_trials_, again.n_trials_) == (3, 5)
    assert again.best_score_ >= first.best_score_


@pytest.mark.parametrize(
    ("estimator", "calibration", "has_decision"),
    [(LinearSVC(), "sigmoid", True), (LogisticRegression(), "native", True)],
)
def test_probabilities_are_native_or_calibrated_and_recorded(estimator, calibration, has_decision):
    X, y = separable()
    tuner = OptunaSearchCV(estimator, SPACE, n_trials=1, cv=3, random_state=0).fit(X, y)
    assert tuner.calibration_ == calibration
    proba = tuner.predict_proba(X)
    assert proba.shape == (len(y), 2) and np.allclose(proba.sum(axis=1), 1)
    assert hasattr(tuner, "decision_function") is has_decision


def test_single_class_training_set_is_refused():
    with pytest.raises(SplitError, match="only one class.*fake"):
        OptunaSearchCV(LogisticRegression(), SPACE, n_trials=1, cv=3).fit(np.ones((6, 2)), np.ones(6, int))


def test_fewer_groups_than_folds_is_refused():
    X, y = separable(n=20)
    groups = np.repeat(["a", "b", "c", "d"], 5)  # two groups per class
    with pytest.raises(SplitError, match="only 2 real group.*5-fold"):
        OptunaSearchCV(LogisticRegression(), SPACE, n_trials=1, cv=5).fit(X, y, groups=groups)
