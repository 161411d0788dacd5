"""`fdt extract` end to end: reuse, bad input, kills, weights, locking, and the Python API after it."""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from fdt.cli import cli
from fdt.data import load_image_set
from fdt.features_store import FeatureStore, WeightsNotFoundError, create_extractor
from fdt.features_store.extraction import extract_levels, extract_records
from tests.conftest import session_processes, write_images
from tests.sync import start_fdt_stopping_after_shards, wait_for_shards, wait_until_exited


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_extract_then_rerun_reuses_everything(image_tree: Path, tmp_path: Path):
    store = str(tmp_path / "s")
    first = run("extract", str(image_tree), "-e", "fft", "-p", "size=8", "-r", "16", "--store", store, "-q", "--workers", "0")
    assert first.exit_code == 0, first.output
    assert "24 new rows, 0 reused, 0 failed images" in first.output
    again = run("extract", str(image_tree), "-e", "fft", "-p", "size=8", "-r", "16", "--store", store, "-q")
    assert "0 new rows, 24 reused, 0 failed images" in again.output
    data = FeatureStore(store).load("fft", 16, sources=["real", "fake"])
    assert data.X.shape == (24, 64) and data.y.sum() == 12


def test_the_same_image_in_two_sets_is_extracted_once(tmp_path: Path):
    set_a, set_b = tmp_path / "a", tmp_path / "b"
    paths = write_images(set_a / "coco", 5, seed=3)
    write_images(set_b / "dcgan", 2, seed=4)
    (set_b / "coco").mkdir()
    shutil.copy(paths[0], set_b / "coco" / "copy.png")
    store = str(tmp_path / "s")
    run("extract", str(set_a), "-e", "fft", "-p", "size=4", "--store", store, "-q", "--real", "coco", "--workers", "0")
    second = run("extract", str(set_b), "-e", "fft", "-p", "size=4", "--store", store, "-q", "--real", "coco", "--workers", "0")
    assert "2 new rows, 1 reused" in second.output
    stored, _ = FeatureStore(store).read_features(FeatureStore(store).keys()[0])
    assert len(stored) == 7


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


def test_bad_images_are_recorded_and_skipped(tmp_path: Path):
    folder = tmp_path / "data" / "real"
    write_images(folder, 3, seed=5)
    jpeg = folder / "truncated.jpg"
    Image.effect_noise((64, 64), 60).convert("RGB").save(jpeg, quality=95)
    jpeg.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("this is not a picture\n")
    (folder / "huge.png").write_bytes(_png_header_only(100_000, 100_000))
    store = str(tmp_path / "s")

    result = run("extract", str(tmp_path / "data"), "-e", "fft", "-p", "size=4", "--store", store, "-q", "--workers", "2")
    assert result.exit_code == 0
    assert "3 new rows, 0 reused, 4 failed images" in result.output
    assert "truncated.jpg: cannot decode image (image file is truncated" in result.output
    assert "empty.png: not an image file of a known format" in result.output
    assert "text.png: not an image file of a known format" in result.output
    assert "huge.png: image is" in result.output and "10000000000" in result.output.replace(",", "")

    fs = FeatureStore(store)
    reasons = {Path(path).name: reason for _, path, reason in fs.failures(fs.keys()[0])}
    assert set(reasons) == {"truncated.jpg", "empty.png", "text.png", "huge.png"}
    assert len(fs.load("fft", "native")) == 3
    rerun = run("extract", str(tmp_path / "data"), "-e", "fft", "-p", "size=4", "--store", store, "-q")
    assert "0 new rows, 3 reused, 4 failed images" in rerun.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing_folder", "-e", "fft"], "no such folder or manifest"),
        (["{data}", "-e", "resnet"], "unknown extractor 'resnet'; choose one of"),
        (["{data}", "-e", "fft", "-p", "bins=3"], "its parameters are size, profile, grid, device"),
        (["{data}", "-e", "fft", "-p", "oops"], "--param takes key=value"),
        (["{data}", "-e", "fft", "-r", "big"], "resolution must be 'native', a size N, 'crop:N' or 'randcrop:N'"),
        (["{data}", "-e", "autoencoder", "-p", "model=nope.pt"], "autoencoder model file does not exist"),
        (["{data}", "-e", "vgg16", "--device", "tpu"], "device must be auto, cpu or cuda"),
    ],
)
def test_user_mistakes_give_one_line_and_exit_2(args, message, image_tree: Path, tmp_path: Path):
    result = CliRunner().invoke(cli, ["extract", *[a.format(data=image_tree) for a in args], "--store", str(tmp_path / "s"), "-q"])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_second_writer_is_refused_with_a_clear_message(image_tree: Path, tmp_path: Path):
    store = FeatureStore(tmp_path / "s")
    with store.writer():
        result = run("extract", str(image_tree), "-e", "fft", "--store", str(store.root), "-q")
    assert result.exit_code == 2
    assert "is being written by pid" in result.output and "--wait" in result.output


# --------------------------------------------------------------------------- weights


def _cache_file(torch_home: Path) -> Path:
    return torch_home / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"


def test_imagenet_weights_are_read_from_the_torch_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from torchvision.models import mobilenet_v2

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    torch.manual_seed(123)
    state = mobilenet_v2(weights=None).state_dict()
    target = _cache_file(tmp_path / "torch_home")
    target.parent.mkdir(parents=True)
    torch.save(state, target)

    images = [Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))]
    cached = create_extractor("mobilenet_v2", weights="imagenet", input_size=32)
    features = cached.transform(images)
    random = create_extractor("mobilenet_v2", weights="random", input_size=32).transform(images)
    from_path = create_extractor("mobilenet_v2", weights=str(target), input_size=32).transform(images)

    from fdt.data import sha256_file

    assert cached.weights_identity() == f"imagenet:sha256:{sha256_file(target)[:16]}"
    assert cached.weights_note() == ""
    np.testing.assert_array_equal(features, from_path)
    assert not np.allclose(features, random, rtol=1e-3, atol=0)


def test_weights_from_a_file_fill_a_network_whose_random_init_was_never_drawn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from torchvision.models import mobilenet_v2

    from fdt.models.backbones import MOBILENET_V2, build_backbone

    torch.manual_seed(7)
    state = mobilenet_v2(weights=None).state_dict()
    torch.save(state, tmp_path / "fp32.pth")
    torch.save({name: value.half() if value.is_floating_point() else value for name, value in state.items()}, tmp_path / "fp16.pth")
    drawn_on: list[bool] = []
    real_init = torch.nn.init.kaiming_normal_
    monkeypatch.setattr(torch.nn.init, "kaiming_normal_", lambda tensor, *a, **k: drawn_on.append(tensor.is_meta) or real_init(tensor, *a, **k))

    net = build_backbone(MOBILENET_V2, 0, tmp_path / "fp32.pth")
    assert drawn_on and all(drawn_on)  # the initialisers ran on shapes only
    loaded = net.net.state_dict()
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[name], state[name]) for name in state)
    reference = MOBILENET_V2.head(mobilenet_v2(weights=None)).eval()  # drawn, then overwritten: the old way
    reference.net.load_state_dict(state)
    pixels = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(net(pixels), reference(pixels), rtol=0, atol=0)

    half = build_backbone(MOBILENET_V2, 0, tmp_path / "fp16.pth").net.state_dict()  # cast into the network's dtypes
    assert all(half[name].dtype == state[name].dtype for name in state)
    assert all(torch.equal(half[name], state[name].half().to(state[name].dtype)) for name in state if state[name].is_floating_point())


def test_a_network_with_an_unsaved_buffer_is_initialised_as_usual():
    from fdt.models.backbones import _uninitialised

    class Scaled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(2, 2)
            self.register_buffer("scale", torch.full((1,), 2.0), persistent=False)  # set here, never in a file

    rng = torch.get_rng_state()
    net = _uninitialised(Scaled)
    assert not net.scale.is_meta and net.scale.item() == 2.0
    assert torch.equal(torch.get_rng_state(), rng)  # its throwaway init left the global RNG as it was
    assert not any(value.is_meta for value in net.state_dict().values())


def test_absent_weights_offline_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_tree: Path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_home"))
    expected = _cache_file(tmp_path / "empty_home")
    with pytest.raises(WeightsNotFoundError, match=f"place mobilenet_v2-b0353104.pth .* at {expected}"):
        create_extractor("mobilenet_v2").weights_identity()
    result = CliRunner().invoke(cli, ["extract", str(image_tree), "-e", "mobilenet_v2", "--store", str(tmp_path / "s")])
    assert result.exit_code == 2 and str(expected) in result.output
    assert not (tmp_path / "s").exists()


def test_wrong_weights_file_is_refused(tmp_path: Path):
    bad = tmp_path / "bad.pth"
    torch.save({"not": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="does not fit mobilenet_v2"):
        create_extractor("mobilenet_v2", weights=str(bad)).transform([Image.new("RGB", (32, 32))])


def test_weights_identity_is_stored_with_the_features(image_tree: Path, tmp_path: Path):
    records = load_image_set(image_tree)
    summary = extract_records(records[:2], "mobilenet_v2", {"weights": "random", "seed": 4, "input_size": 32}, "32", tmp_path / "s", workers=0, progress=False)
    assert summary.key.weights == "random:seed=4"
    assert "RANDOM weights" in summary.line()
    (key,) = FeatureStore(tmp_path / "s").keys()
    assert key.weights == "random:seed=4" and key.params == {"input_size": 32}


# --------------------------------------------------------------------------- crash safety


def _extract_command(data: Path, store: Path) -> list[str]:
    return [
        sys.executable, "-m", "fdt", "extract", str(data), "-e", "mobilenet_v2", "-p", "weights=random", "-p", "input_size=64",
        "-r", "64", "--store", str(store), "--batch-size", "4", "--flush-every", "4", "--workers", "1", "-q",
    ]


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except OSError:
        return -1


def test_sigkill_mid_extraction_then_resume_equals_an_uninterrupted_run(tmp_path: Path):
    data = tmp_path / "data"
    write_images(data / "real", 60, size=48, seed=7)
    write_images(data / "fake", 60, size=48, seed=8)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed_store = tmp_path / "killed"
    process, shards = start_fdt_stopping_after_shards(_extract_command(data, killed_store)[3:], 2, env)
    wait_for_shards(process, shards, 2)  # two shards are in place; the extraction holds there, mid-run
    workers = [pid for pid, _ in session_processes() if _parent(pid) == process.pid]
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert workers, "the extraction had no DataLoader worker to check"
    # its workers die with it (issue 10 #22), not live on for ever
    assert wait_until_exited(workers, timeout=30) == [], "DataLoader workers outlived their killed parent"

    verify = subprocess.run([sys.executable, "-m", "fdt", "store", "verify", "--store", str(killed_store)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    kept = FeatureStore(killed_store).read_features(FeatureStore(killed_store).keys()[0])[0]
    assert len(kept) == 8  # two shards of --flush-every 4

    resumed = subprocess.run(_extract_command(data, killed_store), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{120 - len(kept)} new rows, {len(kept)} reused" in resumed.stdout

    clean_store = tmp_path / "clean"
    subprocess.run(_extract_command(data, clean_store), env=env, check=True, capture_output=True)
    resumed_data = FeatureStore(killed_store).load("mobilenet_v2", 64)
    clean_data = FeatureStore(clean_store).load("mobilenet_v2", 64)
    order_a, order_b = np.argsort(resumed_data.sha256), np.argsort(clean_data.sha256)
    assert len(set(resumed_data.sha256)) == len(resumed_data) == 120
    assert resumed_data.sha256[order_a].tolist() == clean_data.sha256[order_b].tolist()
    np.testing.assert_allclose(resumed_data.X[order_a], clean_data.X[order_b], rtol=1e-5, atol=1e-6)
    assert subprocess.run([sys.executable, "-m", "fdt", "store", "verify", "--store", str(killed_store)]).returncode == 0


# --------------------------------------------------------------------------- cheap imports


def test_help_and_store_reading_do_not_import_torch():
    code = (
        "import sys; from click.testing import CliRunner; from fdt.cli import cli;"
        "import fdt.features_store, fdt.data, fdt.models;"
        "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output;"
        "r = CliRunner().invoke(cli, ['store', '--help']); assert r.exit_code == 0;"
        "heavy = [m for m in ('torch', 'timm', 'diffusers', 'torchvision') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _count_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths extraction opens (in this process: ``workers=0``), counted at the one call that reads image bytes."""
    from fdt.features_store import extraction

    opened: list[str] = []
    real_open = extraction.open_regular
    monkeypatch.setattr(extraction, "open_regular", lambda path: opened.append(str(path)) or real_open(path))
    monkeypatch.setattr(extraction, "sha256_file", lambda path: pytest.fail(f"{path} was hashed by a second read"))
    return opened


def test_each_new_file_is_opened_once_and_unchanged_files_not_at_all(image_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from fdt.features_store import extraction

    opened = _count_opens(monkeypatch)
    decoded: list[int] = []
    real_load = extraction.load_rgb
    monkeypatch.setattr(extraction, "load_rgb", lambda data, max_pixels: decoded.append(1) or real_load(data, max_pixels))
    store = tmp_path / "s"
    records = load_image_set(image_tree)
    paths = sorted(str(r.path) for r in records)

    first = extract_records(records, "fft", {"size": 4}, "crop:16", store, workers=0, progress=False)
    assert sorted(opened) == paths and len(decoded) == 24 and first.new_rows == 24
    assert first.hashes == [sha256_of(r.path) for r in records]
    assert sorted(FeatureStore(store).catalog().sha256.astype(str).tolist()) == sorted(first.hashes)

    opened.clear()
    again = extract_records(records, "fft", {"size": 4}, "crop:16", store, workers=0, progress=False)
    assert opened == [] and again.reused_rows == 24 and again.new_rows == 0

    changed = image_tree / "real" / "img0000.png"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(changed)
    third = extract_records(records, "fft", {"size": 4}, "crop:16", store, workers=0, progress=False)
    assert opened == [str(changed)] and third.new_rows == 1 and len(decoded) == 25
    assert sha256_of(changed) in FeatureStore(store).load("fft", "crop:16").sha256.tolist()

    opened.clear()  # --rehash reads every file again, but decodes none: all are stored
    rehashed = extract_records(records, "fft", {"size": 4}, "crop:16", store, workers=0, progress=False, rehash=True)
    assert sorted(opened) == paths and len(decoded) == 25 and rehashed.reused_rows == 24


def test_the_network_is_built_while_files_decode_and_not_at_all_when_nothing_is_missing(
    image_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from fdt.features_store import extraction
    from fdt.features_store.extractors.fft import FFTExtractor

    events: list[str] = []
    real_load, real_fit, real_forward = extraction.load_rgb, FFTExtractor.fit, FFTExtractor.forward
    monkeypatch.setattr(extraction, "load_rgb", lambda data, max_pixels: events.append("decode") or real_load(data, max_pixels))
    monkeypatch.setattr(FFTExtractor, "fit", lambda self, *args: events.append("fit") or real_fit(self, *args))
    # as a network extractor's forward does, it builds the network on first use
    monkeypatch.setattr(FFTExtractor, "forward", lambda self, batch: real_forward(self._fitted(), batch))
    store, records = tmp_path / "s", load_image_set(image_tree)

    def extract(size: int, **options) -> list[str]:
        events.clear()
        extract_records(records, "fft", {"size": size}, "crop:16", store, workers=0, progress=False, **options)
        return list(events)

    # no hash known: whether anything is missing is learnt from the files, and the network is built at the first batch
    assert extract(4) == ["decode"] * 24 + ["fit"]
    assert "fit" not in extract(4) and "fit" not in extract(4, rehash=True)  # every row is stored
    # hashes known and rows missing (another extractor setting): built before the first file is decoded
    assert extract(8) == ["fit"] + ["decode"] * 24


def test_a_copy_first_seen_in_the_same_run_gives_one_row(tmp_path: Path):
    paths = write_images(tmp_path / "data" / "real", 3, seed=9)
    shutil.copy(paths[0], tmp_path / "data" / "real" / "copy.png")
    records = load_image_set(tmp_path / "data")
    summary = extract_records(records, "fft", {"size": 4}, "native", tmp_path / "s", workers=0, progress=False)
    assert summary.new_rows == 3 and summary.hashes.count(sha256_of(paths[0])) == 2
    store = FeatureStore(tmp_path / "s")
    assert len(store.read_features(summary.key)[0]) == 3
    assert sorted(store.catalog().sha256.astype(str).tolist()) == sorted(set(summary.hashes))


def _direct_features(path: Path, extractor, resolution: str, chain) -> np.ndarray:
    """What a row must hold, computed without the extraction pipeline: load_rgb, perturb, resolution, preprocess, forward."""
    from fdt.data import apply_resolution, load_rgb

    sha = sha256_of(path)
    image = apply_resolution(chain.apply(load_rgb(path), sha), resolution, sha)
    return extractor.forward(np.stack([extractor.preprocessor()(image)]))[0]


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize(("name", "params", "resolution"), [("fft", {"size": 8}, "native"), ("dct", {"size": 8}, "crop:24")])
def test_rows_equal_a_direct_computation_at_every_level(name, params, resolution, workers, tmp_path: Path):
    from fdt.perturb import Chain, parse_chain

    files = write_images(tmp_path / "data" / "real", 5, seed=11) + write_images(tmp_path / "data" / "fake", 4, size=40, seed=12, fmt="jpg")
    levels = [Chain(), parse_chain(["blur:sigma=1"])]
    summaries = extract_levels(load_image_set(tmp_path / "data"), name, params, resolution, tmp_path / "s", levels=levels, workers=workers, progress=False, batch_size=4)
    store, model = FeatureStore(tmp_path / "s"), create_extractor(name, **params)
    assert [s.key.perturb for s in summaries] == ["", levels[1].key]
    for chain, summary in zip(levels, summaries):
        assert summary.new_rows == 9 and summary.failed == 0
        sha, X = store.read_features(summary.key)
        rows = dict(zip(sha.astype(str).tolist(), X))
        assert sorted(rows) == sorted(sha256_of(path) for path in files)
        for path in files:
            np.testing.assert_array_equal(rows[sha256_of(path)], _direct_features(path, model, resolution, chain))


def sha256_of(path: str | Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


_BUFFER_FAULTS = (
    "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
    "for _ in range(40):\n"
    "    buffers = [np.ones(1 << 19) for _ in range(3)]\n"
    "    del buffers\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
)


def _buffer_faults(setup: str, *args: str) -> int:
    """Page faults of 40 images' worth of 4 MB buffers in a fresh process (as every `fdt extract` is), after ``setup``."""
    code = "import resource, sys, numpy as np\n" + setup + _BUFFER_FAULTS
    return int(subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True).stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc tuning")
def test_decoding_workers_reuse_freed_buffers_instead_of_faulting_in_new_pages():
    setup = "from fdt.features_store.extraction import reuse_freed_memory\nif sys.argv[1] == 'tuned': reuse_freed_memory()\n"
    faults = {mode: _buffer_faults(setup, mode) for mode in ("default", "tuned")}
    assert faults["default"] > 40 * 1000, faults  # the heap is trimmed after every image: 4 MB (1024 pages) faulted in again
    assert faults["tuned"] < faults["default"] / 10, faults


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc tuning")
def test_an_extraction_tunes_its_own_process_malloc_for_the_networks_activations(tmp_path: Path):
    # a CPU network's activations are freed and allocated again every batch in the main process: after a run, large
    # buffers come from the heap again instead of fresh pages (control: the same run with the tuning patched out)
    for index in range(2):
        Image.fromarray(np.full((16, 16, 3), index * 90, np.uint8)).save(tmp_path / f"{index}.png")
    setup = (
        "from pathlib import Path\n"
        "from fdt.data import ImageRecord\n"
        "from fdt.features_store import extraction\n"
        "if sys.argv[1] == 'untuned':\n"
        "    import contextlib\n"
        "    extraction.reuse_freed_memory, extraction.hold_freed_memory = (lambda: None), contextlib.nullcontext\n"
        "folder = Path(sys.argv[2])\n"
        "records = [ImageRecord(folder / f'{i}.png', 'real', 0) for i in range(2)]\n"
        # a small spectrum: the writer's rows stay below glibc's mmap threshold, whose freeing would raise it (the control)
        "extraction.extract_records(records, 'fft', {'size': 4}, 'native', folder / sys.argv[1], workers=0, progress=False)\n"
    )
    faults = {mode: _buffer_faults(setup, mode, str(tmp_path)) for mode in ("untuned", "tuned")}
    assert faults["untuned"] > 40 * 1000, faults
    assert faults["tuned"] < faults["untuned"] / 10, faults


def test_a_slow_worker_is_given_fewer_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # chunks go to whichever worker has room: dealt out in turn, each worker would get half of them, and the run
    # would end waiting for the slow one's long queue while the other idled
    from fdt.features_store import extraction

    real = extraction._DecodeDataset._decode
    log = tmp_path / "log"
    log.mkdir()

    def decode(self, item):
        worker = torch.utils.data.get_worker_info().id
        if worker == 0:
            time.sleep(0.05)
        with open(log / str(worker), "a") as handle:  # the workers are forked: this function is theirs too
            handle.write(".")
        return real(self, item)

    monkeypatch.setattr(extraction._DecodeDataset, "_decode", decode)
    write_images(tmp_path / "data" / "real", 96, size=16)
    summary = extract_records(load_image_set(tmp_path / "data"), "fft", {"size": 4}, "native", tmp_path / "s", workers=2, batch_size=8, progress=False)
    done = {name: len((log / name).read_text()) for name in ("0", "1")}
    assert summary.new_rows == 96 and sum(done.values()) == 96
    assert done["0"] <= 32, done  # the worker that sleeps 50 ms an image did at most a third


@pytest.mark.parametrize(("shared_min", "two_pass_pixels"), [(1, 1), (1, 1 << 22), (1 << 40, 1 << 22)])
def test_shared_chunks_and_two_passes_keep_every_row_and_failure_in_place(shared_min, two_pass_pixels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # large results cross from the workers in shared memory, small ones pickled; a chunk is decoded, then preprocessed
    # (two passes, or one file at a time when the pixel budget is spent): neither may move a row or a failure
    import multiprocessing

    from fdt.features_store import extraction

    monkeypatch.setattr(extraction, "SHARED_MIN_BYTES", shared_min)  # the workers are forked: they see it too
    monkeypatch.setattr(extraction, "TWO_PASS_PIXELS", two_pass_pixels)
    shared = []
    unpack = extraction._unpack
    monkeypatch.setattr(extraction, "_unpack", lambda part: shared.append(isinstance(part, extraction._Chunk)) or unpack(part))
    files = write_images(tmp_path / "data" / "real", 7, seed=3) + write_images(tmp_path / "data" / "fake", 6, size=40, seed=4, fmt="jpg")
    (tmp_path / "data" / "real" / "img0003b.png").write_bytes(b"not an image")  # between good files of one chunk
    records = load_image_set(tmp_path / "data")
    others = set(multiprocessing.active_children())  # processes earlier tests of the session may have left
    summary = extract_records(records, "fft", {"size": 8}, "native", tmp_path / "s", workers=2, batch_size=8, progress=False)
    assert not set(multiprocessing.active_children()) - others  # the workers were stopped and joined before returning
    assert summary.new_rows == 13 and summary.failed == 1
    assert any(shared) == (shared_min == 1) and len(shared) >= 2
    broken = next(i for i, r in enumerate(records) if Path(r.path).name == "img0003b.png")
    assert summary.failures[broken] == "not an image file of a known format"
    sha, X = FeatureStore(tmp_path / "s").read_features(summary.key)
    rows, model = dict(zip(sha.astype(str).tolist(), X)), create_extractor("fft", size=8)
    from fdt.perturb import Chain

    for path in files:
        np.testing.assert_array_equal(rows[sha256_of(path)], _direct_features(path, model, "native", Chain()))


def test_a_packed_chunk_is_unpacked_to_equal_arrays_of_each_shape_and_dtype(monkeypatch: pytest.MonkeyPatch):
    from fdt.features_store import extraction

    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: object())  # as in a DataLoader worker
    monkeypatch.setattr(extraction, "SHARED_MIN_BYTES", 1000)
    rng = np.random.default_rng(0)
    big = [rng.random((20, 30), dtype=np.float32) for _ in range(3)]  # 2400 bytes each: shared
    wide = [rng.integers(0, 255, (5, 50), dtype=np.uint8) for _ in range(4)]  # 250 bytes each, 1000 together: shared
    tiny = np.ones(3, np.float64)  # alone in its layout, 24 bytes: pickled
    items = [
        extraction._Decoded(0, "a", "a.png", [(0, big[0], ""), (1, wide[0], "")]),
        extraction._Decoded(1, "b", "b.png", [(0, None, "cannot decode"), (1, wide[1], "")]),
        extraction._Decoded(2, "c", "c.png", [(0, big[1], ""), (1, wide[2], ""), (2, tiny, "")]),
        extraction._Decoded(3, "", "d.png", [], "cannot read file"),
        extraction._Decoded(4, "e", "e.png", [(0, big[2], ""), (1, wide[3], "")]),
    ]
    packed = extraction._pack(items)
    assert isinstance(packed, extraction._Chunk) and len(packed.buffers) == 2
    assert all(buffer.is_shared() for buffer in packed.buffers)
    unpacked = extraction._unpack(packed)
    assert [(i.index, i.sha, i.path, i.unreadable) for i in unpacked] == [(i.index, i.sha, i.path, i.unreadable) for i in items]
    for before, after in zip(items, unpacked):
        assert [(level, reason) for level, _, reason in before.outputs] == [(level, reason) for level, _, reason in after.outputs]
        for (_, x, _), (_, y, _) in zip(before.outputs, after.outputs):
            assert (x is None and y is None) or (x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y))


@pytest.mark.parametrize(("files", "batch_size", "workers"), [(1000, 32, 2), (100, 32, 2), (96, 8, 2), (5, 4, 0), (1, 32, 1), (0, 32, 2), (3000, 64, 16), (777, 48, 3)])
def test_chunks_are_large_while_many_files_remain_and_small_at_the_end(files, batch_size, workers):
    from fdt.features_store.extraction import _chunk_sizes, _chunks, _queued_chunks

    chunks = _chunks(files, batch_size, workers)
    assert [i for chunk in chunks for i in chunk] == list(range(files))  # every file once, in order
    small, large = _chunk_sizes(batch_size)
    assert batch_size % small == 0 and large % small == 0 and small <= 8 and large <= max(32, small)
    sizes = [len(chunk) for chunk in chunks]
    assert all(0 < size <= large for size in sizes)
    if workers:
        # what the workers' queues can hold when the large chunks run out goes in small chunks
        held = workers * _queued_chunks(batch_size, large, workers) * large
        last = sizes[len(sizes) - -(-min(files, held) // small) :]
        assert sum(last) == min(files, held) and all(size <= small for size in last)
    if files >= 1000 and workers <= 2:
        assert len(chunks) < files / 16  # most files travel in large chunks


def test_results_are_pickled_when_shared_memory_is_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # a container's 64 MB /dev/shm: a shared buffer that outgrows it kills the worker with SIGBUS when written
    from fdt.features_store import extraction

    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: object())  # as in a DataLoader worker
    monkeypatch.setattr(extraction, "SHARED_MIN_BYTES", 1)
    items = [extraction._Decoded(i, str(i), f"{i}.png", [(0, np.full((256, 256), i, np.float32), "")]) for i in range(8)]
    free = os.statvfs(tmp_path)
    monkeypatch.setattr(extraction, "SHARED_MEMORY", str(tmp_path))  # the room is read from this folder's file system
    monkeypatch.setattr(extraction, "SHARED_HEADROOM", 1)
    assert isinstance(extraction._pack(items), extraction._Chunk)  # 2 MB: room
    monkeypatch.setattr(extraction, "SHARED_HEADROOM", free.f_bavail * free.f_frsize)  # far more than is free
    assert extraction._pack(items) is items
    monkeypatch.setattr(extraction, "SHARED_MEMORY", str(tmp_path / "absent"))
    monkeypatch.setattr(extraction, "SHARED_HEADROOM", 1)
    assert extraction._pack(items) is items
