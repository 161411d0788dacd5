"""Cause 9: a spec file names scikit-learn classes, or classes the user allows; nothing else is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from fdt.cli import cli

EVIL = '''
from pathlib import Path
Path("imported").write_text("module code ran")
from sklearn.linear_model import LogisticRegression
class Evil(LogisticRegression):
    pass
'''


def _spec(folder: Path, classifier: str) -> Path:
    path = folder / "specs.toml"
    path.write_text(f'[pipelines.mine]\nclassifier = "{classifier}"\n')
    return path


def _fdt(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "fdt", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def test_a_module_in_the_current_folder_is_never_imported(tmp_path):
    (tmp_path / "evil.py").write_text(EVIL)
    _spec(tmp_path, "evil.Evil")
    result = _fdt(tmp_path, "pipelines", "ls", "--specs", "specs.toml")
    assert result.returncode == 2, result.stderr
    assert "--allow-class evil.Evil" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "imported").exists()
    allowed = _fdt(tmp_path, "pipelines", "ls", "--specs", "specs.toml", "--allow-class", "evil.Evil")
    assert allowed.returncode == 0, allowed.stderr
    assert (tmp_path / "imported").exists() and "mine" in allowed.stdout


def test_this_zen_is_refused_without_importing_it(tmp_path):
    code = (
        "import sys; from click.testing import CliRunner; from fdt.cli import cli\n"
        f"r = CliRunner().invoke(cli, ['pipelines', 'ls', '--specs', {str(_spec(tmp_path, 'this.Zen'))!r}])\n"
        "print(r.exit_code, 'this' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert out.stdout.split() == ["2", "False"], out.stderr


def test_any_scikit_learn_classifier_is_allowed(tmp_path):
    result = CliRunner().invoke(cli, ["pipelines", "ls", "--specs", str(_spec(tmp_path, "sklearn.linear_model.SGDClassifier"))])
    assert result.exit_code == 0, result.output
    assert "SGDClassifier" in result.output


def test_a_pipeline_name_that_leaves_models_is_refused(tmp_path):
    specs = tmp_path / "specs.toml"
    specs.write_text('[pipelines."../../x"]\nclassifier = "svc"\n')
    result = CliRunner().invoke(cli, ["pipelines", "ls", "--specs", str(specs)])
    assert result.exit_code == 2 and "pipeline name '../../x' is not a safe name" in result.output
