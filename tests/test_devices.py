"""One device rule for extractors, generators and trained models: ``auto`` picks, a named absent device is an error."""

from __future__ import annotations

import pytest
import torch

from fdt.devices import resolve_device
from fdt.errors import DeviceError, FdtError


def test_auto_and_cpu():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "", "meta"])
def test_an_unknown_device_is_a_user_error(device):
    with pytest.raises(DeviceError, match="device must be auto, cpu or cuda"):
        resolve_device(device)
    assert issubclass(DeviceError, FdtError)


def test_an_absent_cuda_device_is_an_error_not_a_cpu_run(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="CUDA is not available: device 'cuda:1' was asked for"):
        resolve_device("cuda:1")
    assert resolve_device("auto") == "cpu"


def test_a_cuda_index_beyond_the_devices_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(DeviceError, match="torch sees 2 CUDA device"):
        resolve_device("cuda:2")


def test_every_caller_shares_the_one_resolver():
    from fdt.features_store.extractors import base
    from fdt.gen import resolve
    from fdt.models import autoencoder

    assert base.resolve_device is resolve.resolve_device is autoencoder.resolve_device is resolve_device
