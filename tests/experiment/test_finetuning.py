"""``[models.NAME]`` in ``fdt run``: a CNN fine-tuned on the train share, read back as features and as its own score.

A tiny timm test network (random initial weights) on 32 px images: real images
up-sampled smoothly, two fake sources up-sampled blockily and from noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fdt.data import load_image_set, sha256_file
from fdt.experiment.finetuning import extends_checkpoint
from fdt.grouping import assign_groups, group_of
from tests.experiment.conftest import invoke, run_record

EXPERIMENT = """
[experiment]
name = "tiny fine-tuning"
seed = 0
resolutions = ["native"]
split = "60/20/20"
batch_size = 16
workers = 0

[images.data]
folder = "data"
real = ["real"]

[models.det]
backbone = "test_resnet"
weights = "random"
input_size = 32
epochs = {epochs}
batch_size = 8
lr = 0.03
patience = 0
val_share = 0.25
fakes = ["blocky"]

[extractors.det-logit]
extractor = "timm"
model = "det"
params = {{ model = "test_resnet", output = "logit" }}

[extractors.det-features]
extractor = "timm"
model = "det"
params = {{ model = "test_resnet" }}

[[studies]]
extractors = ["det-logit"]
pipelines = ["score"]
trials = 0
cv = 2

[[studies]]
extractors = ["det-features"]
pipelines = ["logreg"]
trials = 0
cv = 2

[[matrices]]
extractors = ["det-features"]
pipeline = "logreg"
cv = 2
"""


def _write_data(root: Path) -> None:
    rng = np.random.default_rng(0)
    for source, count in (("real", 30), ("blocky", 30), ("noise", 30)):
        (root / source).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            if source == "noise":
                image = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
            else:
                small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
                image = small.resize((32, 32), Image.Resampling.BILINEAR if source == "real" else Image.Resampling.NEAREST)
            image.save(root / source / f"{index:03d}.png")


def _experiment(folder: Path, epochs: int = 2, text: str = EXPERIMENT) -> Path:
    path = folder / "experiment.toml"
    path.write_text(text.replace("{epochs}", str(epochs)).replace("{{", "{").replace("}}", "}"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The experiment run twice into one workspace."""
    root = tmp_path_factory.mktemp("finetune-run")
    _write_data(root / "data")
    workspace = root / "ws"
    results = {}
    for name in ("first", "second"):
        result = invoke("run", str(_experiment(root)), "--workspace", str(workspace), "--quiet")
        assert result.exit_code == 0, result.output
        results[name] = run_record(workspace)
    results["report"] = json.loads((workspace / "reports" / "matrix-det-features-logreg" / "report.json").read_text())
    results["summary"] = (workspace / "reports" / "summary.md").read_text()
    return {"root": root, "workspace": workspace, **results}


def _stage(record: dict, stage: str, name: str) -> dict:
    (entry,) = [s for s in record["stages"] if s["stage"] == stage and s["name"] == name]
    return entry


def test_the_model_trains_on_the_train_share_of_the_experiments_assignment_only(runs):
    entry = _stage(runs["first"], "finetune", "det")
    assert entry["action"] == "computed" and entry["random_initial_weights"] and entry["start_weights"].startswith("random")
    assert (entry["real"], entry["fakes"]) == (["real"], ["blocky"])
    training = json.loads(Path(entry["training_record"]).read_text())
    assert training["split"] == {"seed": 0, "fractions": [0.6, 0.2, 0.2]}
    # the assignment studies and matrices use: every source of the experiment, its seed and shares
    records = load_image_set(runs["root"] / "data", real_sources=["real"])
    hashes = [sha256_file(r.path) for r in records]
    groups = [group_of(r.group, h) for r, h in zip(records, hashes)]
    assignment = assign_groups(groups, [r.source for r in records], (0.6, 0.2, 0.2), 0, [r.label for r in records])
    trained_sources = {r.source for r, h in zip(records, hashes) if h in set(training["images"])}
    assert training["groups"] and all(assignment[g] == "train" for g in training["groups"])
    assert trained_sources == {"real", "blocky"}  # not the noise source the model was not given
    train_images = {h for r, h, g in zip(records, hashes, groups) if assignment[g] == "train" and r.source in ("real", "blocky")}
    assert set(training["images"]) == train_images
    files = [Path(p).name for p in entry["curves"]]
    assert "det.curves.csv" in files and "det.curves.png" in files
    assert Path(entry["model"]) == runs["workspace"] / "models" / "det" / "det.pt"


def test_score_and_feature_studies_produce_reports_on_unseen_groups(runs):
    score = _stage(runs["first"], "study", "det-logit-native-score")
    head = _stage(runs["first"], "study", "det-features-native-logreg")
    for entry in (score, head):
        assert 0.0 <= entry["test_roc_auc"] <= 1.0 and Path(entry["model"]).is_file()
    logit = [s for s in runs["first"]["stages"] if s["stage"] == "extract" and s["name"] == "det-logit"]
    assert logit[0]["weights"].startswith("random:finetuned:sha256:") and "output" in logit[0]["key"]


def test_a_rerun_reuses_the_model(runs):
    assert _stage(runs["second"], "finetune", "det")["action"] == "reused"
    assert all(s["action"] == "reused" for s in runs["second"]["stages"] if s["stage"] in ("finetune", "extract", "study", "matrix"))


def test_only_more_epochs_continue_a_checkpoint():
    stamp = {"config": {"epochs": 2, "finetune_epochs": 0, "lr": 0.03}, "sources": ["real", "blocky"], "data": "d"}
    assert extends_checkpoint(stamp, {**stamp, "config": {**stamp["config"], "epochs": 3}})
    assert extends_checkpoint(stamp, {**stamp, "config": {**stamp["config"], "finetune_epochs": 2}})
    assert not extends_checkpoint(stamp, {**stamp, "config": {**stamp["config"], "epochs": 1}})
    assert not extends_checkpoint(stamp, {**stamp, "config": {**stamp["config"], "epochs": 3, "lr": 0.01}})
    assert not extends_checkpoint(stamp, {**stamp, "data": "other images"})


def test_matrix_marks_cells_testing_a_source_the_network_trained_on(runs):
    report = runs["report"]
    assert report["network_sources"] == {"native": ["blocky", "real"]}
    (matrix,) = report["matrices"]
    flags = {(cell["train"], cell["test"]): cell["flags"] for row in matrix["cells"] for cell in row}
    seen = "not a cross-generator result: the extractor's network trained on this fake source (on other groups)"
    assert seen in flags["real vs noise", "real vs blocky"]
    assert seen not in flags["real vs blocky", "real vs noise"] and seen not in flags["real vs blocky", "real vs blocky"]
    markdown = (runs["workspace"] / "reports" / "matrix-det-features-logreg" / "report.md").read_text()
    assert "§" in markdown and "trained on sources blocky, real (train-share groups); off-diagonal cells testing blocky" in markdown
    summary = runs["summary"]
    assert "## Fine-tuned detectors" in summary and "RANDOM initial weights" in summary and "real vs blocky" in summary
    assert "real vs noise → real vs blocky is not a cross-generator result" in summary  # and left out of the generalisation reading


def test_changing_a_model_key_retrains_it_and_its_features_get_new_keys(runs):
    changed = EXPERIMENT.replace("lr = 0.03", "lr = 0.01")
    result = invoke("run", str(_experiment(runs["root"], 2, changed)), "--workspace", str(runs["workspace"]), "--quiet")
    assert result.exit_code == 0, result.output
    record = run_record(runs["workspace"])
    assert _stage(record, "finetune", "det")["action"] == "computed"
    # the weights identity is the file's content hash: another model file, other feature keys, new rows
    old = {s["weights"] for s in runs["second"]["stages"] if s["stage"] == "extract"}
    new = {s["weights"] for s in record["stages"] if s["stage"] == "extract"}
    assert old.isdisjoint(new) and all(s["new_rows"] == 90 for s in record["stages"] if s["stage"] == "extract")


@pytest.mark.parametrize(
    "old, new, message",
    [
        ('model = "det"\nparams = {{ model = "test_resnet", output', 'model = "nope"\nparams = {{ model = "test_resnet", output', "model = 'nope' names no [models.nope] table"),
        ('extractor = "timm"\nmodel = "det"\nparams = {{ model = "test_resnet" }}', 'extractor = "mobilenet_v2"\nmodel = "det"\nparams = {{}}', "is read by the timm extractor"),
        ('params = {{ model = "test_resnet" }}', 'params = {{ model = "test_resnet", weights = "random" }}', "params.weights is set by fdt"),
        ('params = {{ model = "test_resnet" }}', 'params = {{ model = "resnet18" }}', "not by timm (model 'resnet18')"),
        ('backbone = "test_resnet"', 'backbone = "no_such_net"', "[models.det]: unknown backbone"),
        ('backbone = "test_resnet"\nweights = "random"', 'backbone = "test_resnet"\nweights = "no-such-file.pt"', "[models.det]: weights must be"),
        ("fakes = [\"blocky\"]", "fakes = [\"real\"]", "[models.det] fakes: source 'real' is labelled real"),
        ("epochs = {epochs}", "epochs = 0", "[models.det]: epochs"),
        ("epochs = {epochs}", "epoch = 2", "unknown key 'epoch' in [models.det]"),
        ('params = {{ model = "test_resnet" }}', 'params = {{ model = "test_resnet", input = "spectrum" }}', "fine-tuned on pixels input, not params.input = 'spectrum'"),
    ],
)
def test_bad_model_references_are_one_line_errors(tmp_path, old, new, message):
    _write_data(tmp_path / "data") if not (tmp_path / "data").exists() else None
    assert old in EXPERIMENT
    path = _experiment(tmp_path, 2, EXPERIMENT.replace(old, new, 1))
    result = invoke("run", str(path), "--workspace", str(tmp_path / "ws"), "--check")
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "ws").exists()
