"""Resolutions that keep artefacts (crop:N, randcrop:N) and spectra taken of the pixels as they are."""

import hashlib

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from scipy.ndimage import gaussian_filter
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fdt.cli import cli
from fdt.data import DataError, ImageDecodeError, apply_resolution, parse_resolution
from fdt.features_store.extraction import extract_records
from fdt.features_store.extractors.fft import SpectrumFeatures, durall_profile, magnitude_spectrum
from fdt.features_store.store import FeatureStore
from fdt.data import ImageRecord


@pytest.mark.parametrize(
    "text, parsed",
    [("native", "native"), ("64", "64"), (128, "128"), ("crop:64", "crop:64"), (" CROP:032 ", "crop:32"), ("randcrop:16", "randcrop:16")],
)
def test_parse_resolution(text, parsed):
    assert parse_resolution(text) == parsed


@pytest.mark.parametrize("bad", ["0", "crop:0", "crop:", "crop:x", "zoom:64", "randcrop:-3", "64px", "crop:crop:4"])
def test_parse_resolution_refuses(bad):
    with pytest.raises(DataError, match="crop:N"):
        parse_resolution(bad)


def _ramp(width: int, height: int) -> Image.Image:
    y, x = np.indices((height, width))
    return Image.fromarray(np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8))


def test_crop_cuts_the_centre_without_resampling():
    image = _ramp(40, 30)
    crop = apply_resolution(image, "crop:10")
    assert crop.size == (10, 10)
    assert np.array_equal(np.asarray(crop), np.asarray(image)[10:20, 15:25])


def test_randcrop_is_seeded_by_the_image_hash():
    image = _ramp(300, 200)
    first = np.asarray(apply_resolution(image, "randcrop:32", "a" * 64))
    again = np.asarray(apply_resolution(image, "randcrop:32", "a" * 64))
    others = {np.asarray(apply_resolution(image, "randcrop:32", hashlib.sha256(bytes([i])).hexdigest())).tobytes() for i in range(8)}
    assert np.array_equal(first, again) and first.shape == (32, 32, 3)
    assert len(others) > 1  # different images are cut at different places
    with pytest.raises(ValueError, match="sha256"):
        apply_resolution(image, "randcrop:32")


@pytest.mark.parametrize("resolution", ["crop:64", "randcrop:64"])
def test_crops_never_upscale(resolution):
    with pytest.raises(ImageDecodeError, match="smaller than"):
        apply_resolution(_ramp(100, 40), resolution, "b" * 64)


def test_an_image_smaller_than_the_crop_is_a_recorded_failure(tmp_path):
    folder = tmp_path / "real"
    folder.mkdir()
    _ramp(20, 20).save(folder / "small.png")
    _ramp(40, 40).save(folder / "large.png")
    records = [ImageRecord(str(folder / "small.png"), "real", 0), ImageRecord(str(folder / "large.png"), "real", 0)]
    summary = extract_records(records, "fft", {"size": 8}, "crop:32", tmp_path / "store", workers=0, progress=False)
    assert summary.new_rows == 1 and summary.failed == 1
    assert "smaller than crop:32" in summary.failures[0]
    assert FeatureStore(tmp_path / "store").load("fft", "crop:32").X.shape == (1, 64)


def _textures(count: int, size: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(128 + 40 * gaussian_filter(rng.standard_normal((size, size, 3)), (2, 2, 0)) * 3, 0, 255) for _ in range(count)]


def test_a_nyquist_checkerboard_is_separable_at_native_and_crop_but_not_after_resize():
    size = 128
    reals = _textures(24, size, seed=0)
    yy, xx = np.indices((size, size))
    checker = np.where((yy + xx) % 2 == 0, 3.0, -3.0)[..., None]
    images = [Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)) for a in reals]
    images += [Image.fromarray(np.clip(a + checker, 0, 255).astype(np.uint8)) for a in reals]
    y = np.r_[np.zeros(len(reals)), np.ones(len(reals))]
    grid = SpectrumFeatures(16, "none")

    def auc(resolution: str) -> float:
        X = np.stack([grid(apply_resolution(im, resolution)) for im in images])
        scores = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(C=0.1)), X, y, cv=4, method="predict_proba")[:, 1]
        return roc_auc_score(y, scores)

    assert auc("native") > 0.95
    assert auc("crop:16") > 0.95
    assert auc("16") < 0.75


def test_the_grid_at_crop_size_is_the_spectrum_itself():
    image = _ramp(16, 16)
    gray = np.asarray(image, dtype=np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    expected = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(gray))))
    assert np.allclose(SpectrumFeatures(16, "none")(image).reshape(16, 16), expected, rtol=1e-5)


def test_durall_profile_excludes_dc_and_is_normalised():
    rng = np.random.default_rng(0)
    gray = rng.random((64, 64)) * 100
    profile = durall_profile(magnitude_spectrum(gray), 20)
    brighter = durall_profile(magnitude_spectrum(gray + 50), 20)  # only the DC term changes
    assert profile.shape == (20,) and profile.min() == 0.0 and profile.max() == 1.0
    assert np.allclose(profile, brighter, atol=1e-6)
    other_size = durall_profile(magnitude_spectrum(rng.random((100, 80)) * 100), 20)
    assert other_size.shape == (20,)


def test_fft_at_a_resize_warns_once_and_suggests_a_crop(tmp_path):
    folder = tmp_path / "data" / "real"
    folder.mkdir(parents=True)
    _ramp(40, 40).save(folder / "a.png")
    runner = CliRunner()
    result = runner.invoke(cli, ["extract", str(tmp_path / "data"), "-e", "fft", "-p", "size=8", "-r", "32,crop:32", "--store", str(tmp_path / "s"), "--workers", "0", "-q"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "low-pass" in warnings[0] and "crop:32" in warnings[0]
    quiet = runner.invoke(cli, ["extract", str(tmp_path / "data"), "-e", "fft", "-p", "size=8", "-r", "crop:32", "--store", str(tmp_path / "s"), "--workers", "0", "-q"])
    assert "warning" not in quiet.output
