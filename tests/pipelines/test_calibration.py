"""Calibration of scores into probabilities: isotonic on a hand-built case, and the storage opener's retries."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from fdt.pipelines.errors import PipelineError
from fdt.pipelines.tuning import OptunaSearchCV, open_storage


class FirstColumn(ClassifierMixin, BaseEstimator):
    """A classifier whose score is the first feature and which has no ``predict_proba``: what calibration must turn into probabilities.

    Its score does not depend on the training rows, so every fold scores a row
    alike and the calibration data are exactly (x, y): the answer can be worked by hand.
    """

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def decision_function(self, X):
        return np.asarray(X, dtype=float)[:, 0]

    def predict(self, X):
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


# Four score levels, 10 rows each, with 2, 2, 8 and 8 fakes: a step no sigmoid can follow.
LEVELS = np.array([-3.0, -1.0, 1.0, 3.0])
FAKES = [2, 2, 8, 8]
X = np.repeat(LEVELS, 10)[:, None]
Y = np.concatenate([[1] * k + [0] * (10 - k) for k in FAKES])


def calibrated(method: str) -> OptunaSearchCV:
    return OptunaSearchCV(FirstColumn(), {}, n_trials=0, cv=5, random_state=0, calibration=method).fit(X, Y)


def test_isotonic_probabilities_are_the_fake_share_at_each_score():
    model = calibrated("isotonic")
    assert model.calibration_ == "isotonic"
    # isotonic regression of y on x: the level means 0.2, 0.2, 0.8, 0.8 are already non-decreasing
    np.testing.assert_allclose(model.predict_proba(LEVELS[:, None])[:, 1], [0.2, 0.2, 0.8, 0.8])


def test_isotonic_probabilities_never_fall_as_the_score_rises():
    grid = np.linspace(-5, 5, 201)[:, None]
    proba = calibrated("isotonic").predict_proba(grid)[:, 1]
    assert np.all(np.diff(proba) >= 0) and proba[0] == pytest.approx(0.2) and proba[-1] == pytest.approx(0.8)


def test_a_sigmoid_cannot_follow_the_step_isotonic_follows():
    proba = calibrated("sigmoid").predict_proba(LEVELS[:, None])[:, 1]
    assert calibrated("sigmoid").calibration_ == "sigmoid"
    assert abs(proba[1] - 0.2) > 0.05 and abs(proba[2] - 0.8) > 0.05  # the control: the case tells the methods apart


# --------------------------------------------------------------------------- open_storage


@pytest.fixture
def pauses(monkeypatch) -> list[float]:
    """Record the opener's pauses instead of sleeping them."""
    taken: list[float] = []
    monkeypatch.setattr("time.sleep", taken.append)
    return taken


def flaky_storage(monkeypatch, failures: int, error: Exception) -> list[str]:
    calls: list[str] = []

    def storage(url, **kwargs):
        calls.append(url)
        if len(calls) <= failures:
            raise error
        return ("storage", url)

    monkeypatch.setattr("optuna.storages.RDBStorage", storage)
    return calls


def test_open_storage_retries_a_transient_failure_then_succeeds(monkeypatch, pauses):
    from sqlalchemy.exc import OperationalError

    calls = flaky_storage(monkeypatch, 2, OperationalError("CREATE TABLE studies", {}, Exception("table studies already exists")))
    assert open_storage("sqlite:///x.db", attempts=4) == ("storage", "sqlite:///x.db")
    assert len(calls) == 3 and len(pauses) == 2 and all(pause > 0 for pause in pauses)


def test_open_storage_gives_up_after_its_attempts_with_one_clear_line(monkeypatch, pauses):
    from sqlalchemy.exc import OperationalError

    calls = flaky_storage(monkeypatch, 99, OperationalError("SELECT 1", {}, Exception("could not connect to server")))
    with pytest.raises(PipelineError, match=r"^cannot open the study storage postgresql://db/s: \(builtins.Exception\) could not connect to server$"):
        open_storage("postgresql://db/s", attempts=3)
    assert len(calls) == 3 and len(pauses) == 2  # no pause after the last attempt


def test_open_storage_does_not_retry_what_is_not_a_database_failure(monkeypatch, pauses):
    calls = flaky_storage(monkeypatch, 99, TypeError("a bug"))
    with pytest.raises(TypeError, match="a bug"):
        open_storage("sqlite:///x.db")
    assert len(calls) == 1 and pauses == []


def test_open_storage_on_a_folder_that_does_not_exist_fails_as_a_user_error(tmp_path, pauses):
    with pytest.raises(PipelineError, match="cannot open the study storage sqlite:///.*/missing/optuna.db"):
        open_storage(f"sqlite:///{tmp_path / 'missing' / 'optuna.db'}", attempts=2)
    assert len(pauses) == 1


@pytest.mark.parametrize("content", [b"x", b"not a database at all", "sqlite-without-optuna"])
def test_open_storage_refuses_a_file_that_is_not_an_optuna_database(tmp_path, content):
    import sqlite3

    path = tmp_path / "results.db"
    if content == "sqlite-without-optuna":
        with sqlite3.connect(path) as connection:
            connection.execute("CREATE TABLE measurements (x REAL)")
        connection.close()
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(PipelineError, match="not a SQLite database|without Optuna's tables"):
        open_storage(f"sqlite:///{path}")
    assert path.read_bytes() == before


def test_open_storage_takes_an_empty_file_and_its_own_database_again(tmp_path):
    path = tmp_path / "optuna.db"
    path.touch()
    assert open_storage(f"sqlite:///{path}") is not None
    assert open_storage(f"sqlite:///{path}") is not None  # now holds Optuna's tables
