"""``fdt run`` end to end on the scaled-down demo, and its second run that computes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_first_run_computes_every_stage(tiny_runs):
    result, record = tiny_runs["first"], tiny_runs["first_record"]
    assert result.exit_code == 0, result.output
    stages = {entry["stage"] for entry in record["stages"]}
    assert stages == {"images", "generator", "extractor-training", "extract", "study", "matrix"}
    assert all(entry["action"] == "computed" for entry in record["stages"] if entry["stage"] != "images" or entry["name"] == "photos")
    extract = [entry for entry in record["stages"] if entry["stage"] == "extract"]
    assert {(e["name"], e["resolution"]) for e in extract} == {(x, r) for x in ("vgg16", "mobilenet_v2", "xception", "fft", "autoencoder") for r in ("32", "16")}
    # 68 crops + 24 noise + 24 DCGAN + 16 DDPM samples + 16 inpaintings, once per extractor and resolution
    assert all(e["new_rows"] == 148 and e["failed"] == 0 for e in extract)
    generators = {e["name"]: e for e in record["stages"] if e["stage"] == "generator"}
    assert generators["dcgan"]["trained"] and generators["dcgan"]["new_images"] == 24
    assert generators["ddpm"]["trained"] and generators["ddpm"]["new_images"] == 16
    assert not generators["ddpm-inpaint"]["trained"] and generators["ddpm-inpaint"]["new_images"] == 16
    assert record["totals"]["new_feature_rows"] == 148 * 10


def test_inpaintings_share_their_source_photos_group(tiny_runs):
    """A repainted crop must sit on the same side of every split as its photo's real crops."""
    from fdt.data import load_image_set, sha256_file

    workspace = tiny_runs["workspace"]
    photos = {r.group for r in load_image_set(workspace / "data" / "photos" / "manifest.csv")}
    inpainted = load_image_set(workspace / "data" / "ddpm-inpaint" / "manifest.csv")
    assert {r.group for r in inpainted} <= photos
    assert all((Path(r.path).parent / r.extra["mask_path"]).is_file() for r in inpainted)
    assert sha256_file(inpainted[0].path) != sha256_file(inpainted[1].path)


def test_first_run_writes_every_report_file(tiny_runs):
    reports = tiny_runs["workspace"] / "reports"
    assert (reports / "run.json").is_file() and (reports / "summary.md").is_file()
    for label in ("vgg16", "mobilenet_v2", "xception", "fft", "autoencoder"):
        folder = reports / f"matrix-{label}-logreg"
        for stem in ("generalisation-at-32", "generalisation-at-16", "cross-resolution-real-vs-all-fakes"):
            for suffix in (".csv", ".json", ".md", "-heatmap.png", "-roc.png"):
                assert (folder / f"{stem}{suffix}").is_file(), f"{folder.name}/{stem}{suffix}"
        assert (folder / "pca-at-32.png").is_file() and (folder / "pca-at-16.png").is_file()
    for name in ("photos", "noise", "dcgan", "ddpm", "ddpm-inpaint"):
        assert (reports / f"samples-{name}.png").is_file()
    assert (reports / "dcgan-first-vs-last-epoch.png").is_file() and (reports / "ddpm-first-vs-last-epoch.png").is_file()
    for model in ("fft-32-logreg", "fft-32-svm-linear", "autoencoder-32-logreg", "autoencoder-32-svm-linear"):
        assert (tiny_runs["workspace"] / "models" / f"{model}.skops").is_file()


def test_summary_links_resolve_and_state_the_weights(tiny_runs):
    reports = tiny_runs["workspace"] / "reports"
    summary = (reports / "summary.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)]+)\)", summary)
    kinds = {Path(link).suffix for link in links}
    assert {".csv", ".png", ".json", ".md"} <= kinds
    assert any(link.endswith("-roc.png") for link in links) and any("pca-at-" in link for link in links)
    missing = [link for link in links if not (reports / link).resolve().exists()]
    assert not missing
    for cnn in ("vgg16", "mobilenet_v2", "xception"):
        assert re.search(rf"\| {cnn} \|.*seeded random weights.*random:seed=0", summary)
    assert "mobilenet_v2, vgg16, xception ran with seeded random weights" in summary


def test_summary_reading_quotes_this_runs_numbers(tiny_runs):
    import json

    import numpy as np

    reports = tiny_runs["workspace"] / "reports"
    summary = (reports / "summary.md").read_text(encoding="utf-8")
    reading = summary.split("## Reading", 1)[1]
    for label in ("vgg16", "mobilenet_v2", "xception", "fft", "autoencoder"):
        report = json.loads((reports / f"matrix-{label}-logreg" / "report.json").read_text())
        per_resolution = [m for m in report["matrices"] if m["title"].startswith("generalisation at")]
        mean = np.nanmean([np.nanmean(np.array(m["values"], dtype=float)) for m in per_resolution])
        assert f"{label} {mean:.3f}" in reading


def test_cli_prints_the_best_matrix(tiny_runs):
    output = tiny_runs["first"].output
    assert "generalisation at 32 (roc_auc)" in output and "cross-resolution (real vs all fakes) (roc_auc)" in output
    assert re.search(r"photos vs ddpm-inpaint(\s+\d\.\d{3}){5}", output)


def test_second_run_extracts_and_trains_nothing(tiny_runs):
    result, record = tiny_runs["second"], tiny_runs["second_record"]
    assert result.exit_code == 0, result.output
    assert record["totals"]["new_feature_rows"] == 0
    assert record["totals"]["stages_computed"] == 0
    assert [entry for entry in record["stages"] if entry["action"] != "reused"] == []
    assert not any(entry.get("trained") or entry.get("new_images") for entry in record["stages"] if entry["stage"] == "generator")
    assert record["totals"]["reused_feature_rows"] == tiny_runs["first_record"]["totals"]["new_feature_rows"]
    assert len(record["stages"]) == len(tiny_runs["first_record"]["stages"])
    models = tiny_runs["workspace"] / "models"
    assert {p.name: p.stat().st_mtime_ns for p in models.glob("*")} == tiny_runs["model_times"]
    assert "0 stages computed" in result.output
    assert "audit: reused" in result.output and "audit: reused" not in tiny_runs["first"].output


def test_changed_trials_retune_the_studies_and_reuse_everything_upstream(tmp_path, tiny_runs):
    """Moving the workspace and asking for more trials re-tunes the studies only; features and generators are reused."""
    import shutil

    from tests.experiment.conftest import TINY, invoke, run_record, write_experiment

    workspace = tmp_path / "moved"
    shutil.copytree(tiny_runs["workspace"], workspace)
    experiment = write_experiment(tmp_path, TINY.replace("trials = 2", "trials = 3"))
    result = invoke("run", str(experiment), "--workspace", str(workspace), "--quiet")
    assert result.exit_code == 0, result.output
    computed = {(entry["stage"], entry["name"]) for entry in run_record(workspace)["stages"] if entry["action"] == "computed"}
    assert computed == {("study", f"{x}-32-{p}") for x in ("fft", "autoencoder") for p in ("logreg", "svm-linear")}
    assert all(entry["trials_in_study"] == 5 for entry in run_record(workspace)["stages"] if entry["stage"] == "study")


def test_the_autoencoder_trained_on_the_train_share_of_the_reals(tiny_runs):
    """fdt run trains the autoencoder on the train share of the assignment its studies and matrices use.

    Checked without the splitting code: the share's size follows the documented cut (a group
    goes to the part its midpoint falls in), and the studies' own leak check, which reads this
    record, accepts the run's seed (the next test shows it refuses another).
    """
    import json

    from fdt.features_store.store import FeatureStore
    from fdt.grouping import record_path
    from fdt.pipelines.evaluation import load_condition, tune_condition
    from fdt.pipelines.specs import get_spec

    workspace = tiny_runs["workspace"]
    record = json.loads(record_path(workspace / "models" / "autoencoder.pt").read_text(encoding="utf-8"))
    assert record["split"] == {"seed": 0, "fractions": [0.8, 0.1, 0.1]}
    data = load_condition(FeatureStore(workspace / "features_store"), "autoencoder", "32", ["photos"], ["dcgan"])
    real_groups = sorted(set(data.groups[data.y == 0]))
    in_train = sum((i + 0.5) / len(real_groups) < 0.8 for i in range(len(real_groups)))
    assert set(record["groups"]) < set(real_groups) and len(record["groups"]) == in_train
    assert set(record["images"]) <= set(data.sha256[data.y == 0])
    honest = tune_condition(data, get_spec("logreg"), n_trials=1, cv=2, random_state=0)
    assert not any("LEAK" in note for note in honest.notes)


def test_scoring_the_autoencoder_on_its_training_groups_is_refused(tiny_runs, tmp_path):
    from fdt.features_store.store import FeatureStore
    from fdt.pipelines.evaluation import load_condition, tune_condition
    from fdt.pipelines.leakage import TrainedRowsError
    from fdt.pipelines.specs import get_spec

    workspace = tiny_runs["workspace"]
    data = load_condition(FeatureStore(workspace / "features_store"), "autoencoder", "32", ["photos"], ["dcgan"])
    with pytest.raises(TrainedRowsError, match="trained on \\(seed 0, split 0.8/0.1/0.1\\); use the seed and split"):
        tune_condition(data, get_spec("logreg"), n_trials=1, cv=2, random_state=3)
    forced = tune_condition(data, get_spec("logreg"), n_trials=1, cv=2, random_state=3, allow_trained_groups=True)
    assert any(note.startswith("**LEAK:") for note in forced.notes)
    honest = tune_condition(data, get_spec("logreg"), n_trials=1, cv=2, random_state=0)
    assert not any("LEAK" in note for note in honest.notes) and any("optimistic" in note for note in honest.notes)
    # the CLI says it in one line with exit code 2
    from tests.experiment.conftest import invoke

    result = invoke("tune", "--extractor", "autoencoder", "--resolution", "32", "--pipeline", "logreg", "--real", "photos", "--fake", "dcgan",
                    "--trials", "1", "--cv", "2", "--seed", "3", "--store", str(workspace / "features_store"), "--models", str(tmp_path / "m"), "--no-progress")
    assert result.exit_code == 2 and "trained on (seed 0" in result.output and "Traceback" not in result.output


def test_an_extractor_is_extracted_only_at_the_resolutions_its_stages_use(tmp_path):
    from tests.experiment.conftest import invoke, run_record, write_experiment

    text = """
[experiment]
resolutions = [16, "crop:8"]
workers = 0

[images.photos]
corpus = "bundled"
crops = 24
size = 16

[images.noise]
folder = "noise"
label = "fake"

[extractors.fft]
params = { size = 8 }

[extractors.dct]
params = { size = 8 }

[extractors.unused]
extractor = "fft"
params = { size = 4 }

[[studies]]
pipelines = ["logreg"]
extractors = ["fft"]
trials = 0
cv = 2

[[studies]]
pipelines = ["logreg"]
extractors = ["dct"]
resolutions = ["crop:8"]
trials = 0
cv = 2
"""
    experiment = write_experiment(tmp_path, text)
    result = invoke("run", str(experiment), "--workspace", str(tmp_path / "ws"), "--quiet")
    assert result.exit_code == 0, result.output
    extract = {(e["name"], e["resolution"]) for e in run_record(tmp_path / "ws")["stages"] if e["stage"] == "extract"}
    # dct only where its study needs it; an extractor no stage uses at every resolution of [experiment]
    assert extract == {("fft", "16"), ("fft", "crop:8"), ("dct", "crop:8"), ("unused", "16"), ("unused", "crop:8")}
