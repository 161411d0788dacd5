"""``fdt report training``: a tiny DCGAN trained 2 epochs, each kept epoch sampled, extracted and measured."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fdt.cli import cli
from tests.conftest import write_images

TINY = {"size": 32, "features": 4, "nz": 8, "batch_size": 4, "grid_size": 4, "progress": False}
QUICK = ["--n", "12", "--cv", "2", "--kid-subsets", "3", "--kid-subset-size", "10", "--resamples", "10", "--device", "cpu", "--no-progress"]


@pytest.fixture
def trained(tmp_path: Path) -> dict[str, Path]:
    from fdt.data import from_folder
    from fdt.features_store.extraction import extract_records
    from fdt.gen.dcgan import train_dcgan

    write_images(tmp_path / "data" / "faces", 12, size=32, seed=3)
    model = train_dcgan(tmp_path / "data" / "faces", tmp_path / "dcgan", epochs=2, keep_epochs=True, device="cpu", **TINY)
    store = tmp_path / "store"
    extract_records(from_folder(tmp_path / "data", real_sources=["faces"]), "fft", {"size": 8}, "native", store, workers=0, progress=False)
    return {"model": model, "store": store, "samples": tmp_path / "samples", "out": tmp_path / "report"}


def _run(paths: dict[str, Path], *extra: str):
    return CliRunner().invoke(cli, [
        "report", "training", str(paths["model"]), "--real", "faces", "--extractor", "fft", "--param", "size=8",
        "--samples", str(paths["samples"]), "--store", str(paths["store"]), "--out", str(paths["out"]), *QUICK, *extra,
    ])


def test_each_kept_epoch_is_sampled_measured_and_plotted(trained: dict[str, Path]):
    result = _run(trained)
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader((trained["out"] / "training.csv").open()))
    assert [row["epoch"] for row in table] == ["1", "2"] and [row["source"] for row in table] == ["dcgan-epoch001", "dcgan-epoch002"]
    for row in table:
        assert row["n_fake"] == "12" and row["n_real"] == "12"
        assert float(row["fd_low"]) <= float(row["fd_high"]) and float(row["fd"]) > 0
        assert float(row["detect_low"]) <= float(row["detect_roc_auc"]) <= float(row["detect_high"])
    assert (trained["out"] / "quality-vs-epoch.png").stat().st_size > 0
    report = json.loads((trained["out"] / "quality.json").read_text())
    assert "dcgan: 2 kept epochs, 12 samples each (seed 0)" in report["settings"]["generator"]
    folders = sorted(p.name for p in trained["samples"].iterdir())
    assert folders == ["dcgan-epoch001", "dcgan-epoch002"] and len(list((trained["samples"] / folders[0]).glob("*.png"))) == 12
    # the same seed draws the same noise at every epoch: the two epochs' first images differ by training only
    first = [(trained["samples"] / f / "000000.png").read_bytes() for f in folders]
    assert first[0] != first[1]

    again = _run(trained, "--epochs", "2")  # reuses epoch 2's samples and features
    assert again.exit_code == 0, again.output
    assert len(list((trained["samples"] / "dcgan-epoch002").glob("*.png"))) == 12
    assert [row["epoch"] for row in csv.DictReader((trained["out"] / "training.csv").open())] == ["2"]


def test_an_epoch_that_was_not_kept_is_a_one_line_error(trained: dict[str, Path]):
    result = _run(trained, "--epochs", "3")
    assert result.exit_code == 2 and "kept no checkpoint of epoch(s) 3; it kept 1, 2" in result.output
    assert not trained["samples"].exists()
