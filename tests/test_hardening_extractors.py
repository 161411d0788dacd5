"""Weight files of the wrong network are refused, timm ViTs take any input size, and a plugin never silently loses to a built-in."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from fdt import plugins
from fdt.cli import cli
from fdt.features_store import create_extractor, registry
from fdt.features_store.errors import ExtractorError
from tests.conftest import install_plugin, write_images

IMAGES = [Image.fromarray(np.random.default_rng(i).integers(0, 256, (40, 40, 3), dtype=np.uint8)) for i in range(2)]


def _features(**params) -> np.ndarray:
    return create_extractor("timm", device="cpu", **params).transform(IMAGES)


@pytest.mark.parametrize(
    "state",
    [{"weird": torch.zeros(3)}, {"format": "fdt.checkpoint", "state": {"generator": {"main.0.weight": torch.zeros(2, 2)}}}],
    ids=["foreign-keys", "a-dcgan-checkpoint"],
)
def test_a_weights_file_of_another_network_is_refused_not_half_loaded(tmp_path, state):
    # timm loads non-strictly once it drops the classifier: without the check these would run on random weights
    path = tmp_path / "other.pt"
    torch.save(state, path)
    with pytest.raises(ExtractorError, match=rf"{path.name} does not fit timm's test_resnet: it lacks \d+ of the network's weights \(conv1"):
        _features(model="test_resnet", weights=str(path), input_size=32)


def test_a_timm_state_dict_with_a_classifier_of_any_width_loads_whole(tmp_path):
    import timm

    torch.manual_seed(0)
    network = timm.create_model("test_resnet", num_classes=7)
    torch.save(network.state_dict(), tmp_path / "seven.pt")
    network.reset_classifier(0)
    expected = network.eval()(torch.from_numpy(create_extractor("timm", model="test_resnet", input_size=32).preprocessor()(IMAGES[0].convert("RGB"))[None]))
    features = _features(model="test_resnet", weights=str(tmp_path / "seven.pt"), input_size=32)
    np.testing.assert_allclose(features[0], expected[0].detach().numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("size", [64, 48])
def test_a_vit_takes_a_non_native_input_size(size):
    extractor = create_extractor("timm", model="test_vit3", weights="random", input_size=size, device="cpu")
    assert extractor.preprocessing().input_size == 160  # its pretrained size; the position embedding is resampled to size
    features = extractor.transform(IMAGES)
    assert features.shape == (2, extractor.num_features) and np.isfinite(features).all()
    assert extractor.key_params()["input_size"] == size


def test_a_vit_weights_file_is_resized_after_loading(tmp_path):
    import timm

    torch.save(timm.create_model("test_vit3").state_dict(), tmp_path / "vit.pt")
    assert _features(model="test_vit3", weights=str(tmp_path / "vit.pt"), input_size=64).shape == (2, 96)


def test_a_vit_at_native_size_is_one_line(tmp_path):
    write_images(tmp_path / "data" / "real", 2, size=32)
    write_images(tmp_path / "data" / "fake", 2, size=32, seed=1)
    result = CliRunner().invoke(cli, [
        "extract", str(tmp_path / "data"), "-e", "timm", "-p", "model=test_vit3", "-p", "weights=random", "-p", "input_size=native",
        "--store", str(tmp_path / "s"), "--workers", "0", "-q",
    ])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1] == "Error: timm's test_vit3 takes images of one size (160 px): give input_size=N, not native"


def test_a_size_the_network_cannot_take_is_one_line():
    with pytest.raises(ExtractorError, match=r"timm's test_maxvit cannot take input_size=50 \(.*\); its pretrained size is 160"):
        _features(model="test_maxvit", weights="random", input_size=50)


PLUGIN = '''
import numpy as np
from fdt.features_store.extractors.base import Extractor


class Impostor(Extractor):
    """Claims the name fft."""

    def __init__(self, device="cpu"):
        self.device = device

    @property
    def num_features(self):
        return 1

    def forward(self, batch):
        return np.zeros((len(batch), 1), np.float32)
'''


def test_a_plugin_extractor_reusing_a_builtin_name_is_a_one_line_warning(tmp_path, monkeypatch, caplog):
    install_plugin(tmp_path / "site", "fdt_impostor", PLUGIN, "[fdt.extractors]\nfft = fdt_impostor:Impostor\n", monkeypatch)
    monkeypatch.setattr(plugins, "_reported", set())
    monkeypatch.setattr(registry, "_SHADOW_CHECKED", set())
    try:
        extractor = create_extractor("fft", size=4)
        create_extractor("fft", size=4)
    finally:
        sys.modules.pop("fdt_impostor", None)
    assert type(extractor).__module__ == "fdt.features_store.extractors.fft"  # the built-in wins
    warnings = [r.getMessage() for r in caplog.records if r.name == "fdt.plugins"]
    assert warnings == ["warning: skipping fdt plugin 'fft' in fdt.extractors (package fdt-impostor): it would shadow the built-in extractor of that name"]


class _Payload:
    """Unpickling this would create a marker file: the stand-in for ``os.system``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _torch_files(folder: Path) -> dict[str, Path]:
    """A text file, an empty file, a cut-short torch file and a pickle that runs code, each named ``.pt``."""
    import pickle

    torch.save({"w": torch.zeros(3)}, folder / "whole.pt")
    whole = (folder / "whole.pt").read_bytes()
    files = {"text": b"my notes, not weights\n", "empty": b"", "cut-short": whole[: len(whole) // 2], "code": pickle.dumps(_Payload(folder / "pwned"))}
    for name, content in files.items():
        (folder / f"{name}.pt").write_bytes(content)
    return {name: folder / f"{name}.pt" for name in files}


REASONS = {
    "text": "not a ",  # torch's unpickler reads some text as opcodes, so either message may come
    "empty": "empty or cut short: not a whole torch file",
    "cut-short": "empty or cut short: not a whole torch file",
    "code": "not a tensors-only torch file: fdt never unpickles Python objects (that could run code)",
}


@pytest.mark.parametrize("kind", sorted(REASONS))
@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["extract", "{data}", "-e", "autoencoder", "-p", "model={file}"], "is not an fdt autoencoder model file"),
        (["extract", "{data}", "-e", "timm", "-p", "model=test_resnet", "-p", "weights={file}"], "is not a loadable torch weights file"),
        (["gen", "dcgan", "sample", "{file}", "-n", "1", "--device", "cpu", "--out", "{out}"], "is not an fdt checkpoint"),
        (["models", "finetune", "{data}", "--backbone", "test_resnet", "--weights", "{file}", "--real", "real", "--out", "{out}/d.pt",
          "--split", "50/0/50", "--val-share", "0.5", "--no-progress"], "is not a loadable torch weights file"),
    ],
    ids=["autoencoder-model", "timm-weights", "dcgan-checkpoint", "finetune-weights"],
)
def test_a_torch_file_that_is_not_one_is_one_line_and_runs_nothing(tmp_path, kind, command, message):
    files = _torch_files(tmp_path)
    write_images(tmp_path / "data" / "real", 8, size=16)
    write_images(tmp_path / "data" / "fake", 8, size=16, seed=1)
    places = {"data": tmp_path / "data", "file": files[kind], "out": tmp_path / "out"}
    result = CliRunner().invoke(cli, [*(part.format(**places) for part in command), *(["--store", str(tmp_path / "s"), "-q"] if command[0] == "extract" else [])])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {files[kind]} {message} ({REASONS[kind]}"), result.stderr
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("extractor", "params", "message"),
    [
        ("fft", ["size=100000"], "fft size must be an integer from 2 to 4096, not 100000"),
        ("dct", ["size=100000"], "dct size must be an integer from 2 to 4096, not 100000"),
        ("vgg16", ["weights=random", "input_size=100000"], "input_size must be an integer from 32 to 4096 or 'native', not 100000"),
        ("inception_v3", ["weights=random", "input_size=100000"], "inception_v3 input_size must be an integer from 75 to 4096"),
    ],
    ids=["fft", "dct", "cnn", "inception"],
)
def test_a_size_that_would_need_gigabytes_a_row_is_refused_before_any_work(tmp_path, extractor, params, message):
    # size=100000 asked for 40 GB an image: the kernel's out-of-memory killer ended the run, with no message
    write_images(tmp_path / "data" / "real", 2, size=16)
    write_images(tmp_path / "data" / "fake", 2, size=16, seed=1)
    args = ["extract", str(tmp_path / "data"), "-e", extractor, *(f"-p{p}" for p in params), "--store", str(tmp_path / "s"), "--workers", "0", "-q"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1].startswith(f"Error: {message}")
    assert not (tmp_path / "s").exists()
