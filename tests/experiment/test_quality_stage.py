"""``[[quality]]`` in ``fdt run``: reports equal ``fdt report quality`` / ``fdt report training`` on the same store, re-runs reuse them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fdt.cli import cli
from tests.conftest import write_images
from tests.experiment.conftest import invoke, run_record, write_noise

QUICK = {"cv": 2, "k": 3, "kid_subsets": 3, "kid_subset_size": 10, "resamples": 10}
QUICK_TOML = "\n".join(f"{key} = {value}" for key, value in QUICK.items())
QUICK_CLI = [f"--{key.replace('_', '-')}={value}" for key, value in QUICK.items()]

STUDY = f"""
[experiment]
name = "quality"
workers = 0
batch_size = 16

[images.faces]
folder = "faces"
label = "real"

[images.noise]
folder = "noise"
label = "fake"

[images.dcgan]
generator = "dcgan"
train_on = "faces"
samples = 12
[images.dcgan.train]
size = 32
epochs = 2
features = 4
nz = 8
batch_size = 4
grid_size = 4
keep_epochs = true

[extractors.fft]
params = {{ size = 8 }}

[extractors.profile]
extractor = "fft"
params = {{ size = 8, profile = "durall" }}

[[matrices]]
pipeline = "logreg"
extractors = ["fft"]
cv = 2

# quality in the profile's space, detectability from the fft matrix's diagonal; the DCGAN followed with the fft detector
[[quality]]
extractors = ["profile"]
detector = "fft"
follow = ["dcgan"]
samples = 12
{QUICK_TOML}

# quality and grouped-CV detectability in the fft space, as fdt report quality / training compute them
[[quality]]
extractors = ["fft"]
matrix = false
follow = ["dcgan"]
samples = 12
{QUICK_TOML}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("quality")
    write_images(root / "faces", 16, size=32, seed=3)
    write_noise(root / "noise", 12)
    (root / "study.toml").write_text(STUDY, encoding="utf-8")
    workspace = root / "ws"
    first = invoke("run", str(root / "study.toml"), "--workspace", str(workspace), "--quiet")
    first_record = run_record(workspace) if first.exit_code == 0 else None
    second = invoke("run", str(root / "study.toml"), "--workspace", str(workspace), "--quiet")
    return {"root": root, "workspace": workspace, "first": first, "second": second, "first_record": first_record, "second_record": run_record(workspace)}


def _cli(*args: str) -> None:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


def test_quality_reports_equal_fdt_report_quality_on_the_same_store(runs: dict) -> None:
    assert runs["first"].exit_code == 0, runs["first"].output
    workspace, out = runs["workspace"], runs["root"] / "cli"
    store = str(workspace / "features_store")
    reports = workspace / "reports"
    _cli("report", "quality", "--extractor", "fft", "--param", "size=8", "--param", "grid=band-mean", "--real", "faces", "--fake", "noise,dcgan", "--store", store,
         "--out", str(out / "cv"), *QUICK_CLI, "--no-progress")
    assert (reports / "quality-fft-native" / "quality.csv").read_text() == (out / "cv" / "quality.csv").read_text()
    matrix = reports / "matrix-fft-logreg" / "report.json"
    _cli("report", "quality", "--extractor", "fft", "--param", "size=8", "--param", "profile=durall", "--real", "faces", "--fake", "noise,dcgan",
         "--matrix", str(matrix), "--store", store, "--out", str(out / "matrix"), *QUICK_CLI, "--no-progress")
    assert (reports / "quality-profile-native" / "quality.csv").read_text() == (out / "matrix" / "quality.csv").read_text()
    rows = _rows(reports / "quality-profile-native" / "quality.csv")
    assert [row["source"] for row in rows] == ["noise", "dcgan"]
    assert all("diagonal of generalisation at native" in row["detect_how"] for row in rows)
    assert (reports / "quality-profile-native" / "quality-vs-detectability.png").stat().st_size > 0


def test_epoch_curves_equal_fdt_report_training_and_use_the_runs_store(runs: dict) -> None:
    assert runs["first"].exit_code == 0, runs["first"].output
    workspace, out = runs["workspace"], runs["root"] / "cli" / "training"
    _cli("report", "training", str(workspace / "generators" / "dcgan"), "--real", "faces", "--extractor", "fft", "--param", "size=8", "--param", "grid=band-mean", "--n", "12",
         "--samples", str(workspace / "data" / "dcgan" / "epochs"), "--store", str(workspace / "features_store"), "--device", "cpu",
         "--out", str(out), *QUICK_CLI, "--no-progress")
    mine = workspace / "reports" / "training-dcgan-fft-native"
    assert (mine / "training.csv").read_text() == (out / "training.csv").read_text()
    assert [row["epoch"] for row in _rows(mine / "training.csv")] == ["1", "2"]
    assert (mine / "quality-vs-epoch.png").stat().st_size > 0
    # the profile report's epochs are scored by the fft detector: the same detectability as the fft report's own CV
    profile = _rows(workspace / "reports" / "training-dcgan-profile-native" / "training.csv")
    fft = _rows(mine / "training.csv")
    assert [(r["detect_roc_auc"], r["detect_low"], r["detect_high"]) for r in profile] == [(r["detect_roc_auc"], r["detect_low"], r["detect_high"]) for r in fft]
    assert [r["fd"] for r in profile] != [r["fd"] for r in fft]
    stages = runs["first_record"]["stages"]
    epoch_rows = [s for s in stages if s["stage"] == "extract" and s.get("images", "").startswith("dcgan-epoch")]
    assert {(s["name"], s["images"]) for s in epoch_rows} == {(label, f"dcgan-epoch00{e}") for label in ("fft", "profile") for e in (1, 2)}
    # the last epoch is the model the dcgan set was sampled from, with the same seeds: its images are already in the store
    assert [(s["new_rows"], s["reused_rows"]) for s in epoch_rows if s["name"] == "fft"] == [(12, 0), (0, 12), (0, 12), (0, 12)]


def test_the_summary_names_the_feature_space_and_a_rerun_reuses_everything(runs: dict) -> None:
    assert runs["second"].exit_code == 0, runs["second"].output
    summary = (runs["workspace"] / "reports" / "summary.md").read_text()
    assert "## Quality vs detectability" in summary and "not the FID" in summary
    assert "**dcgan across its kept epochs**" in summary and "| epoch 2 |" in summary
    first = [(s["stage"], s["name"], s["action"]) for s in runs["first_record"]["stages"] if s["stage"] in ("quality", "training", "epoch-samples")]
    assert first == [
        ("quality", "profile-native", "computed"), ("epoch-samples", "dcgan", "computed"), ("training", "dcgan-profile-native", "computed"),
        ("quality", "fft-native", "computed"), ("epoch-samples", "dcgan", "reused"), ("training", "dcgan-fft-native", "computed"),
    ]
    second = runs["second_record"]
    assert {s["action"] for s in second["stages"] if s["stage"] in ("quality", "training", "epoch-samples")} == {"reused"}
    assert second["totals"]["new_feature_rows"] == 0


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("extractors = ['fft']\nepoch = 3", "unknown key 'epoch' in [[quality]] #1; allowed: extractors, real, fakes"),
        ("extractors = ['fft']\nfollow = ['noise']", "[[quality]] #1 follow: 'noise' is not a generator fdt trains and samples"),
        ("extractors = ['fft']\nmatrix = true", "[[quality]] #1: matrix = true, but no [[matrices]] entry covers 'fft' at native"),
        ("extractors = ['fft']\nfollow = ['dcgan']\nepochs = [3]", "[[quality]] #1 epochs: 'dcgan' trains for 2 epochs, so it keeps no epoch 3"),
        ("extractors = ['fft']\nepochs = ['x']", "epochs in [[quality]] #1 must be a list of integers"),
        ("extractors = ['fft']\nsamples = 1", "[[quality]] #1 samples must be at least 2, not 1"),
        ("extractors = ['fft']\nfollow = ['dcgan']\nsamples = 3\nk = 3", "[[quality]] #1 samples = 3 are too few for k = 3 nearest neighbours"),
        ("extractors = ['fft']\nreal = ['noise']", "[[quality]] #1 real: source 'noise' is labelled fake"),
        ("detector = 'vgg'", "[[quality]] #1 detector: 'vgg' names no [extractors.vgg] table"),
        ("extractors = ['ae']\n[extractors.ae]\nextractor = 'autoencoder'\ntrain_on = 'faces'", "[[quality]] #1: 'ae' is a network fdt trains on these images"),
        ("extractors = ['fft']\n[[quality]]\nextractors = ['fft']", "[[quality]] #2 writes reports/quality-fft-native/, as [[quality]] #1 does"),
    ],
)
def test_bad_quality_keys_are_one_line_errors(tmp_path: Path, entry: str, message: str) -> None:
    write_images(tmp_path / "faces", 2, size=16)
    write_noise(tmp_path / "noise", 2, size=16)
    text = STUDY.split("[[matrices]]")[0].replace("[[quality]]", "") + "[[quality]]\n" + entry + "\n"
    (tmp_path / "study.toml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "study.toml"), "--workspace", str(tmp_path / "ws"), "--check"])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "ws").exists()


def test_inception_with_random_weights_is_flagged_at_check(tmp_path: Path) -> None:
    write_images(tmp_path / "faces", 2, size=16)
    write_noise(tmp_path / "noise", 2, size=16)
    text = STUDY.split("[extractors.fft]")[0] + "[extractors.inception_v3]\nparams = { weights = 'random' }\n[[quality]]\nextractors = ['inception_v3']\n"
    (tmp_path / "study.toml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "study.toml"), "--workspace", str(tmp_path / "ws"), "--check"])
    assert result.exit_code == 0, result.output
    assert "1 quality reports" in result.output
    assert "warning: [[quality]] #1: inception_v3 (inception_v3) runs with random weights" in result.output and "not FIDs" in result.output


def test_the_run_record_lists_every_report_folder(runs: dict) -> None:
    assert runs["first"].exit_code == 0, runs["first"].output
    folders = {Path(s["folder"]).name for s in runs["first_record"]["stages"] if s["stage"] in ("quality", "training")}
    assert folders == {"quality-profile-native", "quality-fft-native", "training-dcgan-profile-native", "training-dcgan-fft-native"}
    report = json.loads((runs["workspace"] / "reports" / "quality-fft-native" / "quality.json").read_text())
    assert report["real"] == ["faces"] and [row["source"] for row in report["sources"]] == ["noise", "dcgan"]


def test_the_documented_quality_table_parses_with_the_documented_example() -> None:
    from fdt.experiment import parse_experiment

    text = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = [block.split("```", 1)[0] for block in text.split("```toml\n")[1:]]
    (example,) = [block for block in blocks if block.startswith("[experiment]")]
    (quality,) = [block for block in blocks if "[[quality]]" in block]
    (entry,) = parse_experiment(example + quality, base=Path("/study")).quality
    assert entry.extractors == ("inception_v3", "vgg16") and entry.detector == "vgg16" and entry.matrix is True
    assert entry.follow == ("dcgan",) and entry.epochs == (1, 10, 50, 100) and entry.samples == 1000
