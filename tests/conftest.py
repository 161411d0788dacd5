"""Shared test setup: no network, no real weight caches, tiny images written by the tests themselves."""

from __future__ import annotations

import os

# Tests never reach a hub: published-weights lookups must fail fast with their message.
os.environ["FDT_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402


def write_images(folder: Path, count: int, size: int = 32, seed: int = 0, fmt: str = "png") -> list[Path]:
    """``count`` random-noise RGB images of ``size`` px; distinct seeds give distinct files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        path = folder / f"img{index:04d}.{fmt}"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def install_plugin(site: Path, package: str, module: str, entry_points: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package installed as pip leaves it (``<package>/__init__.py`` and a ``.dist-info`` with ``entry_points``), on ``sys.path``."""
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text(module)
    info = site / f"{package}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package.replace('_', '-')}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    monkeypatch.syspath_prepend(str(site))
    return site


@pytest.fixture
def image_tree(tmp_path: Path) -> Path:
    """``data/real`` (12 images) and ``data/fake`` (12 images), 32 px."""
    root = tmp_path / "data"
    write_images(root / "real", 12, seed=1)
    write_images(root / "fake", 12, seed=2)
    return root


@pytest.fixture(autouse=True)
def _private_torch_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty TORCH_HOME per test, so no test depends on weights a developer happens to have cached."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))


# --------------------------------------------------------------------------- no process left behind

_SESSION_MARK = f"FDT_TEST_SESSION={os.getpid()}-{os.urandom(4).hex()}"
os.environ["FDT_TEST_SESSION"] = _SESSION_MARK.partition("=")[2]  # inherited by every process a test starts


def session_processes() -> list[tuple[int, str]]:
    """Live processes (pid, command line) started by this test session, however deep, orphans included.

    Children inherit the session's environment mark, so a DataLoader worker whose
    parent was SIGKILLed (and which was re-parented to init) is still found.
    """
    found = []
    mark = _SESSION_MARK.encode()
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state, parent = (entry / "stat").read_text().rpartition(")")[2].split()[:2]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if state == "Z":  # a zombie holds no memory; its parent (or init) reaps it
            continue
        if int(parent) == os.getpid() and "resource_tracker" in command:  # this process's own tracker: it ends when pytest does
            continue
        found.append((int(entry.name), command))
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any test left a process behind (a leaked DataLoader worker, a Dask scheduler)."""
    import sys
    import time

    if "joblib.externals.loky" in sys.modules:
        # joblib keeps its loky worker pool warm between calls on purpose (idle workers exit after 300 s);
        # shut it down as a program ending would, then check that nothing else was left
        from joblib.externals.loky import reusable_executor

        if reusable_executor._executor is not None:
            reusable_executor._executor.shutdown(wait=True, kill_workers=True)
    if "fdt.pipelines.folds" in sys.modules:  # the trial-budget fold workers are kept warm the same way (60 s idle)
        sys.modules["fdt.pipelines.folds"].stop_workers()
    deadline = time.monotonic() + 15
    while (left := session_processes()) and time.monotonic() < deadline:
        time.sleep(0.5)
    if left:
        listing = "; ".join(f"pid {pid}: {command[:120]}" for pid, command in left)
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(f"processes left behind by the tests: {listing}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
