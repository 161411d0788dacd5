"""The seed studies shipped as experiment files: each one passes ``fdt run --check`` on stand-in folders and weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.experiment.conftest import invoke

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _image(path: Path, mode: str = "RGB", size: int = 16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(len(str(path))).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)


def _stand_in_data(data: Path) -> None:
    """A few tiny files in each dataset's layout as downloaded, where the seed files expect them."""
    coco = data / "coco"
    _image(coco / "val2017" / "000000000139.jpg")
    (coco / "annotations").mkdir(parents=True)
    captions = {"images": [{"id": 139, "file_name": "000000000139.jpg"}], "annotations": [{"image_id": 139, "id": 1, "caption": "a cat"}]}
    (coco / "annotations" / "captions_val2017.json").write_text(json.dumps(captions))
    _image(data / "human-faces" / "face.png")
    for kind in ("wiki", "inpainting", "text2img"):
        _image(data / "DeepFakeFace" / kind / "00" / "1_1950.png")
    for kind in ("real", "fake"):
        _image(data / "140k-real-and-fake-faces" / "real_vs_fake" / "real-vs-fake" / "train" / kind / f"{kind}.png")
    _image(data / "fer2013" / "train" / "happy" / "1.png", mode="L", size=48)
    for role in ("source", "inpainting"):
        _image(data / "deepfakeart" / "similar" / "inpainting" / "record1" / f"{role}.png")


def _hf_cache_file(cache: Path, repo: str, filename: str) -> Path:
    """Where huggingface_hub's cache layout keeps ``filename`` of ``repo`` at a (stand-in) revision."""
    revision = "0" * 40
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(revision)
    return folder / "snapshots" / revision / filename


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The examples folder copied beside stand-in data, with stand-in ImageNet weights in private torch and Hugging Face caches."""
    from fdt.features_store.registry import create_extractor
    from fdt.models.weights import torch_cache_file

    root = tmp_path_factory.mktemp("seeds")
    shutil.copytree(EXAMPLES, root / "examples")
    _stand_in_data(root / "examples" / "data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(root / "torch"))
        for name, params in (("vgg16", {}), ("mobilenet_v2", {}), ("xception", {}), ("resnet50", {}), ("densenet121", {}), ("inception_v3", {"variant": "pytorch-fid"})):
            source = create_extractor(name, weights="imagenet", **params).published_weights()
            cached = torch_cache_file(source.url) if source.url else _hf_cache_file(root / "hf", source.hf_repo, source.hf_filename)
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_bytes(f"stand-in {name} weights: planning reads only their presence and hash".encode())
    return root


@pytest.mark.parametrize("seed", range(5))
def test_each_seed_study_validates_without_running(study: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("TORCH_HOME", str(study / "torch"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(study / "hf"))
    workspace = study / f"ws{seed}"
    result = invoke("run", str(study / "examples" / f"seed-00{seed}.toml"), "--workspace", str(workspace), "--check")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{study / 'examples' / f'seed-00{seed}.toml'}: ok (")
    assert ("2 fine-tuned models" in result.output) == (seed in (1, 2, 4))
    assert not workspace.exists()


@pytest.mark.parametrize(
    "seed, models, extractors",
    [
        (1, {"mobilenet-ft": "mobilenet_v2", "xception-ft": "xception"}, ["mobilenet-ft", "xception-ft", "mobilenet-ft-score", "xception-ft-score"]),
        (2, {"direct": "mobilenet_v2", "fourier": "densenet121"}, ["direct", "fourier"]),
        (4, {"vgg16-ft": "vgg16", "resnet50-ft": "resnet50"}, ["vgg16-ft", "resnet50-ft"]),
    ],
)
def test_seed_studies_fine_tune_their_cnns_on_the_train_share(study: Path, seed: int, models: dict, extractors: list, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    from fdt.experiment.config import load_experiment
    from fdt.experiment.plan import make_plan

    monkeypatch.setenv("TORCH_HOME", str(study / "torch"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(study / "hf"))
    plan = make_plan(load_experiment(study / "examples" / f"seed-00{seed}.toml"), study / "unused")
    assert {name: model.config.backbone for name, model in plan.models.items()} == models
    for name, model in plan.models.items():
        assert model.config.split == {"seed": 0, "fractions": [0.8, 0.1, 0.1]} and model.config.weights == "imagenet"
        assert model.config.epochs >= 1 and model.config.finetune_epochs >= 1 and model.config.unfreeze >= 1
    for label in extractors:
        assert plan.experiment.extractors[label].model in models and "fine-tuned" in plan.weights_choice[label]
    if seed == 2:
        assert plan.models["fourier"].config.input == "spectrum" and plan.models["direct"].fakes == ("inpainting",)
    if seed == 4:
        assert all(model.config.augment for model in plan.models.values())


def test_check_reports_a_missing_data_folder_in_one_line(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    result = invoke("run", str(tmp_path / "examples" / "seed-003.toml"), "--check")
    assert result.exit_code == 2
    assert "[images.fer2013]" in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("seed", [0, 3])
def test_the_quality_seeds_declare_their_quality_reports(study: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeds 000 and 003: FID (Inception) and VGG16-space quality, each against the VGG16 matrix's detectability."""
    monkeypatch.setenv("TORCH_HOME", str(study / "torch"))
    result = invoke("run", str(study / "examples" / f"seed-00{seed}.toml"), "--workspace", str(study / "ws"), "--check")
    assert result.exit_code == 0, result.output
    assert "1 studies, 1 matrices, 2 quality reports;" in result.output


def test_seed_001_grouped_by_prompt_is_refused_at_check(study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two prompts grouped by prompt are two fake groups: the split could hold none out, so --check refuses before any image is made."""
    monkeypatch.setenv("TORCH_HOME", str(study / "torch"))
    by_prompt = study / "examples" / "seed-001-by-prompt.toml"
    by_prompt.write_text((study / "examples" / "seed-001.toml").read_text().replace('group_by = "image"', ""))
    result = invoke("run", str(by_prompt), "--workspace", str(tmp_path / "ws"), "--check")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "[images.realistic-vision]: its 2 prompt(s) give 2 group(s)" in result.output and 'group_by = "image"' in result.output
