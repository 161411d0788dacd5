"""Bad experiment files fail with one line and exit code 2, having written nothing."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.experiment.conftest import TINY, invoke, write_experiment


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``folder`` with its size and mtime."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("[experiment]\n", "[experiment]\nresolution = 64\n"), r"unknown key 'resolution' in \[experiment\]"),
        (lambda t: t + "\n[report]\nformat = 'pdf'\n", r"unknown key 'report' in the top level"),
        (lambda t: t.replace("crops = 68", "crops = 68\ncrop = 1"), r"unknown key 'crop' in \[images.photos\]"),
        (lambda t: t.replace("epochs = 1\nbatch_size = 32", "epochs = 1\nlearning_rate = 0.1\nbatch_size = 32"), r"unknown key 'learning_rate' in \[images.dcgan.train\]"),
        (lambda t: t.replace("latent_dim = 16", "latent = 16"), r"unknown key 'latent' in \[extractors.autoencoder.train\]"),
        (lambda t: t.replace("[[matrices]]\n", "[[matrices]]\nmetrics = 'eer'\n"), r"unknown key 'metrics' in \[\[matrices\]\] #1"),
        (lambda t: t.replace('folder = "noise"', 'folder = "no-such-folder"'), r"\[images.noise\]: image folder does not exist: .*no-such-folder"),
        (lambda t: t.replace("[extractors.fft]", "[extractors.fft]\nextractor = 'fftt'"), r"\[extractors.fft\]: unknown extractor 'fftt'; choose one of: autoencoder, clip, dct, .*fft"),
        (lambda t: t.replace("[extractors.fft]\nparams = { size = 16 }", "[extractors.fft]\nparams = { size = 16, bins = 3 }"), r"\[extractors.fft\]: extractor 'fft'.*bins"),
        (lambda t: t.replace('pipeline = "logreg"', 'pipeline = "svm-poly"'), r"\[\[matrices\]\] #1: unknown pipeline 'svm-poly'"),
        (lambda t: t.replace('train_on = "photos"\nsamples', 'train_on = "fotos"\nsamples'), r"\[images.dcgan\] train_on = 'fotos' names no \[images.fotos\] table"),
        (lambda t: t.replace("crops = 68", "crops = 'many'"), r"crops in \[images.photos\] must be an integer, not 'many'"),
        (lambda t: t.replace("[images.noise]", "[images.noise]\nmanifest = 'x.csv'"), r"\[images.noise\] needs exactly one of folder, manifest, corpus, generator"),
    ],
    ids=["experiment-key", "top-level", "image-set-key", "generator-param", "autoencoder-param", "matrix-key",
         "missing-folder", "unknown-extractor", "unknown-extractor-param", "unknown-pipeline", "dangling-reference", "wrong-type", "two-kinds"],
)
def test_bad_experiment_fails_with_one_line_and_writes_nothing(tmp_path, edit, message):
    experiment = write_experiment(tmp_path, edit(TINY))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "keep.txt").write_text("mine")
    before, around = snapshot(workspace), snapshot(tmp_path)
    result = invoke("run", str(experiment), "--workspace", str(workspace), "--quiet")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert re.search(message, lines[0]), lines[0]
    assert snapshot(workspace) == before
    assert snapshot(tmp_path) == around


def test_missing_workspace_is_not_created_by_a_failing_run(tmp_path):
    experiment = write_experiment(tmp_path, TINY.replace("[extractors.fft]", "[extractors.fft]\nextractor = 'nope'"))
    result = invoke("run", str(experiment), "--workspace", str(tmp_path / "never"), "--quiet")
    assert result.exit_code == 2
    assert not (tmp_path / "never").exists()


def test_missing_experiment_file_is_one_line(tmp_path):
    result = invoke("run", str(tmp_path / "absent.toml"))
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: experiment file not found: {tmp_path / 'absent.toml'}"


def test_invalid_toml_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[experiment\nname = 1\n")
    result = invoke("run", str(path), "--workspace", str(tmp_path / "ws"))
    assert result.exit_code == 2
    assert "not valid TOML" in result.output and "line 1" in result.output
    assert not (tmp_path / "ws").exists()


def test_imagenet_weights_absent_offline_fail_before_anything_is_written(tmp_path):
    experiment = write_experiment(tmp_path, TINY.replace('weights = "imagenet-if-cached", input_size = 32 }', 'weights = "imagenet", input_size = 32 }', 1))
    assert os.environ["FDT_OFFLINE"] == "1"
    result = invoke("run", str(experiment), "--workspace", str(tmp_path / "ws"))
    assert result.exit_code == 2
    assert "[extractors.vgg16]: ImageNet weights for vgg16 are not in the torch cache" in result.output
    assert not (tmp_path / "ws").exists()
