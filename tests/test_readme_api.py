"""The README's "From Python" sections, run as written on a tiny workspace this test builds, so they cannot rot.

Every ``python`` block under a heading "From Python" or "From an analysis script"
is executed in order in one folder holding ``data/coco`` (real), ``data/dcgan`` and
``data/sd21`` (fake) and a ``study.toml``; the blocks may use only ``import fdt`` and
the top-level names of the notebook API.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import fdt
from tests.tiny_images import write_sources

README = Path(__file__).resolve().parent.parent / "README.md"
SECTIONS = ("From an analysis script", "From Python")
STUDY = """
[experiment]
name = "readme"
seed = 0
resolutions = ["native"]
workers = 0

[images.coco]
folder = "data/coco"
label = "real"

[images.dcgan]
folder = "data/dcgan"
label = "fake"

[extractors.fft]
params = { size = 8 }

[[studies]]
pipelines = ["logreg"]
extractors = ["fft"]
trials = 1
cv = 3
"""


def python_blocks(text: str) -> list[tuple[str, str]]:
    """(heading, code) of every python block under one of :data:`SECTIONS`, in README order."""
    blocks, heading, fence, code = [], "", None, []
    for line in text.splitlines():
        if fence is None:
            if line.startswith("```"):
                fence, code = line[3:].strip(), []
            elif match := re.match(r"#+ (.*)", line):
                heading = match.group(1).strip()
        elif line.startswith("```"):
            if fence == "python" and heading in SECTIONS:
                blocks.append((heading, "\n".join(code)))
            fence = None
        else:
            code.append(line)
    return blocks


def names_used(code: str) -> tuple[set[str], set[str]]:
    """(modules imported, attributes taken from ``fdt``)."""
    tree = ast.parse(code)
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "fdt"}
    return imported, used


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_the_sections_are_found():
    assert [heading for heading, _ in BLOCKS] == ["From an analysis script", "From Python", "From Python"]


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_a_section_uses_only_the_top_level_api(index):
    imported, used = names_used(BLOCKS[index][1])
    assert imported == {"fdt"}
    assert used and used <= set(fdt.__all__)


def test_the_sections_run_as_written(tmp_path, monkeypatch, capsys):
    # The format audit runs (headers are read) but fits no forests: 13 forests x 5 folds per condition cost
    # most of this test's time, and tests/pipelines/test_audit.py covers them.
    audited = []
    monkeypatch.setattr("fdt.pipelines.audit._condition", lambda table, name, *args: audited.append(name))
    monkeypatch.chdir(tmp_path)
    write_sources(tmp_path / "data", {"coco": "noise", "dcgan": "smooth", "sd21": "striped"}, count=12, size=40)
    (tmp_path / "study.toml").write_text(STUDY, encoding="utf-8")
    namespace: dict = {}
    for heading, code in BLOCKS:
        exec(compile(code, f"README.md ({heading})", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "36 new rows, 0 reused, 0 failed images" in printed  # the first extraction, as printed
    assert namespace["X"].shape == (24, 1024) and len(set(namespace["groups"])) == 24  # coco vs dcgan at crop:32; one image, one group
    assert namespace["jpeg75"].key.perturb and len(namespace["jpeg75"]) == 24
    assert (tmp_path / "reports" / "my-matrix" / "report.md").is_file()
    assert (tmp_path / "runs" / "a" / "reports" / "summary.md").is_file()
    assert audited == ["dcgan", "sd21", "all fakes"] * 2 + ["dcgan"]  # fdt.tune's and fdt.matrix's audits, then fdt run's
    assert namespace["result"].record.totals()["new_feature_rows"] == 24  # the study's own workspace: coco and dcgan at native
