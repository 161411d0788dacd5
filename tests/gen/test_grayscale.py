"""Seed 003's data: 48 px grayscale DCGAN and DDPM, fakes in the mode of the reals, per-epoch checkpoints sampled later."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fdt.data import load_image_set
from fdt.gen.dcgan import Discriminator, Generator, train_dcgan
from fdt.gen.ddpm import train_ddpm
from fdt.gen.errors import GenError
from fdt.gen.sampling import epoch_checkpoints, sample_checkpoint

DCGAN = {"size": 48, "features": 4, "nz": 8, "batch_size": 2, "grid_size": 4, "progress": False}
DDPM = {"size": 48, "channels": (8, 16, 16), "batch_size": 4, "grid_size": 2, "grid_steps": 2, "progress": False}


@pytest.fixture
def faces(tmp_path: Path) -> Path:
    """Four 48 px grayscale PNGs, as FER2013's faces are stored."""
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for index in range(4):
        Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8), mode="L").save(folder / f"face{index}.png")
    return folder


def _modes(manifest: Path) -> set[tuple[str, tuple[int, int]]]:
    found = set()
    for record in load_image_set(manifest):
        with Image.open(record.path) as image:
            found.add((image.mode, image.size))
    return found


def test_48_px_is_a_3x3_map_doubled_four_times_in_both_networks() -> None:
    generator, discriminator = Generator(48, nz=8, features=4, channels=1), Discriminator(48, features=4, channels=1)
    images = generator(torch.randn(2, 8))
    assert images.shape == (2, 1, 48, 48)
    assert discriminator(images).shape == (2,)
    assert len([m for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)]) == 5
    with pytest.raises(GenError, match="channels must be 1 .* or 3"):
        Generator(48, channels=2)


def test_grayscale_dcgan_keeps_each_epoch_and_samples_any_of_them_as_grayscale_48_px(faces: Path, tmp_path: Path) -> None:
    model = train_dcgan(faces, tmp_path / "dcgan", epochs=2, keep_epochs=True, **DCGAN)
    checkpoints = epoch_checkpoints(model)
    assert list(checkpoints) == [1, 2]
    first = sample_checkpoint(checkpoints[1], 2, tmp_path / "epoch1", seed=4, progress=False)
    last = sample_checkpoint(model, 2, tmp_path / "latest", seed=4, progress=False)
    assert _modes(first) == _modes(last) == {("L", (48, 48))}
    # the latest checkpoint is epoch 2's weights, so it samples what the epoch-2 snapshot samples
    again = sample_checkpoint(checkpoints[2], 2, tmp_path / "epoch2", seed=4, progress=False)
    pixels = [[np.asarray(Image.open(r.path)) for r in load_image_set(m)] for m in (first, last, again)]
    assert all(np.array_equal(a, b) for a, b in zip(pixels[1], pixels[2]))
    assert not all(np.array_equal(a, b) for a, b in zip(pixels[0], pixels[1]))


def test_grayscale_ddpm_samples_grayscale_48_px_from_an_epoch_checkpoint(faces: Path, tmp_path: Path) -> None:
    model = train_ddpm(faces, tmp_path / "ddpm", epochs=1, keep_epochs=True, **DDPM)
    manifest = sample_checkpoint(epoch_checkpoints(model)[1], 2, tmp_path / "fakes", steps=2, progress=False)
    assert _modes(manifest) == {("L", (48, 48))}


def test_colour_reals_give_colour_fakes(tmp_path: Path) -> None:
    from tests.conftest import write_images

    write_images(tmp_path / "photos", 2, size=48)
    model = train_dcgan(tmp_path / "photos", tmp_path / "dcgan", epochs=1, **DCGAN)
    assert _modes(sample_checkpoint(model, 1, tmp_path / "fakes", progress=False)) == {("RGB", (48, 48))}


def test_resume_decides_same_data_by_content_not_by_path(faces: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(faces, moved)
    train_dcgan(faces, tmp_path / "dcgan", epochs=1, **DCGAN)
    train_dcgan(moved, tmp_path / "dcgan", epochs=2, **DCGAN)  # same bytes elsewhere: resumed
    Image.fromarray(np.zeros((48, 48), np.uint8), mode="L").save(moved / "face0.png")
    with pytest.raises(GenError, match=r"trained on other images \(their content hashes differ\)"):
        train_dcgan(moved, tmp_path / "dcgan", epochs=3, **DCGAN)


def test_sampling_a_checkpoint_that_is_not_a_generator_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "x.pt").write_bytes(b"not torch")
    with pytest.raises(GenError, match="is not an fdt checkpoint"):
        sample_checkpoint(tmp_path / "x.pt", 1, tmp_path / "out", progress=False)
