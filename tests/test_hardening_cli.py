"""The adversarial sweep of every command: each user mistake found by it is one line and exit code 2, and writes nothing else.

Each case here failed before (a traceback, a three-line usage message, or silent
wrong output); the sweep's other cases were one line already and are covered by
the tests of their commands.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fdt.cli import cli
from tests.conftest import write_images


def png_bomb(path: Path, side: int = 100_000) -> Path:
    """A valid PNG header claiming ``side``×``side`` pixels (10 gigapixels by default) over a few bytes of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    return path


def write_bad_images(folder: Path) -> Path:
    """Every kind of file a hostile or careless image folder holds, beside four good images."""
    write_images(folder, 4, size=32, seed=9)
    good = (folder / "img0000.png").read_bytes()
    (folder / "zero.png").write_bytes(b"")
    (folder / "text.png").write_text("not an image\n")
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    png_bomb(folder / "bomb.png")
    Image.new("RGB", (1, 1), (1, 2, 3)).save(folder / "one.png")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 65535, (16, 16)).astype(np.uint16)).save(folder / "sixteen.png")
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).convert("P").save(folder / "palette.png")
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(rng.integers(0, 256, (16, 16, 4), dtype=np.uint8)).save(folder / "alpha.png")
    Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(folder / "gray.png")
    return folder


def snapshot(folder: Path, *left_out: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` (outside ``left_out``) with its size and mtime."""
    skip = [str(p) for p in left_out]
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file() and not any(str(p) == s or str(p).startswith(s + "/") for s in skip)
    }


def one_line_error(result) -> str:
    """The one stderr line of a user error (exit code 2, no traceback), asserted."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


# --------------------------------------------------------------------------- usage mistakes are one line, like every other mistake


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["extract", "x", "-e", "fft", "--label", "maybe"], "Invalid value for '--label': 'maybe' is not one of 'real', 'fake'. (see fdt extract --help)"),
        (["tune", "--extractor", "fft", "--real", "a", "--fake", "b", "--trials", "-1"], "Invalid value for '--trials': -1 is not in the range x>=0. (see fdt tune --help)"),
        (["report", "matrix", "--fakes", "x"], "No such option '--fakes'. Did you mean '--fake'? (see fdt report matrix --help)"),
        (["models", "finetune", "d", "--backbone", "vgg16", "--real", "r", "--out", "o.pt", "--epochs", "0"], "Invalid value for '--epochs': 0 is not in the range x>=1."),
        (["extract"], "Missing argument 'DATA...'. (see fdt extract --help)"),
        (["--bogus"], "No such option '--bogus'. (see fdt --help)"),
        (["nosuch"], "No such command 'nosuch'. (see fdt --help)"),
        (["store", "nosuch"], "No such command 'nosuch'. (see fdt store --help)"),
    ],
    ids=["bad-choice", "out-of-range", "unknown-option", "negative-epochs", "missing-argument", "group-option", "unknown-command", "unknown-subcommand"],
)
def test_a_usage_mistake_is_one_line_naming_the_help(args, expected):
    line = one_line_error(CliRunner().invoke(cli, args, prog_name="fdt"))
    assert line.startswith(f"Error: {expected}")


def test_a_bare_group_still_shows_its_help():
    result = CliRunner().invoke(cli, ["store"], prog_name="fdt")
    assert result.exit_code == 2 and "Commands:" in result.output and "compact" in result.output


# --------------------------------------------------------------------------- hostile image files


def test_audit_reads_every_header_a_bad_folder_holds(tmp_path):
    write_bad_images(tmp_path / "data" / "real")
    write_images(tmp_path / "data" / "fake", 6, seed=3)
    before = snapshot(tmp_path, tmp_path / "out")
    result = CliRunner().invoke(cli, ["audit", str(tmp_path / "data"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    # the empty file, the text file and the bomb; a truncated PNG's header is whole
    assert "3 file(s) could not be read" in (tmp_path / "out" / "audit.md").read_text()
    assert snapshot(tmp_path, tmp_path / "out") == before


def test_a_decompression_bomb_header_is_not_read_for_its_mode(tmp_path):
    from fdt.gen.images import image_channels
    from fdt.pipelines.audit import read_metadata

    bomb = png_bomb(tmp_path / "bomb.png")
    assert "exceeds limit" in read_metadata(bomb)["error"]
    gray = tmp_path / "gray.png"
    Image.new("L", (8, 8)).save(gray)
    from fdt.data import ImageRecord

    assert image_channels([ImageRecord(str(bomb), "real", 0), ImageRecord(str(gray), "real", 0)]) == 1


def test_dcgan_trains_past_undecodable_images(tmp_path):
    write_bad_images(tmp_path / "data")
    result = CliRunner().invoke(cli, [
        "gen", "dcgan", "train", str(tmp_path / "data"), "--out", str(tmp_path / "gan"), "--size", "16", "--features", "4", "--nz", "8",
        "--batch-size", "4", "--epochs", "1", "--device", "cpu",
    ])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "gan" / "checkpoint.pt").is_file()


def test_the_run_summary_grid_leaves_out_undecodable_images(tmp_path):
    from fdt.experiment.summary import _grid

    folder = write_bad_images(tmp_path / "data")
    _grid(sorted(str(p) for p in folder.iterdir()), tmp_path / "grid.png")
    assert Image.open(tmp_path / "grid.png").size[0] > 0


def test_a_prompt_file_that_is_not_text_is_one_line(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_bytes(b"\xff\xfe\x00binary")
    line = one_line_error(CliRunner().invoke(cli, ["gen", "sd", str(prompts), "--out", str(tmp_path / "out"), "--model", str(tmp_path)]))
    assert line == f"Error: {prompts} is not UTF-8 text (byte 0: invalid start byte)"
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- files of the wrong kind


@pytest.mark.parametrize("card", ["[]", '"text"', "3"], ids=["list", "string", "number"])
def test_a_model_card_that_is_not_an_object_is_one_line(tmp_path, card):
    model = tmp_path / "m.skops"
    model.write_bytes(b"PK")
    (tmp_path / "m.json").write_text(card)
    line = one_line_error(CliRunner().invoke(cli, ["predict", str(model), str(tmp_path), "--store", str(tmp_path / "s")]))
    assert "is not a version" in line and "fdt model card" in line


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("emotion,pixels,Usage\n1," + " ".join(["999"] * 4) + ",Training\n", "pixels must be a square number of integers 0..255"),
        ("emotion,pixels,Usage\n9," + " ".join(["1"] * 4) + ",Training\n", "emotion must be 0..6, not 9"),
        ("emotion,pixels,Usage\n1\n", "pixels must be a square number of integers 0..255"),
        ("emotion,pixels,Usage\n,1 2 3 4,Training\n", "invalid literal for int()"),
    ],
    ids=["pixel-out-of-range", "emotion-out-of-range", "short-row", "empty-emotion"],
)
def test_a_bad_fer2013_row_is_one_line_naming_the_row(tmp_path, rows, message):
    table = tmp_path / "fer2013.csv"
    table.write_text(rows)
    line = one_line_error(CliRunner().invoke(cli, ["layouts", "fer2013", str(table), "--out", str(tmp_path / "out")]))
    assert line.startswith(f"Error: {table}:2: not a FER2013 row (") and message in line


def test_fer2013_of_a_missing_file_says_so(tmp_path):
    line = one_line_error(CliRunner().invoke(cli, ["layouts", "fer2013", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "out")]))
    assert line == f"Error: no such file: {tmp_path / 'absent.csv'}"


def test_layouts_ls_of_a_file_is_one_line(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("x")
    assert one_line_error(CliRunner().invoke(cli, ["layouts", "ls", str(path)])) == f"Error: {path} is a file, not a dataset folder (nor FER2013's CSV)"


# --------------------------------------------------------------------------- options that cannot work are refused before the work


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    """A store with fft features of ``real`` and ``fake``."""
    from fdt.data import load_image_set
    from fdt.features_store.extraction import extract_records

    write_images(tmp_path / "data" / "real", 8, seed=1)
    write_images(tmp_path / "data" / "fake", 8, seed=2)
    extract_records(load_image_set(tmp_path / "data"), "fft", {"size": 4}, "native", tmp_path / "store", workers=0, progress=False)
    return tmp_path / "store"


def test_tune_status_of_a_study_never_run_creates_no_database(stored, tmp_path):
    args = ["tune", "--extractor", "fft", "--real", "real", "--fake", "fake", "--store", str(stored), "--models", str(tmp_path / "models"), "--status"]
    line = one_line_error(CliRunner().invoke(cli, args))
    assert "yet; run fdt tune without --status first" in line
    assert not (tmp_path / "models").exists()


def test_audit_of_an_extractor_with_no_stored_features_is_one_line(stored, tmp_path):
    args = ["audit", str(tmp_path / "data"), "--extractor", "dct", "--store", str(stored), "--out", str(tmp_path / "out")]
    line = one_line_error(CliRunner().invoke(cli, args))
    assert line == f"Error: no stored features of extractor 'dct' in {stored} (stored: fft); run fdt extract DATA -e dct first"


@pytest.fixture
def kept_epochs(tmp_path: Path) -> Path:
    from fdt.gen.dcgan import train_dcgan

    write_images(tmp_path / "faces", 4, size=16, seed=3)
    return train_dcgan(tmp_path / "faces", tmp_path / "gan", size=16, features=4, nz=8, epochs=1, batch_size=4, grid_size=4, keep_epochs=True, progress=False, device="cpu")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sample-param", "steps=5"], "unknown key 'steps' in the sampling options of a dcgan checkpoint; allowed: seed, batch_size"),
        (["--sample-param", "seed=5"], "sampling option(s) seed cannot be set: every epoch is sampled with the run's own seed"),
        (["--n", "4"], "4 samples per epoch are too few for k = 5 nearest neighbours: sample at least 6"),
        (["--real", "nosuch"], "unknown real source(s) nosuch in"),
    ],
    ids=["unknown-sampling-option", "seed-as-sampling-option", "n-not-above-k", "unknown-real"],
)
def test_report_training_refuses_what_cannot_work_before_sampling(stored, kept_epochs, tmp_path, extra, message):
    args = [
        "report", "training", str(kept_epochs), "--real", "real", "--extractor", "fft", "--param", "size=4", "--store", str(stored),
        "--n", "6", "--samples", str(tmp_path / "samples"), "--out", str(tmp_path / "out"), "--device", "cpu", "--no-progress", *extra,
    ]
    line = one_line_error(CliRunner().invoke(cli, args))
    assert message in line
    assert not (tmp_path / "samples").exists() and not (tmp_path / "out").exists()


def test_inpainting_sources_none_of_which_decode_is_one_line_not_a_missing_manifest(tmp_path):
    from fdt.data import ImageRecord
    from fdt.gen.errors import GenError
    from fdt.gen.inpainting import inpaint_records
    from fdt.gen.output import OutputFolder

    records = [ImageRecord(str(png_bomb(tmp_path / "bomb.png")), "real", 0), ImageRecord(str(tmp_path / "absent.png"), "real", 0)]
    never = lambda *args: pytest.fail("nothing decodable is repainted")  # noqa: E731
    with pytest.raises(GenError, match=r"none of the 2 source image\(s\) could be read, e\.g\. .*bomb\.png: image is too large"):
        inpaint_records(records, OutputFolder(tmp_path / "out", model_id="tiny"), never, 16, "diagonal", 1, (0.1, 0.4), 0, 4, progress=False)


@pytest.mark.parametrize(
    "command",
    [
        ["audit", "{data}", "--out", "{data}/real/audit"],
        ["perturb", "{data}", "--out", "{data}/inspect", "--perturb", "jpeg:quality=50"],
        ["gen", "dcgan", "train", "{data}", "--out", "{data}/dcgan", "--size", "16", "--epochs", "1", "--device", "cpu"],
        ["gen", "ddpm", "train", "{data}/real", "--out", "{data}/real", "--epochs", "1", "--device", "cpu"],
        ["models", "train-autoencoder", "{data}", "--out", "{data}/ae.pt", "--size", "16", "--epochs", "1", "--device", "cpu"],
        ["models", "finetune", "{data}", "--backbone", "test_resnet", "--real", "real", "--out", "{data}/fake/d.pt", "--weights", "random"],
    ],
    ids=["audit", "perturb", "dcgan-train", "ddpm-train", "train-autoencoder", "finetune"],
)
def test_an_output_folder_inside_the_input_images_is_refused(tmp_path, command):
    # its sample grids, plots or copies would be read as images of the folder by the next fdt extract
    write_images(tmp_path / "data" / "real", 4, seed=1)
    write_images(tmp_path / "data" / "fake", 4, seed=2)
    before = snapshot(tmp_path)
    line = one_line_error(CliRunner().invoke(cli, [part.format(data=tmp_path / "data") for part in command]))
    assert " is inside the input folder " in line and "choose a folder outside it" in line
    assert snapshot(tmp_path) == before
