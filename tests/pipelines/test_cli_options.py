"""The option blocks fdt tune and fdt report share: every command lists exactly the options it did before they were factored."""

import re

import pytest
from click.testing import CliRunner

from fdt.cli import cli

BEFORE = {
    ("tune",): [
        "--extractor", "--resolution", "--param", "--weights", "--pipeline", "--specs", "--allow-class", "--real", "--fake",
        "--trials", "--cv", "--split", "--seed", "--store", "--models", "--storage", "--name", "--progress", "--status",
        "--equalise", "--jobs", "--trial-timeout", "--pruner", "--fidelity", "--time-warning", "--allow-trained-groups", "--help",
    ],
    ("report", "matrix"): [
        "--extractor", "--resolution", "--resolutions", "--param", "--weights", "--pipeline", "--specs", "--allow-class", "--real",
        "--fake", "--metric", "--trials", "--cv", "--split", "--seed", "--store", "--out", "--scheduler", "--progress",
        "--equalise", "--jobs", "--trial-timeout", "--pruner", "--fidelity", "--time-warning", "--allow-trained-groups", "--help",
    ],
    ("report", "robustness"): [
        "--extractor", "--resolution", "--param", "--weights", "--pipeline", "--specs", "--allow-class", "--real", "--fake",
        "--sweep", "--train-perturb", "--trials", "--cv", "--split", "--seed", "--resamples", "--store", "--out", "--progress", "--help",
    ],
}
DEFAULTS = {
    ("tune",): {"--pipeline": "svm-rbf", "--trials": "50"},
    ("report", "matrix"): {"--pipeline": "svm-linear", "--trials": "0"},
    ("report", "robustness"): {"--pipeline": "logreg", "--trials": "0"},
}


def help_text(command: tuple[str, ...]) -> str:
    result = CliRunner().invoke(cli, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", list(BEFORE), ids=" ".join)
def test_help_lists_the_same_options_in_the_same_order(command):
    listed = re.findall(r"^  (--[a-z-]+)", help_text(command), flags=re.MULTILINE)
    assert listed == BEFORE[command]


@pytest.mark.parametrize("command", list(DEFAULTS), ids=" ".join)
def test_each_command_keeps_its_own_defaults_and_help(command):
    text = " ".join(help_text(command).split())
    for option, default in DEFAULTS[command].items():
        assert re.search(rf"{option} [^[]*\[default: {default}[;\]]", text), (option, default)  # its own entry, not a later one
    assert "Train/validation/test shares of the groups. [default: 80/10/10]" in text
    assert "--progress / --no-progress" in text
