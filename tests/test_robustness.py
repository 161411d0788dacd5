"""Robustness sweeps end to end: perturbed extraction into the store, then the report on held-out groups."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fdt.data import from_folder
from fdt.features_store.extraction import extract_levels, extract_records
from fdt.features_store.store import FeatureStore, MissingFeaturesError
from fdt.perturb import parse_chain, parse_sweep
from fdt.pipelines.robustness import robustness_report, write_robustness
from fdt.pipelines.specs import get_spec

SIZE = 32


def write_artefact_set(root: Path, count: int = 36) -> Path:
    """Reals: smooth random images. Fakes: the same kind plus a faint checkerboard, an artefact that blur removes."""
    rng = np.random.default_rng(0)
    checker = (np.indices((SIZE, SIZE)).sum(axis=0) % 2 * 2 - 1)[..., None] * 10.0
    for name, artefact in (("real", 0.0), ("fake", 1.0)):
        (root / name).mkdir(parents=True)
        for index in range(count):
            coarse = rng.uniform(40, 215, (4, 4, 3))
            smooth = np.asarray(Image.fromarray(coarse.astype(np.uint8)).resize((SIZE, SIZE), Image.Resampling.BICUBIC), float)
            pixels = np.clip(smooth + artefact * checker + rng.normal(0, 2, smooth.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index:03d}.png")
    return root


@pytest.fixture(scope="module")
def swept_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("robust")
    data = write_artefact_set(root / "data")
    records = from_folder(data)
    store = root / "store"
    levels = list(dict.fromkeys(parse_sweep("blur:sigma=0,1,2").chains + parse_sweep("jpeg:quality=95,50").chains))
    summaries = extract_levels(records, "fft", {"size": 16, "profile": "durall"}, "native", store, levels=levels, workers=0, progress=False)
    return root, records, store, summaries


def test_a_sweep_extracts_every_level_once_and_reruns_reuse(swept_store):
    root, records, store, summaries = swept_store
    assert [s.new_rows for s in summaries] == [len(records)] * 5
    keys = [s.key for s in summaries]
    assert keys[0].perturb == "" and keys[1].perturb == "blur:sigma=1"
    assert len({k.id for k in keys}) == 5
    again = extract_levels(records, "fft", {"size": 16, "profile": "durall"}, "native", store, levels=[parse_chain(["blur:sigma=2"])], workers=0, progress=False)
    assert again[0].new_rows == 0 and again[0].reused_rows == len(records)
    one = extract_records(records, "fft", {"size": 16, "profile": "durall"}, "native", store, perturb=["blur:sigma=1"], workers=0, progress=False)
    assert one.new_rows == 0 and one.key == keys[1]
    fs = FeatureStore(store)
    clean, blurred = fs.load("fft", perturb=""), fs.load("fft", perturb="blur:sigma=2")
    assert clean.key.id != blurred.key.id and not np.allclose(clean.X, blurred.X)
    # the perturbed rows equal perturbing by hand, then extracting
    from fdt.data import load_rgb
    from fdt.features_store import create_extractor

    image = load_rgb(records[0].path)
    model = create_extractor("fft", size=16, profile="durall")
    by_hand = model.transform([parse_chain(["blur:sigma=2"]).apply(image, blurred.sha256[list(blurred.paths).index(records[0].path)])])[0]
    assert np.allclose(blurred.X[list(blurred.paths).index(records[0].path)], by_hand, atol=1e-5)


def test_auc_falls_with_blur_that_removes_the_artefact(swept_store, tmp_path):
    _, _, store, _ = swept_store
    report = robustness_report(
        FeatureStore(store), "fft", get_spec("logreg"), ["real"], ["fake"], ["blur:sigma=0,1,2", "jpeg:quality=95,50"],
        cv=3, fractions=(0.5, 0.2, 0.3), n_resamples=200,
    )
    blur = {row["level"]: row for row in report.rows if row["sweep"].startswith("blur")}
    assert blur["0"]["metrics"]["roc_auc"] > 0.95
    assert blur["2"]["metrics"]["roc_auc"] < 0.75
    assert blur["0"]["metrics"]["roc_auc"] - blur["2"]["metrics"]["roc_auc"] > 0.25
    low, high = blur["0"]["intervals"]["roc_auc"]
    assert low <= blur["0"]["metrics"]["roc_auc"] <= high
    assert report.threshold["chosen_on"] == "validation rows"
    test_rows = report.settings["rows"]["test"]
    assert all(row["rows"] == test_rows for row in report.rows)
    written = write_robustness(report, tmp_path / "out")
    names = {p.name for p in written}
    assert {"robustness.csv", "robustness.json", "robustness.md", "robustness-blur-sigma.png", "robustness-jpeg-quality.png"} <= names
    assert Image.open(tmp_path / "out" / "robustness-blur-sigma.png").size[0] > 400
    table = (tmp_path / "out" / "robustness.md").read_text()
    assert "| sigma=2 | fake |" in table and "[" in table
    assert json.loads((tmp_path / "out" / "robustness.json").read_text())["rows"][0]["intervals"]["roc_auc"][0] is not None


def test_train_perturb_trains_on_the_perturbed_rows(swept_store):
    """Trained on images whose artefact blur erased, the detector has nothing to learn: the clean level is no longer caught."""
    _, _, store, _ = swept_store
    report = robustness_report(
        FeatureStore(store), "fft", get_spec("logreg"), ["real"], ["fake"], ["blur:sigma=0,2"], train_perturb="blur:sigma=2",
        cv=3, fractions=(0.5, 0.2, 0.3), n_resamples=100,
    )
    assert report.settings["trained on"] == "train groups perturbed by blur:sigma=2"
    clean_level = next(row for row in report.rows if row["level"] == "0")
    assert clean_level["metrics"]["roc_auc"] < 0.85


def test_a_missing_level_names_the_command_that_extracts_it(swept_store):
    _, _, store, _ = swept_store
    with pytest.raises(MissingFeaturesError, match="perturbed by blur:sigma=4.*--perturb blur:sigma=4"):
        robustness_report(FeatureStore(store), "fft", get_spec("logreg"), ["real"], ["fake"], ["blur:sigma=0,4"], cv=3, fractions=(0.5, 0.2, 0.3))


def test_cli_report_robustness_and_bad_input(swept_store, tmp_path):
    from fdt.cli import cli

    _, _, store, _ = swept_store
    out = tmp_path / "rep"
    args = ["report", "robustness", "--extractor", "fft", "--pipeline", "logreg", "--real", "real", "--fake", "fake",
            "--sweep", "blur:sigma=0,1,2", "--cv", "3", "--split", "50/20/30", "--resamples", "100", "--store", str(store), "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (out / "robustness-blur-sigma.png").is_file() and "sigma=2" in result.output
    bad = CliRunner().invoke(cli, args[:-2] + ["--out", str(tmp_path / "bad")] + ["--sweep", "blur:sigma=-1"])
    assert bad.exit_code == 2 and "sigma must be" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "bad").exists()


def test_cli_extract_perturb_and_sweep(tmp_path):
    from fdt.cli import cli

    data = write_artefact_set(tmp_path / "data", count=3)
    base = ["extract", str(data), "-e", "fft", "-p", "size=8", "--workers", "0", "-q", "--store", str(tmp_path / "s")]
    first = CliRunner().invoke(cli, base + ["--perturb", "jpeg:quality=75", "--perturb", "blur:sigma=1"])
    assert first.exit_code == 0 and "6 new rows" in first.output and "perturb=jpeg:quality=75,backend=pil|blur:sigma=1" in first.output
    sweep = CliRunner().invoke(cli, base + ["--sweep", "jpeg:quality=100,75"])
    assert sweep.exit_code == 0 and sweep.output.count("6 new rows") == 2
    again = CliRunner().invoke(cli, base + ["--perturb", "jpeg:backend=pil,quality=75", "--perturb", "blur:sigma=1.0"])
    assert "0 new rows, 6 reused" in again.output
    bad = CliRunner().invoke(cli, base + ["--perturb", "jpeg:quality=101"])
    assert bad.exit_code == 2 and "quality must be an integer 1..100" in bad.output


EXPERIMENT = """
[experiment]
name = "robustness"
seed = 0
resolutions = ["native"]
split = "50/20/30"
workers = 0

[images.real]
folder = "data/real"
label = "real"

[images.fake]
folder = "data/fake"
label = "fake"

[extractors.fft]
params = { size = 16, profile = "durall" }

[[robustness]]
pipeline = "logreg"
sweeps = ["blur:sigma=0,2", "SWEEP"]
cv = 3
"""


def test_fdt_run_robustness_tables(tmp_path):
    from fdt.cli import cli

    write_artefact_set(tmp_path / "data", count=20)
    (tmp_path / "study.toml").write_text(EXPERIMENT.replace("SWEEP", "jpeg:quality=90"))
    first = CliRunner().invoke(cli, ["run", str(tmp_path / "study.toml"), "--workspace", str(tmp_path / "ws")])
    assert first.exit_code == 0, first.output
    folder = tmp_path / "ws" / "reports" / "robustness-fft-logreg"
    assert (folder / "robustness-blur-sigma.png").is_file() and (folder / "robustness-jpeg-quality.png").is_file()
    run = json.loads((tmp_path / "ws" / "reports" / "run.json").read_text())
    stages = [s for s in run["stages"] if s["stage"] in ("robustness", "extract")]
    assert any(s["stage"] == "robustness" and s["action"] == "computed" for s in stages)
    assert {s.get("perturb") for s in stages if s["stage"] == "extract"} >= {"blur:sigma=2", "jpeg:quality=90,backend=pil"}
    summary = (tmp_path / "ws" / "reports" / "summary.md").read_text()
    assert "## Robustness" in summary and "(sigma=2)" in summary and "robustness-fft-logreg/robustness-blur-sigma.png" in summary
    second = CliRunner().invoke(cli, ["run", str(tmp_path / "study.toml"), "--workspace", str(tmp_path / "ws")])
    assert second.exit_code == 0, second.output
    run = json.loads((tmp_path / "ws" / "reports" / "run.json").read_text())
    assert all(s["action"] == "reused" for s in run["stages"] if s["stage"] in ("robustness", "extract"))
    (tmp_path / "bad.toml").write_text(EXPERIMENT.replace("SWEEP", "jpeg:quality=0"))
    bad = CliRunner().invoke(cli, ["run", str(tmp_path / "bad.toml"), "--workspace", str(tmp_path / "ws2")])
    assert bad.exit_code == 2 and "[[robustness]] #1" in bad.output and "quality must be" in bad.output
    assert not (tmp_path / "ws2").exists()


def test_robustness_perturb_and_layouts_do_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys; from click.testing import CliRunner; from fdt.cli import cli;"
        "import fdt.perturb, fdt.layouts, fdt.perturbed_copies, fdt.pipelines.robustness;"
        "[CliRunner().invoke(cli, args) for args in (['report', 'robustness', '--help'], ['perturb', '--help'], ['layouts', 'ls'])];"
        "heavy = [m for m in ('torch', 'timm', 'diffusers', 'torchvision') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_features_of_a_network_trained_from_data_are_checked_for_leaks(swept_store, monkeypatch):
    from fdt.pipelines.leakage import TrainedRowsError

    _, _, store, _ = swept_store
    monkeypatch.setattr(FeatureStore, "extractor_info", lambda self, key: {"trained_from_data": True})
    with pytest.raises(TrainedRowsError, match="no record of the images it trained on"):
        robustness_report(FeatureStore(store), "fft", get_spec("logreg"), ["real"], ["fake"], ["blur:sigma=0,1"], cv=3, fractions=(0.5, 0.2, 0.3))
