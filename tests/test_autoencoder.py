"""The autoencoder: network shapes, preprocessing, resumable training, model file format, CLI."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from fdt.checkpoints import CheckpointMismatchError
from fdt.cli import cli
from fdt.data import DataError, ImageRecord, load_rgb
from fdt.models.autoencoder import (
    FORMAT,
    AutoencoderError,
    AutoencoderFormatError,
    ConvAutoencoder,
    load_autoencoder,
    preprocess,
    read_autoencoder_file,
    select_training_records,
    train_autoencoder,
)

TINY = dict(size=16, latent_dim=6, channels=(4, 8), batch_size=3, progress=False)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five real and two fake 20×24 noise images, plus one unreadable `.png`."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for source, count in (("real", 5), ("fake", 2)):
        (root / source).mkdir()
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(root / source / f"{i}.png")
    (root / "real" / "broken.png").write_text("not an image")
    return root


def _state(path: Path) -> dict[str, torch.Tensor]:
    return read_autoencoder_file(path)["state_dict"]


@pytest.mark.parametrize("size, channels", [(16, (4, 8)), (32, (4, 8, 16)), (16, (32, 64, 128, 256))])
def test_encode_decode_shapes(size: int, channels: tuple[int, ...]) -> None:
    model = ConvAutoencoder(latent_dim=5, size=size, channels=channels).eval()
    x = torch.rand(3, 3, size, size) * 2 - 1
    with torch.no_grad():
        z = model.encode(x)
        y = model.decode(z)
    assert z.shape == (3, 5)
    assert y.shape == (3, 3, size, size)
    assert y.abs().max() <= 1.0


@pytest.mark.parametrize("size, channels, match", [(24, (4,), "power of two"), (8, (4,), "at least 16"), (16, (2, 2, 2, 2, 2), "too small")])
def test_bad_shape_refused(size: int, channels: tuple[int, ...], match: str) -> None:
    with pytest.raises(AutoencoderError, match=match):
        ConvAutoencoder(latent_dim=4, size=size, channels=channels)


def test_encode_refuses_wrong_input_size() -> None:
    with pytest.raises(AutoencoderError, match=r"\(n, 3, 16, 16\)"):
        ConvAutoencoder(latent_dim=4, size=16, channels=(4,)).encode(torch.zeros(1, 3, 32, 32))


def test_latent_does_not_depend_on_batch() -> None:
    """No batch norm or dropout: an image's latent is the same alone, in a batch, in train mode."""
    torch.manual_seed(0)
    model = ConvAutoencoder(latent_dim=6, size=16, channels=(4, 8))
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        batch = model.eval().encode(x)
        alone = model.encode(x[3:4])
        train_mode = model.train().encode(x)
    torch.testing.assert_close(alone[0], batch[3])
    assert torch.equal(train_mode, batch)


def test_preprocess_range_and_resize() -> None:
    pixels = np.zeros((10, 12, 3), dtype=np.uint8)
    pixels[:, :6] = 255
    x = preprocess(Image.fromarray(pixels), 16)
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32
    assert x.max().item() == 1.0 and x.min().item() == -1.0
    with pytest.raises(AutoencoderError, match="load_rgb"):
        preprocess(Image.fromarray(pixels).convert("L"), 16)


def test_select_training_records() -> None:
    real = ImageRecord("a.png", "real", 0)
    fake = ImageRecord("b.png", "dcgan", 1)
    assert select_training_records([real, fake]) == ([real], "training on the 1 real images; 1 fake image(s) left out")
    chosen, note = select_training_records([fake, ImageRecord("c.png", "dcgan", 1)])
    assert len(chosen) == 2 and "source 'dcgan'" in note
    with pytest.raises(DataError, match="--real-source"):
        select_training_records([fake, ImageRecord("c.png", "sd21", 1)])


def test_train_writes_model_file_and_round_trips(image_folder: Path, tmp_path: Path) -> None:
    out = train_autoencoder(image_folder, tmp_path / "ae.pt", epochs=2, **TINY)
    state = read_autoencoder_file(out)
    assert state["format"] == FORMAT and state["format_version"] == 1
    assert state["config"] == {"latent_dim": 6, "size": 16, "channels": [4, 8]}
    assert state["normalisation"]["range"] == [-1.0, 1.0]
    training = state["training"]
    assert (training["epochs"], training["num_images"], training["skipped_images"], training["seed"]) == (2, 5, 1, 0)
    assert training["final_loss"] == training["losses"][-1] > 0
    assert state["torch_version"] == str(torch.__version__) and state["fdt_version"]

    x = torch.stack([preprocess(load_rgb(p), 16) for p in sorted((image_folder / "real").glob("[0-9].png"))])
    trained = load_autoencoder(out)
    assert not trained.training
    with torch.no_grad():
        first, second = trained.encode(x), load_autoencoder(out).encode(x)
        untrained = ConvAutoencoder(latent_dim=6, size=16, channels=(4, 8)).encode(x)
    assert torch.equal(first, second)
    assert not torch.allclose(first, untrained)

    rows = list(csv.DictReader(open(tmp_path / "ae.loss.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert [float(r["loss"]) for r in rows] == training["losses"]
    assert (tmp_path / "ae.loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_interrupted_then_resumed_equals_uninterrupted(image_folder: Path, tmp_path: Path) -> None:
    interrupted = tmp_path / "a" / "ae.pt"
    train_autoencoder(image_folder, interrupted, epochs=1, **TINY)
    after_one = _state(interrupted)
    train_autoencoder(image_folder, interrupted, epochs=3, resume=True, **TINY)
    straight = train_autoencoder(image_folder, tmp_path / "b" / "ae.pt", epochs=3, **TINY)

    resumed_state, straight_state = _state(interrupted), _state(straight)
    assert resumed_state.keys() == straight_state.keys()
    assert all(torch.equal(resumed_state[k], straight_state[k]) for k in straight_state)
    assert not all(torch.equal(after_one[k], straight_state[k]) for k in straight_state)
    assert read_autoencoder_file(interrupted)["training"]["losses"] == read_autoencoder_file(straight)["training"]["losses"]


def test_killed_mid_epoch_then_resumed_equals_uninterrupted(image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Interrupt on the 4th optimiser step (mid epoch 2 with 2 batches an epoch): the rerun replays epoch 2 exactly."""
    straight = train_autoencoder(image_folder, tmp_path / "b" / "ae.pt", epochs=3, **TINY)
    step = torch.optim.Adam.step
    calls = []

    def interrupting_step(self: torch.optim.Adam, *args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)

    interrupted = tmp_path / "a" / "ae.pt"
    with monkeypatch.context() as patch:
        patch.setattr(torch.optim.Adam, "step", interrupting_step)
        with pytest.raises(KeyboardInterrupt):
            train_autoencoder(image_folder, interrupted, epochs=3, **TINY)
    assert not interrupted.exists()
    assert sorted(p.name for p in interrupted.parent.iterdir()) == ["ae.pt.ckpt"]
    train_autoencoder(image_folder, interrupted, epochs=3, **TINY)
    resumed_state, straight_state = _state(interrupted), _state(straight)
    assert all(torch.equal(resumed_state[k], straight_state[k]) for k in straight_state)


def test_resume_refuses_checkpoint_of_another_run(image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "ae.pt"
    train_autoencoder(image_folder, out, epochs=1, **TINY)
    with pytest.raises(CheckpointMismatchError, match="other settings \\(seed 0 -> 1\\).*--no-resume"):
        train_autoencoder(image_folder, out, epochs=2, seed=1, **TINY)
    train_autoencoder(image_folder, out, epochs=1, seed=1, resume=False, **TINY)
    assert read_autoencoder_file(out)["training"]["seed"] == 1


@pytest.mark.parametrize(
    "content, match",
    [
        (b"plain text, not torch", "not an fdt autoencoder model file"),
        ({"format": "something.else", "format_version": 1}, "format 'something.else'"),
        ({"format": FORMAT, "format_version": 99}, "format_version 99.*reads version 1"),
    ],
)
def test_wrong_format_refused(tmp_path: Path, content: bytes | dict, match: str) -> None:
    path = tmp_path / "model.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(AutoencoderFormatError, match=match) as caught:
        load_autoencoder(path)
    message = str(caught.value)
    assert "\n" not in message and "fdt models train-autoencoder" in message


def test_cli_trains_and_writes_files(image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "models" / "ae.pt"
    args = ["models", "train-autoencoder", str(image_folder), "--out", str(out), "--size", "16", "--latent", "7"]
    result = CliRunner().invoke(cli, args + ["--epochs", "1", "--batch-size", "4", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and "1 unreadable skipped" in result.output
    assert load_autoencoder(out).latent_dim == 7
    assert (tmp_path / "models" / "ae.loss.csv").is_file() and (tmp_path / "models" / "ae.loss.png").is_file()
    assert (tmp_path / "models" / "ae.pt.ckpt").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["{missing}", "--out", "{out}"], "Error: no such folder or manifest: "),
        (["{images}", "--out", "{out}", "--size", "48"], "Error: autoencoder size must be a power of two"),
        (["{images}", "--out", "{out}", "--real-source", "nope"], "Error: no real images (label 0) among sources fake, real"),
        pytest.param(
            ["{images}", "--out", "{out}", "--device", "cuda"],
            "Error: CUDA is not available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here"),
        ),
    ],
)
def test_cli_user_errors_are_one_line(image_folder: Path, tmp_path: Path, args: list[str], message: str) -> None:
    filled = [a.format(missing=tmp_path / "missing", out=tmp_path / "ae.pt", images=image_folder) for a in args]
    result = CliRunner().invoke(cli, ["models", "train-autoencoder", *filled])
    assert result.exit_code != 0
    assert result.output.startswith(message) and result.output.count("\n") == 1, result.output
    assert not (tmp_path / "ae.pt").exists()


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from fdt.cli import cli; import fdt.models\n"
        "for args in ([], ['models'], ['models', 'train-autoencoder']):\n"
        "    assert CliRunner().invoke(cli, [*args, '--help']).exit_code == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_trains_on_the_train_share_and_records_it(image_folder, tmp_path):
    import json

    from fdt.data import load_image_set, sha256_file
    from fdt.grouping import assign_groups, group_of, record_path

    out = tmp_path / "ae.pt"
    args = ["models", "train-autoencoder", str(image_folder), "--out", str(out), "--size", "16", "--latent", "7", "--epochs", "1", "--device", "cpu"]
    assert CliRunner().invoke(cli, [*args, "--split", "40/30/30", "--split-seed", "2"]).exit_code == 0
    record = json.loads(record_path(out).read_text())
    records = [r for r in load_image_set(image_folder) if r.label == 0 and "broken" not in r.path]  # the decoded reals
    hashes = {r.path: sha256_file(r.path) for r in records}
    groups = [group_of(r.group, hashes[r.path]) for r in records]
    assignment = assign_groups(groups, [r.source for r in records], (0.4, 0.3, 0.3), 2, [r.label for r in records])
    trained = {hashes[r.path] for r, g in zip(records, groups) if r.label == 0 and assignment[g] == "train"}
    assert record["split"] == {"seed": 2, "fractions": [0.4, 0.3, 0.3]}
    assert set(record["images"]) == trained and 0 < len(trained) < 5
    bad = CliRunner().invoke(cli, [*args, "--split", "50/50"])
    assert bad.exit_code != 0 and "three" in bad.output
