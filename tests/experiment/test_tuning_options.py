"""``fdt run`` passes the tuning options of ``[[studies]]`` and ``[[matrices]]`` (jobs, pruner, trial_timeout, fidelity) through."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import write_images
from tests.experiment.conftest import invoke

EXPERIMENT = """
[experiment]
name = "tuning options"
seed = 0
resolutions = ["native"]
workers = 0

[images.pictures]
folder = "data"
real = ["real"]

[extractors.fft]
params = { size = 8 }

[[studies]]
pipelines = ["logreg"]
trials = 3
cv = 2
{study}

[[matrices]]
pipeline = "logreg"
trials = 2
cv = 2
{matrix}
"""

OPTIONS = 'jobs = 2\npruner = "median"\ntrial_timeout = 45\nfidelity = 0.5'


def experiment(folder: Path, study: str = OPTIONS, matrix: str = OPTIONS) -> Path:
    for source, seed in (("real", 1), ("fake", 2)):  # one fake source: the metadata audit every run makes stays short
        write_images(folder / "data" / source, 16, size=16, seed=seed)
    path = folder / "experiment.toml"
    path.write_text(EXPERIMENT.replace("{study}", study).replace("{matrix}", matrix), encoding="utf-8")
    return path


def test_run_passes_tuning_options_to_tuning_and_matrices(tmp_path, monkeypatch):
    import fdt.pipelines.evaluation as evaluation
    import fdt.pipelines.matrix as matrix

    seen: dict[str, dict] = {}

    def spy(name, function):
        def call(*args, **kwargs):
            seen[name] = dict(kwargs)
            # what the options do is tested in tests/pipelines; here no worker processes, to stay fast
            return function(*args, **{**kwargs, "n_jobs": 1, "trial_timeout": None})

        return call

    monkeypatch.setattr(evaluation, "tune_condition", spy("tune", evaluation.tune_condition))
    monkeypatch.setattr(matrix, "generalisation_matrices", spy("matrix", matrix.generalisation_matrices))
    workspace = tmp_path / "ws"
    result = invoke("run", str(experiment(tmp_path)), "--workspace", str(workspace), "--quiet")
    assert result.exit_code == 0, result.output
    wanted = {"n_jobs": 2, "pruner": "median", "trial_timeout": 45.0, "fidelity": 0.5}
    assert {key: seen["tune"][key] for key in wanted} == wanted
    assert {key: seen["matrix"][key] for key in wanted} == wanted
    card = json.loads((workspace / "models" / "fft-native-logreg.json").read_text())
    assert (card["tuning"]["pruner"], card["tuning"]["fidelity"]) == ("median", 0.5)
    report = json.loads((workspace / "reports" / "matrix-fft-logreg" / "report.json").read_text())
    assert (report["settings"]["tuning"]["pruner"], report["settings"]["tuning"]["fidelity"]) == ("median", 0.5)


def test_run_defaults_are_fdt_tunes(tmp_path):
    from fdt.experiment.config import MatrixConfig, StudyConfig

    defaults = {"n_jobs": 1, "pruner": "wilcoxon", "trial_timeout": 600.0, "fidelity": None}
    assert StudyConfig(("logreg",)).tuning() == MatrixConfig("logreg").tuning() == defaults


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ('pruner = "nope"', r"\[\[studies\]\] #1: pruner must be one of wilcoxon, median, halving or none, not 'nope'"),
        ('pruner = "none"\nfidelity = 0.5', r"\[\[studies\]\] #1: fidelity needs a pruner"),
        ("jobs = 0", r"\[\[studies\]\] #1: jobs must be a positive integer, not 0"),
        ("trial_timeout = -1", r"\[\[studies\]\] #1: trial_timeout must be seconds >= 0"),
        ("fidelity = 1.5", r"\[\[studies\]\] #1: fidelity must be a share in \(0, 1\), not 1.5"),
    ],
    ids=["pruner", "fidelity-without-pruner", "jobs", "timeout", "fidelity-range"],
)
def test_bad_tuning_options_fail_before_any_stage(tmp_path, options, message):
    import re

    workspace = tmp_path / "ws"
    result = invoke("run", str(experiment(tmp_path, study=options, matrix="")), "--workspace", str(workspace), "--quiet")
    assert result.exit_code == 2
    assert re.search(message, result.output.strip()), result.output
    assert not workspace.exists()
