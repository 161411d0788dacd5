"""DCGAN: shapes at 32 and 64 px, an epoch of training, exact resume after an interruption, seeded sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fdt.data import load_image_set
from fdt.gen import dcgan
from fdt.gen.dcgan import Discriminator, Generator, load_generator, sample_dcgan, train_dcgan
from fdt.gen.errors import GenError

TINY = {"size": 32, "features": 4, "nz": 8, "batch_size": 2, "grid_size": 4, "progress": False}


@pytest.mark.parametrize("size", [32, 64])
def test_shapes(size: int) -> None:
    generator, discriminator = Generator(size, nz=8, features=4), Discriminator(size, features=4)
    images = generator(torch.randn(3, 8))
    assert images.shape == (3, 3, size, size)
    assert images.abs().max() <= 1
    assert discriminator(images).shape == (3,)
    convs = [m for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(convs) == (5 if size == 64 else 4)  # the classic five layers at 64 px


def test_size_must_be_a_power_of_two() -> None:
    with pytest.raises(GenError, match="a power of two or 3, 5 or 7 times one"):
        Generator(36)


def test_one_epoch_writes_its_records(photos: Path, tmp_path: Path) -> None:
    out = train_dcgan(photos, tmp_path / "model", epochs=1, **TINY)
    assert load_generator(out)(torch.randn(2, 8)).shape == (2, 3, 32, 32)
    assert (out / "samples" / "epoch_001.png").is_file()
    assert (out / "first_vs_last.png").is_file() and (out / "losses.png").is_file()
    rows = (out / "losses.csv").read_text().splitlines()
    assert rows[0] == "epoch,iteration,loss_d,loss_g,d_real,d_fake"
    assert len(rows) == 1 + 3  # 6 images in batches of 2


def test_interrupted_training_resumes_to_the_uninterrupted_result(photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    straight = train_dcgan(photos, tmp_path / "straight", epochs=2, **TINY)

    calls = {"n": 0}
    forward = Discriminator.forward

    def crash_in_epoch_two(self: Discriminator, images: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 3 * 3 + 4:  # three calls per batch, three batches per epoch: mid epoch 2
            raise KeyboardInterrupt
        return forward(self, images)

    monkeypatch.setattr(Discriminator, "forward", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train_dcgan(photos, tmp_path / "resumed", epochs=2, **TINY)
    monkeypatch.setattr(Discriminator, "forward", forward)
    assert torch.load(tmp_path / "resumed" / dcgan.CHECKPOINT, weights_only=True)["epoch"] == 1
    resumed = train_dcgan(photos, tmp_path / "resumed", epochs=2, **TINY)

    a = torch.load(straight / dcgan.CHECKPOINT, weights_only=True)
    b = torch.load(resumed / dcgan.CHECKPOINT, weights_only=True)
    for part in ("generator", "discriminator", "opt_g"):
        assert a["state"][part].keys() == b["state"][part].keys()
    for part in ("generator", "discriminator"):
        assert all(torch.equal(a["state"][part][k], b["state"][part][k]) for k in a["state"][part])
    assert (straight / "losses.csv").read_text() == (resumed / "losses.csv").read_text()


def test_resume_refuses_other_settings(photos: Path, tmp_path: Path) -> None:
    train_dcgan(photos, tmp_path / "model", epochs=1, **TINY)
    with pytest.raises(GenError, match=r"other settings \(lr 0.0002 -> 0.001\)"):
        train_dcgan(photos, tmp_path / "model", epochs=2, lr=1e-3, **TINY)
    with pytest.raises(GenError, match="already holds"):
        train_dcgan(photos, tmp_path / "model", epochs=2, resume=False, **TINY)


def test_sampling_is_deterministic_and_never_overwrites(photos: Path, tmp_path: Path) -> None:
    model = train_dcgan(photos, tmp_path / "model", epochs=1, **TINY)
    first = sample_dcgan(model, 3, tmp_path / "a", seed=1, batch_size=2, progress=False)
    second = sample_dcgan(model, 3, tmp_path / "b", seed=1, batch_size=3, progress=False)
    pixels = [[np.asarray(Image.open(r.path)) for r in load_image_set(m)] for m in (first, second)]
    assert all(np.array_equal(x, y) for x, y in zip(*pixels))
    assert pixels[0][0].shape == (32, 32, 3)
    assert not np.array_equal(pixels[0][0], pixels[0][1])

    sample_dcgan(model, 2, tmp_path / "a", seed=1, progress=False)
    records = load_image_set(first)
    assert [Path(r.path).name for r in records] == [f"{i:06d}.png" for i in range(5)]
    assert [r.extra["seed"] for r in records] == ["1", "2", "3", "4", "5"]
    assert np.array_equal(np.asarray(Image.open(records[0].path)), pixels[0][0])  # untouched
    assert {r.extra["model_id"] for r in records} == {str(model)}


def test_cli_train_and_sample(photos: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fdt.cli import cli

    runner = CliRunner()
    model = tmp_path / "model"
    result = runner.invoke(cli, ["gen", "dcgan", "train", str(photos), "--out", str(model), "--size", "32", "--epochs", "1", "--batch-size", "3", "--features", "4", "--nz", "8"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["gen", "dcgan", "sample", str(model), "-n", "4", "--out", str(tmp_path / "fakes"), "--source", "dcgan"])
    assert result.exit_code == 0, result.output
    records = load_image_set(tmp_path / "fakes" / "manifest.csv")
    assert len(records) == 4 and {r.source for r in records} == {"dcgan"}
    result = runner.invoke(cli, ["gen", "dcgan", "sample", str(tmp_path / "nothing"), "-n", "1", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "no DCGAN checkpoint" in result.output
