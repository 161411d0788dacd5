"""The one user-error mapping: every user mistake (fdt's or click's) is one line with exit 2; a bug keeps its traceback."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fdt.cli import cli
from fdt.cli.common import REPORT_BUG
from fdt.errors import MissingExtraError, one_line


def _broken(error: BaseException):
    def fail(*args, **kwargs):
        raise error

    return fail


def _extract(image_tree, tmp_path, *extra: str):
    return CliRunner().invoke(cli, ["extract", str(image_tree), "-e", "fft", "--store", str(tmp_path / "s"), "-q", *extra])


@pytest.mark.parametrize(
    "error",
    [click.ClickException("bad input\nmore"), click.FileError("x.txt", "cannot read it")],
    ids=["click-exception", "file-error"],
)
def test_clicks_own_user_errors_exit_2_like_fdts(image_tree, tmp_path, monkeypatch, error):
    assert error.exit_code == 1  # click's default, which fdt aligns
    monkeypatch.setattr("fdt.features_store.extraction.extract_levels", _broken(error))
    result = _extract(image_tree, tmp_path)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) <= 2 and "Traceback" not in result.output


def test_a_usage_error_stays_exit_2():
    result = CliRunner().invoke(cli, ["extract", "--no-such-option"])
    assert result.exit_code == 2 and "No such option" in result.output


def test_a_full_disk_is_one_line_exit_2(image_tree, tmp_path, monkeypatch):
    from fdt.atomic import write_bytes

    def fill(*args, **kwargs):
        write_bytes(tmp_path / "x", b"")  # a real atomic write that then meets a full disk
        raise AssertionError("unreachable")

    monkeypatch.setattr("fdt.atomic._fsync_file", _broken(OSError(errno.ENOSPC, "No space left on device")))
    monkeypatch.setattr("fdt.features_store.extraction.extract_levels", fill)
    result = _extract(image_tree, tmp_path)
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: no space left on device while writing {tmp_path / 'x'}: free space and run again"
    assert list(tmp_path.glob(".x.*.tmp")) == [] and not (tmp_path / "x").exists()


def test_a_bug_keeps_its_traceback_and_exit_1(image_tree, tmp_path, monkeypatch):
    monkeypatch.setattr("fdt.features_store.extraction.extract_levels", _broken(ZeroDivisionError("division by zero")))
    result = _extract(image_tree, tmp_path)
    assert result.exit_code == 1 and isinstance(result.exception, ZeroDivisionError)
    assert REPORT_BUG in result.exception.__notes__


def test_without_distributed_scheduler_extraction_names_the_extra(image_tree, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed: importing it raises ImportError
    result = _extract(image_tree, tmp_path, "--scheduler", "tcp://127.0.0.1:9")
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line == (
        "Error: fdt extract --scheduler (extraction on a Dask cluster) needs the distributed package, "
        "which fdt installs as an extra: pip install 'fdt[scale]'"
    )


def test_without_psycopg2_a_postgres_study_names_the_extra(monkeypatch):
    from fdt.pipelines.tuning import open_storage

    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(MissingExtraError, match=r"the PostgreSQL study storage db.example:5432/fdt needs the psycopg2 package.*pip install 'fdt\[scale\]'"):
        open_storage("postgresql://user:secret@db.example:5432/fdt")
    from fdt.cli.tune import study_status  # fdt tune --status

    with pytest.raises(MissingExtraError, match="pip install 'fdt\\[scale\\]'") as caught:
        study_status("postgresql://user:secret@db.example:5432/fdt", "study")
    assert "secret" not in str(caught.value)


def test_a_broken_optional_package_is_a_bug_not_a_missing_extra(monkeypatch):
    from fdt.extras import require

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingExtraError):
        require("distributed", "x")

    def broken_import(name, *args, **kwargs):
        raise ModuleNotFoundError("No module named 'tornado'", name="tornado")  # the package is there, a dependency of it is not

    monkeypatch.setattr("importlib.import_module", broken_import)
    with pytest.raises(ModuleNotFoundError, match="tornado"):
        require("distributed", "x")


def test_one_line_of_any_error():
    assert one_line(KeyError("classes_")) == "classes_"
    assert one_line(ValueError("first\nsecond")) == "first"
    assert one_line(OSError()) == "OSError"


def test_fdts_own_warnings_print_as_one_line_and_others_keep_their_origin(monkeypatch):
    import warnings

    import fdt
    from fdt.cli import _one_line_warnings

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)
    _one_line_warnings()
    inside = str(Path(fdt.__file__).parent / "gen" / "dcgan.py")
    assert warnings.formatwarning("skipped 1 unreadable image(s)", UserWarning, inside, 177) == "fdt: warning: skipped 1 unreadable image(s)\n"
    other = warnings.formatwarning("deprecated", DeprecationWarning, "/elsewhere/lib.py", 3, "")
    assert other.startswith("/elsewhere/lib.py:3: DeprecationWarning: deprecated")
