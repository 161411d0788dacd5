"""One training condition end to end through the library, and model files with cards."""

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from fdt.pipelines.cards import load_model, save_model
from fdt.pipelines.errors import SplitError
from fdt.pipelines.evaluation import fingerprint, tune_condition
from fdt.pipelines.metrics import METRICS
from fdt.pipelines.specs import get_spec

TWO = {"real": (0, np.zeros(4)), "fake": (1, np.array([2.0, 0, 0, 0]))}


def test_tune_condition_reports_every_metric_as_mean_and_std(featureset_factory):
    data = featureset_factory(TWO, per_source=60, dim=4, copies=2)
    result = tune_condition(data, get_spec("svm-linear"), n_trials=2, cv=3, random_state=0)
    assert tuple(result.cv_summary) == METRICS and all(set(v) == {"mean", "std"} for v in result.cv_summary.values())
    assert len(result.cv_folds) == 3 and result.tuner.calibration_ == "sigmoid"
    assert result.rows == {"train": 192, "val": 24, "test": 24}  # 120 groups of 2 rows, split 80/10/10 per source
    assert result.test_metrics["roc_auc"] > 0.8


def test_single_class_data_is_refused_before_anything_runs(featureset_factory):
    called = []
    data = featureset_factory({"real": TWO["real"]}, per_source=20, dim=4)
    with pytest.raises(SplitError, match="data has only one class \\(real images\\)"):
        tune_condition(data, get_spec("logreg"), n_trials=1, cv=3, before_tuning=lambda: called.append(1))
    assert not called


def test_fingerprint_changes_with_the_rows(featureset_factory):
    data = featureset_factory(TWO, per_source=5, dim=4)
    assert fingerprint(data) == fingerprint(data.subset(np.arange(len(data))[::-1]))  # row order does not matter
    assert fingerprint(data) != fingerprint(data.subset(np.arange(len(data) - 1)))


def test_model_file_round_trip_and_card(tmp_path):
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    path, card = save_model(model, {"name": "m"}, tmp_path / "models", "m")
    loaded, read = load_model(path)
    assert read == json.loads((tmp_path / "models" / "m.json").read_text()) == card
    assert loaded.predict([[1.0]])[0] == 1 and len(card["model_sha256"]) == 64
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["m.joblib", "m.json"]  # no temp files left


def test_a_model_of_real_vs_several_fakes_reports_each_fake_source_with_intervals(featureset_factory):
    sources = {"real": (0, np.zeros(4)), "near": (1, np.array([0.5, 0, 0, 0])), "far": (1, np.array([3.0, 0, 0, 0]))}
    data = featureset_factory(sources, per_source=60, dim=4)
    result = tune_condition(data, get_spec("logreg"), n_trials=1, cv=3, random_state=0)
    per_source = result.test["per_source"]
    assert set(per_source) == {"near", "far"}
    assert per_source["far"]["metrics"]["roc_auc"] > per_source["near"]["metrics"]["roc_auc"]
    for scored in (result.test, *per_source.values()):
        low, high = scored["intervals"]["roc_auc"]
        assert low <= scored["metrics"]["roc_auc"] <= high
    assert result.thresholds["chosen_on"] == "validation rows"
    assert "too few groups" in " ".join(result.test["flags"])  # 6 real groups in the test share: fewer than 10
