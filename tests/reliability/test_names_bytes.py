"""Causes 11 and 15: names that are not UTF-8 are extracted and printed; broken model cards are one line."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

from fdt.cli import cli
from fdt.features_store import FeatureStore
from fdt.pipelines.cards import save_model
from tests.conftest import write_images


def _latin1_tree(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    write_images(data / "real", 2, seed=1)
    write_images(data / "fake", 2, seed=2)
    odd = os.fsdecode(bytes(data / "fake") + b"/caf\xe9.png")
    shutil.copy(data / "fake" / "img0000.png", odd)
    write_images(tmp_path / "x", 1, seed=5)
    shutil.copy(tmp_path / "x" / "img0000.png", odd)
    return data


def test_a_file_name_that_is_not_utf8_is_extracted_and_printed(tmp_path):
    data = _latin1_tree(tmp_path)
    result = CliRunner().invoke(cli, ["extract", str(data), "-e", "fft", "-p", "size=2", "--store", str(tmp_path / "s"), "--workers", "0", "-q"])
    assert result.exit_code == 0, result.output
    assert "5 new rows" in result.output
    catalog = FeatureStore(tmp_path / "s").catalog()
    assert any(path.endswith("caf\\xe9.png") for path in catalog.path)
    again = CliRunner().invoke(cli, ["extract", str(data), "-e", "fft", "-p", "size=2", "--store", str(tmp_path / "s"), "--workers", "0", "-q"])
    assert "0 new rows, 5 reused" in again.output


@pytest.fixture
def model(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    fitted = LogisticRegression().fit(rng.normal(size=(20, 4)), np.arange(20) % 2)
    key = {"extractor": "fft", "params": {"size": 2, "profile": "none", "grid": "band-mean"}, "weights": "none", "resolution": "native"}
    path, _ = save_model(fitted, {"name": "m", "extractor_key": key}, tmp_path / "models", "m")
    return path


def test_predict_prints_a_name_that_is_not_utf8(tmp_path, model):
    data = _latin1_tree(tmp_path)
    result = CliRunner().invoke(cli, ["predict", str(model), str(data / "fake"), "--store", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "caf\\xe9.png\t" in result.output


def _edit_card(model: Path, edit) -> None:
    card_path = model.with_suffix(".json")
    card = json.loads(card_path.read_text())
    edit(card)
    card_path.write_text(json.dumps(card))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.pop("extractor_key"), "has no extractor_key"),
        (lambda c: c.update(extractor_key=[1, 2]), "has no extractor_key"),
        (lambda c: c["extractor_key"].update(params="size=2"), "extractor_key needs"),
        (lambda c: c["extractor_key"]["params"].update(size="abc"), "parameter 'size' must be int"),
        (lambda c: c["extractor_key"].update(extractor="nope"), "unknown extractor 'nope'"),
        (lambda c: c["extractor_key"].update(extractor="vgg16", params={}, weights="random:seed=x"), "not random:seed=N"),
    ],
    ids=["no-key", "key-not-object", "params-not-object", "bad-param", "unknown-extractor", "bad-seed"],
)
def test_a_broken_card_is_one_line(tmp_path, model, edit, message):
    write_images(tmp_path / "imgs", 1)
    _edit_card(model, edit)
    result = CliRunner().invoke(cli, ["predict", str(model), str(tmp_path / "imgs"), "--store", str(tmp_path / "s")])
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output


def test_predict_with_a_store_it_cannot_create_is_one_line(tmp_path, model):
    write_images(tmp_path / "imgs", 1)
    result = CliRunner().invoke(cli, ["predict", str(model), str(tmp_path / "imgs"), "--store", "/proc/x"])
    assert result.exit_code == 2 and "/proc/x" in result.output, result.output
