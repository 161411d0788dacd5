"""Cause 8: models are skops files rebuilt from trusted types; a pickle runs nothing unless the user says --trust."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fdt.cli import cli
from fdt.data import sha256_file
from fdt.errors import UnsafeNameError
from fdt.pipelines.cards import CARD_TYPE, CARD_VERSION, UntrustedModelWarning, load_model, save_model
from fdt.pipelines.errors import PipelineError


class _Payload:
    """Unpickling this calls ``Path.touch`` on a marker: the stand-in for ``os.system``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _card(model: Path, **extra) -> None:
    card = {"encoding-type": CARD_TYPE, "encoding-version": CARD_VERSION, "model_sha256": sha256_file(model), **extra}
    model.with_suffix(".json").write_text(json.dumps(card))


@pytest.mark.parametrize(
    "estimator",
    [
        make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=3, random_state=0)),
        make_pipeline(StandardScaler(), KNeighborsClassifier(3)),
        make_pipeline(Nystroem(n_components=8, random_state=0), SGDClassifier(loss="log_loss", random_state=0)),
        HistGradientBoostingClassifier(max_iter=3),
    ],
    ids=["forest", "knn", "nystroem-sgd", "hgb"],
)
def test_skops_round_trip_of_calibrated_pipelines(tmp_path, estimator):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 4)), np.arange(40) % 2
    model = CalibratedClassifierCV(estimator, cv=2).fit(X, y)
    path, card = save_model(model, {"name": "m"}, tmp_path, "m")
    assert path.suffix == ".skops" and path.read_bytes()[:2] == b"PK"
    loaded, _ = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_a_pickle_with_a_recomputed_card_runs_nothing_without_trust(tmp_path):
    marker = tmp_path / "pwned"
    model = tmp_path / "m.joblib"
    model.write_bytes(pickle.dumps(_Payload(marker)))
    _card(model, extractor_key={"extractor": "fft", "params": {}, "weights": "none", "resolution": "native"})
    result = CliRunner().invoke(cli, ["predict", str(model), str(tmp_path)])
    assert result.exit_code == 2 and "--trust" in result.output
    assert not marker.exists()
    with pytest.warns(UntrustedModelWarning):
        load_model(model, trust_pickle=True)
    assert marker.exists()  # trusted on the user's word: it is a pickle, and it ran


def test_a_skops_file_with_a_foreign_type_is_refused(tmp_path):
    import skops.io

    marker = tmp_path / "pwned"
    model = tmp_path / "m.skops"
    model.write_bytes(skops.io.dumps({"payload": _Payload(marker)}))
    _card(model)
    with pytest.raises(PipelineError, match="does not trust"):
        load_model(model)
    assert not marker.exists()


def test_a_damaged_skops_file_is_one_line(tmp_path):
    model = tmp_path / "m.skops"
    model.write_bytes(b"not a zip")
    _card(model)
    with pytest.raises(PipelineError, match="not a readable skops model file"):
        load_model(model)


@pytest.mark.parametrize("name", ["../../escape", "a/b", ".hidden", "", "x\0y"])
def test_save_model_refuses_names_that_leave_the_folder(tmp_path, name):
    with pytest.raises(UnsafeNameError):
        save_model(object(), {}, tmp_path / "models", name)
    assert not any(tmp_path.rglob("*escape*"))
