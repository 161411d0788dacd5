"""The metadata audit: a pure format shortcut (identical pixels, JPEG vs PNG) is found and named everywhere."""

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fdt.cli import cli
from fdt.pipelines.audit import jpeg_quality, read_metadata


def _photo_crops(count: int, size: int = 48) -> list[Image.Image]:
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    rng = np.random.default_rng(0)
    crops = []
    for _ in range(count):
        x, y = rng.integers(0, photo.width - size), rng.integers(0, photo.height - size)
        crops.append(photo.crop((int(x), int(y), int(x) + size, int(y) + size)))
    return crops


@pytest.fixture(scope="module")
def format_shortcut(tmp_path_factory) -> Path:
    """The same pixels twice: reals saved as JPEG (quality 75), fakes saved as PNG."""
    root = tmp_path_factory.mktemp("shortcut")
    (root / "real").mkdir()
    (root / "fake").mkdir()
    for i, crop in enumerate(_photo_crops(40)):
        crop.save(root / "real" / f"{i:03d}.jpg", quality=75)
        Image.open(root / "real" / f"{i:03d}.jpg").convert("RGB").save(root / "fake" / f"{i:03d}.png")
    return root


@pytest.mark.parametrize("quality", [30, 50, 75, 90, 95])
def test_jpeg_quality_is_read_from_the_quantisation_tables(tmp_path, quality):
    path = tmp_path / "a.jpg"
    _photo_crops(1)[0].save(path, quality=quality)
    meta = read_metadata(path)
    assert meta["format"] == "JPEG" and abs(meta["jpeg_quality"] - quality) <= 1
    assert meta["subsampling"] == "4:2:0" and meta["width"] == 48


def test_a_pure_format_shortcut_is_flagged_by_fdt_audit(format_shortcut, tmp_path):
    result = CliRunner().invoke(cli, ["audit", str(format_shortcut), "--out", str(tmp_path / "audit")])
    assert result.exit_code == 0, result.output
    assert "WARNING: metadata alone separates real from fake at ROC AUC 1.00" in result.output
    report = (tmp_path / "audit" / "audit.md").read_text()
    assert "format: real JPEG 100%, fake PNG 100%" in report
    assert (tmp_path / "audit" / "audit.png").stat().st_size > 0


def test_no_warning_when_both_classes_share_the_format(format_shortcut, tmp_path):
    root = tmp_path / "same"
    for name in ("real", "fake"):
        (root / name).mkdir(parents=True)
    for i, crop in enumerate(_photo_crops(40)):
        crop.save(root / ("real" if i % 2 else "fake") / f"{i:03d}.png")
    result = CliRunner().invoke(cli, ["audit", str(root), "--out", str(tmp_path / "audit")])
    assert result.exit_code == 0 and "WARNING" not in result.output


def test_the_report_of_a_matrix_over_those_sources_carries_the_warning(format_shortcut, tmp_path):
    runner = CliRunner()
    store = str(tmp_path / "store")
    assert runner.invoke(cli, ["extract", str(format_shortcut), "-e", "fft", "-p", "size=8", "--store", store, "--workers", "0", "-q"]).exit_code == 0
    result = runner.invoke(cli, ["report", "matrix", "--extractor", "fft", "--real", "real", "--fake", "fake", "--cv", "2",
                                 "--store", store, "--out", str(tmp_path / "report"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "metadata alone separates real from fake" in result.output
    assert "**WARNING: metadata alone separates real from fake" in (tmp_path / "report" / "report.md").read_text()
    tuned = runner.invoke(cli, ["tune", "--extractor", "fft", "--real", "real", "--fake", "fake", "--cv", "2", "--trials", "1",
                                "--store", store, "--models", str(tmp_path / "models"), "--no-progress"])
    assert tuned.exit_code == 0, tuned.output
    card = next((tmp_path / "models").glob("*.json")).read_text()
    assert "metadata alone separates real from fake" in card


def test_bytes_per_pixel_of_lossless_files_is_content_not_a_shortcut(tmp_path):
    """Smooth reals vs noisy fakes, all PNG of one size: PNG size differs, but only because the pixels do."""
    rng = np.random.default_rng(0)
    for name in ("real", "fake"):
        (tmp_path / "d" / name).mkdir(parents=True)
    for i in range(30):
        Image.new("RGB", (32, 32), tuple(int(v) for v in rng.integers(0, 255, 3))).save(tmp_path / "d" / "real" / f"{i}.png")
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "d" / "fake" / f"{i}.png")
    result = CliRunner().invoke(cli, ["audit", str(tmp_path / "d"), "--out", str(tmp_path / "audit")])
    assert result.exit_code == 0, result.output
    assert "WARNING" not in result.output
    assert "note: bytes per pixel alone separates real from fake" in result.output


def test_equalisation_is_in_the_key_and_the_audit_compares_the_detector_with_and_without(tmp_path):
    """Reals saved as JPEG q75, fakes the same photo crops as PNG: the spectrum sees JPEG's artefacts until both are re-encoded."""
    root = tmp_path / "data"
    for name in ("real", "fake"):
        (root / name).mkdir(parents=True)
    lines = ["path,source,label,group"]
    for i, crop in enumerate(_photo_crops(60, size=64)):
        crop.save(root / "real" / f"{i:03d}.jpg", quality=75)
        crop.save(root / "fake" / f"{i:03d}.png")
        lines += [f"real/{i:03d}.jpg,real,0,crop{i}", f"fake/{i:03d}.png,fake,1,crop{i}"]  # a crop and its twin: one group
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    runner, store = CliRunner(), str(tmp_path / "store")
    for extra in ([], ["--equalise", "jpeg:quality=75"]):
        result = runner.invoke(cli, ["extract", str(root / "manifest.csv"), "-e", "fft", "-p", "size=32", "--store", store, "--workers", "0", "-q", *extra])
        assert result.exit_code == 0, result.output
    audit = runner.invoke(cli, ["audit", str(root / "manifest.csv"), "--extractor", "fft", "--store", store, "--out", str(tmp_path / "audit")])
    assert audit.exit_code == 0, audit.output
    import json

    rows = {r["equalised"]: r["roc_auc"] for r in json.loads((tmp_path / "audit" / "audit.json").read_text())["detector_by_equalisation"]}
    assert set(rows) == {"no", "jpeg:quality=75,backend=pil"}
    assert rows["no"] > 0.7 and rows["jpeg:quality=75,backend=pil"] < 0.6  # measured: 0.80 -> 0.50
    assert "| native | jpeg:quality=75,backend=pil |" in (tmp_path / "audit" / "audit.md").read_text()
    tuned = runner.invoke(cli, ["tune", "--extractor", "fft", "--real", "real", "--fake", "fake", "--cv", "2", "--trials", "1", "--pipeline", "logreg",
                                "--equalise", "jpeg:quality=75", "--store", store, "--models", str(tmp_path / "m"), "--no-progress"])
    assert tuned.exit_code == 0, tuned.output
    assert "perturb=jpeg:quality=75,backend=pil" in tuned.output


def test_each_property_alone_is_scored_on_the_shared_grouped_folds():
    """A property that separates scores near 1 on its own, a constant one exactly 0.5, noise near 0.5."""
    from fdt.pipelines.audit import CATEGORICAL, NUMERIC, _condition

    rng = np.random.default_rng(0)
    n = 400
    table = {name: np.array(["x"] * n, dtype=object) for name in CATEGORICAL}
    table["format"] = np.array(["JPEG"] * n, dtype=object)
    table.update({name: rng.normal(size=n) for name in NUMERIC})
    table["width"] = np.r_[rng.integers(300, 640, n // 2), np.full(n // 2, 512)].astype(float)
    table["bit_depth"] = np.full(n, 8.0)
    table.update(
        source=np.array(["real"] * (n // 2) + ["sd"] * (n // 2)),
        label=np.r_[np.zeros(n // 2, int), np.ones(n // 2, int)],
        group=np.array([f"g{i // 2}" for i in range(n)]),  # pairs of rows share a group
    )
    condition = _condition(table, "sd", ["sd"], random_state=0, n_resamples=200)
    assert condition.strongest == "width" and condition.per_property["width"] > 0.95
    assert condition.per_property["bit_depth"] == 0.5 and condition.per_property["mode"] == 0.5
    assert abs(condition.per_property["height"] - 0.5) < 0.12
    assert condition.roc_auc > 0.95 and condition.interval[0] <= condition.roc_auc <= condition.interval[1]
