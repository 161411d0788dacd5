"""``fdt gen sd`` and ``fdt gen inpaint`` end to end on tiny pipelines saved by path, offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fdt.cli import cli
from fdt.data import load_image_set, sha256_file
from tests.gen.tiny_sd import save_tiny_pipeline


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sd")
    return {"t2i": save_tiny_pipeline(root / "t2i"), "inpaint": save_tiny_pipeline(root / "inpaint", inpainting=True)}


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, ["gen", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_text_to_image_from_coco_captions(pipelines: dict[str, Path], tmp_path: Path) -> None:
    captions = tmp_path / "captions_val2017.json"
    annotations = [
        {"image_id": 139, "id": 1, "caption": "a cat on the mat"},
        {"image_id": 139, "id": 2, "caption": "the cat sits"},
        {"image_id": 285, "id": 3, "caption": "a dog."},
        {"image_id": 632, "id": 4, "caption": "never used"},
    ]
    captions.write_text(json.dumps({"images": [], "annotations": annotations}))
    out = tmp_path / "sd21"
    args = ("sd", str(captions), "--model", str(pipelines["t2i"]), "--out", str(out), "--max-captions", "3", "--steps", "2", "--size", "32", "--batch-size", "2")
    invoke(*args)
    invoke(*args, "--per-prompt", "2", "--negative-prompt", "blurry")  # a second run continues the folder

    records = load_image_set(out / "manifest.csv")
    assert [Path(r.path).name for r in records] == [f"{i:06d}.png" for i in range(9)]
    assert [r.group for r in records] == ["coco:139", "coco:139", "coco:285"] + ["coco:139"] * 4 + ["coco:285"] * 2
    assert [r.extra["prompt"] for r in records[:3]] == ["a cat on the mat", "the cat sits", "a dog."]
    assert [r.extra["seed"] for r in records] == [str(i) for i in range(9)]
    assert {(r.source, r.label, r.extra["model_id"], r.extra["mask_path"]) for r in records} == {("sd21", 1, str(pipelines["t2i"]), "")}
    for record in records:
        with Image.open(record.path) as image:
            assert image.size == (32, 32)


def test_text_to_image_is_seeded(pipelines: dict[str, Path], tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a face\n\nthe sea\n")
    for name, batch in (("a", "1"), ("b", "2")):
        invoke("sd", str(prompts), "--model", str(pipelines["t2i"]), "--out", str(tmp_path / name), "--steps", "2", "--size", "32", "--batch-size", batch)
    a, b = (load_image_set(tmp_path / name / "manifest.csv") for name in "ab")
    assert [r.group for r in a] == ["a face", "the sea"]
    assert all(np.array_equal(np.asarray(Image.open(x.path)), np.asarray(Image.open(y.path))) for x, y in zip(a, b))


def test_inpainting_saves_masks_and_groups_by_source(pipelines: dict[str, Path], photos: Path, tmp_path: Path) -> None:
    sources = sorted(load_image_set(photos), key=lambda r: r.path)[:2]
    manifest = tmp_path / "sources.csv"
    manifest.write_text("path,source,label,group\n" + f"{sources[0].path},coco,0,photo-1\n{sources[1].path},coco,0,\n")
    out = tmp_path / "inpaint"
    invoke("inpaint", str(manifest), "--model", str(pipelines["inpaint"]), "--out", str(out), "--steps", "2", "--size", "32", "--per-image", "5")

    records = load_image_set(out / "manifest.csv")
    assert len(records) == 10
    assert [r.group for r in records] == ["photo-1"] * 5 + [f"sha256:{sha256_file(sources[1].path)}"] * 5
    assert {r.extra["prompt"] for r in records} == {"Generate a painting compatible with the rest of the image."}
    kinds = [r.extra["mask_path"].split("-", 1)[1].removesuffix(".png") for r in records[:5]]
    assert kinds == ["upper-left", "upper-right", "lower-left", "lower-right", "random"]
    for record in records:
        with Image.open(record.path) as image, Image.open(out / record.extra["mask_path"]) as mask:
            assert image.size == mask.size == (32, 32)
            assert 0 < (np.asarray(mask) > 127).mean() < 1
    assert load_image_set(out)[0].path.endswith("000000.png")  # masks are hidden from the folder's image set
    assert len(load_image_set(out)) == 10


def test_inpainting_rejects_too_many_outputs_without_random(pipelines: dict[str, Path], photos: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["gen", "inpaint", str(photos), "--model", str(pipelines["inpaint"]), "--out", str(tmp_path / "o"), "--masks", "diagonal", "--per-image", "5"])
    assert result.exit_code == 2
    assert "add 'random'" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("command", ["sd", "inpaint"])
def test_size_must_be_a_multiple_of_8(command: str, pipelines: dict[str, Path], photos: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat\n")
    source, model = (prompts, pipelines["t2i"]) if command == "sd" else (photos, pipelines["inpaint"])
    result = CliRunner().invoke(cli, ["gen", command, str(source), "--model", str(model), "--out", str(tmp_path / "o"), "--size", "30"])
    assert result.exit_code == 2
    assert "multiple of 8" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_group_by_image_gives_each_image_a_stable_group_of_its_own(pipelines: dict[str, Path], tmp_path: Path) -> None:
    """Seed 001's two generic prompts: grouped by prompt they are two groups; by image, one per image, the same on every re-run."""
    prompts = tmp_path / "faces.txt"
    prompts.write_text("A face of a man\nA face of a woman\n")
    common = ("--model", str(pipelines["t2i"]), "--steps", "2", "--size", "32", "--batch-size", "2", "--per-prompt", "2")
    invoke("sd", str(prompts), "--out", str(tmp_path / "by-prompt"), *common)
    invoke("sd", str(prompts), "--out", str(tmp_path / "by-image"), "--group-by", "image", *common)
    by_prompt, by_image = (load_image_set(tmp_path / name / "manifest.csv") for name in ("by-prompt", "by-image"))
    assert [r.group for r in by_prompt] == ["A face of a man"] * 2 + ["A face of a woman"] * 2  # the default, as before
    assert [r.group for r in by_image] == ["A face of a man|seed=0", "A face of a man|seed=1", "A face of a woman|seed=2", "A face of a woman|seed=3"]
    assert [sha256_file(a.path) for a in by_prompt] == [sha256_file(b.path) for b in by_image]  # same images, other groups
    invoke("sd", str(prompts), "--out", str(tmp_path / "again"), "--group-by", "image", *common)
    assert [r.group for r in load_image_set(tmp_path / "again" / "manifest.csv")] == [r.group for r in by_image]


def test_group_by_image_is_refused_for_coco_captions(pipelines: dict[str, Path], tmp_path: Path) -> None:
    captions = tmp_path / "captions.json"
    captions.write_text(json.dumps({"annotations": [{"image_id": 139, "id": 1, "caption": "a cat"}]}))
    result = CliRunner().invoke(cli, ["gen", "sd", str(captions), "--model", str(pipelines["t2i"]), "--out", str(tmp_path / "out"), "--group-by", "image"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "group_by='image' would split COCO captions' fakes from the photo they describe" in result.output
    assert not (tmp_path / "out").exists()
