"""Cause 21: only fdt's own errors (and OS errors about paths the user named) are one-line user errors."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from fdt.cli import cli
from fdt.cli.common import REPORT_BUG
from fdt.data import DataError
from fdt.errors import FdtError
from fdt.experiment import ExperimentError
from fdt.features_store.errors import ExtractorError, StoreError, UnknownExtractorError, WeightsNotFoundError
from fdt.gen.errors import GenError
from fdt.pipelines.errors import PipelineError


@pytest.mark.parametrize("family", [StoreError, PipelineError, GenError, DataError, ExperimentError, ExtractorError, UnknownExtractorError, WeightsNotFoundError])
def test_every_family_is_an_fdt_error(family):
    assert issubclass(family, FdtError)


def test_pipeline_error_stays_a_value_error_for_scikit_learn():
    assert issubclass(PipelineError, ValueError)


def _broken(error: BaseException):
    def fail(*args, **kwargs):
        raise error

    return fail


def test_a_library_value_error_is_a_bug_with_its_traceback(image_tree, tmp_path, monkeypatch):
    monkeypatch.setattr("fdt.features_store.extraction.extract_levels", _broken(ValueError("operands could not be broadcast")))
    result = CliRunner().invoke(cli, ["extract", str(image_tree), "-e", "fft", "--store", str(tmp_path / "s"), "-q"])
    assert result.exit_code == 1
    assert isinstance(result.exception, ValueError)
    assert REPORT_BUG in getattr(result.exception, "__notes__", [])


def test_an_os_error_about_a_file_fdt_chose_is_a_bug(image_tree, tmp_path, monkeypatch):
    monkeypatch.setattr("fdt.features_store.extraction.extract_levels", _broken(FileNotFoundError(2, "No such file or directory", "/usr/lib/libhdf5.so")))
    result = CliRunner().invoke(cli, ["extract", str(image_tree), "-e", "fft", "--store", str(tmp_path / "s"), "-q"])
    assert result.exit_code == 1 and isinstance(result.exception, FileNotFoundError)


def test_an_os_error_about_a_path_the_user_named_is_one_line(image_tree, tmp_path, monkeypatch):
    store = tmp_path / "s"
    monkeypatch.setattr("fdt.features_store.extraction.extract_levels", _broken(PermissionError(13, "Permission denied", str(store / "catalog"))))
    result = CliRunner().invoke(cli, ["extract", str(image_tree), "-e", "fft", "--store", str(store), "-q"])
    assert result.exit_code == 2
    assert "Permission denied" in result.output and "Traceback" not in result.output


def test_a_key_error_in_predict_is_not_a_user_error(tmp_path, monkeypatch):
    model = tmp_path / "m.skops"
    model.write_bytes(b"x")
    monkeypatch.setattr("fdt.pipelines.cards.load_model", _broken(KeyError("classes_")))
    result = CliRunner().invoke(cli, ["predict", str(model), str(tmp_path)])
    assert result.exit_code == 1 and isinstance(result.exception, KeyError)


def test_an_fdt_error_from_any_command_is_one_line_exit_2(image_tree, tmp_path, monkeypatch):
    monkeypatch.setattr("fdt.gen.dcgan.train_dcgan", _broken(GenError("first line\nsecond line")))
    result = CliRunner().invoke(cli, ["gen", "dcgan", "train", str(image_tree), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert result.output.strip() == "Error: first line"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["MISSING"], "no such folder or manifest"),
        (["DATA", "--size", "48"], "power of two"),
        (["DATA", "--real-source", "nope"], "no real images"),
        (["DATA", "--out", "OUTDIR/"], None),
    ],
    ids=["missing-images", "size-not-power-of-two", "no-real-source", "out-is-a-folder"],
)
def test_train_autoencoder_user_errors_exit_2(image_tree, tmp_path, args, message):
    (tmp_path / "outdir").mkdir()
    argv = [str(image_tree) if a == "DATA" else str(tmp_path / "missing") if a == "MISSING" else a for a in args]
    argv = [str(tmp_path / "outdir") if a == "OUTDIR/" else a for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "ae.pt")]
    result = CliRunner().invoke(cli, ["models", "train-autoencoder", *argv, "--epochs", "1", "--size", "16", "--device", "cpu"] if "--size" not in argv else ["models", "train-autoencoder", *argv, "--epochs", "1", "--device", "cpu"])
    assert result.exit_code == 2, result.output
    if message:
        assert message in result.output


def test_an_unreachable_dask_scheduler_is_one_line(image_tree, tmp_path):
    import dask
    import distributed  # noqa: F401  its defaults must be in dask's config before set() (whose exit restores the config as it was)

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        result = CliRunner().invoke(cli, ["extract", str(image_tree), "-e", "fft", "--store", str(tmp_path / "s"), "--scheduler", "tcp://127.0.0.1:9", "-q"])
    assert result.exit_code == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output, result.output
