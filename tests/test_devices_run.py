"""Every stage that runs a network, on each device this machine has: ``cpu`` always, ``cuda`` where a GPU is present.

The ``cuda`` cases carry the ``gpu`` marker (``python -m pytest -m gpu`` runs only
them) and skip themselves without a CUDA device; the ``cpu`` cases run the same
test bodies everywhere, so the tests themselves are exercised on every machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fdt.data import load_image_set
from fdt.features_store import FeatureStore
from fdt.features_store.extraction import extract_records
from tests.conftest import write_images

CUDA = pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")])
DEVICES = ["cpu", CUDA]
SMALL = {"weights": "random", "input_size": 32}


def _rows(store: Path, summary) -> np.ndarray:
    hashes, features = FeatureStore(store).read_features(summary.key)
    by_hash = {h.decode(): row for h, row in zip(hashes, features)}
    return np.stack([by_hash[h] for h in summary.hashes])


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("devices")
    write_images(root / "real", 4, size=32, seed=0)
    write_images(root / "fake", 4, size=32, seed=1)
    return load_image_set(root)


@pytest.mark.parametrize("device", DEVICES)
def test_float32_features_on_the_device_match_the_cpus(records, tmp_path: Path, device: str):
    # device is not part of the key: float32 rows from any device must agree to float32 rounding
    reference = extract_records(records, "mobilenet_v2", SMALL, "native", tmp_path / "cpu", device="cpu", workers=0, batch_size=4, progress=False)
    on_device = extract_records(records, "mobilenet_v2", SMALL, "native", tmp_path / "dev", device=device, workers=2, batch_size=4, progress=False)
    assert reference.key.id == on_device.key.id and on_device.new_rows == 8 and on_device.failed == 0
    np.testing.assert_allclose(_rows(tmp_path / "dev", on_device), _rows(tmp_path / "cpu", reference), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("device, precision", [("cpu", "bf16"), pytest.param("cuda", "fp16", marks=CUDA.marks), pytest.param("cuda", "bf16", marks=CUDA.marks)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_autocast_and_channels_last_run_under_their_own_key(records, tmp_path: Path, device: str, precision: str, channels_last: bool):
    plain = extract_records(records, "mobilenet_v2", SMALL, "native", tmp_path / "s", device="cpu", workers=0, batch_size=4, progress=False)
    params = {**SMALL, "precision": precision, "channels_last": channels_last}
    fast = extract_records(records, "mobilenet_v2", params, "native", tmp_path / "s", device=device, workers=0, batch_size=4, progress=False)
    assert fast.key.id != plain.key.id and fast.new_rows == 8 and fast.key.params["precision"] == precision
    half, reference = _rows(tmp_path / "s", fast), _rows(tmp_path / "s", plain)
    assert half.dtype == np.float32 and np.isfinite(half).all()
    assert np.corrcoef(half.ravel(), reference.ravel())[0, 1] > 0.99


@pytest.mark.parametrize("device", DEVICES)
def test_finetuning_on_the_device_writes_a_file_the_cpu_reads(tmp_path: Path, device: str):
    from fdt.features_store import create_extractor
    from fdt.models.finetune import FinetuneConfig, finetune

    write_images(tmp_path / "data" / "real", 12, size=32, seed=0)
    write_images(tmp_path / "data" / "fake", 12, size=32, seed=1)
    config = FinetuneConfig(backbone="test_resnet", weights="random", input_size=32, epochs=1, batch_size=4, patience=0, val_share=0.25, split=None)
    summary = finetune(load_image_set(tmp_path / "data"), tmp_path / "d.pt", config, device=device, progress=False)
    assert len(summary["history"]) == 1 and np.isfinite(summary["best_val_loss"])
    logit = create_extractor("timm", model="test_resnet", weights=str(tmp_path / "d.pt"), output="logit", device="cpu")
    scores = logit.transform([Image.new("RGB", (32, 32))])
    assert scores.shape == (1, 1) and np.isfinite(scores).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("generator", ["dcgan", "ddpm"])
def test_generators_train_and_sample_on_the_device(tmp_path: Path, device: str, generator: str):
    write_images(tmp_path / "photos", 6, size=32)
    if generator == "dcgan":
        from fdt.gen.dcgan import sample_dcgan, train_dcgan

        model = train_dcgan(tmp_path / "photos", tmp_path / "model", size=32, epochs=1, features=4, nz=8, batch_size=2, grid_size=4, device=device, progress=False)
        manifest = sample_dcgan(model, 3, tmp_path / "fakes", device=device, progress=False)
    else:
        from fdt.gen.ddpm import sample_ddpm, train_ddpm

        model = train_ddpm(tmp_path / "photos", tmp_path / "model", size=32, epochs=1, batch_size=2, channels=(8, 8), grid_size=4, device=device, progress=False)
        manifest = sample_ddpm(model, 3, tmp_path / "fakes", steps=2, device=device, progress=False)
    written = load_image_set(manifest)
    assert len(written) == 3 and all(Path(record.path).is_file() for record in written)
