"""The detector families of issue 15: CLIP and DINOv2 embeddings, DCT spectra, reconstruction error.

Every model is tiny, built offline from a config; published-weight files are
written by the tests (a local folder, or laid out as the Hugging Face cache).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fdt.features_store import create_extractor
from fdt.features_store.errors import ExtractorError, WeightsNotFoundError
from tests.tiny_models import as_hub_cache, tiny_clip_vision, tiny_dinov2, tiny_full_clip, tiny_vae_config, tiny_vae_dict


def _image(height: int = 41, width: int = 57, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


# --------------------------------------------------------------------------- dct


def test_dct_equals_scipy_dctn_on_a_fixed_image():
    from scipy.fft import dctn

    image = _image(16, 16)
    pixels = np.asarray(image, dtype=np.float64)
    gray = pixels @ np.array([0.299, 0.587, 0.114])
    expected = np.log(np.abs(dctn(gray, type=2, norm="ortho")) + 1e-12)
    np.testing.assert_allclose(create_extractor("dct", size=16).transform([image])[0], expected.ravel(), rtol=1e-4, atol=1e-3)

    per_channel = create_extractor("dct", size=16, channels="rgb")
    assert per_channel.num_features == 3 * 256
    blue = np.log(np.abs(dctn(pixels[..., 2], type=2, norm="ortho")) + 1e-12)
    np.testing.assert_allclose(per_channel.transform([image])[0, 512:], blue.ravel(), rtol=1e-4, atol=1e-3)


def test_dct_takes_the_image_as_given_and_band_averages_other_sizes():
    from scipy.fft import dctn

    image = _image(32, 32)
    gray = np.asarray(image, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])
    magnitude = np.abs(dctn(gray, norm="ortho"))
    bands = magnitude.reshape(16, 2, 16, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(create_extractor("dct", size=16).transform([image])[0], np.log(bands + 1e-12).ravel(), rtol=1e-4, atol=1e-3)
    assert create_extractor("dct").key_params() == {"size": 64, "channels": "gray"}


@pytest.mark.parametrize("bad", [{"size": 1}, {"channels": "ycbcr"}])
def test_dct_rejects_bad_parameters(bad):
    with pytest.raises(ExtractorError, match="dct"):
        _ = create_extractor("dct", **bad).num_features


# --------------------------------------------------------------------------- clip and dinov2


def test_clip_and_dinov2_preprocess_exactly_as_their_image_processors(tmp_path: Path):
    from transformers.models.bit.image_processing_pil_bit import BitImageProcessorPil
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    clip, dino = tiny_clip_vision(tmp_path / "clip"), tiny_dinov2(tmp_path / "dino")
    for size in [(41, 57), (57, 41), (30, 30), (64, 40)]:
        image = _image(*size)
        theirs = CLIPImageProcessorPil.from_pretrained(clip)(image, return_tensors="np")["pixel_values"][0]
        np.testing.assert_allclose(create_extractor("clip", model=str(clip), weights="random").preprocessor()(image), theirs, atol=1e-5)
        theirs = BitImageProcessorPil.from_pretrained(dino)(image, return_tensors="np")["pixel_values"][0]
        np.testing.assert_allclose(create_extractor("dinov2", model=str(dino), weights="random").preprocessor()(image), theirs, atol=1e-5)


def test_clip_reads_the_legacy_processor_config_openai_ships(tmp_path: Path):
    """openai/clip-vit-large-patch14's preprocessor_config.json gives ``size`` and ``crop_size`` as bare integers."""
    import json

    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    folder = tiny_clip_vision(tmp_path / "clip")
    legacy = {
        "crop_size": 30, "do_center_crop": True, "do_normalize": True, "do_resize": True, "feature_extractor_type": "CLIPFeatureExtractor",
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 30,
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(legacy))
    image = _image(41, 57)
    theirs = CLIPImageProcessorPil.from_pretrained(folder)(image, return_tensors="np")["pixel_values"][0]
    np.testing.assert_allclose(create_extractor("clip", model=str(folder), weights="random").preprocessor()(image), theirs, atol=1e-5)


def test_clip_projected_is_the_projection_of_the_cls_embedding(tmp_path: Path):
    folder = str(tiny_clip_vision(tmp_path / "clip"))
    projected = create_extractor("clip", model=folder, weights="random")
    cls = create_extractor("clip", model=folder, weights="random", output="cls")
    assert (projected.num_features, cls.num_features) == (16, 32)
    images = [_image(seed=s) for s in range(3)]
    embedding = cls.transform(images)
    weight = projected.fit().net_.visual_projection.weight.numpy()
    np.testing.assert_allclose(projected.transform(images), embedding @ weight.T, rtol=1e-4, atol=1e-5)
    assert projected.key_params()["output"] == "projected" and cls.key_params() != projected.key_params()
    with pytest.raises(ExtractorError, match="projected or cls"):
        _ = create_extractor("clip", model=folder, weights="random", output="mean").num_features


def test_clip_published_weights_from_a_whole_clip_checkpoint(tmp_path: Path):
    """OpenAI's checkpoints hold both towers and a ``clip`` config: the image tower and its projection are what load."""
    from transformers import CLIPModel

    folder = tiny_full_clip(tmp_path / "clip")
    extractor = create_extractor("clip", model=str(folder))
    assert extractor.num_features == 12 and extractor.weights_identity().startswith("published:sha256:")
    assert extractor.weights_note() == ""
    images = [_image(seed=s) for s in range(2)]
    reference = CLIPModel.from_pretrained(folder).eval()
    pixels = torch.from_numpy(np.stack([extractor.preprocessor()(image) for image in images]))
    with torch.inference_mode():
        expected = reference.visual_projection(reference.vision_model(pixel_values=pixels).pooler_output).numpy()
    np.testing.assert_allclose(extractor.transform(images), expected, rtol=1e-4, atol=1e-5)
    # the same weights by path give the same features under a file identity
    by_path = create_extractor("clip", model=str(folder), weights=str(folder / "model.safetensors"))
    np.testing.assert_allclose(by_path.transform(images), expected, rtol=1e-4, atol=1e-5)
    assert by_path.weights_identity().replace("file:", "published:") == extractor.weights_identity()


def test_dinov2_published_weights_through_the_hugging_face_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from transformers import Dinov2Model

    folder = tiny_dinov2(tmp_path / "dino", weights=True)
    cache = tmp_path / "hub"
    as_hub_cache(folder, cache, "facebook/dinov2-tiny")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.file_download.HF_HUB_CACHE", str(cache), raising=False)
    extractor = create_extractor("dinov2", model="facebook/dinov2-tiny", pooling="cls+mean")
    # the cache names a blob by its SHA-256: the identity is read from the name, not by hashing the file again
    import hashlib

    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert extractor.weights_identity() == f"published:sha256:{digest[:16]}"
    images = [_image(seed=s) for s in range(2)]
    features = extractor.transform(images)
    reference = Dinov2Model.from_pretrained(folder).eval()
    pixels = torch.from_numpy(np.stack([extractor.preprocessor()(image) for image in images]))
    with torch.inference_mode():
        tokens = reference(pixel_values=pixels).last_hidden_state
    np.testing.assert_allclose(features[:, :32], tokens[:, 0].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(features[:, 32:], tokens[:, 1:].mean(1).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "name, model",
    [("clip", "openai/clip-vit-large-patch14"), ("dinov2", "facebook/dinov2-large"), ("vae", "stabilityai/stable-diffusion-2-1/vae")],
)
def test_absent_published_weights_name_the_model_and_the_cache(name: str, model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    extractor = create_extractor(name)
    with pytest.raises(WeightsNotFoundError, match=rf"^{model}: .*config.json is not in the Hugging Face cache; files of .* go under .*empty-hub"):
        extractor.key_params()


def test_the_cli_reports_absent_clip_weights_in_one_line(tmp_path: Path):
    import subprocess
    import sys

    (tmp_path / "real").mkdir()
    _image(16, 16).save(tmp_path / "real" / "a.png")
    env = {**__import__("os").environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "FDT_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "fdt", "extract", str(tmp_path), "-e", "clip", "--store", str(tmp_path / "store"), "-q"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "openai/clip-vit-large-patch14" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "store").exists()


# --------------------------------------------------------------------------- reconstruction error


def _stripes(seed: int, size: int = 16) -> Image.Image:
    """Smooth horizontal gradients: the toy 'real' images the autoencoders learn."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size)[None, :, None] * rng.uniform(60, 200, 3) + rng.uniform(0, 50, 3)
    return Image.fromarray(np.broadcast_to(ramp, (size, size, 3)).astype(np.uint8))


def test_autoencoder_error_is_larger_on_images_unlike_its_training_set(tmp_path: Path):
    """Trained on horizontal gradients; the same image transposed has the same pixels, so only training can tell them apart."""
    from fdt.data import ImageRecord
    from fdt.models.autoencoder import train_autoencoder

    paths = []
    for seed in range(8):
        paths.append(tmp_path / f"{seed}.png")
        _stripes(seed).save(paths[-1])
    model = train_autoencoder(
        [ImageRecord(str(p), "real", 0) for p in paths], tmp_path / "ae.pt", size=16, latent_dim=8, epochs=15, lr=1e-2, batch_size=8,
        channels=(8, 16), progress=False, seed=0,
    )
    error = create_extractor("autoencoder", model=str(model), output="error")
    latent = create_extractor("autoencoder", model=str(model))
    assert error.num_features == 9 and "output" not in latent.key_params() and error.key_params()["output"] == "error"
    image = Image.open(paths[0]).convert("RGB")
    trained, unseen = error.transform([image, image.transpose(Image.Transpose.TRANSPOSE)])
    assert unseen[0] > 2 * trained[0], (trained, unseen)  # the mean squared error
    assert np.isclose(trained[6:].sum(), 1.0) and np.isclose(unseen[6:].sum(), 1.0)


def test_vae_error_is_larger_on_an_image_it_was_not_trained_on(tmp_path: Path):
    """A tiny AutoencoderKL trained on one noise image, saved as diffusers saves a VAE, read with weights=published."""
    from diffusers import AutoencoderKL

    config = str(tiny_vae_config(tmp_path / "cfg"))
    untrained = create_extractor("vae", model=config, weights="random", distance="l2")
    trained_image, other_image = _image(16, 16, seed=1), _image(16, 16, seed=7)
    torch.manual_seed(0)
    vae = AutoencoderKL.from_config(tiny_vae_dict())
    pixels = torch.from_numpy(untrained.preprocessor()(trained_image))[None]
    optimiser = torch.optim.Adam(vae.parameters(), lr=1e-2)
    for _ in range(40):
        optimiser.zero_grad()
        loss = (vae.decode(vae.encode(pixels).latent_dist.mode()).sample - pixels).pow(2).mean()
        loss.backward()
        optimiser.step()
    vae.save_pretrained(tmp_path / "vae")
    extractor = create_extractor("vae", model=str(tmp_path / "vae"), distance="l2")
    assert extractor.weights_identity().startswith("published:sha256:")
    trained, other = extractor.transform([trained_image, other_image])
    assert other[0] > 2 * trained[0], (trained, other)
    before, before_other = untrained.transform([trained_image, other_image])
    assert before_other[0] < 1.5 * before[0]  # two noise images: alike until one is learnt


def test_vae_lpips_uses_the_cached_vgg16_and_says_where_it_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from torchvision.models.vgg import cfgs, make_layers

    from fdt.models.weights import torch_cache_file

    folder = str(tiny_vae_config(tmp_path / "vae"))
    with pytest.raises(WeightsNotFoundError, match="vgg16-397923af.pth"):
        create_extractor("vae", model=folder, weights="random", distance="lpips_2").weights_identity()
    target = torch_cache_file("https://download.pytorch.org/models/vgg16-397923af.pth")
    target.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save({f"features.{k}": v for k, v in make_layers(cfgs["D"]).state_dict().items()}, target)
    images = [_stripes(1), _image(16, 16, seed=3)]
    lpips = create_extractor("vae", model=folder, weights="random", distance="lpips_2")
    l2 = create_extractor("vae", model=folder, weights="random", distance="l2")
    assert "+lpips-vgg-v0.1:sha256:" in lpips.weights_identity() and lpips.key_params()["distance"] == "lpips_2"
    lpips_features, l2_features = lpips.transform(images), l2.transform(images)
    assert np.all(lpips_features[:, :6] >= 0) and not np.allclose(lpips_features[:, :6], l2_features[:, :6])
    np.testing.assert_allclose(lpips_features[:, 6:], l2_features[:, 6:])  # the residual's bands do not depend on the distance


def test_vae_refuses_an_unknown_distance(tmp_path: Path):
    with pytest.raises(ExtractorError, match="l2, lpips, lpips_2"):
        _ = create_extractor("vae", model=str(tiny_vae_config(tmp_path / "vae")), weights="random", distance="l1").num_features
