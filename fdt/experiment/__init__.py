"""``fdt run`` and ``fdt demo``: one experiment file declares the whole study; fdt runs every stage once.

- :mod:`~fdt.experiment.config`: the TOML schema (dataclasses) and its structural checks;
- :mod:`~fdt.experiment.plan`: every folder, extractor, generator and pipeline checked before anything is written;
- :mod:`~fdt.experiment.corpus`: the real corpus cut from photos that ship inside installed packages;
- :mod:`~fdt.experiment.runner`: the stages, reusing finished work, and the run record;
- :mod:`~fdt.experiment.summary`: ``reports/summary.md``.

From a script::

    from fdt.experiment import load_experiment, make_plan, run_experiment

    result = run_experiment(make_plan(load_experiment("study.toml"), "workspace"))
    print(result.record.totals(), result.summary_path)

Importing this package is cheap: torch is imported only by the stages that run a network.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fdt.experiment.config import Experiment, ExperimentError, load_experiment, parse_experiment
from fdt.experiment.plan import Plan, make_plan
from fdt.experiment.runner import RunRecord, RunResult, run_experiment

DEMO_FILE = "demo.toml"


def demo_text() -> str:
    """The embedded default experiment that ``fdt demo`` runs."""
    return resources.files(__package__).joinpath(DEMO_FILE).read_text(encoding="utf-8")


def demo_experiment() -> Experiment:
    return parse_experiment(demo_text(), base=Path.cwd(), source=f"fdt/experiment/{DEMO_FILE}")


__all__ = [
    "Experiment", "ExperimentError", "Plan", "RunRecord", "RunResult",
    "demo_experiment", "demo_text", "load_experiment", "make_plan", "parse_experiment", "run_experiment",
]
