"""``fdt report quality``: quality next to detectability from grouped CV, a matrix's diagonal or model cards."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from fdt.cli import cli
from fdt.features_store.featureset import ExtractorKey
from fdt.pipelines.quality import frechet_distance
from fdt.pipelines.quality_report import describe_feature_space, is_fid, quality_report

QUICK = ["--kid-subsets", "5", "--kid-subset-size", "20", "--resamples", "20", "--cv", "3", "--no-progress"]


@pytest.fixture
def run(tmp_path, store_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return lambda *args: CliRunner().invoke(cli, ["report", "quality", *args, "--store", str(store_root)])


def test_quality_report_with_cross_validated_detectability(run, tmp_path, featuresets):
    result = run("--extractor", "fft", "--real", "coco", "--fake", "inpaint,dcgan", *QUICK)
    assert result.exit_code == 0, result.output
    out = tmp_path / "reports" / "quality-fft"
    assert {p.name for p in out.iterdir()} == {"quality.json", "quality.csv", "quality.md", "quality-vs-detectability.png"}
    report = json.loads((out / "quality.json").read_text())
    assert "not the FID" in report["feature_space"] and report["distance"] == "FD"
    rows = {row["source"]: row for row in report["sources"]}
    # the stored rows' own FD, computed here from the same features
    native = featuresets["native"]
    reals, dcgan = native.X[native.sources == "coco"], native.X[native.sources == "dcgan"]
    assert rows["dcgan"]["fd"] == pytest.approx(frechet_distance(reals, dcgan).value, rel=1e-9)
    assert rows["dcgan"]["n_fake"] == 40 and rows["dcgan"]["n_real"] == 40
    # dcgan sits twice as far from the reals as inpaint: worse quality and easier to detect
    assert rows["dcgan"]["fd_interval"][0] > rows["inpaint"]["fd_interval"][1]
    assert rows["dcgan"]["detectability"]["value"] > rows["inpaint"]["detectability"]["value"] > 0.6
    low, high = rows["dcgan"]["detectability"]["interval"]
    assert low <= rows["dcgan"]["detectability"]["value"] <= high
    assert "grouped 3-fold CV of logreg" in rows["dcgan"]["detectability"]["how"]
    table = list(csv.DictReader((out / "quality.csv").open()))
    assert [row["source"] for row in table] == ["inpaint", "dcgan"] and float(table[1]["detect_low"]) == pytest.approx(low, rel=1e-5)
    assert "| dcgan | 40 (40) |" in result.output and "KID: mean ± std over 5 random subsets" in result.output


def test_quality_report_takes_detectability_from_a_matrix_diagonal(run, tmp_path, matrix_report):
    from fdt.pipelines.matrix import write_report

    write_report(matrix_report, tmp_path / "matrix")
    result = run("--extractor", "fft", "--real", "coco", "--fake", "sd21,dcgan", "--matrix", str(tmp_path / "matrix" / "report.json"), *QUICK)
    assert result.exit_code == 0, result.output
    rows = {row["source"]: row for row in json.loads((tmp_path / "reports" / "quality-fft" / "quality.json").read_text())["sources"]}
    native = matrix_report.matrices[0]
    assert native.title == "generalisation at native"
    j = native.rows.index("coco vs dcgan")
    assert rows["dcgan"]["detectability"]["value"] == pytest.approx(native.cells[j][j]["roc_auc"])
    assert rows["dcgan"]["detectability"]["interval"] == pytest.approx(list(native.interval(j, j)))
    assert "diagonal of generalisation at native" in rows["dcgan"]["detectability"]["how"]


def test_quality_report_takes_detectability_from_model_cards(run, tmp_path, store_root):
    tuned = CliRunner().invoke(cli, ["tune", "--extractor", "fft", "--real", "coco", "--fake", "sd21", "--pipeline", "logreg",
                                     "--trials", "0", "--cv", "3", "--no-progress", "--store", str(store_root)])
    assert tuned.exit_code == 0, tuned.output
    model = next((tmp_path / "models").glob("*.skops"))
    card = json.loads(model.with_suffix(".json").read_text())
    result = run("--extractor", "fft", "--real", "coco", "--fake", "sd21", "--model", str(model), *QUICK)
    assert result.exit_code == 0, result.output
    row = json.loads((tmp_path / "reports" / "quality-fft" / "quality.json").read_text())["sources"][0]
    assert row["detectability"]["value"] == pytest.approx(card["test"]["metrics"]["roc_auc"])
    assert row["detectability"]["interval"] == pytest.approx(card["test"]["intervals"]["roc_auc"])
    missing = run("--extractor", "fft", "--real", "coco", "--fake", "sd21,dcgan", "--model", str(model), *QUICK)
    assert missing.exit_code == 2 and "no --model file was trained on dcgan" in missing.output


def test_user_mistakes_are_one_line_errors(run, tmp_path):
    both = run("--extractor", "fft", "--real", "coco", "--fake", "sd21", "--matrix", "m.json", "--model", "a.skops", *QUICK)
    assert both.exit_code == 2 and "not both" in both.output
    (tmp_path / "m.json").write_text(json.dumps({"matrices": [{"title": "generalisation at native", "rows": ["coco vs x"], "columns": ["coco vs x"]}]}))
    wrong = run("--extractor", "fft", "--real", "coco", "--fake", "sd21", "--matrix", str(tmp_path / "m.json"), *QUICK)
    assert wrong.exit_code == 2 and "no diagonal cell 'coco vs sd21'" in wrong.output and "Traceback" not in wrong.output
    unknown = run("--extractor", "fft", "--real", "coco", "--fake", "nope", *QUICK)
    assert unknown.exit_code == 2 and "unknown source" in unknown.output
    assert not (tmp_path / "reports").exists()


def test_feature_space_is_named_and_random_weights_are_not_fid(featureset_factory):
    from tests.pipelines.conftest import SOURCES

    fid = ExtractorKey("inception_v3", {"input_size": 299, "variant": "torchvision"}, "imagenet:sha256:0123", "native")
    assert is_fid(fid) and "is the FID of torchvision's weights" in describe_feature_space(fid) and "not comparable to published" in describe_feature_space(fid)
    published = ExtractorKey("inception_v3", {"input_size": 299, "variant": "pytorch-fid"}, "file:sha256:0123", "native")
    assert "as published FIDs compute it" in describe_feature_space(published)
    assert not is_fid(ExtractorKey("inception_v3", {"input_size": 75}, "imagenet:sha256:0123", "native"))
    data = featureset_factory(SOURCES, per_source=20)
    data.key = ExtractorKey("inception_v3", {"input_size": 299}, "random:seed=0", "native")
    report = quality_report(data, ["coco"], ["dcgan"], spec=None, kid_subsets=3, kid_subset_size=10, n_resamples=10)
    assert not is_fid(data.key) and report.distance_name == "FD"
    assert "random weights: not FID" in report.to_markdown() and any("RANDOM weights" in note for note in report.notes)
    assert report.rows[0].detectability is None and np.isfinite(report.rows[0].quality.fd)


def test_training_curve_writes_one_row_per_epoch_and_the_epoch_plot(tmp_path, featureset_factory):
    from fdt.pipelines.specs import get_spec
    from fdt.pipelines.training_curve import write_training_curve

    # three "epochs" whose samples move towards the reals (mean 0)
    sources = {"faces": (0, np.zeros(4)), **{f"gan-epoch{e:03d}": (1, np.full(4, 3.0 / e)) for e in (1, 2, 6)}}
    data = featureset_factory(sources, per_source=30, dim=4)
    epochs = {f"gan-epoch{e:03d}": e for e in (1, 2, 6)}
    report = quality_report(data, ["faces"], list(epochs), spec=get_spec("logreg"), cv=3, kid_subsets=5, kid_subset_size=20, n_resamples=20)
    write_training_curve(report, epochs, tmp_path / "curve")
    assert {"training.csv", "quality-vs-epoch.png", "quality.md", "quality-vs-detectability.png"} <= {p.name for p in (tmp_path / "curve").iterdir()}
    table = list(csv.DictReader((tmp_path / "curve" / "training.csv").open()))
    assert [int(row["epoch"]) for row in table] == [1, 2, 6] and table[0]["source"] == "gan-epoch001"
    fd = [float(row["fd"]) for row in table]
    detect = [float(row["detect_roc_auc"]) for row in table]
    assert fd[0] > fd[1] > fd[2] and detect[0] > detect[2]
    assert float(table[0]["detect_low"]) <= detect[0] <= float(table[0]["detect_high"])
