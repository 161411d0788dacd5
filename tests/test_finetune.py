"""Fine-tuned CNN detectors: training that learns and resumes exactly, the train share only, extractors of the file, spectra."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch import nn

from fdt.checkpoints import CheckpointMismatchError
from fdt.cli import cli
from fdt.data import load_image_set, sha256_file
from fdt.grouping import assign_groups, group_of, record_path
from fdt.models import finetune as finetune_module
from fdt.models.detector import DetectorFormatError, backbone_blocks, build_detector, read_detector_file
from fdt.models.finetune import FinetuneCheckpointError, FinetuneConfig, backbone_extractor, finetune
from fdt.models.inputs import NetworkInput, log_magnitude_spectrum

SPLIT = {"seed": 0, "fractions": [0.6, 0.2, 0.2]}
BACKBONE = "test_resnet"  # timm's 0.4M-parameter test network, through the generic timm extractor: the real code path, tiny


def _write(folder: Path, count: int, smooth: bool, seed: int) -> None:
    """32 px images up-sampled from 8 px noise: bilinear (smooth, "real") or nearest (blocky, "fake")."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        small.resize((32, 32), Image.Resampling.BILINEAR if smooth else Image.Resampling.NEAREST).save(folder / f"{index:03d}.png")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("finetune")
    _write(root / "real", 30, True, 0)
    _write(root / "fake", 30, False, 1)
    return root


def _config(**overrides) -> FinetuneConfig:
    settings = dict(backbone=BACKBONE, weights="random", input_size=32, epochs=3, batch_size=8, lr=3e-2, patience=0, val_share=0.25, split=SPLIT)
    return FinetuneConfig(**{**settings, **overrides})


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return read_detector_file(path)["state_dict"]


def test_finetuning_lowers_the_validation_loss(images, tmp_path):
    config = _config(epochs=2, finetune_epochs=4, unfreeze=-1, finetune_lr=1e-2)
    summary = finetune(load_image_set(images), tmp_path / "d.pt", config, progress=False)
    val = [row["val_loss"] for row in summary["history"]]
    coin = float(np.log(2.0))  # the weighted BCE of a coin flip
    assert summary["best_val_loss"] == min(val) < 0.8 * coin and min(val) < val[0] - 0.1
    # the file holds the best epoch's weights, and says how to feed it
    state = read_detector_file(tmp_path / "d.pt")
    assert state["training"]["best_epoch"] == 1 + int(np.argmin(val)) and state["input"] == "pixels" and state["input_size"] == 32
    assert (state["backbone"], state["model"]) == ("timm", BACKBONE)
    assert state["start_weights"] == "random:seed=0"


def test_stage_two_trains_only_the_last_blocks(images, tmp_path):
    finetune(load_image_set(images), tmp_path / "d.pt", _config(epochs=1, finetune_epochs=1, unfreeze=1), progress=False)
    extractor = backbone_extractor(BACKBONE, "random", 0)
    fresh = build_detector(extractor.make_network(None), extractor.num_features, 0)
    names = {id(p): n for n, p in fresh.named_parameters()}
    blocks = backbone_blocks(fresh)
    last = {names[id(p)] for p in blocks[-1]}
    trained = _weights(tmp_path / "d.pt")
    changed = {name for name, value in fresh.named_parameters() if not torch.equal(value.detach(), trained[name])}
    assert len(blocks) > 2 and {"head.weight", "head.bias"} < changed <= last | {"head.weight", "head.bias"} and changed & last


def test_killed_mid_epoch_then_resumed_equals_uninterrupted(images, tmp_path, monkeypatch):
    config = _config(epochs=2, finetune_epochs=1, unfreeze=1, augment=("flip", "blurjpeg:prob=0.5"), patience=2)
    records = load_image_set(images)
    finetune(records, tmp_path / "whole.pt", config, progress=False)

    steps = {"n": 0}
    original = torch.optim.Adam.step

    def interrupting_step(self, *args, **kwargs):
        steps["n"] += 1
        if steps["n"] == 6:  # mid-way through the second epoch
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", interrupting_step)
    with pytest.raises(KeyboardInterrupt):
        finetune(records, tmp_path / "cut.pt", config, progress=False)
    monkeypatch.setattr(torch.optim.Adam, "step", original)
    assert (tmp_path / "cut.pt.ckpt").exists() and not (tmp_path / "cut.pt").exists()
    finetune(records, tmp_path / "cut.pt", config, progress=False)

    whole, cut = _weights(tmp_path / "whole.pt"), _weights(tmp_path / "cut.pt")
    assert whole.keys() == cut.keys() and all(torch.equal(whole[k], cut[k]) for k in whole)
    assert (tmp_path / "whole.curves.csv").read_text() == (tmp_path / "cut.curves.csv").read_text()
    with pytest.raises(CheckpointMismatchError, match=r"other settings \(lr 0.03 -> 0.001\)"):
        finetune(records, tmp_path / "cut.pt", dataclasses.replace(config, lr=1e-3), progress=False)
    with pytest.raises(FinetuneCheckpointError, match=r"has 2 \+ 1 epochs, which 1 \+ 2 cannot continue"):
        finetune(records, tmp_path / "cut.pt", dataclasses.replace(config, epochs=1, finetune_epochs=2), progress=False)


def test_curves_as_csv_png_and_tensorboard_events(images, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    finetune(load_image_set(images), tmp_path / "d.pt", _config(epochs=2, finetune_epochs=1, unfreeze=-1), progress=False)
    rows = list(csv.DictReader((tmp_path / "d.curves.csv").open()))
    assert [(r["epoch"], r["stage"]) for r in rows] == [("1", "1"), ("2", "1"), ("3", "2")]
    assert (tmp_path / "d.curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = EventAccumulator(str(tmp_path / "d.tensorboard"))
    events.Reload()
    val = events.Scalars("loss/val")
    assert [e.step for e in val] == [1, 2, 3]
    np.testing.assert_allclose([e.value for e in val], [float(r["val_loss"]) for r in rows], rtol=1e-6)


def test_without_tensorboard_the_curves_go_to_csv_and_png_and_the_run_says_so(images, tmp_path, monkeypatch):
    from fdt.models import curves

    monkeypatch.setattr(curves, "tensorboard_available", lambda: False)
    args = ["models", "finetune", str(images), "--backbone", BACKBONE, "--real", "real", "--weights", "random", "--input-size", "32",
            "--epochs", "1", "--split", "60/20/20", "--val-share", "0.25", "--no-progress", "--device", "cpu", "--out", str(tmp_path / "d.pt")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.output.count(curves.NO_TENSORBOARD) == 1
    assert (tmp_path / "d.curves.csv").is_file() and (tmp_path / "d.curves.png").is_file() and not (tmp_path / "d.tensorboard").exists()


def test_trains_only_on_the_train_share_and_records_it(images, tmp_path, monkeypatch):
    read: set[str] = set()
    original = finetune_module._Images.__getitem__

    def spy(self, index):
        read.add(self.rows.sha256[index])
        return original(self, index)

    monkeypatch.setattr(finetune_module._Images, "__getitem__", spy)
    records = load_image_set(images)
    finetune(records, tmp_path / "d.pt", _config(epochs=1), progress=False)

    hashes = [sha256_file(r.path) for r in records]
    groups = [group_of(r.group, h) for r, h in zip(records, hashes)]
    assignment = assign_groups(groups, [r.source for r in records], SPLIT["fractions"], SPLIT["seed"], [r.label for r in records])
    train_share = {h for h, g in zip(hashes, groups) if assignment[g] == "train"}
    record = json.loads(record_path(tmp_path / "d.pt").read_text())
    assert record["split"] == SPLIT and set(record["images"]) == train_share
    assert read == train_share  # training and early stopping together read exactly the train share
    assert 0 < len(train_share) < len(records)
    assert read_detector_file(tmp_path / "d.pt")["trained_sha256"] == record["trained_sha256"]


def test_spectrum_input_is_the_centred_log_magnitude_of_the_grey_pixels():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8))
    spectrum = log_magnitude_spectrum(image)
    assert spectrum.shape == (24, 40)  # of the pixels as given: no resize before the FFT
    assert np.unravel_index(np.argmax(spectrum), spectrum.shape) == (12, 20)  # DC in the centre
    grey = np.asarray(image.convert("L"), np.float64)
    np.testing.assert_allclose(spectrum[12, 20], np.log1p(grey.sum()), rtol=1e-6)
    network = NetworkInput("spectrum", 32, (0.5,) * 3, (0.5,) * 3)(image)
    assert network.shape == (3, 32, 32) and np.allclose(network[0], network[2])
    assert abs(network[0].mean()) < 1e-5 and abs(network[0].std() - 1) < 1e-3
    pixels = NetworkInput("pixels", None, (0.0,) * 3, (1.0,) * 3)(image)
    np.testing.assert_allclose(pixels, np.asarray(image, np.float32).transpose(2, 0, 1) / 255, rtol=1e-6)


def test_detector_file_is_checked(tmp_path):
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(DetectorFormatError, match="not an fdt fine-tuned model file"):
        read_detector_file(tmp_path / "other.pt")
    torch.save(nn.Linear(2, 2), tmp_path / "pickle.pt")  # a whole pickled module: never unpickled
    with pytest.raises(DetectorFormatError, match="not an fdt fine-tuned model file"):
        read_detector_file(tmp_path / "pickle.pt")


# ----------------------------------------------------------------- through the CLI, the extractors and evaluation


@pytest.fixture(scope="module")
def few_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("few")
    _write(root / "real", 12, True, 2)
    _write(root / "fake", 12, False, 3)
    return root


@pytest.fixture(scope="module")
def detector_files(few_images: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A test_resnet detector fine-tuned from random weights for one epoch at 32 px, by the CLI; and one on spectra."""
    root = tmp_path_factory.mktemp("models")
    common = ["models", "finetune", str(few_images), "--backbone", BACKBONE, "--real", "real", "--weights", "random",
              "--input-size", "32", "--epochs", "1", "--batch-size", "16", "--split", "50/25/25", "--val-share", "0.34", "--no-progress", "--device", "cpu"]
    files = {}
    for kind in ("pixels", "spectrum"):
        files[kind] = root / f"{kind}.pt"
        result = CliRunner().invoke(cli, [*common, "--input", kind, "--out", str(files[kind])])
        assert result.exit_code == 0, result.output
        assert "RANDOM weights" in result.output and f"wrote {files[kind]}" in result.output
    return files


def test_extractor_gives_features_or_the_logit_of_the_file(detector_files):
    from fdt.features_store import create_extractor

    rng = np.random.default_rng(3)
    pictures = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(5)]
    logit = create_extractor("timm", model=BACKBONE, weights=str(detector_files["pixels"]), output="logit")
    scores = logit.transform(pictures)
    assert logit.num_features == 1 and scores.shape == (5, 1) and scores.std() > 0
    assert logit.key_params()["input_size"] == 32 and logit.key_params()["output"] == "logit" and "input" not in logit.key_params()
    assert logit.weights_identity().startswith("random:finetuned:sha256:") and "RANDOM" in logit.weights_note()
    info = logit.info()
    assert info["trained_from_data"] and info["training_record"]["path"] == str(record_path(detector_files["pixels"]).resolve())
    # the logit is the head applied to the features the same file gives
    from fdt.models.detector import load_detector

    features = create_extractor("timm", model=BACKBONE, weights=str(detector_files["pixels"])).transform(pictures)
    assert features.shape == (5, 96)
    detector, _ = load_detector(detector_files["pixels"], backbone_extractor(BACKBONE, "random", 5).make_network(None))
    np.testing.assert_allclose(scores, detector.head(torch.from_numpy(features)).detach().numpy(), rtol=1e-4, atol=1e-5)

    spectral = create_extractor("timm", model=BACKBONE, weights=str(detector_files["spectrum"]), output="logit")
    assert spectral.key_params()["input"] == "spectrum" and spectral.key_params()["output"] == "logit"
    assert spectral.preprocessor()(pictures[0]).shape == (3, 32, 32) and spectral.transform(pictures).shape == (5, 1)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"output": "logit"}, "output=logit needs a fine-tuned detector"),
        ({"weights": "FILE", "input": "spectrum"}, "fine-tuned on pixels input, not spectrum"),
    ],
)
def test_extractor_refuses_what_the_file_cannot_give(detector_files, params, message):
    from fdt.features_store import create_extractor
    from fdt.features_store.errors import ExtractorError

    params = {"weights": "random", **params}
    if params["weights"] == "FILE":
        params["weights"] = str(detector_files["pixels"])
    with pytest.raises(ExtractorError, match=message):
        create_extractor("timm", model=BACKBONE, **params).key_params()
    with pytest.raises(ExtractorError, match=r"is a fine-tuned timm \(model test_resnet\), not vgg16"):
        create_extractor("vgg16", weights=str(detector_files["pixels"])).num_features


def test_scoring_the_train_groups_is_refused_and_the_direct_approach_is_reported(few_images, detector_files, tmp_path):
    from fdt.features_store.store import FeatureStore
    from fdt.pipelines.evaluation import load_condition, tune_condition
    from fdt.pipelines.leakage import TrainedRowsError
    from fdt.pipelines.specs import get_spec

    store = tmp_path / "store"
    result = CliRunner().invoke(cli, ["extract", str(few_images), "-e", "timm", "-p", f"model={BACKBONE}", "-p", f"weights={detector_files['pixels']}", "-p", "output=logit",
                                      "--store", str(store), "--workers", "0", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    data = load_condition(FeatureStore(store), "timm", "native", ["real"], ["fake"], params={"output": "logit"})
    assert data.X.shape == (24, 1)
    with pytest.raises(TrainedRowsError, match=r"trained on \(seed 0, split 0.5/0.25/0.25\)"):
        tune_condition(data, get_spec("score"), n_trials=1, cv=2, random_state=1, fractions=(0.5, 0.25, 0.25))
    honest = tune_condition(data, get_spec("score"), n_trials=1, cv=2, random_state=0, fractions=(0.5, 0.25, 0.25))
    assert not any("LEAK" in note for note in honest.notes) and any("optimistic" in note for note in honest.notes)
    assert 0.0 <= honest.test_metrics["roc_auc"] <= 1.0 and honest.rows["test"] == 6
    # the direct approach in a generalisation matrix, with the seed and split the network trained with
    matrix = ["report", "matrix", "--extractor", "timm", "--param", "output=logit", "--weights", "random:finetuned", "--pipeline", "score",
              "--real", "real", "--fake", "fake", "--store", str(store), "--trials", "1", "--cv", "2", "--split", "50/25/25", "--no-progress",
              "--trial-timeout", "0"]  # no time budget: folds run inline, so no fold worker outlives the test
    report = CliRunner().invoke(cli, [*matrix, "--out", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output
    assert "random:finetuned" in report.output and (tmp_path / "report" / "pca-at-native.png").stat().st_size > 0
    leaky = CliRunner().invoke(cli, [*matrix, "--seed", "5", "--out", str(tmp_path / "leaky")])
    assert leaky.exit_code == 2 and "trained on (seed 0" in leaky.output and not (tmp_path / "leaky").exists()


def test_score_spec_calibrates_one_feature_and_refuses_more():
    from sklearn.metrics import roc_auc_score

    from fdt.pipelines.errors import PipelineError
    from fdt.pipelines.specs import build_pipeline

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    score = (y + rng.normal(0, 0.8, 200))[:, None]
    model = build_pipeline("score").fit(score, y)
    assert model.steps[0][0] == "classifier"  # nothing but the calibration is fitted
    assert roc_auc_score(y, model.predict_proba(score)[:, 1]) == pytest.approx(roc_auc_score(y, score[:, 0]))
    with pytest.raises(PipelineError, match="calibrates a single score.*2 columns"):
        build_pipeline("score").fit(np.hstack([score, score]), y)


def test_score_model_round_trips_through_a_skops_file(tmp_path):
    from fdt.pipelines.cards import _load_skops

    import skops.io

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    from fdt.pipelines.specs import build_pipeline

    model = build_pipeline("score").fit((y + rng.normal(0, 1, 50))[:, None], y)
    (tmp_path / "m.skops").write_bytes(skops.io.dumps(model))
    loaded = _load_skops(tmp_path / "m.skops")
    np.testing.assert_array_equal(loaded.predict_proba(np.array([[0.3]])), model.predict_proba(np.array([[0.3]])))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backbone", "nope"], "unknown backbone 'nope'"),
        (["--backbone", BACKBONE, "--fake", "gan"], "--fake names source 'gan'"),
        (["--backbone", BACKBONE, "--augment", "warp"], "unknown perturbation 'warp'"),
        (["--backbone", BACKBONE, "--split", "50/50"], "three"),
    ],
)
def test_cli_user_errors_are_one_line(images, tmp_path, args, message):
    result = CliRunner().invoke(cli, ["models", "finetune", str(images), "--real", "real", "--out", str(tmp_path / "x.pt"), "--weights", "random", *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
