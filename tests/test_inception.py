"""The inception_v3 extractor: pool3 of torchvision's network, the FID's resize, weights from the torch cache only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fdt.features_store import create_extractor
from fdt.features_store.errors import ExtractorError, WeightsNotFoundError


def _images(count: int, size: int = 40) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(count)]


def test_features_are_the_average_pool_output_of_torchvisions_network():
    from torchvision.models import inception_v3

    extractor = create_extractor("inception_v3", weights="random", input_size=75)
    images = _images(2)
    ours = extractor.transform(images)
    # an independent path: torchvision's own model with the same weights, pool3 read by a hook on its avgpool
    reference = inception_v3(weights=None, aux_logits=True, transform_input=False, init_weights=False).eval()
    loaded = reference.load_state_dict(extractor.fit().net_.net.state_dict(), strict=False)
    assert set(loaded.missing_keys) == {"fc.weight", "fc.bias"} and not loaded.unexpected_keys  # pool3 has no classifier
    pooled = []
    reference.avgpool.register_forward_hook(lambda module, inputs, output: pooled.append(torch.flatten(output, 1)))
    pixels = torch.stack([torch.from_numpy(np.asarray(im, np.float32) / 255).permute(2, 0, 1) for im in images])
    with torch.no_grad():
        reference(torch.nn.functional.interpolate(pixels, size=(75, 75), mode="bilinear", align_corners=False) * 2 - 1)
    assert ours.shape == (2, 2048)
    np.testing.assert_allclose(ours, pooled[0].numpy(), rtol=1e-4, atol=1e-12)
    assert extractor.weights_identity() == "random:seed=0" and "not an FID" in extractor.weights_note()


def test_fid_preprocessing_is_a_bilinear_resize_to_299_in_minus_one_to_one():
    extractor = create_extractor("inception_v3", weights="random")
    assert extractor.key_params() == {"input_size": 299, "variant": "torchvision"} and extractor.num_features == 2048
    array = extractor.preprocessor()(Image.new("RGB", (48, 32), (255, 0, 128)))
    assert array.shape == (3, 299, 299) and array.dtype == np.float32
    np.testing.assert_allclose(array[:, 150, 150], [1.0, -1.0, 128 / 255 * 2 - 1], atol=1e-6)
    with pytest.raises(ExtractorError, match="from 75 to 4096"):
        create_extractor("inception_v3", weights="random", input_size=64).key_params()
    with pytest.raises(ExtractorError, match="variant must be one of torchvision, pytorch-fid"):
        create_extractor("inception_v3", weights="random", variant="tf").key_params()


def test_imagenet_weights_come_from_the_torch_cache_and_never_silently_fall_back(tmp_path, monkeypatch):
    extractor = create_extractor("inception_v3", weights="imagenet", input_size=75)
    with pytest.raises(WeightsNotFoundError, match="inception_v3_google-0cc3c7bd.pth"):
        extractor.weights_identity()  # tests run offline with an empty TORCH_HOME
    # a file placed where torch.hub caches it is what "imagenet" loads (here: random values, written by the test)
    state = create_extractor("inception_v3", weights="random", seed=3, input_size=75).fit().net_.net.state_dict()
    cached = tmp_path / "hub" / "checkpoints" / "inception_v3_google-0cc3c7bd.pth"
    cached.parent.mkdir(parents=True)
    torch.save({k: v for k, v in state.items() if not k.startswith("fc.")} | {"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}, cached)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    from_cache = create_extractor("inception_v3", weights="imagenet", input_size=75)
    from_file = create_extractor("inception_v3", weights=str(cached), input_size=75)
    assert from_cache.weights_identity().startswith("imagenet:sha256:") and from_cache.weights_note() == ""
    images = _images(2)
    np.testing.assert_array_equal(from_cache.transform(images), from_file.transform(images))


def test_pytorch_fid_variant_gives_pytorch_fids_own_features(tmp_path, monkeypatch):
    """Against pytorch-fid's InceptionV3 wrapper (resize, scaling, blocks, pool3), both given one weights file."""
    import pytorch_fid.inception

    state = create_extractor("inception_v3", weights="random", variant="pytorch-fid").fit().net_.net.state_dict()
    state = state | {"fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}  # the file's classifier, unused by pool3
    file = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, file)
    monkeypatch.setattr(pytorch_fid.inception, "load_state_dict_from_url", lambda *args, **kwargs: torch.load(file))  # never the network
    theirs = pytorch_fid.inception.InceptionV3([3]).eval()

    images = _images(2, size=48)
    pixels = torch.stack([torch.from_numpy(np.asarray(im, np.float32) / 255).permute(2, 0, 1) for im in images])
    with torch.no_grad():
        expected = theirs(pixels)[0].squeeze(-1).squeeze(-1).numpy()
    ours = create_extractor("inception_v3", weights=str(file), variant="pytorch-fid")
    np.testing.assert_allclose(ours.transform(images), expected, rtol=1e-4, atol=1e-12)
    assert ours.weights_identity().startswith("file:sha256:") and ours.key_params() == {"input_size": 299, "variant": "pytorch-fid"}
    with pytest.raises(ExtractorError, match="does not fit inception_v3"):  # the other variant's architecture refuses the file
        create_extractor("inception_v3", weights=str(file), input_size=75).transform(images[:1])
