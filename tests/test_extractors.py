"""The extractor registry and contract, run over every registered extractor (random weights, tiny inputs), plugins included."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from fdt.cli import cli
from fdt.features_store import ExtractorKey, UnknownExtractorError, WeightsNotFoundError, create_extractor, list_extractors, register_extractor, registry
from fdt.features_store.errors import ExtractorError
from fdt.features_store.extractors.fft import azimuthal_profile, log_spectrum
from tests.conftest import install_plugin

# small inputs keep the CNNs fast on a CPU; the code path is the one real runs take
SMALL = {
    "vgg16": {"weights": "random", "input_size": 32},
    "mobilenet_v2": {"weights": "random", "input_size": 32},
    "xception": {"weights": "random", "input_size": 71},
    "inception_v3": {"weights": "random", "input_size": 75},
    "resnet50": {"weights": "random", "input_size": 32},
    "densenet121": {"weights": "random", "input_size": 32},
    "timm": {"model": "test_resnet", "weights": "random", "input_size": 32},
    "fft": {"size": 16},
    "dct": {"size": 16},
}


@pytest.fixture(scope="module")
def autoencoder_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fdt.data import ImageRecord
    from fdt.models.autoencoder import train_autoencoder
    from tests.conftest import write_images

    folder = tmp_path_factory.mktemp("ae")
    paths = write_images(folder / "real", 4, size=16)
    return train_autoencoder(
        [ImageRecord(str(p), "real", 0) for p in paths], folder / "ae.pt", size=16, latent_dim=8,
        epochs=1, batch_size=4, channels=(4, 8), progress=False,
    )


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny CLIP, DINOv2 and AutoencoderKL folders: configs only, for ``weights=random``."""
    from tests.tiny_models import tiny_clip_vision, tiny_dinov2, tiny_vae_config

    root = tmp_path_factory.mktemp("tiny")
    return {"clip": tiny_clip_vision(root / "clip"), "dinov2": tiny_dinov2(root / "dinov2"), "vae": tiny_vae_config(root / "vae")}


def _params(name: str, request: pytest.FixtureRequest) -> dict:
    if name == "autoencoder":
        return {"model": str(request.getfixturevalue("autoencoder_file"))}
    if name in ("clip", "dinov2", "vae"):
        extra = {"distance": "l2"} if name == "vae" else {}
        return {"model": str(request.getfixturevalue("tiny_folders")[name]), "weights": "random", **extra}
    return dict(SMALL.get(name, {}))  # a new extractor without published weights needs no entry here


def _images(count: int, seed: int = 0, size: int = 24) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(count)]


def _decorated_names() -> dict[str, type]:
    """Every extractor the built-in modules register, found by importing them all (what the registry avoids doing)."""
    from fdt.features_store.extractors.base import Extractor

    package = importlib.import_module(registry.PACKAGE)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{registry.PACKAGE}.{module.name}")
    return {name: cls for name, cls in registry._REGISTERED.items() if cls.__module__.startswith(registry.PACKAGE) and issubclass(cls, Extractor)}


def test_listed_names_are_exactly_the_decorated_classes():
    decorated = _decorated_names()
    assert set(registry.builtin_modules()) == set(decorated)
    assert set(list_extractors()) >= set(decorated) >= {"vgg16", "mobilenet_v2", "xception", "timm", "fft", "dct", "autoencoder", "clip", "dinov2", "vae"}
    for name, cls in decorated.items():
        assert cls.name == name and registry.builtin_modules()[name] == cls.__module__


def test_listing_and_help_import_no_network_library():
    code = (
        "import sys, fdt\n"
        "from fdt.features_store import list_extractors\n"
        "from click.testing import CliRunner\n"
        "from fdt.cli import cli\n"
        "names = list_extractors()\n"
        "outputs = [CliRunner().invoke(cli, args) for args in (['--help'], ['extract', '--help'], ['pipelines', '--help'])]\n"
        "print([r.exit_code for r in outputs])\n"
        "print(sorted(m for m in ('torch', 'timm', 'transformers', 'diffusers', 'sklearn') if m in sys.modules))\n"
        "print(','.join(names))\n"
        "print(' '.join(outputs[1].output.split()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    codes, imported, names, extract_help = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True
    ).stdout.splitlines()
    assert codes == "[0, 0, 0]" and imported == "[]"
    assert names.split(",") == list_extractors()
    assert "Registered extractor name: autoencoder, clip, dct, densenet121, dinov2, fft, inception_v3, mobilenet_v2, resnet50, timm, vae, vgg16, xception." in extract_help


def test_a_script_registers_its_own_extractor_with_one_line(monkeypatch: pytest.MonkeyPatch):
    from fdt.features_store.extractors.base import Extractor

    monkeypatch.setattr(registry, "_REGISTERED", dict(registry._REGISTERED))

    @register_extractor("brightness")
    class Brightness(Extractor):
        def __init__(self, device: str = "cpu") -> None:
            self.device = device

        num_features = 1

        def preprocessor(self):
            return _MeanPixel()

        def forward(self, batch):
            return batch.reshape(len(batch), 1).astype(np.float32)

    assert "brightness" in list_extractors() and Brightness.name == "brightness"
    features = create_extractor("brightness").transform([Image.new("RGB", (4, 4), (10, 10, 10)), Image.new("RGB", (4, 4), (40, 40, 40))])
    np.testing.assert_allclose(features[:, 0], [10.0, 40.0])


class _MeanPixel:
    def __call__(self, image: Image.Image) -> np.ndarray:
        return np.asarray([np.asarray(image, dtype=np.float32).mean()], dtype=np.float32)


@pytest.mark.parametrize("name", list_extractors())
def test_extractor_contract(name: str, request: pytest.FixtureRequest):
    params = _params(name, request)
    extractor = create_extractor(name, **params)
    assert extractor.get_params()["device"] == "cpu"
    num_features = extractor.num_features  # known before any image
    with pytest.raises(NotFittedError):
        check_is_fitted(extractor)
    images = _images(32)

    batched = extractor.transform(images, batch_size=32)
    check_is_fitted(extractor)  # the first transform built the network
    assert batched.shape == (32, num_features) and batched.dtype == np.float32
    assert np.isfinite(batched).all() and batched.std() > 0

    alone = np.concatenate([extractor.transform([image]) for image in images[:4]])
    np.testing.assert_allclose(alone, batched[:4], rtol=1e-4, atol=1e-5)

    again = clone(extractor).fit().transform(images, batch_size=32)
    np.testing.assert_array_equal(again, batched)


@pytest.mark.parametrize("name", ["vgg16", "mobilenet_v2", "xception", "timm"])
def test_random_seed_changes_features_and_is_in_the_identity(name: str):
    base = create_extractor(name, **SMALL[name])
    other = create_extractor(name, **{**SMALL[name], "seed": 1})
    images = _images(2)
    assert not np.allclose(base.transform(images), other.transform(images), rtol=1e-3, atol=0)
    assert base.weights_identity() == "random:seed=0" and other.weights_identity() == "random:seed=1"
    assert "RANDOM" in base.weights_note()


# ---- scikit-learn's estimator contract


def test_extractors_follow_the_scikit_learn_estimator_contract():
    extractor = create_extractor("timm", model="test_resnet", weights="random", input_size=32, seed=4)
    assert extractor.get_params() == {
        "model": "test_resnet", "weights": "random", "seed": 4, "input_size": 32, "precision": "fp32", "channels_last": False,
        "output": "features", "input": None, "device": "cpu",
    }
    assert repr(extractor) == "TimmExtractor(input_size=32, model='test_resnet', seed=4, weights='random')"
    twin = clone(extractor)
    assert twin is not extractor and twin.get_params() == extractor.get_params()

    with pytest.raises(NotFittedError):
        check_is_fitted(extractor)
    assert extractor.fit() is extractor
    check_is_fitted(extractor)
    assert extractor.n_features_out_ == extractor.num_features
    first = extractor.transform(_images(2))

    extractor.set_params(seed=5)  # a new parameter drops the built network: never features of the old one
    with pytest.raises(NotFittedError):
        check_is_fitted(extractor)
    assert extractor.get_params()["seed"] == 5 and extractor.weights_identity() == "random:seed=5"
    assert not np.allclose(extractor.transform(_images(2)), first, rtol=1e-3, atol=0)
    assert extractor.set_params(seed=4).fit_transform(_images(2)).tolist() == first.tolist()
    with pytest.raises(ValueError, match="has no parameter 'colour'; its parameters are model, weights, seed"):
        extractor.set_params(colour="red")


def test_extractors_fit_in_a_scikit_learn_pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    images = [Image.new("RGB", (16, 16), (v, v, v)) for v in (0, 10, 20, 200, 220, 240)]
    labels = [0, 0, 0, 1, 1, 1]
    pipeline = make_pipeline(create_extractor("fft", size=4), LogisticRegression()).fit(images, labels)
    assert pipeline.predict(images).tolist() == labels


# ---- the store keys: content addressing must survive the refactor

# ``ExtractorKey.id`` of each built-in at its defaults, copied from fdt 0.1 (main before the registry
# refactor), computed there; never recomputed by the code under test.
KEYS_BEFORE = {
    ("vgg16", (("weights", "random"),)): "f35e6705055c3035",
    ("mobilenet_v2", (("weights", "random"),)): "4bacb2c9bfa59ec1",
    ("vgg16", (("channels_last", True), ("input_size", 64), ("precision", "bf16"), ("seed", 3), ("weights", "random"))): "7e8a7f991efa7e9c",
    ("mobilenet_v2", (("input_size", "native"), ("weights", "random"))): "4ba15815270f28a8",
    ("fft", ()): "eddff97e1da3a32f",
    ("fft", (("profile", "durall"), ("size", 32))): "3d45c4ad7d1b67d8",
    ("fft", (("grid", "bilinear"),)): "46d881bcf598e229",
    ("dct", ()): "cec75e4806f51148",
    ("dct", (("channels", "rgb"), ("size", 8))): "d90df196d6e13f6e",
    ("clip", (("model", "clip"), ("weights", "random"))): "f167732f5ed41777",
    ("clip", (("model", "clip"), ("output", "cls"), ("precision", "bf16"), ("weights", "random"))): "b94b0a9e75ba3dcf",
    ("dinov2", (("model", "dinov2"), ("pooling", "cls+mean"), ("weights", "random"))): "cade17597ecc362b",
    ("vae", (("distance", "l2"), ("model", "vae"), ("weights", "random"))): "6ed74744e5c8f847",
}
XCEPTION_BEFORE = "d11a2e246276d175"  # bilinear resize of a hand-coded config; timm's config says bicubic


@pytest.fixture
def literal_model_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Model folders ``clip``, ``dinov2`` and ``vae`` in the working directory, with the configs the literal keys were made from."""
    processor = {"do_resize": True, "size": {"shortest_edge": 30}, "do_center_crop": True, "crop_size": {"height": 30, "width": 30}, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}
    clip = {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4, "image_size": 30, "patch_size": 15, "projection_dim": 16}
    files = {
        "clip": {"config.json": clip, "preprocessor_config.json": processor},
        "dinov2": {"config.json": {"model_type": "dinov2", "hidden_size": 32}, "preprocessor_config.json": processor},
        "vae": {"config.json": {"block_out_channels": [8, 16], "latent_channels": 4}},
    }
    for folder, contents in files.items():
        (tmp_path / folder).mkdir()
        for name, data in contents.items():
            (tmp_path / folder / name).write_text(json.dumps(data))
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("name, params", list(KEYS_BEFORE), ids=lambda v: v if isinstance(v, str) else None)
def test_store_keys_of_unchanged_extractors_are_byte_identical(name: str, params: tuple, literal_model_folders: None):
    extractor = create_extractor(name, **dict(params))
    key = ExtractorKey(name, extractor.key_params(), extractor.weights_identity(), "native")
    assert key.id == KEYS_BEFORE[(name, params)]


def test_xception_from_timm_config_gets_a_new_key_and_says_how_it_preprocesses():
    extractor = create_extractor("xception", weights="random")
    key = ExtractorKey("xception", extractor.key_params(), extractor.weights_identity(), "native")
    assert key.id != XCEPTION_BEFORE  # its pixels are resized differently now: old rows must not be reused
    assert key.params == {"model": "legacy_xception", "input_size": 299, "interpolation": "bicubic", "mean": [0.5] * 3, "std": [0.5] * 3}


# ---- the generic timm extractor


def test_timm_preprocessing_is_timm_pretrained_config():
    import timm
    from timm.data import resolve_model_data_config

    config = resolve_model_data_config(timm.create_model("test_efficientnet", pretrained=False))
    extractor = create_extractor("timm", model="test_efficientnet", weights="random")
    image = _images(1, size=37)[0]
    side = config["input_size"][-1]
    expected = np.asarray(image.resize((side, side), {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[config["interpolation"]]), np.float32) / 255
    expected = ((expected - np.asarray(config["mean"], np.float32)) / np.asarray(config["std"], np.float32)).transpose(2, 0, 1)
    np.testing.assert_allclose(extractor.preprocessor()(image), expected, rtol=1e-5, atol=1e-5)
    assert extractor.key_params()["input_size"] == side and extractor.key_params()["interpolation"] == config["interpolation"]


def _seeded_timm(model: str, seed: int, num_classes: int = 1000) -> torch.nn.Module:
    import timm

    torch.manual_seed(seed)
    return timm.create_model(model, pretrained=False, num_classes=num_classes).eval()


def _pre_logits(net: torch.nn.Module, extractor, images: list[Image.Image]) -> np.ndarray:
    """What timm calls the pooled pre-logits features of ``net``, on ``extractor``'s preprocessing of ``images``."""
    pixels = torch.from_numpy(np.stack([extractor.preprocessor()(image) for image in images]))
    with torch.inference_mode():
        return net.forward_head(net.forward_features(pixels), pre_logits=True).numpy()


@pytest.mark.parametrize("name, model, classes", [("timm", "test_resnet", 1000), ("timm", "test_resnet", 2), ("xception", "legacy_xception", 1000)])
def test_timm_features_are_the_networks_pooled_pre_logits(name: str, model: str, classes: int, tmp_path: Path):
    net = _seeded_timm(model, 7, num_classes=classes)  # a classifier of any width (a fine-tuned file) is dropped
    torch.save(net.state_dict(), tmp_path / "weights.pth")
    extractor = create_extractor(name, **{**SMALL[name], "weights": str(tmp_path / "weights.pth")})
    assert extractor.weights_identity().startswith("file:sha256:")
    images = _images(2, size=SMALL[name]["input_size"])
    expected = _pre_logits(net, extractor, images)
    assert extractor.num_features == expected.shape[1]
    np.testing.assert_allclose(extractor.transform(images), expected, rtol=1e-4, atol=1e-5)


def test_cnn_num_features_is_the_width_of_the_published_layer():
    from torchvision.models import mobilenet_v2, vgg16

    torch.manual_seed(0)
    vgg = vgg16(weights=None).eval()
    net = mobilenet_v2(weights=None).eval()
    pixels = torch.zeros(1, 3, 32, 32)
    with torch.inference_mode():
        fc7 = vgg.classifier[:4](torch.flatten(vgg.avgpool(vgg.features(pixels)), 1))  # fc6, ReLU, dropout, fc7
        pooled = net.features(pixels).mean((2, 3))
    assert create_extractor("vgg16", weights="random").num_features == fc7.shape[1] == 4096
    assert create_extractor("mobilenet_v2", weights="random").num_features == pooled.shape[1] == 1280


def test_timm_published_weights_come_from_the_hugging_face_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import hashlib

    from safetensors.torch import save_file

    from tests.tiny_models import as_hub_cache

    folder = tmp_path / "files"
    folder.mkdir()
    net = _seeded_timm("test_resnet", 11)
    save_file(net.state_dict(), folder / "model.safetensors")
    as_hub_cache(folder, tmp_path / "hub", "timm/test_resnet.r160_in1k")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.file_download.HF_HUB_CACHE", str(tmp_path / "hub"), raising=False)

    published = create_extractor("timm", model="test_resnet", input_size=32)
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert published.weights_identity() == f"published:sha256:{digest[:16]}" and published.weights_note() == ""
    images = _images(2, size=32)
    np.testing.assert_allclose(published.transform(images), _pre_logits(net, published, images), rtol=1e-4, atol=1e-5)


def test_timm_weights_that_do_not_fit_are_one_line(tmp_path: Path):
    wrong = tmp_path / "wrong.pth"
    torch.save(_seeded_timm("test_efficientnet", 0).state_dict(), wrong)
    with pytest.raises(ExtractorError, match="does not fit timm's test_resnet"):
        create_extractor("timm", model="test_resnet", weights=str(wrong)).fit()


def test_timm_published_weights_absent_offline_name_the_model_and_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_tree: Path):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(WeightsNotFoundError, match=r"^test_resnet: .*model.safetensors is not in the Hugging Face cache; files of timm/test_resnet.r160_in1k go under .*empty-hub"):
        create_extractor("timm", model="test_resnet").weights_identity()
    result = CliRunner().invoke(cli, ["extract", str(image_tree), "-e", "timm", "-p", "model=test_resnet", "--store", str(tmp_path / "s")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "test_resnet" in result.output and "empty-hub" in result.output and not (tmp_path / "s").exists()


def test_timm_unknown_model_is_one_line():
    with pytest.raises(ExtractorError, match="'no_such_net' is not a timm model"):
        _ = create_extractor("timm", model="no_such_net").num_features


# ---- plugins: an installed package adds an extractor and a pipeline spec

PLUGIN_MODULE = '''
import numpy as np

from fdt.features_store.extractors.base import Extractor
from fdt.pipelines.specs import Dimension, PipelineSpec


class ChannelMeans(Extractor):
    """Mean of each RGB channel: three features, no network."""

    def __init__(self, scale: float = 1.0, device: str = "cpu") -> None:
        self.scale = scale
        self.device = device

    num_features = 3

    def preprocessor(self):
        return channel_means

    def forward(self, batch):
        return (np.asarray(batch, dtype=np.float32) * self.scale).reshape(len(batch), 3)


def channel_means(image):
    return np.asarray(image, dtype=np.float32).mean(axis=(0, 1))


SPEC = PipelineSpec("ignored", "logistic-regression", {"C": 0.5}, {"classifier__C": Dimension("float", 0.01, 10.0, log=True)}, description="plugin logreg")
'''


@pytest.fixture
def plugin_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package ``fdt_tiny_plugin`` installed as pip leaves it (a ``.dist-info`` with entry points), with one broken entry."""
    from fdt import plugins

    entry_points = (
        "[fdt.extractors]\nchannel_means = fdt_tiny_plugin:ChannelMeans\nbroken = fdt_tiny_plugin_missing:Nothing\n\n"
        "[fdt.pipelines]\ntiny-logreg = fdt_tiny_plugin:SPEC\nbad-spec = fdt_tiny_plugin:channel_means\n"
    )
    site = install_plugin(tmp_path / "site", "fdt_tiny_plugin", PLUGIN_MODULE, entry_points, monkeypatch)
    monkeypatch.setattr(registry, "_REGISTERED", dict(registry._REGISTERED))
    monkeypatch.setattr(plugins, "_reported", set())
    yield site
    sys.modules.pop("fdt_tiny_plugin", None)


def test_a_plugin_extractor_is_listed_and_extracts_from_the_cli(plugin_on_path: Path, tmp_path: Path, image_tree: Path, caplog: pytest.LogCaptureFixture):
    from fdt.features_store import FeatureStore

    assert {"channel_means", "broken"} <= set(list_extractors())
    assert "fdt_tiny_plugin" not in sys.modules  # listing read metadata only
    result = CliRunner().invoke(cli, ["extract", str(image_tree), "-e", "channel_means", "-p", "scale=2", "--store", str(tmp_path / "s"), "--workers", "0", "-q"])
    assert result.exit_code == 0, result.output
    assert "24 new rows" in result.output
    features = FeatureStore(tmp_path / "s").load("channel_means", resolution="native", params={"scale": 2})
    first = np.asarray(Image.open(sorted((image_tree / "fake").iterdir())[0]).convert("RGB"), np.float32).mean((0, 1)) * 2
    assert features.X.shape == (24, 3) and any(np.allclose(row, first, rtol=1e-5) for row in features.X)

    result = CliRunner().invoke(cli, ["extract", str(image_tree), "-e", "broken", "--store", str(tmp_path / "s2")])
    assert result.exit_code == 2 and "'broken' comes from a plugin that does not load" in result.output
    warnings = [r.getMessage() for r in caplog.records if r.name == "fdt.plugins"]
    assert len(warnings) == 1 and "'broken'" in warnings[0] and "fdt-tiny-plugin" in warnings[0] and "\n" not in warnings[0]


def test_a_plugin_pipeline_spec_is_listed_and_a_broken_one_is_skipped(plugin_on_path: Path, caplog: pytest.LogCaptureFixture):
    from fdt.pipelines.specs import build_pipeline

    result = CliRunner().invoke(cli, ["pipelines", "ls"])
    assert result.exit_code == 0, result.output
    assert "tiny-logreg  [plugin]  plugin logreg" in result.output
    assert "search classifier__C: float [0.01, 10] log" in result.output
    assert "bad-spec" not in result.output and "svm-linear  [built-in]" in result.output
    warnings = [r.getMessage() for r in caplog.records if r.name == "fdt.plugins"]
    assert len(warnings) == 1 and "'bad-spec'" in warnings[0] and "not a PipelineSpec" in warnings[0]
    assert build_pipeline("tiny-logreg").named_steps["classifier"].C == 0.5


def test_unknown_extractor_lists_the_valid_ones():
    with pytest.raises(UnknownExtractorError, match="choose one of: autoencoder, clip, dct, densenet121, dinov2, fft, inception_v3, mobilenet_v2, resnet50"):
        create_extractor("resnet")


def test_unknown_parameter_names_the_valid_ones():
    with pytest.raises(ValueError, match="its parameters are size, profile, grid, device"):
        create_extractor("fft", bins=3)


@pytest.mark.parametrize("bad", [{"size": 1}, {"size": "big"}, {"profile": "yes"}])
def test_fft_rejects_bad_parameters(bad):
    with pytest.raises(ValueError, match="fft"):
        _ = create_extractor("fft", **bad).num_features


def test_log_spectrum_of_a_constant_image_is_all_dc():
    spectrum = log_spectrum(np.full((8, 8), 2.0, dtype=np.float32))
    assert spectrum[4, 4] == pytest.approx(np.log1p(128.0))
    assert np.count_nonzero(spectrum) == 1


def test_azimuthal_profile_averages_rings():
    y, x = np.indices((9, 9))
    radius_image = np.hypot(y - 4, x - 4).astype(np.float32)
    profile = azimuthal_profile(radius_image, 4)
    assert profile.shape == (4,) and np.all(np.diff(profile) > 0)


def test_fft_profile_option():
    extractor = create_extractor("fft", size=10, profile=True)
    assert extractor.num_features == 10 and extractor.transform(_images(3)).shape == (3, 10)


def test_fft_resamples_spectra_of_any_size_to_the_grid():
    extractor = create_extractor("fft", size=8)
    small, large = Image.new("RGB", (20, 12), (9, 9, 9)), Image.new("RGB", (64, 64), (9, 9, 9))
    assert extractor.transform([small, large]).shape == (2, 64)
