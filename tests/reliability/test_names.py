"""Causes 2, 16, 18 (-p seed=abc): names that become paths are checked, parameter types are checked before work starts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fdt.cli import cli
from fdt.data import ImageRecord
from fdt.features_store import FeatureStore
from fdt.features_store.featureset import ExtractorKey
from tests.experiment.conftest import TINY, invoke, write_experiment


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("[images.noise]", '[images."../../x"]'), r"\[images\.\.\./\.\./x\]: image set name '\.\./\.\./x' is not a safe name"),
        (lambda t: t.replace("[extractors.fft]", '[extractors."../../y"]\nextractor = "fft"'), r"extractor label '\.\./\.\./y' is not a safe name"),
        (lambda t: t.replace("[extractors.fft]\nparams = { size = 16 }", '[extractors.fft]\nparams = { size = "abc" }'), r"\[extractors.fft\]: extractor 'fft' parameter 'size' must be int, not 'abc'"),
    ],
    ids=["image-set-name", "extractor-label", "param-type"],
)
def test_fdt_run_refuses_before_writing(tmp_path, edit, message):
    import re

    experiment = write_experiment(tmp_path, edit(TINY))
    workspace = tmp_path / "a" / "b" / "ws"
    workspace.mkdir(parents=True)
    before = _files(tmp_path)
    result = invoke("run", str(experiment), "--workspace", str(workspace), "--quiet")
    assert result.exit_code == 2, result.output
    assert re.search(message, result.output), result.output
    assert _files(tmp_path) == before


@pytest.fixture
def tiny_store(tmp_path: Path) -> Path:
    store = FeatureStore(tmp_path / "store")
    rng = np.random.default_rng(0)
    records = [ImageRecord(f"/d/{i}.png", "real" if i < 10 else "fake", int(i >= 10), f"g{i}") for i in range(20)]
    store.write(ExtractorKey("fft", {"size": 2}, "none", "native"), [f"{i:064x}" for i in range(20)], rng.normal(size=(20, 4)) + np.arange(20)[:, None] // 10, records)
    return store.root


def test_tune_refuses_a_name_that_leaves_models(tiny_store, tmp_path):
    models = tmp_path / "deep" / "models"
    result = CliRunner().invoke(cli, ["tune", "--extractor", "fft", "--real", "real", "--fake", "fake", "--pipeline", "logreg", "--trials", "1",
                                      "--cv", "2", "--split", "50/0/50", "--no-progress", "--store", str(tiny_store), "--models", str(models),
                                      "--name", "../../escape"])
    assert result.exit_code == 2 and "not a safe name" in result.output
    assert not list(tmp_path.rglob("escape*"))


def test_extract_names_the_bad_parameter(image_tree, tmp_path):
    result = CliRunner().invoke(cli, ["extract", str(image_tree), "-e", "vgg16", "-p", "seed=abc", "-p", "weights=random", "--store", str(tmp_path / "s")])
    assert result.exit_code == 2 and "'seed' must be int, not 'abc'" in result.output
