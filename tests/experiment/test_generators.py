"""The generator registry as ``fdt run`` and ``fdt gen list`` read it; Stable Diffusion and SD inpainting as ``fdt run`` generators."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fdt.data import load_image_set, sha256_file
from fdt.experiment import ExperimentError, make_plan, parse_experiment
from fdt.gen.registry import RESERVED, GeneratorSpec, get_generator, list_generators, register_generator
from tests.experiment.conftest import invoke, write_noise
from tests.gen.tiny_sd import save_tiny_pipeline

REAL = """
[images.coco]
folder = "coco"
label = "real"
[extractors.fft]
params = { size = 8 }
"""


@pytest.mark.parametrize("name", ["dcgan", "ddpm", "ddpm-inpaint", "sd", "sd-inpaint"])
def test_every_builtin_generator_has_a_schema_without_the_arguments_fdt_sets(name: str) -> None:
    spec = get_generator(name)
    make = spec.parameters("make")
    assert "seed" in make and not set(make) & set(RESERVED[spec.kind])
    if spec.train:
        assert "epochs" in spec.parameters("train") and "images" not in spec.parameters("train")
    if spec.per_input:
        assert spec.default("make", spec.per_input) >= 1


def test_unknown_generator_and_unknown_parameter_are_one_line_errors(tmp_path: Path) -> None:
    write_noise(tmp_path / "coco", 2)
    with pytest.raises(ExperimentError, match=r"generator must be one of dcgan, ddpm, ddpm-inpaint, sd, sd-inpaint, not 'gan'"):
        parse_experiment(REAL + "[images.x]\ngenerator = 'gan'\nsamples = 1\n", base=tmp_path)
    with pytest.raises(ExperimentError, match=r"a sd generator needs key 'prompts'"):
        parse_experiment(REAL + "[images.x]\ngenerator = 'sd'\nsamples = 1\n", base=tmp_path)
    with pytest.raises(ExperimentError, match=r"sd-inpaint trains nothing; remove \[train\]"):
        parse_experiment(REAL + "[images.x]\ngenerator = 'sd-inpaint'\ninpaint = 'coco'\nsamples = 1\n[images.x.train]\nepochs = 1\n", base=tmp_path)
    text = REAL + "[images.x]\ngenerator = 'sd-inpaint'\ninpaint = 'coco'\nsamples = 1\n[images.x.sample]\nprompts = 'a'\n"
    with pytest.raises(ExperimentError, match=r"unknown key 'prompts' in \[images.x.sample\]; allowed: model, masks, per_image, coverage, prompt, "):
        make_plan(parse_experiment(text, base=tmp_path), tmp_path / "ws")
    text = REAL + "[images.x]\ngenerator = 'sd'\nprompts = 'missing.txt'\nsamples = 1\n"
    with pytest.raises(ExperimentError, match=r"\[images.x\]: prompt file does not exist"):
        make_plan(parse_experiment(text, base=tmp_path), tmp_path / "ws")


def test_extractors_that_learn_are_found_by_capability_not_by_name(tmp_path: Path) -> None:
    write_noise(tmp_path / "coco", 2)
    gan = "[images.gan]\ngenerator = 'dcgan'\ntrain_on = 'coco'\nsamples = 1\n"
    with pytest.raises(ExperimentError, match=r"\[extractors.ae\]: the autoencoder extractor learns from images; give train_on"):
        make_plan(parse_experiment(REAL + gan + "[extractors.ae]\nextractor = 'autoencoder'\n", base=tmp_path), tmp_path / "ws")
    with pytest.raises(ExperimentError, match=r"\[extractors.fft\]: the fft extractor learns nothing; remove train_on"):
        make_plan(parse_experiment(REAL.replace("params", "train_on = 'coco'\nparams") + gan, base=tmp_path), tmp_path / "ws")
    text = REAL + gan + "[extractors.ae]\nextractor = 'autoencoder'\ntrain_on = 'coco'\nparams = { model = 'x.pt' }\n"
    with pytest.raises(ExperimentError, match=r"params.model is set by fdt from train_on"):
        make_plan(parse_experiment(text, base=tmp_path), tmp_path / "ws")


def test_a_registered_generator_is_usable_without_editing_fdt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fdt.gen.registry as registry

    monkeypatch.setattr(registry, "_REGISTERED", {})
    register_generator(GeneratorSpec("noise-gan", "sample", "fdt.gen.dcgan:sample_dcgan", train="fdt.gen.dcgan:train_dcgan"))
    assert "noise-gan" in list_generators()
    write_noise(tmp_path / "coco", 2)
    text = REAL + "[images.x]\ngenerator = 'noise-gan'\ntrain_on = 'coco'\nsamples = 1\n[images.x.train]\nepoch = 1\n"
    with pytest.raises(ExperimentError, match=r"unknown key 'epoch' in \[images.x.train\]; allowed: size, epochs, "):
        make_plan(parse_experiment(text, base=tmp_path), tmp_path / "ws")


def test_a_plugin_package_adds_a_generator_through_its_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package as pip leaves it (``.dist-info`` with an ``fdt.generators`` entry point): listed, checked, used by ``fdt run --check``."""
    import sys

    from fdt import plugins

    site = tmp_path / "site"
    (site / "fdt_tiny_gen").mkdir(parents=True)
    (site / "fdt_tiny_gen" / "__init__.py").write_text(
        "from fdt.gen.registry import GeneratorSpec\n"
        "NOISE = GeneratorSpec('noise', 'sample', 'fdt.gen.dcgan:sample_dcgan', train='fdt.gen.dcgan:train_dcgan', description='plugin')\n"
        "WRONG = 3\n"
    )
    info = site / "fdt_tiny_gen-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fdt-tiny-gen\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[fdt.generators]\nnoise = fdt_tiny_gen:NOISE\nwrong = fdt_tiny_gen:WRONG\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(plugins, "_reported", set())
    try:
        assert {"noise", "wrong"} <= set(list_generators())
        assert get_generator("noise").description == "plugin"
        write_noise(tmp_path / "coco", 2)
        experiment = parse_experiment(REAL + "[images.x]\ngenerator = 'noise'\ntrain_on = 'coco'\nsamples = 1\n", base=tmp_path)
        assert make_plan(experiment, tmp_path / "ws").fakes == ["x"]
        with pytest.raises(ExperimentError, match=r"\[images.y\]: plugin 'wrong' of fdt.generators is not a GeneratorSpec named 'wrong'"):
            parse_experiment(REAL + "[images.y]\ngenerator = 'wrong'\nsamples = 1\n", base=tmp_path)
    finally:
        sys.modules.pop("fdt_tiny_gen", None)


def test_gen_list_shows_capabilities_and_parameters() -> None:
    result = invoke("gen", "list")
    assert result.exit_code == 0, result.output
    assert "sd-inpaint: Stable Diffusion inpainting" in result.output and "[inpaint]" in result.output
    assert "ddpm-inpaint: RePaint-style inpainting with a trained small DDPM [inpaint, uses a ddpm model]" in result.output
    assert "  train: size=64, epochs=100, batch_size=128" in result.output


SD_STUDY = """
[experiment]
name = "sd"
workers = 0
batch_size = 8
[images.coco]
folder = "coco"
label = "real"
[images.sd21]
generator = "sd"
prompts = "captions.json"
samples = 2
[images.sd21.sample]
model = "{t2i}"
per_prompt = 2
steps = 2
size = 16
batch_size = 4
[images.sd2-inpaint]
generator = "sd-inpaint"
inpaint = "coco"
samples = 2
[images.sd2-inpaint.sample]
model = "{inpaint}"
per_image = 2
steps = 2
size = 16
batch_size = 4
[extractors.fft]
params = { size = 8 }
"""


def test_stable_diffusion_and_sd_inpainting_run_as_experiment_generators(tmp_path: Path) -> None:
    """The image-set stage of ``fdt run`` (the full run's audit and tuning would add a minute and test nothing more here)."""
    from fdt.experiment import load_experiment
    from fdt.experiment.runner import RunRecord, _image_sets

    models = {"t2i": save_tiny_pipeline(tmp_path / "models" / "t2i"), "inpaint": save_tiny_pipeline(tmp_path / "models" / "inpaint", inpainting=True)}
    write_noise(tmp_path / "coco", 3, size=24)
    annotations = [{"image_id": 139, "id": 1, "caption": "a cat"}, {"image_id": 285, "id": 2, "caption": "a dog"}, {"image_id": 632, "id": 3, "caption": "unused"}]
    (tmp_path / "captions.json").write_text(json.dumps({"annotations": annotations}))
    experiment = tmp_path / "sd.toml"
    experiment.write_text(SD_STUDY.replace("{t2i}", models["t2i"].as_posix()).replace("{inpaint}", models["inpaint"].as_posix()))
    workspace = tmp_path / "ws"
    assert invoke("run", str(experiment), "--workspace", str(workspace), "--check").exit_code == 0
    plan = make_plan(load_experiment(experiment), workspace)

    record = RunRecord("sd", str(workspace))
    records = _image_sets(plan, record, progress=False, log=lambda line: None)
    generated = {e["name"]: e for e in record.stages if e["stage"] == "generator"}
    assert generated["sd21"]["new_images"] == 4 and generated["sd2-inpaint"]["new_images"] == 4
    text_to_image = records["sd21"]
    assert [r.group for r in text_to_image] == ["coco:139", "coco:139", "coco:285", "coco:285"]
    assert {(r.source, r.label, r.extra["model_id"]) for r in text_to_image} == {("sd21", 1, models["t2i"].as_posix())}
    inpainted = records["sd2-inpaint"]
    sources = {f"sha256:{sha256_file(r.path)}" for r in load_image_set(tmp_path / "coco", label=0)}
    assert len(inpainted) == 4 and {r.group for r in inpainted} <= sources and len({r.group for r in inpainted}) == 2
    assert all((workspace / "data" / "sd2-inpaint" / r.extra["mask_path"]).is_file() for r in inpainted)

    again = RunRecord("sd", str(workspace))
    _image_sets(plan, again, progress=False, log=lambda line: None)
    assert [e["action"] for e in again.stages if e["stage"] == "generator"] == ["reused", "reused"]


TEXT_STUDY = REAL + """
[images.faces-sd]
generator = "sd"
prompts = "{prompts}"
samples = 2
[images.faces-sd.sample]
per_prompt = 4
{group_by}
[[studies]]
pipelines = ["logreg"]
cv = 2
"""


@pytest.mark.parametrize(
    ("prompts", "group_by", "error"),
    [
        ("faces.txt", 'group_by = "image"', None),
        ("faces.txt", "", r"\[images.faces-sd\]: its 2 prompt\(s\) give 2 group\(s\) \(one per prompt\), fewer than the 5 the split 80/10/10 with 2 folds"),
        ("faces.txt", 'group_by = "photo"', r"\[images.faces-sd\]: group_by must be one of prompt, image, not 'photo'"),
        ("captions.json", 'group_by = "image"', r"\[images.faces-sd\]: group_by='image' would split COCO captions' fakes from the photo"),
        ("captions.json", "", None),  # caption groups are their photos': too few here only warns
    ],
)
def test_text_to_image_group_by_is_checked_before_any_image_is_made(tmp_path: Path, prompts: str, group_by: str, error: str | None) -> None:
    write_noise(tmp_path / "coco", 2, size=16)
    (tmp_path / "faces.txt").write_text("A face of a man\nA face of a woman\n")
    (tmp_path / "captions.json").write_text(json.dumps({"annotations": [{"image_id": 1, "id": 1, "caption": "a cat"}, {"image_id": 2, "id": 2, "caption": "a dog"}]}))
    experiment = parse_experiment(TEXT_STUDY.replace("{prompts}", prompts).replace("{group_by}", group_by), base=tmp_path)
    if error is None:
        plan = make_plan(experiment, tmp_path / "ws")
        assert any("fake source 'faces-sd' has 2 group(s)" in w for w in plan.warnings) == (prompts == "captions.json")
    else:
        with pytest.raises(ExperimentError, match=error):
            make_plan(experiment, tmp_path / "ws")
    assert not (tmp_path / "ws").exists()
