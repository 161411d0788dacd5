"""``fdt --config FILE`` / ``fdt.toml`` / ``[tool.fdt]``: option defaults from a file, checked, announced, overridden by the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fdt.cli import cli
from fdt.features_store import FeatureStore
from tests.conftest import write_images


@pytest.fixture
def data(tmp_path: Path) -> Path:
    write_images(tmp_path / "data" / "real", 3, seed=0)
    write_images(tmp_path / "data" / "fake", 3, seed=1)
    return tmp_path / "data"


def _extractions(store: Path) -> list[tuple[str, int]]:
    return [(key.extractor, key.params["size"]) for key in FeatureStore(store).keys()]


def test_defaults_come_from_the_file_and_relative_paths_from_its_folder(data: Path, tmp_path: Path, monkeypatch):
    config = tmp_path / "project" / "team.toml"
    config.parent.mkdir()
    config.write_text('[extract]\nstore = "stores/shared"\nextractor = "fft"\nparam = ["size=16"]\nquiet = true\n')
    monkeypatch.chdir(data)  # the store lands beside the config file, not in the working folder
    result = CliRunner().invoke(cli, ["--config", str(config), "extract", str(data)])
    assert result.exit_code == 0, result.output
    assert _extractions(tmp_path / "project" / "stores" / "shared") == [("fft", 16)]
    assert not (data / "stores").exists()


def test_the_command_line_wins_over_the_file(data: Path, tmp_path: Path):
    config = tmp_path / "fdt.toml"
    config.write_text('[extract]\nstore = "from-config"\nextractor = "fft"\nparam = ["size=16"]\nquiet = true\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "extract", str(data), "--store", str(tmp_path / "cli"), "-p", "size=8"])
    assert result.exit_code == 0, result.output
    assert _extractions(tmp_path / "cli") == [("fft", 8)]
    assert not (tmp_path / "from-config").exists()


def test_a_discovered_file_is_announced(data: Path, tmp_path: Path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.fdt.extract]\nextractor = "fft"\nparam = ["size=8"]\nquiet = true\n')
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["extract", str(data), "--store", "s"])
    assert result.exit_code == 0, result.output
    assert "option defaults from pyproject.toml [tool.fdt]" in result.output
    assert _extractions(tmp_path / "s") == [("fft", 8)]


def test_a_pyproject_without_fdt_tables_changes_nothing(tmp_path: Path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["gen", "list"])
    assert result.exit_code == 0 and "option defaults" not in result.output


@pytest.mark.parametrize(
    "text, message",
    [
        ("[extrct]\nstore = 'x'\n", "config table [extrct] names no fdt command"),
        ("[extract]\nbatchsize = 3\n", "config key 'batchsize' in [extract] is no option of fdt extract; options: batch-size,"),
        ("[report.matrx]\ncv = 3\n", "config table [report.matrx] names no fdt command"),
        ("[report.matrix]\nfolds = 3\n", "config key 'folds' in [report.matrix] is no option of fdt report matrix"),
        ("store = 'x'\n", "config key 'store' in [the top level] is no option of fdt itself"),
        ("[extract\n", "not valid TOML"),
    ],
)
def test_a_key_naming_no_command_or_option_is_one_line(tmp_path: Path, text: str, message: str):
    config = tmp_path / "c.toml"
    config.write_text(text)
    result = CliRunner().invoke(cli, ["--config", str(config), "gen", "list"])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_value_of_the_wrong_type_is_the_options_own_error(data: Path, tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text("[extract]\nbatch-size = 'many'\n")
    result = CliRunner().invoke(cli, ["--config", str(config), "extract", str(data), "-e", "fft", "--store", str(tmp_path / "s")])
    assert result.exit_code == 2 and "batch-size" in result.output and "'many'" in result.output


def test_an_explicit_pyproject_needs_the_table_and_a_missing_file_is_one_line(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    for path, message in ((tmp_path / "pyproject.toml", "has no [tool.fdt] table"), (tmp_path / "none.toml", "No such file")):
        result = CliRunner().invoke(cli, ["--config", str(path), "gen", "list"])
        assert result.exit_code == 2 and message in result.output
