"""Perturbation chains: parsing, canonical keys, determinism per image, and their place in the feature key."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from fdt.data import ImageDecodeError
from fdt.features_store.featureset import ExtractorKey
from fdt.perturb import PerturbError, parse_chain, parse_operation, parse_sweep

SHA_A = hashlib.sha256(b"a").hexdigest()
SHA_B = hashlib.sha256(b"b").hexdigest()

ALL_SPECS = [
    "jpeg:quality=75",
    "jpeg:quality=75,backend=cv2",
    "webp:quality=60",
    "png",
    "blur:sigma=1.5",
    "resize:scale=0.5",
    "resize:scale=0.5,mode=down",
    "crop:size=24",
    "crop:size=24,at=random",
    "noise:sigma=5",
    "gamma:g=0.8",
    "blurjpeg:prob=0.5",
]


def photo(size: int = 48, seed: int = 0) -> Image.Image:
    """A smooth image with some texture: JPEG and blur act on it as on a photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([np.sin(6 * x + c) * np.cos(4 * y - c) for c in range(3)], axis=-1) * 90 + 128
    return Image.fromarray(np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8))


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_each_perturbation_is_deterministic_per_image(spec):
    pytest.importorskip("cv2") if "cv2" in spec else None
    chain = parse_chain([spec])
    image = photo()
    first = np.asarray(chain.apply(image, SHA_A))
    again = np.asarray(chain.apply(image.copy(), SHA_A))
    assert np.array_equal(first, again)
    assert first.dtype == np.uint8 and first.ndim == 3
    assert np.array_equal(np.asarray(image), np.asarray(photo())), "the input image is left untouched"


@pytest.mark.parametrize("spec", ["png", "gamma:g=1", "blur:sigma=0", "resize:scale=1"])
def test_lossless_and_identity_operations_keep_pixels(spec):
    image = photo()
    assert np.array_equal(np.asarray(parse_chain([spec]).apply(image, SHA_A)), np.asarray(image))


@pytest.mark.parametrize("spec", ["crop:size=24", "gamma:g=0.7", "resize:scale=0.5,mode=down", "png"])
def test_idempotent_operations(spec):
    chain = parse_chain([spec])
    once = chain.apply(photo(), SHA_A)
    twice = chain.apply(once, SHA_A)
    if spec.startswith("gamma"):
        # gamma twice is gamma squared; idempotence here means applying the op to its own output is deterministic
        assert np.array_equal(np.asarray(twice), np.asarray(chain.apply(once, SHA_A)))
    elif spec.startswith("resize"):
        assert twice.size == (12, 12)
    else:
        assert np.array_equal(np.asarray(twice), np.asarray(once))


def test_jpeg_is_nearly_idempotent_and_quality_100_is_close_to_the_original():
    image = photo()
    q100 = np.asarray(parse_chain(["jpeg:quality=100"]).apply(image, SHA_A)).astype(float)
    q30 = np.asarray(parse_chain(["jpeg:quality=30"]).apply(image, SHA_A)).astype(float)
    original = np.asarray(image).astype(float)
    psnr = 10 * np.log10(255**2 / ((q100 - original) ** 2).mean())
    assert psnr > 33  # PIL keeps 4:2:0 chroma subsampling at quality 100, as the anchors' code does
    assert np.abs(q30 - original).mean() > 1.5 * np.abs(q100 - original).mean()
    chain = parse_chain(["jpeg:quality=75"])
    once = chain.apply(image, SHA_A)
    twice = chain.apply(once, SHA_A)
    assert np.abs(np.asarray(twice, float) - np.asarray(once, float)).mean() < 1.0


def test_jpeg_backends_agree_closely():
    pytest.importorskip("cv2")
    image = photo()
    pil = np.asarray(parse_chain(["jpeg:quality=75"]).apply(image, SHA_A), float)
    cv = np.asarray(parse_chain(["jpeg:quality=75,backend=cv2"]).apply(image, SHA_A), float)
    assert np.abs(pil - cv).mean() < 2.0
    assert parse_chain(["jpeg:quality=75"]).key != parse_chain(["jpeg:quality=75,backend=cv2"]).key


def test_randomness_is_seeded_by_the_image_hash():
    for spec in ("noise:sigma=8", "crop:size=16,at=random"):
        chain = parse_chain([spec])
        a = np.asarray(chain.apply(photo(), SHA_A))
        b = np.asarray(chain.apply(photo(), SHA_B))
        assert not np.array_equal(a, b)
    noisy = np.asarray(parse_chain(["noise:sigma=8"]).apply(photo(), SHA_A), float)
    assert 5 < np.std(noisy - np.asarray(photo(), float)) < 11


def test_blur_removes_high_frequencies():
    image = Image.fromarray(((np.indices((32, 32)).sum(axis=0) % 2) * 255).astype(np.uint8)).convert("RGB")
    blurred = np.asarray(parse_chain(["blur:sigma=2"]).apply(image, SHA_A), float)
    assert blurred.std() < 0.05 * np.asarray(image, float).std()


def test_canonical_keys():
    assert parse_chain([]).key == ""
    assert parse_chain(["jpeg:quality=75"]).key == "jpeg:quality=75,backend=pil"
    assert parse_chain(["jpeg:backend=pil, quality=75"]).key == "jpeg:quality=75,backend=pil"
    assert parse_chain(["blur:sigma=1.0", "resize:scale=0.50"]).key == "blur:sigma=1|resize:scale=0.5,mode=updown"
    assert parse_chain(["blur:sigma=0", "gamma:g=1"]).key == ""
    assert parse_chain("jpeg:quality=75,backend=pil|png") == parse_chain(["jpeg:quality=75", "png"])
    assert parse_chain(["jpeg:quality=75", "blur:sigma=1"]).key != parse_chain(["blur:sigma=1", "jpeg:quality=75"]).key


@pytest.mark.parametrize(
    "spec, message",
    [
        ("sharpen:amount=2", "unknown perturbation 'sharpen'"),
        ("jpeg", "jpeg needs quality="),
        ("jpeg:quality=0", "quality must be an integer 1..100"),
        ("jpeg:quality=high", "quality must be an integer 1..100"),
        ("jpeg:quality=75,level=3", "unknown parameter 'level'"),
        ("blur:sigma=-1", "sigma must be a number >= 0"),
        ("blur:sigma=inf", "sigma must be a number >= 0"),
        ("resize:scale=2", r"scale must be a number in \(0, 1\]"),
        ("resize:scale=0.5,mode=sideways", "mode must be one of updown|down"),
        ("crop:24", "expected param=value"),
    ],
)
def test_bad_specs_are_refused_with_one_line(spec, message):
    with pytest.raises(PerturbError, match=message):
        parse_operation(spec)


def test_crop_larger_than_the_image_is_a_per_image_failure():
    with pytest.raises(ImageDecodeError, match="smaller than the perturbation crop:size=64"):
        parse_chain(["crop:size=64"]).apply(photo(32), SHA_A)


def test_sweeps():
    sweep = parse_sweep("jpeg:quality=100,90,75,50,30")
    assert (sweep.operation, sweep.param, sweep.levels, sweep.name) == ("jpeg", "quality", ("100", "90", "75", "50", "30"), "jpeg-quality")
    assert [c.key for c in sweep.chains][2] == "jpeg:quality=75,backend=pil"
    blur = parse_sweep("blur:sigma=0,1,2,4")
    assert blur.chains[0].key == "" and blur.chains[3].key == "blur:sigma=4"
    down = parse_sweep("resize:scale=1,0.5,mode=down")
    assert down.levels == ("1", "0.5") and down.chains[1].key == "resize:scale=0.5,mode=down"
    with pytest.raises(PerturbError, match="varies quality and backend"):
        parse_sweep("jpeg:quality=90,80,backend=pil,cv2")
    with pytest.raises(PerturbError, match="quality must be"):
        parse_sweep("jpeg:quality=90,0")


def test_the_perturbation_is_part_of_the_key_and_clean_keys_are_unchanged():
    clean = ExtractorKey("fft", {"size": 8}, "none", "native")
    assert clean.id == ExtractorKey("fft", {"size": 8}, "none", "native", "").id
    # the id an fdt without perturbations computed, spelled out from the store spec
    import json

    text = json.dumps(["fft", json.dumps({"size": 8}, sort_keys=True, separators=(",", ":")), "none", "native"], sort_keys=True, separators=(",", ":"))
    assert clean.id == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert "perturb" not in clean.to_dict()
    keys = {ExtractorKey("fft", {"size": 8}, "none", "native", parse_chain([s]).key).id for s in ALL_SPECS}
    assert len(keys) == len(ALL_SPECS) and clean.id not in keys
    jpeg = ExtractorKey("fft", {"size": 8}, "none", "native", "jpeg:quality=75,backend=pil")
    assert ExtractorKey.from_dict(json.loads(json.dumps(jpeg.to_dict()))) == jpeg
    assert ExtractorKey.from_dict(jpeg.to_dict()).id == jpeg.id
    assert "perturb=jpeg:quality=75,backend=pil" in jpeg.describe()


def test_fdt_perturb_writes_copies_a_manifest_and_a_grid(image_tree, tmp_path):
    from click.testing import CliRunner

    from fdt.cli import cli
    from fdt.data import from_manifest

    out = tmp_path / "copies"
    result = CliRunner().invoke(cli, ["perturb", str(image_tree), "--out", str(out), "--sweep", "jpeg:quality=90,30", "--limit", "4", "-q"])
    assert result.exit_code == 0, result.output
    records = from_manifest(out / "manifest.csv")
    assert len(records) == 8 and {r.extra["perturb"] for r in records} == {"jpeg:quality=90,backend=pil", "jpeg:quality=30,backend=pil"}
    first = records[0]
    original = Image.open(first.extra["original"]).convert("RGB")
    assert np.array_equal(np.asarray(Image.open(first.path)), np.asarray(parse_chain(first.extra["perturb"]).apply(original, hashlib.sha256(open(first.extra["original"], "rb").read()).hexdigest())))
    assert Image.open(out / "grid.png").size[0] > 200
    again = CliRunner().invoke(cli, ["perturb", str(image_tree), "--out", str(out), "--perturb", "png"])
    assert again.exit_code == 2 and "not an empty folder" in again.output


def test_a_perturbed_shard_follows_the_store_spec(image_tree, tmp_path):
    """key and key_id of a perturbed key, computed from docs/store-format.md alone."""
    import json

    import h5py

    from fdt.data import from_folder
    from fdt.features_store.extraction import extract_records

    records = from_folder(image_tree)[:3]
    extract_records(records, "fft", {"size": 8}, "native", tmp_path / "s", perturb=["jpeg:quality=75"], workers=0, progress=False)
    (shard,) = (tmp_path / "s" / "features").glob("*/*.h5")
    with h5py.File(shard) as handle:
        key = json.loads(handle.attrs["key"])
        key_id = handle.attrs["key_id"]
    assert key["perturb"] == "jpeg:quality=75,backend=pil"
    canonical = lambda value: json.dumps(value, sort_keys=True, separators=(",", ":"))  # noqa: E731
    text = canonical([key["extractor"], canonical(key["params"]), key["weights"], key["resolution"], key["perturb"]])
    assert key_id == hashlib.sha256(text.encode()).hexdigest()[:16] == shard.parent.name
