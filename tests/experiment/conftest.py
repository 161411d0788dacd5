"""A scaled-down demo experiment (tiny crops, one-epoch generators, random weights) and helpers to run it.

The tiny experiment mirrors the embedded demo table by table, so running it
end to end exercises every stage the demo does, in well under two minutes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from fdt.cli import cli

TINY = """
[experiment]
name = "tiny demo"
seed = 0
resolutions = [32, 16]
batch_size = 32
workers = 0

[images.photos]
corpus = "bundled"
crops = 68
size = 32

[images.noise]
folder = "noise"
label = "fake"

[images.dcgan]
generator = "dcgan"
train_on = "photos"
samples = 24
[images.dcgan.train]
size = 32
epochs = 1
batch_size = 32
features = 8
grid_size = 16

[images.ddpm]
generator = "ddpm"
train_on = "photos"
samples = 16
[images.ddpm.train]
size = 32
epochs = 1
grid_size = 4
grid_steps = 2
[images.ddpm.sample]
steps = 3

[images.ddpm-inpaint]
generator = "ddpm-inpaint"
model = "ddpm"
inpaint = "photos"
samples = 16
[images.ddpm-inpaint.sample]
masks = ["diagonal", "random"]
steps = 3

[extractors.vgg16]
params = { weights = "imagenet-if-cached", input_size = 32 }

[extractors.mobilenet_v2]
params = { weights = "imagenet-if-cached", input_size = 32 }

[extractors.xception]
params = { weights = "imagenet-if-cached", input_size = 32 }

[extractors.fft]
params = { size = 16 }

[extractors.autoencoder]
train_on = "photos"
[extractors.autoencoder.train]
size = 32
latent_dim = 16
epochs = 1
channels = [8, 16]

[[studies]]
pipelines = ["logreg", "svm-linear"]
extractors = ["fft", "autoencoder"]
resolutions = [32]
trials = 2
cv = 2

[[matrices]]
pipeline = "logreg"
cv = 2
"""


def write_noise(folder: Path, count: int = 24, size: int = 32) -> None:
    """``count`` random-noise images: a fake source that needs no generator."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"noise{index:03d}.png")


def write_experiment(folder: Path, text: str = TINY) -> Path:
    """The experiment file plus the ``noise`` folder it names, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    write_noise(folder / "noise")
    path = folder / "experiment.toml"
    path.write_text(text, encoding="utf-8")
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run_record(workspace: Path) -> dict:
    return json.loads((workspace / "reports" / "run.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny experiment run twice into one workspace: both CLI results and both run records."""
    root = tmp_path_factory.mktemp("tiny")
    experiment = write_experiment(root)
    workspace = root / "ws"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))  # no cached ImageNet weights
        first = invoke("run", str(experiment), "--workspace", str(workspace), "--quiet")
        first_record = run_record(workspace) if first.exit_code == 0 else None
        model_times = {p.name: p.stat().st_mtime_ns for p in (workspace / "models").glob("*")} if first.exit_code == 0 else {}
        second = invoke("run", str(experiment), "--workspace", str(workspace), "--quiet")
    return {
        "workspace": workspace, "first": first, "second": second, "first_record": first_record,
        "second_record": run_record(workspace) if second.exit_code == 0 else None, "model_times": model_times,
    }
