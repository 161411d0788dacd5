"""The scale options through the CLI: trial counts in the card and --status, the time estimate line, --jobs in matrices."""

import json

import numpy as np
from click.testing import CliRunner

from fdt.cli import cli
from fdt.pipelines.matrix import generalisation_matrices
from fdt.pipelines.specs import get_spec

TUNE = ["tune", "--extractor", "fft", "--real", "coco", "--fake", "inpaint,sd21", "--cv", "3", "--no-progress"]


def invoke(store_root, *args):
    return CliRunner().invoke(cli, [*args, "--store", str(store_root)])


def test_tune_records_counts_solver_and_settings_and_status_shows_counts(tmp_path, store_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(store_root, *TUNE, "--pipeline", "svm-linear", "--trials", "3", "--pruner", "median", "--jobs", "2")
    assert result.exit_code == 0, result.output
    assert "trials: 3 complete, 0 pruned; final fit converged" in result.output
    card = json.loads((tmp_path / "models" / "fft-native-svm-linear-coco-vs-inpaint+sd21.json").read_text())
    assert card["trials"]["complete"] == 3 and card["trials"]["timed_out"] == 0
    assert card["tuning"] == {"pruner": "median", "fidelity": None, "n_jobs": 2, "trial_timeout": 600.0}
    assert card["solver"] == {"chosen": {"dual": False}, "refit_converged": True}  # ~100 rows of 6 features: primal
    status = invoke(store_root, *TUNE, "--pipeline", "svm-linear", "--status")
    assert status.exit_code == 0 and "trials: 3 complete, 0 pruned" in status.output


def test_time_estimate_warns_for_a_quadratic_spec_only(tmp_path, store_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    slow = invoke(store_root, *TUNE, "--pipeline", "svm-rbf", "--trials", "1", "--time-warning", "0.000001")
    assert slow.exit_code == 0, slow.output
    lines = [line for line in slow.output.splitlines() if line.startswith("estimate: svm-rbf on")]
    assert len(lines) == 1 and "scalable specs: svm-nystroem" in lines[0]
    linear = invoke(store_root, *TUNE, "--pipeline", "logreg", "--trials", "1", "--time-warning", "0.000001")
    assert linear.exit_code == 0 and "estimate:" not in linear.output
    quiet = invoke(store_root, *TUNE, "--pipeline", "svm-rbf", "--trials", "1")
    assert quiet.exit_code == 0 and "estimate:" not in quiet.output  # well under the 30-minute default


def test_fidelity_without_a_pruner_is_one_line_exit_2(tmp_path, store_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(store_root, *TUNE, "--pipeline", "logreg", "--trials", "1", "--fidelity", "0.5", "--pruner", "none")
    assert result.exit_code == 2 and "--fidelity needs a pruner" in result.output
    assert not (tmp_path / "models").exists()


def test_matrix_cells_in_parallel_equal_serial(featuresets):
    spec = get_spec("logreg")
    runs = [
        generalisation_matrices(featuresets, ["coco"], ["inpaint", "sd21"], spec, n_trials=2, cv=3, n_jobs=jobs, pruner="median")
        for jobs in (1, 2)
    ]
    assert runs[0].best_params == runs[1].best_params
    for one, two in zip(runs[0].matrices, runs[1].matrices):
        np.testing.assert_array_equal(one.values, two.values)


def test_report_matrix_jobs_two_equals_jobs_one_and_leaves_no_worker(tmp_path, store_root):
    """``--jobs 2`` runs as its own ``fdt`` process (with a trial budget, so each cell's worker starts fold workers
    too): once it has exited, none of the processes it started may still live."""
    import subprocess
    import sys
    import time

    from tests.conftest import session_processes

    matrix = ["report", "matrix", "--extractor", "fft", "--real", "coco", "--fake", "inpaint,sd21", "--trials", "2", "--cv", "3",
              "--pruner", "median", "--no-progress", "--store", str(store_root)]
    serial = invoke(store_root, *matrix, "--out", str(tmp_path / "jobs1"), "--jobs", "1", "--trial-timeout", "0")
    assert serial.exit_code == 0, serial.output
    before = {pid for pid, _ in session_processes()}
    command = [sys.executable, "-m", "fdt", *matrix, "--out", str(tmp_path / "jobs2"), "--jobs", "2", "--trial-timeout", "60"]
    parallel = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert parallel.returncode == 0, parallel.stderr
    deadline = time.monotonic() + 10
    while (left := [p for p in session_processes() if p[0] not in before]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, left
    one, two = (json.loads((tmp_path / f"jobs{jobs}" / "report.json").read_text()) for jobs in (1, 2))
    assert one["best_params"] == two["best_params"] and len(one["best_params"]) == 2
    assert [m["values"] for m in one["matrices"]] == [m["values"] for m in two["matrices"]]
    assert [m["intervals"] for m in one["matrices"]] == [m["intervals"] for m in two["matrices"]]
