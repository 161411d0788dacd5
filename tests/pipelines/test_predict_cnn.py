"""``fdt predict`` with a CNN model: the card's weights identity recreates the same network; other weights are refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from fdt.cli import cli
from fdt.features_store import FeatureStore
from fdt.pipelines.cards import load_model
from tests.pipelines.test_predict import checkered, smooth

CNN = ["-e", "mobilenet_v2", "-p", "weights=random", "-p", "seed=3", "-p", "input_size=32", "--workers", "0", "-q"]


@pytest.fixture(scope="module")
def cnn_model(tmp_path_factory):
    """12 real and 12 fake 32-px images, MobileNetV2 features with seeded random weights (seed 3), a logreg model on them."""
    root = tmp_path_factory.mktemp("predict-cnn")
    rng = np.random.default_rng(0)
    for source, make in (("real", smooth), ("gan", checkered)):
        (root / "images" / source).mkdir(parents=True)
        for i in range(12):
            make(rng).save(root / "images" / source / f"{i}.png")
    result = CliRunner().invoke(cli, ["extract", str(root / "images"), *CNN, "--store", str(root / "train_store")])
    assert result.exit_code == 0, result.output
    assert "RANDOM weights" in result.output  # every output says when weights are random
    with pytest.MonkeyPatch.context() as patch:  # the format audit's forests are not what this tests (test_audit.py covers them)
        patch.setattr("fdt.pipelines.audit._condition", lambda *args: None)
        result = CliRunner().invoke(cli, ["tune", "--extractor", "mobilenet_v2", "--real", "real", "--fake", "gan", "--pipeline", "logreg",
                                          "--trials", "1", "--cv", "2", "--split", "50/0/50", "--no-progress",
                                          "--store", str(root / "train_store"), "--models", str(root / "models"), "--name", "m"])
    assert result.exit_code == 0, result.output
    (root / "new").mkdir()
    for source in ("real", "gan"):
        shutil.copy(root / "images" / source / "0.png", root / "new" / f"{source}.png")
    return root


def test_the_card_records_the_weights_identity(cnn_model):
    card = json.loads((cnn_model / "models" / "m.json").read_text())
    assert card["weights"] == "random:seed=3" and card["extractor_key"]["extractor"] == "mobilenet_v2"


def test_predict_recreates_the_network_the_model_was_trained_on(cnn_model):
    """Scored into an empty store, so the features are extracted again from the card's identity: the probabilities are the training rows'."""
    fresh = cnn_model / "fresh_store"
    result = CliRunner().invoke(cli, ["predict", str(cnn_model / "models" / "m.skops"), str(cnn_model / "new"), "--json", "--store", str(fresh)])
    assert result.exit_code == 0, result.output
    scored = {json.loads(line)["path"].rsplit("/", 1)[1]: json.loads(line)["fake_probability"] for line in result.stdout.splitlines()}
    model, _ = load_model(cnn_model / "models" / "m.skops")
    stored = FeatureStore(cnn_model / "train_store").load("mobilenet_v2", "native")
    for source in ("real", "gan"):
        row = np.flatnonzero([p.endswith(f"/{source}/0.png") for p in stored.paths])
        assert scored[f"{source}.png"] == pytest.approx(float(model.predict_proba(stored.X[row])[0, 1]), abs=1e-5)
    (key,) = FeatureStore(fresh).keys()
    assert key.weights == "random:seed=3"


def test_predict_with_other_weights_is_refused(cnn_model, tmp_path):
    import torch
    import torchvision

    torch.manual_seed(4)
    other = tmp_path / "other.pt"
    torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), other)
    result = CliRunner().invoke(cli, ["predict", str(cnn_model / "models" / "m.skops"), str(cnn_model / "new"), "--weights", str(other),
                                      "--store", str(tmp_path / "s")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "the extractor now gives" in result.output and "weights=file:sha256:" in result.output
    assert "but the model was trained on" in result.output and "weights=random:seed=3" in result.output
    assert "fake_probability" not in result.output and ".png\t" not in result.output  # nothing scored
