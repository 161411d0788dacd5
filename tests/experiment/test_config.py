"""The experiment schema, the plan's up-front checks, the bundled corpus and the embedded demo."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from fdt.data import load_image_set
from fdt.experiment import ExperimentError, demo_experiment, demo_text, make_plan, parse_experiment
from fdt.experiment.config import CorpusImages, GeneratedImages
from fdt.experiment.corpus import PHOTOS, build_corpus, corpus_is_built
from tests.experiment.conftest import TINY, invoke, write_noise


def parse(text: str, base: Path = Path("/data")):
    return parse_experiment(text, base=base)


MINIMAL = """
[images.coco]
folder = "coco"
[extractors.fft]
"""


def test_defaults_fill_every_table_and_paths_are_relative_to_the_file():
    experiment = parse(MINIMAL + "[[matrices]]\npipeline = 'svm-linear'\n", base=Path("/studies"))
    assert experiment.settings.resolutions == ("native",) and experiment.settings.split == "80/10/10"
    assert experiment.images["coco"].folder == "/studies/coco"
    assert experiment.extractors["fft"].extractor == "fft" and experiment.extractors["fft"].params == {}
    assert experiment.matrices[0].metric == "roc_auc" and experiment.matrices[0].cv == 5


def test_integer_resolutions_become_strings():
    assert parse("[experiment]\nresolutions = ['native', 64, 256]\n" + MINIMAL).settings.resolutions == ("native", "64", "256")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[experiment]\nseed = 'zero'\n" + MINIMAL, r"seed in \[experiment\] must be an integer, not 'zero'"),
        ("[experiment]\nresolutions = []\n" + MINIMAL, r"resolutions is empty"),
        ("[extractors.fft]\n", r"no \[images.NAME\] table"),
        (MINIMAL + "[[studies]]\ntrials = 3\n", r"\[\[studies\]\] #1 needs key 'pipelines'"),
        (MINIMAL + "[[studies]]\npipelines = ['logreg']\nextractors = ['vgg']\n", r"\[\[studies\]\] #1 extractors: 'vgg' names no \[extractors.vgg\] table"),
        (MINIMAL + "[images.gan]\ngenerator = 'stylegan'\nsamples = 3\n", r"generator must be one of dcgan, ddpm, ddpm-inpaint, sd, sd-inpaint, not 'stylegan'"),
        (MINIMAL + "[images.gan]\ngenerator = 'dcgan'\nsamples = 3\n", r"\[images.gan\]: a dcgan generator needs key 'train_on'"),
        (MINIMAL + "[images.gan]\ngenerator = 'dcgan'\ntrain_on = 'coco'\nmodel = 'x'\nsamples = 3\n", r"takes no key 'model'"),
        (MINIMAL + "[images.x]\ncorpus = 'imagenet'\n", r"corpus must be 'bundled'"),
        ("[images.coco]\nfolder = 'coco'\nlabel = 'maybe'\n[extractors.fft]\n", r"label must be 'real' or 'fake', not 'maybe'"),
    ],
)
def test_structural_errors_name_the_key_and_table(text, message):
    with pytest.raises(ExperimentError, match=message):
        parse(text)


def test_plan_resolves_sources_and_defaults_real_and_fakes(tmp_path):
    write_noise(tmp_path / "data" / "real", 3)
    write_noise(tmp_path / "data" / "sd21", 3)
    experiment = parse_experiment(MINIMAL.replace('"coco"', '"data"') + "[images.gan]\ngenerator = 'dcgan'\ntrain_on = 'coco'\nsamples = 4\n", base=tmp_path)
    plan = make_plan(experiment, tmp_path / "ws")
    assert plan.sources == {"real": 0, "sd21": 1, "gan": 1}
    assert plan.real == ["real"] and plan.fakes == ["sd21", "gan"]
    assert not (tmp_path / "ws").exists()


def test_plan_refuses_a_real_source_listed_as_fake(tmp_path):
    write_noise(tmp_path / "coco", 2)
    experiment = parse_experiment("[experiment]\nfakes = ['coco']\n" + MINIMAL.replace('folder = "coco"', 'folder = "coco"\nlabel = "real"'), base=tmp_path)
    with pytest.raises(ExperimentError, match=r"\[experiment\] fakes: source 'coco' is labelled real"):
        make_plan(experiment, tmp_path / "ws")


def test_imagenet_if_cached_uses_the_cache_when_the_file_is_there(tmp_path, monkeypatch):
    from fdt.models.backbones import VGG16
    from fdt.models.weights import torch_cache_file

    write_noise(tmp_path / "coco", 2)
    text = MINIMAL.replace('folder = "coco"', 'folder = "coco"\nlabel = "real"') + "[images.gan]\ngenerator = 'dcgan'\ntrain_on = 'coco'\nsamples = 4\n"
    text += "[extractors.vgg16]\nparams = { weights = 'imagenet-if-cached', seed = 3 }\n"
    experiment = parse_experiment(text, base=tmp_path)
    plan = make_plan(experiment, tmp_path / "ws")
    assert plan.extractor_params["vgg16"]["weights"] == "random"
    assert plan.weights_choice["vgg16"].startswith("seeded random weights (seed 3): ImageNet weights are not in the cache")

    cached = torch_cache_file(VGG16.published.url)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"stand-in weights: only their presence and hash are read when planning")
    plan = make_plan(experiment, tmp_path / "ws")
    assert plan.extractor_params["vgg16"]["weights"] == "imagenet"
    assert plan.weights_choice["vgg16"] == "ImageNet weights (found in the cache)"


def test_imagenet_if_cached_is_refused_for_extractors_without_imagenet_weights(tmp_path):
    write_noise(tmp_path / "coco", 2)
    text = MINIMAL.replace('folder = "coco"', 'folder = "coco"\nlabel = "real"').replace("[extractors.fft]", "[extractors.fft]\nparams = { weights = 'imagenet-if-cached' }")
    experiment = parse_experiment(text + "[images.gan]\ngenerator = 'dcgan'\ntrain_on = 'coco'\nsamples = 4\n", base=tmp_path)
    with pytest.raises(ExperimentError, match=r"\[extractors.fft\]: weights = 'imagenet-if-cached' applies to the CNNs"):
        make_plan(experiment, tmp_path / "ws")


def test_corpus_is_grouped_by_non_overlapping_photo_regions_and_reproducible(tmp_path):
    from fdt.experiment.corpus import regions

    first = build_corpus(tmp_path / "a", "photos", crops=120, size=16, seed=1, progress=False)
    second = build_corpus(tmp_path / "b", "photos", crops=120, size=16, seed=1, progress=False)
    records = load_image_set(first)
    assert len(records) == 120 and {r.label for r in records} == {0} and {r.source for r in records} == {"photos"}
    assert {r.group.split("/")[0] for r in records} == set(PHOTOS)
    assert len({r.group for r in records}) > 4 * len(PHOTOS)  # many groups, not one per photo
    boxes = {}
    for r in records:  # every crop lies inside its group's region, so crops of two groups share no pixel
        photo, region = r.group.split("/")
        left, top, side = map(int, r.extra["box"].split(","))
        boxes.setdefault(r.group, []).append((left, top, side))
        image = PHOTOS[photo][1]()
        x0, y0, x1, y1 = regions(image.shape[1], image.shape[0], 16)[int(region[1:])]
        assert x0 <= left and left + side <= x1 and y0 <= top and top + side <= y1
    assert first.read_text() == second.read_text()
    assert [Path(r.path).read_bytes() for r in records[:5]] == [Path(r.path).read_bytes() for r in load_image_set(second)[:5]]
    assert corpus_is_built(tmp_path / "a", 120, 16, 1) and not corpus_is_built(tmp_path / "a", 121, 16, 1)
    assert not list(tmp_path.glob(".*building"))


def test_embedded_demo_meets_the_brief():
    """At least 1000 real crops, three generators at the reals' size (no resolution cue), five extractor families, two pipelines, two resolutions."""
    experiment = demo_experiment()
    corpus = [s for s in experiment.images.values() if isinstance(s, CorpusImages)]
    assert len(corpus) == 1 and corpus[0].crops >= 1000 and corpus[0].size == 32
    trained = [s for s in experiment.images.values() if isinstance(s, GeneratedImages) and s.train]
    assert trained and all(s.train["size"] == corpus[0].size for s in trained)
    assert sorted(s.generator for s in experiment.images.values() if isinstance(s, GeneratedImages)) == ["dcgan", "ddpm", "ddpm-inpaint"]
    assert sorted(c.extractor for c in experiment.extractors.values()) == ["autoencoder", "fft", "mobilenet_v2", "vgg16", "xception"]
    assert all(c.params.get("weights") == "imagenet-if-cached" for c in experiment.extractors.values() if c.extractor in ("vgg16", "mobilenet_v2", "xception"))
    assert sum(len(study.pipelines) for study in experiment.studies) >= 2
    assert len(experiment.settings.resolutions) == 2 and experiment.matrices


def test_demo_show_prints_the_embedded_file():
    result = invoke("demo", "--show")
    assert result.exit_code == 0
    assert result.output == demo_text()
    assert tomllib.loads(result.output)["images"]["photos"]["corpus"] == "bundled"


def test_tiny_experiment_mirrors_the_demo_tables():
    """The scaled-down test experiment has every table the demo has (plus a folder of noise), so it runs every stage."""
    demo, tiny = tomllib.loads(demo_text()), tomllib.loads(TINY)
    assert set(demo) == set(tiny)
    assert set(demo["images"]) | {"noise"} == set(tiny["images"])
    assert set(demo["extractors"]) == set(tiny["extractors"])


def test_help_does_not_import_torch():
    code = "import sys; from fdt.cli import cli; cli(['run', '--help'], standalone_mode=False); cli(['demo', '--help'], standalone_mode=False); print('torch' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip().endswith("False")


def test_the_documented_example_parses():
    """The README's full experiment example is a valid experiment file, table for table."""
    text = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    (example,) = [block.split("```", 1)[0] for block in text.split("```toml\n")[1:] if block.startswith("[experiment]")]
    experiment = parse(example, base=Path("/study"))
    assert experiment.images["dcgan"].train == {"size": 64, "epochs": 100, "batch_size": 128}
    assert experiment.settings.resolutions == ("native", "64", "256")
    assert experiment.extractors["fft-profile"].extractor == "fft"
    assert experiment.images["coco"].folder == "/study/data/coco"
    assert experiment.models["vgg16-ft"].given()["augment"] == ("flip", "blurjpeg:prob=0.1")
    assert [experiment.extractors[label].model for label in ("vgg16-ft", "vgg16-ft-score")] == ["vgg16-ft", "vgg16-ft"]


def test_equalise_is_checked_up_front(tmp_path):
    write_noise(tmp_path / "coco", 2)
    base = MINIMAL.replace('folder = "coco"', 'folder = "coco"\nlabel = "real"') + "[images.gan]\ngenerator = 'dcgan'\ntrain_on = 'coco'\nsamples = 4\n"
    bad = parse_experiment("[experiment]\nequalise = ['jpeg:quality=500']\n" + base, base=tmp_path)
    with pytest.raises(ExperimentError, match=r"\[experiment\] equalise: .*quality"):
        make_plan(bad, tmp_path / "ws")
    good = parse_experiment("[experiment]\nequalise = ['jpeg:quality=95']\n" + base, base=tmp_path)
    assert make_plan(good, tmp_path / "ws2").experiment.settings.equalise == ("jpeg:quality=95",)
