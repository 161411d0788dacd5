"""Issue 17 and 13: solvers by shape, iteration caps recorded, time budgets that kill, pruning, --jobs, new specs."""

from __future__ import annotations

import os
import time

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.utils.estimator_checks import parametrize_with_checks

from fdt.pipelines.errors import PipelineError
from fdt.pipelines.folds import fit_fold
from fdt.pipelines.solvers import choose, configure
from fdt.pipelines.specs import BUILTIN_SPECS, get_spec
from fdt.pipelines.tuning import OptunaSearchCV, make_tuner


def data(n=120, d=8, seed=0):
    X, y = make_classification(n, d, n_informative=4, flip_y=0.1, random_state=seed)
    return X.astype(np.float32), y


@pytest.mark.parametrize(
    ("classifier", "shape", "expected"),
    [
        (LinearSVC(), (16000, 4096), {"dual": False}),
        (LinearSVC(), (8000, 4096), {"dual": True, "tol": 1e-3}),  # 2 rows per feature: the primal stalls at large C
        (LinearSVC(tol=1e-3), (1000, 4096), {"dual": True, "tol": 1e-2}),
        (LinearSVC(loss="hinge"), (8000, 4096), {"dual": True}),
        (LinearSVC(dual=True), (8000, 4096), {}),  # a spec that names the solver keeps it
        (LogisticRegression(), (100_000, 256), {"solver": "newton-cholesky"}),
        (LogisticRegression(), (8000, 4096), {"solver": "lbfgs"}),
        (LogisticRegression(), (2000, 1024), {"solver": "lbfgs"}),
        (LogisticRegression(solver="saga"), (100_000, 256), {}),
        (SVC(), (8000, 4096), {}),
    ],
)
def test_solver_is_chosen_by_shape(classifier, shape, expected):
    assert choose(classifier, *shape) == expected


def test_solver_sees_the_width_after_pca_and_narrow_data_cuts_pca():
    wide = get_spec("hgb").build(0)
    assert configure(wide, 5000, 16) == {"pca__n_components": 16}
    pipeline = make_pipeline(StandardScaler(), LinearSVC())
    pipeline.steps[0] = ("scaler", pipeline.steps[0][1])
    nystroem = get_spec("svm-nystroem").build(0).set_params(features__n_components=300)
    assert configure(nystroem, 1000, 4096) == {"dual": False}  # 1000 rows > 3 x 300 kernel features


def test_nystroem_landmarks_are_cut_to_the_rows_without_a_warning():
    import warnings

    X, y = data()
    nystroem = get_spec("svm-nystroem").build(0).set_params(features__n_components=4096)
    chosen = configure(nystroem, len(y), X.shape[1], 0)
    assert chosen["features__n_components"] == len(y) and chosen["dual"] is True  # as many kernel features as rows: dual
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's own cut warns on every fit
        assert nystroem.fit(X, y).named_steps["features"].components_.shape[0] == len(y)


def test_non_converged_fits_are_recorded_on_trials_and_refit():
    X, y = data()
    capped = LinearSVC(dual=True, tol=1e-12, max_iter=1, C=10.0)
    tuner = OptunaSearchCV(capped, {"C": FloatDistribution(1.0, 10.0)}, n_trials=2, cv=3, random_state=0).fit(X, y)
    assert all(trial.user_attrs["not_converged_folds"] == 3 for trial in tuner.study_.trials)
    assert tuner.trial_counts_["not_converged"] == 2
    assert tuner.refit_converged_ is False
    healthy = OptunaSearchCV(LinearSVC(), {"C": FloatDistribution(1e-3, 1e-1)}, n_trials=1, cv=3, random_state=0).fit(X, y)
    assert healthy.trial_counts_["not_converged"] == 0 and healthy.refit_converged_


def test_warm_start_reuses_the_previous_fit_of_the_fold():
    X, y = data(400, 30)
    folds = [(np.arange(300), np.arange(300, 400))]
    model = LogisticRegression(C=1.0, warm_start=True, max_iter=1000, tol=1e-8)
    cold = fit_fold(model, X, y, *folds[0], "roc_auc")
    warm = fit_fold(model, X, y, *folds[0], "roc_auc", warm=cold.warm)
    assert cold.warm is not None and warm.iterations < cold.iterations
    assert warm.score == pytest.approx(cold.score, abs=1e-6)


class SlowClassifier(ClassifierMixin, BaseEstimator):
    """Sleeps in ``fit`` after writing its process id to ``pid_file``: a fit that only a kill can stop."""

    def __init__(self, delay=0.0, pid_file=""):
        self.delay = delay
        self.pid_file = pid_file

    def fit(self, X, y):
        if self.delay:
            if self.pid_file:
                with open(self.pid_file, "a") as handle:
                    handle.write(f"{os.getpid()}\n")
            time.sleep(self.delay)
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.tile([0.5, 0.5], (len(X), 1))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_trial_over_its_time_budget_is_killed_and_recorded(tmp_path):
    X, y = data()
    pid_file = tmp_path / "pids"
    slow = SlowClassifier(pid_file=str(pid_file))
    # 5 s: room for a loaded machine to start the fit, far below the fit's 600 s
    tuner = OptunaSearchCV(slow, {"delay": CategoricalDistribution([600.0])}, n_trials=1, cv=3, random_state=0, trial_timeout=5).fit(X, y)
    assert tuner.trial_counts_["pruned"] == 1 and tuner.trial_counts_["timed_out"] == 1
    assert "time budget of 5 s exceeded at fold 1/3" in tuner.study_.trials[0].user_attrs["stopped"]
    pids = [int(line) for line in pid_file.read_text().split()]
    assert pids and os.getpid() not in pids
    deadline = time.monotonic() + 30
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_alive, pids)), "the slow fit's worker was not killed"
    assert tuner.n_trials_ == 0 and tuner.best_params_ == {}  # defaults refit: delay 0


def test_in_a_daemonic_process_the_budget_is_checked_between_folds(monkeypatch):
    import multiprocessing

    class Daemon:
        daemon = True

    monkeypatch.setattr(multiprocessing, "current_process", lambda: Daemon())
    X, y = data()
    slow = SlowClassifier()  # delay 0.3 s per fit, in this process
    tuner = OptunaSearchCV(slow, {"delay": CategoricalDistribution([0.3])}, n_trials=1, cv=3, random_state=0, trial_timeout=0.1).fit(X, y)
    stopped = tuner.study_.trials[0].user_attrs["stopped"]
    assert "exceeded after fold 1/3 (checked between folds" in stopped and tuner.trial_counts_["timed_out"] == 1


def _study_record(tuner):
    return [(t.state.name, t.params, t.value, dict(t.intermediate_values)) for t in tuner.study_.trials]


def _rbf_tuner(**kwargs):
    space = {"svc__C": FloatDistribution(1e-2, 1e2, log=True), "svc__gamma": FloatDistribution(1e-3, 1e3, log=True)}
    return OptunaSearchCV(make_pipeline(StandardScaler(), SVC()), space, n_trials=14, cv=5, random_state=3, **kwargs)


def test_pruning_is_reproducible_with_a_seed_and_counted():
    X, y = data(150, 10, seed=1)
    first, second = (_rbf_tuner(pruner="wilcoxon").fit(X, y) for _ in range(2))
    assert _study_record(first) == _study_record(second)
    assert first.trial_counts_["pruned"] >= 1
    assert first.trial_counts_["complete"] + first.trial_counts_["pruned"] == 14
    pruned = [t for t in first.study_.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert all(len(t.intermediate_values) < 5 and "pruned after" in t.user_attrs["stopped"] for t in pruned)


@pytest.mark.parametrize("pruner", ["median", "halving"])
def test_other_pruners_run(pruner):
    X, y = data(150, 10, seed=1)
    tuner = _rbf_tuner(pruner=pruner).fit(X, y)
    assert sum(tuner.trial_counts_.get(state, 0) for state in ("complete", "pruned")) == 14


def test_multi_fidelity_scores_a_subsample_first():
    X, y = data(150, 10, seed=1)
    tuner = _rbf_tuner(pruner="wilcoxon", fidelity=0.3).fit(X, y)
    complete = [t for t in tuner.study_.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete and all(sorted(t.intermediate_values) == list(range(10)) for t in complete)


def test_jobs_two_equals_jobs_one():
    X, y = data(150, 10, seed=1)
    one, two = (_rbf_tuner(pruner="wilcoxon", n_jobs=jobs).fit(X, y) for jobs in (1, 2))
    assert _study_record(one) == _study_record(two)
    np.testing.assert_array_equal(one.predict_proba(X), two.predict_proba(X))


@pytest.mark.parametrize(
    "settings", [{"pruner": "nope"}, {"fidelity": 0.5}, {"fidelity": 1.5, "pruner": "median"}, {"n_jobs": 0}, {"trial_timeout": 0}]
)
def test_bad_tuning_settings_are_refused(settings):
    X, y = data()
    with pytest.raises(PipelineError):
        OptunaSearchCV(LogisticRegression(), {}, n_trials=1, cv=3, **settings).fit(X, y)


NEW_SPECS = ["svm-nystroem", "logreg-rff", "sgd-hinge", "sgd-log", "hgb"]


@pytest.mark.parametrize("name", NEW_SPECS)
def test_new_spec_tunes_and_gives_probabilities(name):
    X, y = data(400 if name.startswith("sgd") else 150, 12)
    tuner = make_tuner(get_spec(name), 0, n_trials=2, cv=3).fit(X, y)
    assert tuner.predict_proba(X).shape == (len(y), 2) and tuner.best_score_ > 0.6
    assert get_spec(name).cost


def _pruned_spec_tuner(name):
    spec = get_spec(name)
    pipeline = spec.build(0)
    if "features__n_components" in pipeline.get_params():
        pipeline.set_params(features__n_components=8)
    space = {k: v for k, v in spec.distributions().items() if k != "features__n_components"}
    return OptunaSearchCV(pipeline, space, n_trials=2, cv=3, random_state=0, pruner="median")


@parametrize_with_checks([_pruned_spec_tuner("logreg-rff")])
def test_sklearn_checks_pass_for_new_specs_with_pruning(estimator, check):
    check(estimator)


def test_pca_whitening_in_a_user_spec(tmp_path):
    from fdt.pipelines.specs import load_specs

    path = tmp_path / "specs.toml"
    path.write_text('[pipelines.white]\npca = 3\nwhiten = true\nclassifier = "logistic-regression"\ncost = "O(n·d)"\n'
                    '[pipelines.white.space]\n"pca__n_components" = { type = "int", low = 2, high = 5 }\n')
    spec = load_specs(path)["white"]
    pipeline = spec.build(0)
    assert pipeline.get_params()["pca__whiten"] is True and spec.steps == ["scaler", "pca", "classifier"]
    X, y = data()
    make_tuner(spec, 0, n_trials=2, cv=3).fit(X, y)


def test_every_builtin_spec_states_a_cost_class():
    assert all(spec.cost for spec in BUILTIN_SPECS.values())
    assert {name for name, spec in BUILTIN_SPECS.items() if spec.quadratic} == {"svm-rbf", "knn"}
