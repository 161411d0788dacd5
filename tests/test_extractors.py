"""The extractor contract, run over every registered extractor (random weights, tiny inputs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fdt.features_store import UnknownExtractorError, create_extractor, list_extractors
from fdt.features_store.extractors.fft import azimuthal_profile, log_spectrum

# small inputs keep the CNNs fast on a CPU; the code path is the one real runs take
SMALL = {
    "vgg16": {"weights": "random", "input_size": 32},
    "mobilenet_v2": {"weights": "random", "input_size": 32},
    "xception": {"weights": "random", "input_size": 71},
    "inception_v3": {"weights": "random", "input_size": 75},
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
    return dict(SMALL[name])


def _images(count: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)) for _ in range(count)]


def test_builtins_are_registered():
    assert {"vgg16", "mobilenet_v2", "xception", "fft", "autoencoder", "dct", "clip", "dinov2", "vae"} <= set(list_extractors())


@pytest.mark.parametrize("name", list_extractors())
def test_extractor_contract(name: str, request: pytest.FixtureRequest):
    params = _params(name, request)
    extractor = create_extractor(name, **params)
    assert extractor.get_params()["device"] == "cpu"
    num_features = extractor.num_features  # known before any image
    images = _images(32)

    batched = extractor.transform(images, batch_size=32)
    assert batched.shape == (32, num_features) and batched.dtype == np.float32
    assert np.isfinite(batched).all() and batched.std() > 0

    alone = np.concatenate([extractor.transform([image]) for image in images[:4]])
    np.testing.assert_allclose(alone, batched[:4], rtol=1e-4, atol=1e-5)

    again = create_extractor(name, **params).transform(images, batch_size=32)
    np.testing.assert_array_equal(again, batched)


@pytest.mark.parametrize("name", ["vgg16", "mobilenet_v2", "xception"])
def test_random_seed_changes_features_and_is_in_the_identity(name: str):
    base = create_extractor(name, **SMALL[name])
    other = create_extractor(name, **{**SMALL[name], "seed": 1})
    images = _images(2)
    assert not np.allclose(base.transform(images), other.transform(images), rtol=1e-3, atol=0)
    assert base.weights_identity() == "random:seed=0" and other.weights_identity() == "random:seed=1"
    assert "RANDOM" in base.weights_note()


def test_cnn_dimensions_match_the_published_layers():
    assert [create_extractor(n, weights="random").num_features for n in ("vgg16", "mobilenet_v2", "xception")] == [4096, 1280, 2048]


def test_native_input_size_feeds_the_stored_pixels():
    extractor = create_extractor("mobilenet_v2", weights="random", input_size="native")
    assert extractor.preprocessor()(Image.new("RGB", (40, 36))).shape == (3, 36, 40)
    assert extractor.key_params() == {"input_size": "native"}


def test_unknown_extractor_lists_the_valid_ones():
    with pytest.raises(UnknownExtractorError, match="choose one of: autoencoder, clip, dct, dinov2, fft, inception_v3, mobilenet_v2"):
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
