"""``fdt run EXPERIMENT.toml`` and ``fdt demo``: every stage of a study in one command, reusing finished work."""

from __future__ import annotations

import click

from fdt.cli.common import user_errors


def _run(experiment, workspace: str, quiet: bool) -> None:
    from fdt.experiment import make_plan, run_experiment
    from fdt.experiment.summary import best_report

    with user_errors(workspace, *experiment.input_paths()):
        plan = make_plan(experiment, workspace)
        result = run_experiment(plan, progress=not quiet, log=click.echo)
    best = best_report(result)
    if best is not None:
        for matrix in best["report"]["matrices"]:
            click.echo(f"\n{best['label']} + {best['pipeline']}: {_table(matrix)}")
    totals = result.record.totals()
    click.echo(
        f"\n{totals['stages_computed']} stages computed, {totals['stages_reused']} reused, "
        f"{totals['new_feature_rows']} new feature rows in {result.record.seconds:.0f}s; "
        f"summary: {result.summary_path}, record: {plan.reports_dir / 'run.json'}"
    )


def _table(matrix: dict) -> str:
    """A matrix as aligned text: training conditions down, test conditions across, with means."""
    columns = [*matrix["columns"], "mean"]
    width = max(len(c) for c in [*columns, *matrix["rows"], "mean"]) + 2
    lines = [f"{matrix['title']} ({matrix['metric']})", "train \\ test".ljust(width) + "".join(c.rjust(width) for c in columns)]
    for name, values, mean in zip(matrix["rows"], matrix["values"], matrix["row_means"]):
        lines.append(name.ljust(width) + "".join(_number(v).rjust(width) for v in [*values, mean]))
    lines.append("mean".ljust(width) + "".join(_number(v).rjust(width) for v in matrix["column_means"]))
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "nan" if value is None else f"{value:.3f}"


@click.command()
@click.argument("experiment_file", type=click.Path(dir_okay=False))
@click.option("--workspace", "-w", default=".", show_default=True, type=click.Path(file_okay=False), help="Folder for data/, generators/, features_store/, models/, reports/.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--check", is_flag=True, help="Only check the file (keys, folders, extractors, generators, pipelines); run and write nothing.")
def run(experiment_file: str, workspace: str, quiet: bool, check: bool) -> None:
    """Run every stage of EXPERIMENT_FILE (TOML); a second run does only what is missing.

    The whole file (keys, folders, extractors, generators, pipelines) is checked
    before anything is written. reports/run.json records what each stage computed
    or reused; reports/summary.md links every report file.
    """
    from fdt.experiment import load_experiment, make_plan

    with user_errors(experiment_file):
        experiment = load_experiment(experiment_file)
    if check:
        with user_errors(workspace, *experiment.input_paths()):
            plan = make_plan(experiment, workspace)
        click.echo(
            f"{experiment_file}: ok ({len(experiment.images)} image sets, "
            + (f"{len(experiment.models)} fine-tuned models, " if experiment.models else "")
            + f"{len(experiment.extractors)} extractors, "
            f"{len(experiment.studies)} studies, {len(experiment.matrices)} matrices, {len(plan.quality_jobs)} quality reports; "
            f"real {', '.join(plan.real)}; fakes {', '.join(plan.fakes)})"
        )
        for warning in plan.warnings:
            click.echo(f"warning: {warning}", err=True)
        return
    _run(experiment, workspace, quiet)


@click.command()
@click.option("--workspace", "-w", default="fdt-demo", show_default=True, type=click.Path(file_okay=False), help="Folder the demo writes into.")
@click.option("--show", is_flag=True, help="Print the demo's experiment file (a starting point for your own) and exit.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def demo(workspace: str, show: bool, quiet: bool) -> None:
    """Run the whole toolkit offline: photo crops from installed packages, fakes from generators
    trained here, all five extractors, tuned detectors, generalisation matrices and a summary."""
    from fdt.experiment import demo_experiment, demo_text

    if show:
        click.echo(demo_text(), nl=False)
        return
    _run(demo_experiment(), workspace, quiet)
