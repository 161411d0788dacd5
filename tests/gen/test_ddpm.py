"""The small DDPM: a training step, a 2-step DDIM sample, and RePaint inpainting that keeps the known region."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fdt.data import load_image_set, sha256_file
from fdt.gen.ddpm import inpaint_ddpm, load_ddpm, sample_ddpm, train_ddpm
from fdt.gen.errors import GenError
from fdt.gen.images import load_square

TINY = {"channels": (8, 16, 16), "batch_size": 3, "grid_size": 2, "grid_steps": 2, "progress": False}


@pytest.fixture(scope="module")
def ddpm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import write_images

    root = tmp_path_factory.mktemp("ddpm")
    write_images(root / "photos", 3, size=40, seed=3)
    return train_ddpm(root / "photos", root / "model", size=32, epochs=1, **TINY)


def test_training_writes_checkpoint_and_records(ddpm_dir: Path) -> None:
    unet = load_ddpm(ddpm_dir)
    assert unet.config.sample_size == 32
    assert tuple(unet.config.block_out_channels) == (8, 16, 16)
    assert (ddpm_dir / "samples" / "epoch_001.png").is_file()
    assert (ddpm_dir / "first_vs_last.png").is_file()
    losses = (ddpm_dir / "losses.csv").read_text().splitlines()
    assert losses[0] == "epoch,iteration,loss" and len(losses) == 2  # 3 images, batch 3: one step
    assert np.isfinite(float(losses[1].split(",")[2]))


def test_training_refuses_a_different_resume(ddpm_dir: Path, photos: Path) -> None:
    with pytest.raises(GenError, match=r"trained on other images \(their content hashes differ\); to start over, pass --no-resume"):
        train_ddpm(photos, ddpm_dir, size=32, epochs=2, **TINY)


def test_two_step_sample_is_seeded_and_continues_numbering(ddpm_dir: Path, tmp_path: Path) -> None:
    manifest = sample_ddpm(ddpm_dir, 2, tmp_path / "out", steps=2, seed=5, batch_size=1, progress=False)
    sample_ddpm(ddpm_dir, 1, tmp_path / "out", steps=2, seed=5, progress=False)
    records = load_image_set(manifest)
    assert [Path(r.path).name for r in records] == ["000000.png", "000001.png", "000002.png"]
    assert [r.extra["seed"] for r in records] == ["5", "6", "7"]
    assert all(r.label == 1 and r.source == "out" for r in records)
    with Image.open(records[0].path) as image:
        assert image.size == (32, 32)

    again = sample_ddpm(ddpm_dir, 2, tmp_path / "again", steps=2, seed=5, batch_size=2, progress=False)
    first, repeat = (np.asarray(Image.open(load_image_set(m)[1].path)) for m in (manifest, again))
    assert np.array_equal(first, repeat)  # same seed, other batch size: same image


def test_inpainting_keeps_the_known_region(ddpm_dir: Path, photos: Path, tmp_path: Path) -> None:
    manifest = inpaint_ddpm(ddpm_dir, photos, tmp_path / "inpaint", masks="diagonal", per_image=2, steps=2, progress=False)
    records = load_image_set(manifest)
    sources = sorted(load_image_set(photos), key=lambda r: r.path)
    assert len(records) == 2 * len(sources)
    assert [r.group for r in records[::2]] == [f"sha256:{sha256_file(s.path)}" for s in sources]  # the source's own group
    for index, record in enumerate(records):
        source = np.asarray(load_square(sources[index // 2].path, 32)).astype(int)
        with Image.open(record.path) as image, Image.open(Path(manifest).parent / record.extra["mask_path"]) as mask_file:
            output, mask = np.asarray(image).astype(int), np.asarray(mask_file) > 127
        assert 0 < mask.mean() < 1
        assert np.abs(output - source)[~mask].max() <= 1  # only rounding apart
        assert np.abs(output - source)[mask].mean() > 5  # the masked region was repainted
    kinds = [r.extra["mask_path"].split("-", 1)[1] for r in records[:4]]
    assert kinds == ["upper-left.png", "upper-right.png", "lower-left.png", "lower-right.png"]


def test_cli_sample_inpaint_and_a_refused_resume(ddpm_dir: Path, photos: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fdt.cli import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["gen", "ddpm", "sample", str(ddpm_dir), "-n", "2", "--steps", "2", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert len(load_image_set(tmp_path / "s" / "manifest.csv")) == 2
    result = runner.invoke(cli, ["gen", "ddpm", "inpaint", str(ddpm_dir), str(photos), "--steps", "2", "--masks", "random", "--out", str(tmp_path / "i")])
    assert result.exit_code == 0, result.output
    records = load_image_set(tmp_path / "i" / "manifest.csv")
    assert len(records) == 6 and all(r.extra["mask_path"].endswith("-random.png") for r in records)
    result = runner.invoke(cli, ["gen", "ddpm", "train", str(photos), "--out", str(ddpm_dir), "--epochs", "2"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: cannot resume")  # after the image-loading bar


def test_bad_mask_options_are_refused_before_anything_is_written(ddpm_dir: Path, photos: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fdt.cli import cli

    for options in (["--coverage", "0.5", "0.2"], ["--masks", "diagonal", "--per-image", "5"], ["--masks", "circle"]):
        result = CliRunner().invoke(cli, ["gen", "ddpm", "inpaint", str(ddpm_dir), str(photos), "--steps", "2", "--out", str(tmp_path / "i"), *options])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
        assert not (tmp_path / "i").exists()


def test_resumed_training_ends_like_an_uninterrupted_run(photos: Path, tmp_path: Path) -> None:
    import torch

    straight = train_ddpm(photos, tmp_path / "straight", size=32, epochs=2, **TINY)
    train_ddpm(photos, tmp_path / "resumed", size=32, epochs=1, **TINY)  # stopped after epoch 1
    resumed = train_ddpm(photos, tmp_path / "resumed", size=32, epochs=2, **TINY)
    a, b = (torch.load(folder / "checkpoint.pt", weights_only=True) for folder in (straight, resumed))
    assert a["epoch"] == b["epoch"] == 2
    assert all(torch.equal(a["state"]["unet"][k], b["state"]["unet"][k]) for k in a["state"]["unet"])
    assert (straight / "losses.csv").read_text() == (resumed / "losses.csv").read_text()
