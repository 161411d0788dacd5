"""The notebook API (``fdt.open_store``, ``fdt.load``, ``fdt.extract``, ``fdt.build_pipeline``, ``fdt.tune``, ``fdt.matrix``)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from PIL import Image

import fdt
from fdt.errors import FdtError
from fdt.features_store.errors import StoreError
from fdt.features_store.featureset import FeatureSet
from tests.tiny_images import write_sources

SOURCES = {"coco": "noise", "dcgan": "smooth", "sd21": "striped"}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """12 images per source (coco real; dcgan, sd21 fake), 32 px, as ``fft`` features (size 8) at native resolution."""
    root = tmp_path_factory.mktemp("api")
    write_sources(root / "data", SOURCES, count=12, size=32)
    summary = fdt.extract(root / "data", "fft", params={"size": 8}, store=root / "features_store", real=["coco"], workers=0, progress=False)
    assert (summary.new_rows, summary.failed) == (36, 0), summary.line()
    return root / "features_store"


@pytest.fixture
def quiet_audit(monkeypatch):
    """Record the format audit's calls instead of running it (its forests cost seconds; its own tests cover it)."""
    calls = []

    def shortcut_warnings(store, real, fakes, random_state=0):
        calls.append((sorted(real), sorted(fakes)))
        return ["**WARNING: audited.**"]

    monkeypatch.setattr("fdt.pipelines.audit.shortcut_warnings", shortcut_warnings)
    return calls


def test_import_fdt_imports_no_heavy_library_and_lists_the_api():
    code = (
        "import json, sys, fdt\n"
        "heavy = sorted(m for m in ('torch', 'torchvision', 'timm', 'diffusers', 'sklearn', 'optuna', 'h5py') if m in sys.modules)\n"
        "print(json.dumps({'heavy': heavy, 'all': fdt.__all__, 'dir': [n for n in dir(fdt) if n in fdt.__all__]}))\n"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    names = ["build_pipeline", "extract", "load", "matrix", "open_store", "run", "tune"]
    assert out == {"heavy": [], "all": names, "dir": names}


def test_the_top_level_names_are_the_api_functions_and_nothing_else_resolves():
    from fdt import api

    assert fdt.load is api.load and fdt.matrix is api.matrix
    with pytest.raises(AttributeError, match="no attribute 'lode'"):
        fdt.lode


def test_extract_then_load_gives_the_extractor_s_features_of_each_file(store):
    data = fdt.load("fft", real="coco", fake=["dcgan", "sd21"], store=store)
    assert isinstance(data, FeatureSet) and data.X.shape == (36, 64)
    assert sorted(zip(*np.unique(data.sources, return_counts=True))) == [("coco", 12), ("dcgan", 12), ("sd21", 12)]
    assert set(data.y[data.sources == "coco"]) == {0} and set(data.y[data.sources != "coco"]) == {1}
    # the stored row of a file is what the extractor computes on that file's pixels as given
    from fdt.features_store import create_extractor

    row = next(i for i, path in enumerate(data.paths) if Path(path).parts[-2:] == ("sd21", "003.png"))
    with Image.open(Path(data.paths[row])) as image:
        expected = create_extractor("fft", size=8).transform([image.convert("RGB")])[0]
    np.testing.assert_allclose(data.X[row], expected, rtol=1e-5)


def test_return_X_y_keeps_the_groups_a_split_needs(store):
    data = fdt.load("fft", "native", real=["coco"], fake=["dcgan"], store=store)
    X, y, groups = fdt.load("fft", "native", real=["coco"], fake=["dcgan"], store=store, return_X_y=True)
    np.testing.assert_array_equal(X, data.X)
    np.testing.assert_array_equal(y, data.y)
    np.testing.assert_array_equal(groups, data.groups)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"real": "dcgan", "fake": "coco"}, "'dcgan' is labelled fake in the store, not real"),
        ({"real": "coco", "fake": "dcgan,sd21"}, "as a list"),
        ({"real": "coco", "fake": ["coco"]}, "in both --real and --fake"),
    ],
)
def test_load_refuses_what_would_mislabel_rows(store, kwargs, match):
    with pytest.raises(FdtError, match=match):
        fdt.load("fft", store=store, **kwargs)


def test_open_store_refuses_a_missing_folder_rather_than_showing_an_empty_store(tmp_path, store):
    with pytest.raises(StoreError, match="no feature store at"):
        fdt.open_store(tmp_path / "typo")
    assert {key.extractor for key in fdt.open_store(store).keys()} == {"fft"}


def test_build_pipeline_is_an_unfitted_seeded_sklearn_pipeline():
    from sklearn.exceptions import NotFittedError
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    pipeline = fdt.build_pipeline("random-forest", random_state=3)
    assert isinstance(pipeline, Pipeline) and pipeline.get_params()["classifier__random_state"] == 3
    with pytest.raises(NotFittedError):
        check_is_fitted(pipeline)


def test_tune_scores_held_out_groups_with_intervals_and_says_when_unaudited(store, quiet_audit):
    data = fdt.load("fft", real="coco", fake=["dcgan", "sd21"], store=store)
    result = fdt.tune(data, "logreg", n_trials=2, cv=3, n_resamples=50)
    assert result.rows["train"] + result.rows["val"] + result.rows["test"] == len(data)
    low, high = result.test["intervals"]["roc_auc"]
    assert low <= result.test_metrics["roc_auc"] <= high
    assert set(result.test["per_source"]) == {"dcgan", "sd21"}
    assert fdt.api.NOT_AUDITED in result.notes and quiet_audit == []
    audited = fdt.tune(data, "logreg", n_trials=0, cv=3, n_resamples=50, store=store)
    assert quiet_audit == [(["coco"], ["dcgan", "sd21"])] and "**WARNING: audited.**" in audited.notes


def test_a_stored_study_is_keyed_by_the_protocol(store, tmp_path):
    data = fdt.load("fft", real="coco", fake="dcgan", store=store)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = fdt.tune(data, "logreg", n_trials=2, cv=3, storage=storage, n_resamples=20)
    again = fdt.tune(data, "logreg", n_trials=1, cv=3, storage=storage, n_resamples=20)
    assert (first.tuner.n_trials_, again.tuner.n_trials_) == (2, 3)  # the second call continued the study
    fdt.tune(data, "logreg", n_trials=1, cv=3, random_state=1, storage=storage, n_resamples=20)
    names = optuna.get_all_study_names(storage)
    assert len(names) == 2 and all(name.startswith("fdt:") for name in names)  # another seed's folds: another study


def test_tuning_through_the_library_logs_no_optuna_info_line(store, caplog):
    data = fdt.load("fft", real="coco", fake="dcgan", store=store)
    optuna.logging.set_verbosity(optuna.logging.INFO)
    optuna.logging.enable_propagation()
    try:
        with caplog.at_level(logging.INFO, logger="optuna"):
            optuna.create_study()  # the control: at this level Optuna does log a study's creation
            control = [r for r in caplog.records if r.name.startswith("optuna")]
            caplog.clear()
            fdt.tune(data, "logreg", n_trials=3, cv=3, n_resamples=20)
            lines = [r.getMessage() for r in caplog.records if r.name.startswith("optuna") and r.levelno < logging.WARNING]
        assert control and "A new study created" in control[0].getMessage()
        assert lines == []
        assert optuna.logging.get_verbosity() == optuna.logging.INFO  # the caller's level is back
    finally:
        optuna.logging.disable_propagation()
        optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_matrix_trains_on_each_fake_and_writes_only_where_asked(store, quiet_audit, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = fdt.matrix(store, "fft", "native", "coco", ["dcgan", "sd21"], pipeline="logreg", cv=3, n_resamples=50)
    (table,) = report.matrices
    assert table.rows == ["coco vs dcgan", "coco vs sd21"] and table.values.shape == (2, 2)
    assert all(table.interval(i, j) is not None for i in range(2) for j in range(2))
    assert quiet_audit == [(["coco"], ["dcgan", "sd21"])] and "**WARNING: audited.**" in report.notes
    assert list(tmp_path.iterdir()) == []
    fdt.matrix(store, "fft", ["native"], ["coco"], ["dcgan", "sd21"], pipeline="logreg", cv=3, n_resamples=50, out="m")
    assert {"generalisation-at-native.csv", "generalisation-at-native-heatmap.png", "report.md"} <= {p.name for p in (tmp_path / "m").iterdir()}
