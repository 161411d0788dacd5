"""Several `fdt tune` workers on one Optuna study in a real PostgreSQL server (loopback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from fdt.data import ImageRecord
from fdt.features_store import ExtractorKey, FeatureStore


def _synthetic_store(root: Path) -> None:
    rng = np.random.default_rng(0)
    n = 80
    labels = np.repeat([0, 1], n // 2)
    X = rng.normal(size=(n, 6)).astype(np.float32) + labels[:, None] * 0.8
    records = [ImageRecord(f"/x/{i}.png", "coco" if y == 0 else "dcgan", int(y), f"g{i // 2}") for i, y in enumerate(labels)]
    FeatureStore(root).write(ExtractorKey("fft", {"size": 2}, "none", "64"), [f"{i:064x}" for i in range(n)], X, records)


def _tune(store: Path, models: Path, url: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "fdt", "tune", "--extractor", "fft", "--resolution", "64", "--pipeline", "logreg",
        "--real", "coco", "--fake", "dcgan", "--cv", "3", "--store", str(store), "--models", str(models),
        "--storage", url, "--no-progress", *extra,
    ]


def test_two_concurrent_workers_share_one_study(tmp_path: Path, postgres_url: str):
    store = tmp_path / "store"
    _synthetic_store(store)
    workers = [
        subprocess.Popen(_tune(store, tmp_path / f"models{i}", postgres_url, "--trials", "6"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err

    import optuna

    cards = [json.loads(next((tmp_path / f"models{i}").glob("*.json")).read_text()) for i in range(2)]
    assert cards[0]["study"]["name"] == cards[1]["study"]["name"]
    study = optuna.load_study(study_name=cards[0]["study"]["name"], storage=postgres_url)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(study.trials) == len(complete) == 12  # no trial lost
    assert sorted(t.number for t in complete) == list(range(12))
    assert len({json.dumps(t.params, sort_keys=True) for t in complete}) == 12  # the workers did not repeat each other
    assert max(card["trials_in_study"] for card in cards) == 12

    statuses = [
        subprocess.run(_tune(store, tmp_path / f"models{i}", postgres_url, "--status"), capture_output=True, text=True, check=True).stdout
        for i in range(2)
    ]
    assert "12 complete" in statuses[0]
    assert statuses[0] == statuses[1]
    assert f"best: trial {study.best_trial.number}," in statuses[0]
