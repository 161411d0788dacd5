"""Autocast precision and channels-last: options of the network extractors that are part of the store key (CPU-side checks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fdt.features_store import create_extractor
from fdt.features_store.errors import ExtractorError
from fdt.features_store.featureset import ExtractorKey

SMALL = {"weights": "random", "input_size": 32}


def _images(count: int = 4) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(count)]


def test_defaults_keep_the_keys_float32_rows_always_had():
    assert create_extractor("mobilenet_v2", **SMALL).key_params() == {"input_size": 32}


def test_bf16_autocast_and_channels_last_are_in_the_key_and_change_only_the_last_bits():
    images = _images()
    plain = create_extractor("mobilenet_v2", **SMALL)
    bf16 = create_extractor("mobilenet_v2", **SMALL, precision="bf16")
    last = create_extractor("mobilenet_v2", **SMALL, channels_last=True)
    keys = {ExtractorKey("mobilenet_v2", e.key_params(), e.weights_identity(), "native").id for e in (plain, bf16, last)}
    assert len(keys) == 3
    assert bf16.key_params() == {"input_size": 32, "precision": "bf16"} and last.key_params() == {"input_size": 32, "channels_last": True}
    reference, half, layout = plain.transform(images), bf16.transform(images), last.transform(images)
    assert not np.array_equal(reference, half)
    assert np.corrcoef(reference.ravel(), half.ravel())[0, 1] > 0.99
    np.testing.assert_allclose(layout, reference, rtol=1e-3, atol=1e-4)


def test_vit_extractors_take_a_precision(tmp_path: Path):
    from tests.tiny_models import tiny_clip_vision

    folder = str(tiny_clip_vision(tmp_path / "clip"))
    half = create_extractor("clip", model=folder, weights="random", precision="bf16")
    assert half.key_params()["precision"] == "bf16" and "precision" not in create_extractor("clip", model=folder, weights="random").key_params()
    assert half.transform(_images(2)).dtype == np.float32


@pytest.mark.parametrize("bad", [{"precision": "fp8"}, {"channels_last": "yes"}])
def test_bad_numeric_options_are_refused(bad):
    with pytest.raises(ExtractorError):
        create_extractor("vgg16", **SMALL, **bad).key_params()


def test_asking_for_cuda_without_a_device_is_one_line(tmp_path: Path):
    from click.testing import CliRunner

    from fdt.cli import cli
    from tests.conftest import write_images

    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    write_images(tmp_path / "data" / "real", 2, size=16)
    result = CliRunner().invoke(cli, ["extract", str(tmp_path / "data"), "-e", "mobilenet_v2", "--param", "weights=random", "--param", "precision=fp16", "--device", "cuda", "--store", str(tmp_path / "s"), "-q"])
    assert result.exit_code == 2 and "cuda" in result.output and "Traceback" not in result.output



def test_fp32_on_a_gpu_means_ieee_float32_not_tf32():
    # torch runs a GPU's float32 convolutions in TF32 unless told otherwise: rows ~1e-3 off a CPU's under the same key
    import torch

    from fdt.features_store.extractors.precision import autocast

    settings = (torch.backends.cudnn.conv, torch.backends.cuda.matmul)
    before = [setting.fp32_precision for setting in settings]
    with autocast("cuda:0", "fp32"):
        assert [setting.fp32_precision for setting in settings] == ["ieee", "ieee"]
    assert [setting.fp32_precision for setting in settings] == before
    with pytest.raises(RuntimeError), autocast("cuda", "fp32"):
        raise RuntimeError("a failing batch")
    assert [setting.fp32_precision for setting in settings] == before  # restored after an error too
    with autocast("cpu", "fp32"):
        assert [setting.fp32_precision for setting in settings] == before
