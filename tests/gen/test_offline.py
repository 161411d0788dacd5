"""Model resolution offline, and a CLI that answers --help without loading torch or diffusers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fdt.cli import cli
from fdt.gen.errors import ModelNotFoundError
from fdt.gen.resolve import resolve_model


@pytest.mark.parametrize("command", ["sd", "inpaint"])
def test_missing_model_offline_is_one_line(command: str, tmp_path: Path, photos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat\n")
    source = prompts if command == "sd" else photos
    result = CliRunner().invoke(cli, ["gen", command, str(source), "--model", "nobody/no-such-model", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "'nobody/no-such-model'" in lines[0] and "HF_HUB_OFFLINE" in lines[0] and "--model /path/to/" in lines[0]
    assert not (tmp_path / "out").exists()


def test_local_folder_needs_a_pipeline(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no model_index.json"):
        resolve_model(str(tmp_path))


@pytest.mark.parametrize("args", [["--help"], ["gen", "--help"], ["gen", "ddpm", "--help"], ["gen", "sd", "--help"]])
def test_help_does_not_import_torch_or_diffusers(args: list[str]) -> None:
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom fdt.cli import cli\n"
        f"result = CliRunner().invoke(cli, {args!r})\nassert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
