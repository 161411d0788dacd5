"""Cause 23 (tune): a trial of a killed process does not stay RUNNING for ever."""

from __future__ import annotations

import time

import numpy as np
import optuna
from sklearn.linear_model import LogisticRegression

from fdt.pipelines import tuning
from fdt.pipelines.tuning import OptunaSearchCV, open_storage


def test_a_killed_trial_is_marked_failed_by_the_next_run(tmp_path, monkeypatch):
    monkeypatch.setattr(tuning, "STALE_AFTER_SECONDS", 1)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    orphan = study.ask()  # what a SIGKILLed fdt tune leaves: RUNNING, its heartbeat stopped
    storage.record_heartbeat(orphan._trial_id)
    time.sleep(2.1)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 3)), np.arange(30) % 2
    search = OptunaSearchCV(LogisticRegression(), {"C": optuna.distributions.FloatDistribution(0.1, 1.0, log=True)}, n_trials=1, cv=2, storage=url, study_name="s", random_state=0)
    search.fit(X, y)
    states = [t.state for t in optuna.load_study(study_name="s", storage=url).trials]
    assert states[0] == optuna.trial.TrialState.FAIL
    assert states.count(optuna.trial.TrialState.COMPLETE) == 1
