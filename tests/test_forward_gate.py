"""The decoding workers pause while a CPU network runs, and never stay paused."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fdt.data import ImageRecord
from fdt.features_store import create_extractor
from fdt.features_store import extraction
from fdt.features_store.extraction import _forward_gate, extract_records
from fdt.features_store.extractors.cnn import CNNExtractor

SMALL = {"weights": "random", "input_size": 32}


def _records(folder: Path, count: int) -> list[ImageRecord]:
    rng = np.random.default_rng(0)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    return [ImageRecord(folder / f"{index}.png", "real", 0) for index in range(count)]


def test_only_a_network_on_the_cpu_gets_a_gate():
    assert _forward_gate(create_extractor("fft"), "cpu") is None  # no network: the workers' transform is the work
    gate = _forward_gate(create_extractor("mobilenet_v2", **SMALL), "cpu")
    assert gate is not None and gate.is_set()


def test_no_file_starts_decoding_while_the_network_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    images, log = tmp_path / "images", tmp_path / "log"
    images.mkdir()
    log.mkdir()
    records = _records(images, 24)
    real_decode, real_forward = extraction._DecodeDataset._decode, CNNExtractor.forward

    def decode(self, item):  # runs in the forked workers: each start goes to a file of its own
        (log / f"decode-{time.monotonic():.6f}").touch()
        return real_decode(self, item)

    spans = []

    def forward(self, batch):
        start = time.monotonic()
        time.sleep(0.3)  # long enough for the workers to have files left to start on
        out = real_forward(self, batch)
        spans.append((start, time.monotonic()))
        return out

    monkeypatch.setattr(extraction._DecodeDataset, "_decode", decode)
    monkeypatch.setattr(CNNExtractor, "forward", forward)
    extract_records(records, "mobilenet_v2", SMALL, "native", tmp_path / "store", batch_size=4, workers=2, progress=False)
    starts = [float(path.name.split("-", 1)[1]) for path in log.iterdir()]
    assert len(starts) == 24 and len(spans) == 6
    # a file already being decoded when the gate closed finishes; none starts later, until the forward ends
    inside = [t for t in starts for start, end in spans if start + 0.05 < t < end]
    assert inside == [], (inside, spans)
    # control: the workers did decode between forwards (not all before the first one)
    assert any(t > spans[0][1] for t in starts)


def test_a_failing_forward_reopens_the_gate_and_the_run_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    images = tmp_path / "images"
    images.mkdir()
    records = _records(images, 16)

    def forward(self, batch):
        raise RuntimeError("network broke")

    monkeypatch.setattr(CNNExtractor, "forward", forward)
    before = {child.pid for child in multiprocessing.active_children()}  # other tests' pools (joblib's loky) stay
    with pytest.raises(RuntimeError, match="network broke"):  # the bug's own error, not a hang or a worker's timeout
        extract_records(records, "mobilenet_v2", SMALL, "native", tmp_path / "store", batch_size=4, workers=2, progress=False)
    assert [child for child in multiprocessing.active_children() if child.pid not in before] == []  # the workers, some waiting at the gate, were stopped
