"""Sharded extraction: N concurrent jobs into one store equal one run; Dask equals local."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fdt.data import load_image_set
from fdt.features_store import FeatureStore
from fdt.features_store.extraction import extract_records
from fdt.features_store.sharding import parse_shard, shard_of
from fdt.features_store.verify import verify_store
from tests.conftest import write_images
from tests.sync import start_fdt_stopping_after_shards, wait_for_shards


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    write_images(tmp_path / "data" / "real", 40, size=24, seed=11)
    write_images(tmp_path / "data" / "fake", 40, size=24, seed=12)
    return tmp_path / "data"


def _command(data: Path, store: Path, shard: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "fdt", "extract", str(data), "--store", str(store), "--shard", shard, "-q", *extra]


def _sorted(store: Path, extractor: str, resolution: str):
    data = FeatureStore(store).load(extractor, resolution)
    order = np.argsort(data.sha256)
    return data.sha256[order], data.X[order], data.sources[order]


def test_shards_are_disjoint_and_cover_everything():
    import hashlib

    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(300)]
    shards = np.array([shard_of(h, 3) for h in hashes])
    assert sorted(set(shards.tolist())) == [0, 1, 2]
    assert all(60 < np.sum(shards == s) < 140 for s in range(3))  # roughly even
    assert [shard_of(h, 3) for h in hashes] == shards.tolist()  # deterministic


@pytest.mark.parametrize("text", ["3/3", "-1/2", "1", "a/b", "0/0"])
def test_bad_shard_spec(text):
    with pytest.raises(ValueError, match="I/N"):
        parse_shard(text)


def test_three_parallel_shards_equal_one_run(corpus: Path, tmp_path: Path):
    sharded = tmp_path / "sharded"
    jobs = [subprocess.Popen(_command(corpus, sharded, f"{i}/3", "-e", "fft", "-p", "size=8", "--workers", "0"), stdout=subprocess.PIPE, text=True) for i in range(3)]
    outputs = [job.communicate(timeout=120)[0] for job in jobs]
    assert all(job.returncode == 0 for job in jobs)
    assert sum(int(out.split(" new rows")[0].split()[-1]) for out in outputs) == 80

    single = tmp_path / "single"
    extract_records(load_image_set(corpus), "fft", {"size": 8}, "native", single, workers=0, progress=False)
    sha_a, X_a, src_a = _sorted(sharded, "fft", "native")
    sha_b, X_b, src_b = _sorted(single, "fft", "native")
    assert len(set(sha_a)) == len(sha_a) == 80
    assert sha_a.tolist() == sha_b.tolist() and src_a.tolist() == src_b.tolist()
    np.testing.assert_array_equal(X_a, X_b)
    report = verify_store(FeatureStore(sharded))
    assert report.ok and report.rows == 80


def test_the_same_shard_twice_at_once_is_refused(corpus: Path, tmp_path: Path):
    from fdt.features_store.featureset import ExtractorKey
    from fdt.features_store.sharding import claim_name

    store = FeatureStore(tmp_path / "s")
    key = ExtractorKey("fft", {"size": 8, "profile": "none", "grid": "band-mean"}, "none", "native")
    with store.writer(shared=True) as writer:
        writer.claim(claim_name(key.id, (1, 3)))
        result = subprocess.run(_command(corpus, store.root, "1/3", "-e", "fft", "-p", "size=8"), capture_output=True, text=True)
        assert result.returncode == 2 and "shard-1-of-3 is already being written by pid" in result.stderr
        assert subprocess.run(_command(corpus, store.root, "2/3", "-e", "fft", "-p", "size=8", "--workers", "0"), capture_output=True).returncode == 0
        unsharded = subprocess.run([sys.executable, "-m", "fdt", "extract", str(corpus), "-e", "fft", "--store", str(store.root)], capture_output=True, text=True)
        assert unsharded.returncode == 2 and "being written by sharded extraction jobs" in unsharded.stderr


def test_a_killed_shard_rerun_completes_the_set(corpus: Path, tmp_path: Path):
    store = tmp_path / "s"
    cnn = ["-e", "mobilenet_v2", "-p", "weights=random", "-p", "input_size=64", "--batch-size", "2", "--flush-every", "2", "--workers", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for index in (0, 2):
        subprocess.run(_command(corpus, store, f"{index}/3", *cnn), check=True, env=env, capture_output=True)
    victim, shards = start_fdt_stopping_after_shards(_command(corpus, store, "1/3", *cnn)[3:], 2, env)
    wait_for_shards(victim, shards, 2)  # two shards of this job are in place; it holds there
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert len(FeatureStore(store).load("mobilenet_v2", "native")) < 80
    assert verify_store(FeatureStore(store)).ok
    subprocess.run(_command(corpus, store, "1/3", *cnn), check=True, env=env, capture_output=True)
    sha, _, _ = _sorted(store, "mobilenet_v2", "native")
    assert len(sha) == len(set(sha)) == 80


def test_dask_local_cluster_equals_local_extraction(corpus: Path, tmp_path: Path):
    from distributed import Client, LocalCluster

    from fdt.features_store.distributed import extract_on_dask

    records = load_image_set(corpus)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        summary = extract_on_dask(records, "fft", {"size": 8}, "16", tmp_path / "dask", client, progress=False)
    assert summary.new_rows == 80 and summary.failed == 0
    extract_records(records, "fft", {"size": 8}, "16", tmp_path / "local", workers=0, progress=False)
    sha_a, X_a, _ = _sorted(tmp_path / "dask", "fft", "16")
    sha_b, X_b, _ = _sorted(tmp_path / "local", "fft", "16")
    assert sha_a.tolist() == sha_b.tolist()
    np.testing.assert_array_equal(X_a, X_b)
    assert verify_store(FeatureStore(tmp_path / "dask")).ok


def test_a_failing_dask_shard_surfaces_its_error_and_corrupts_nothing(corpus: Path, tmp_path: Path):
    """Shard 1 of 2 fails in its worker process (another job holds its claim): the client gets that error,
    the store verifies, the workers end with the cluster, and a re-run completes the set."""
    from distributed import Client, LocalCluster

    from fdt.features_store.distributed import extract_on_dask
    from fdt.features_store.errors import StoreLockedError
    from fdt.features_store.featureset import ExtractorKey
    from fdt.features_store.sharding import claim_name
    from fdt.data import sha256_file
    from tests.sync import wait_until_exited

    records = load_image_set(corpus)
    store = FeatureStore(tmp_path / "s")
    key = ExtractorKey("fft", {"size": 8, "profile": "none", "grid": "band-mean"}, "none", "native")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        workers = list(client.run(os.getpid).values())
        with store.writer(shared=True) as writer:
            writer.claim(claim_name(key.id, (1, 2)))
            with pytest.raises(StoreLockedError, match="shard-1-of-2 is already being written by pid"):
                extract_on_dask(records, "fft", {"size": 8}, "native", store.root, client, shards=2, progress=False)
        report = verify_store(store)  # the error came once the healthy shard had finished: its rows are all there
        assert report.ok, report.errors
        stored = FeatureStore(store.root).load("fft", "native").sha256
        assert sorted(stored) == sorted(h for h in map(sha256_file, (r.path for r in records)) if shard_of(h, 2) == 0)
        summary = extract_on_dask(records, "fft", {"size": 8}, "native", store.root, client, shards=2, progress=False)
        assert summary.new_rows + report.rows == 80 and summary.failed == 0
    assert wait_until_exited(workers, timeout=60) == []
    extract_records(records, "fft", {"size": 8}, "native", tmp_path / "local", workers=0, progress=False)
    sha_a, X_a, _ = _sorted(store.root, "fft", "native")
    sha_b, X_b, _ = _sorted(tmp_path / "local", "fft", "native")
    assert len(set(sha_a)) == len(sha_a) == 80 and sha_a.tolist() == sha_b.tolist()
    np.testing.assert_array_equal(X_a, X_b)
    assert verify_store(store).ok


def test_a_shard_job_waits_for_another_jobs_compaction(corpus: Path, tmp_path: Path, monkeypatch):
    import fcntl
    from concurrent.futures import ThreadPoolExecutor

    from fdt.features_store.store import _COMPACTING
    from tests.sync import LockWait

    store = tmp_path / "s"
    store.mkdir()
    wait = LockWait().install(monkeypatch)
    with open(store / ".lock", "a+") as lock, ThreadPoolExecutor(1) as pool:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write(f"{_COMPACTING}pid 1 on elsewhere since now")
        lock.flush()
        job = pool.submit(extract_records, load_image_set(corpus), "fft", {"size": 4}, "native", store, workers=0, progress=False, shard=(0, 2))
        assert wait.waiting.wait(60)  # the shard job found a compaction under way and waits (its --wait is 0)
        assert not job.done()
        fcntl.flock(lock, fcntl.LOCK_UN)
        wait.released.set()
        assert job.result(timeout=120).new_rows > 0
