"""Every stage-2/3 command through click's CliRunner: outputs, one-line errors with exit code 2, nothing written."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from fdt.cli import cli

TUNE = ["tune", "--extractor", "fft", "--real", "coco", "--fake", "inpaint,sd21", "--pipeline", "logreg",
        "--trials", "3", "--cv", "3", "--no-progress"]


@pytest.fixture
def run(tmp_path, store_root, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def invoke(*args):
        return CliRunner().invoke(cli, [*args, "--store", str(store_root)] if args[0] != "pipelines" else list(args))

    return invoke


def test_pipelines_ls_shows_builtins_and_user_specs(tmp_path):
    specs = tmp_path / "mine.toml"
    specs.write_text('[pipelines.tree]\nclassifier = "sklearn.tree.DecisionTreeClassifier"\nscaler = false\n'
                     '[pipelines.tree.space]\n"classifier__max_depth" = { type = "int", low = 1, high = 8 }\n')
    result = CliRunner().invoke(cli, ["pipelines", "ls", "--specs", str(specs)])
    assert result.exit_code == 0, result.output
    for name in ("svm-linear", "svm-rbf", "logreg", "random-forest", "knn", "tree"):
        assert f"{name}  [" in result.output
    assert "search classifier__max_depth: int [1, 8]" in result.output


def test_tune_writes_model_card_and_study(run, tmp_path):
    result = run(*TUNE)
    assert result.exit_code == 0, result.output
    assert "cross-validation, mean ± std" in result.output and "brier" in result.output
    card = json.loads((tmp_path / "models" / "fft-native-logreg-coco-vs-inpaint+sd21.json").read_text())
    assert card["trials_in_study"] == 3 and card["calibration"] == "native"
    assert card["extractor_key"] == {"extractor": "fft", "params": {"size": 6}, "weights": "none", "resolution": "native"}
    assert set(card["cv"]["metrics"]["eer"]) == {"mean", "std"} and len(card["test_metrics"]) == 16
    assert card["split"]["fractions"] == [0.8, 0.1, 0.1] and len(card["data_fingerprint"]) == 64
    # the study persists in models/optuna.db: a second run continues it
    again = run(*TUNE)
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "models" / "fft-native-logreg-coco-vs-inpaint+sd21.json").read_text())["trials_in_study"] == 6


def test_report_matrix_writes_every_format(run, tmp_path):
    result = run("report", "matrix", "--extractor", "fft", "--real", "coco", "--fake", "inpaint,sd21,dcgan",
                 "--resolutions", "native,64", "--pipeline", "logreg", "--cv", "3", "--metric", "eer", "--no-progress")
    assert result.exit_code == 0, result.output
    out = tmp_path / "reports" / "matrix-fft-logreg"
    names = {p.name for p in out.iterdir()}
    assert {"generalisation-at-64.csv", "generalisation-at-64.md", "generalisation-at-64.json", "generalisation-at-64-heatmap.png",
            "cross-resolution-real-vs-all-fakes-heatmap.png", "pca-at-native.png", "report.md", "report.json"} <= names
    assert "(weights: none)" in result.output and "cross-resolution" in result.output
    assert json.loads((out / "generalisation-at-64.json").read_text())["metric"] == "eer"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tune", "--extractor", "fft", "--real", "coco", "--fake", "nope"], "unknown source(s) nope"),
        (["tune", "--extractor", "vgg16", "--real", "coco", "--fake", "sd21"], "run: fdt extract DATA --extractor vgg16 --resolution native"),
        (["tune", "--extractor", "fft", "--real", "coco", "--fake", "sd21", "--pipeline", "svm"], "unknown pipeline 'svm'"),
        (["tune", "--extractor", "fft", "--real", "coco", "--fake", "sd21", "--cv", "40"], "for 40-fold cross-validation"),
        (["tune", "--extractor", "fft", "--real", "inpaint", "--fake", "sd21"], "labelled fake in the store, not real"),
        (["report", "matrix", "--extractor", "fft", "--real", "coco", "--fake", "sd21", "--metric", "auroc"], "unknown metric 'auroc'"),
        (["report", "matrix", "--extractor", "fft", "--real", "coco", "--fake", "sd21", "--cv", "40"], "for 40-fold"),
    ],
)
def test_user_errors_exit_2_in_one_line_and_write_nothing(run, tmp_path, args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "models").exists() and not (tmp_path / "reports").exists()


def test_a_real_source_passed_as_fake_is_refused(tmp_path, featureset_factory, monkeypatch):
    from fdt.data import ImageRecord
    from fdt.features_store.store import FeatureStore

    fs = featureset_factory({"coco": (0, np.zeros(6)), "flickr": (0, np.ones(6))}, per_source=10)
    records = [ImageRecord(f"/i/{i}.png", str(s), 0, str(g)) for i, (s, g) in enumerate(zip(fs.sources, fs.groups))]
    FeatureStore(tmp_path / "fs").write(fs.key, list(fs.sha256), fs.X, records)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["tune", "--extractor", "fft", "--real", "coco", "--fake", "flickr", "--store", "fs"])
    assert result.exit_code == 2 and "'flickr' is labelled real in the store, not fake" in result.output
    assert not (tmp_path / "models").exists()


def test_stage_2_and_3_commands_do_not_import_torch():
    code = (
        "import sys; from click.testing import CliRunner; from fdt.cli import cli\n"
        "for args in (['--help'], ['tune', '--help'], ['report', 'matrix', '--help'], ['pipelines', 'ls']):\n"
        "    assert CliRunner().invoke(cli, args).exit_code == 0, args\n"
        "import fdt.pipelines.evaluation, fdt.pipelines.matrix, fdt.pipelines.plots, fdt.cli.tune, fdt.cli.report\n"
        "heavy = sorted(m for m in ('torch', 'diffusers', 'timm') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
