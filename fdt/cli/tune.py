"""``fdt tune``: tune and cross-validate one pipeline on stored features, write the model and its card."""

from __future__ import annotations

from pathlib import Path

import click

from fdt.cli.common import (
    ALLOW_TRAINED_GROUPS_OPTION,
    EQUALISE_OPTION,
    STORE_OPTION,
    equalise_key,
    parse_params,
    pipeline_options,
    progress_option,
    protocol_options,
    source_options,
    split_list,
    stored_features_options,
    user_errors,
)
from fdt.errors import check_name


def tuning_options(command):
    """``--jobs``, ``--trial-timeout``, ``--pruner``, ``--fidelity``, ``--time-warning``: shared by fdt tune and fdt report matrix."""
    options = [
        click.option("--jobs", default=1, show_default=True, type=click.IntRange(min=1), help="Folds (fdt tune) or training conditions (fdt report) run at once on local cores; results equal --jobs 1."),
        click.option("--trial-timeout", default=600.0, show_default=True, type=click.FloatRange(min=0), help="Seconds a trial may take before its fit is killed and the trial recorded as pruned (0: no budget)."),
        click.option("--pruner", default="wilcoxon", show_default=True, type=click.Choice(["wilcoxon", "median", "halving", "none"]), help="Stop hopeless trials after a fold."),
        click.option("--fidelity", default=None, type=click.FloatRange(min=0, max=1, min_open=True, max_open=True), help="Multi-fidelity: score each trial on this share of the training groups first; only promising ones get all rows."),
        click.option("--time-warning", default=30.0, show_default=True, type=click.FloatRange(min=0), help="Minutes above which an O(n²) spec's time estimate prints a warning (never refuses)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def tuning_settings(jobs: int, trial_timeout: float, pruner: str, fidelity: float | None) -> dict:
    """The :class:`~fdt.pipelines.tuning.OptunaSearchCV` settings of the shared tuning options (the library's, with option names in the one message click cannot check)."""
    if fidelity is not None and pruner == "none":
        from fdt.cli.common import UserError

        raise UserError("--fidelity needs a pruner to decide which trials get all rows; drop --pruner none")
    from fdt.pipelines import tuning

    return tuning.tuning_settings(jobs, trial_timeout, pruner, fidelity)


def warn_if_slow(spec, data, trials: int, cv: int, minutes: float, seed: int) -> None:
    """Print :func:`~fdt.pipelines.estimate.time_warning`'s line (stderr) when the estimate passes ``minutes``."""
    from fdt.pipelines.estimate import time_warning

    line = time_warning(spec, data.X, data.y, trials, cv, minutes * 60, seed)
    if line:
        click.echo(line, err=True)


def format_counts(counts: dict) -> str:
    """``3 complete, 2 pruned (1 by the time budget), 1 not converged``."""
    parts = [f"{counts.get(state, 0)} {state}" for state in ("complete", "pruned")]
    parts += [f"{n} {state}" for state, n in sorted(counts.items()) if state not in ("complete", "pruned", "timed_out", "not_converged") and n]
    if counts.get("timed_out"):
        parts[1] += f" ({counts['timed_out']} by the time budget)"
    if counts.get("not_converged"):
        parts.append(f"{counts['not_converged']} with a non-converged fold")
    return ", ".join(parts)


@click.command()
@stored_features_options(
    "Extractor whose stored features to use (vgg16, fft, ...).",
    "native, N (resized to NxN), crop:N or randcrop:N.",
    "Weights identity prefix narrowing the stored key (imagenet, random, file).",
)
@pipeline_options("svm-rbf")
@source_options("Real source(s), comma-separated.", "Fake source(s), comma-separated.")
@protocol_options(50, "Optuna trials to add to the study (0: spec defaults).", "Grouped cross-validation folds.", "Seeds folds, splits, TPE and the models.")
@STORE_OPTION
@click.option("--models", "models_dir", default="models", show_default=True, type=click.Path(file_okay=False))
@click.option("--storage", default=None, help="Optuna storage URL (default: sqlite:///MODELS/optuna.db); re-running continues the study.")
@click.option("--name", default=None, help="Model name (default: extractor-resolution-pipeline-real-vs-fakes).")
@progress_option("Progress bar over trials.")
@click.option("--status", is_flag=True, help="Print the study's trials by state and its best trial, then exit without tuning.")
@EQUALISE_OPTION
@tuning_options
@ALLOW_TRAINED_GROUPS_OPTION
def tune(
    extractor: str,
    resolution: str,
    params: tuple[str, ...],
    weights: str | None,
    pipeline_name: str,
    specs: str | None,
    real: str,
    fake: str,
    trials: int,
    cv: int,
    split: str,
    seed: int,
    store_root: str,
    models_dir: str,
    storage: str | None,
    name: str | None,
    progress: bool,
    status: bool,
    jobs: int,
    trial_timeout: float,
    pruner: str,
    fidelity: float | None,
    time_warning: float,
    allow_trained_groups: bool,
    equalise: tuple[str, ...],
) -> None:
    """Tune and cross-validate a pipeline on stored features; write models/NAME.skops and its JSON card."""
    from fdt.data import parse_resolution
    from fdt.features_store.store import FeatureStore
    from fdt.pipelines.cards import save_model, tuned_card
    from fdt.pipelines.audit import shortcut_warnings
    from fdt.pipelines.evaluation import load_condition, study_name as protocol_study, tune_condition
    from fdt.pipelines.metrics import format_scored, format_summary
    from fdt.pipelines.specs import get_spec
    from fdt.pipelines.splits import parse_fractions

    real_sources, fake_sources = split_list(real), split_list(fake)
    models = Path(models_dir)
    with user_errors(store_root, specs):
        spec = get_spec(pipeline_name, specs)
        fractions = parse_fractions(split)
        resolution = parse_resolution(resolution)
        data_store = FeatureStore(store_root)
        data = load_condition(data_store, extractor, resolution, real_sources, fake_sources, parse_params(params), weights, equalise_key(equalise))
        name = check_name(name, "--name") if name else f"{extractor}-{resolution.replace(':', '')}-{pipeline_name}-{'+'.join(real_sources)}-vs-{'+'.join(fake_sources)}"
        study_storage = storage or f"sqlite:///{(models / 'optuna.db').resolve()}"
        study_name = protocol_study(name, data, spec, seed, fractions, cv)
    if status:
        click.echo(study_status(study_storage, study_name))
        return
    with user_errors(store_root, models_dir, specs):
        warn_if_slow(spec, data, trials, cv, time_warning, seed)
        result = tune_condition(
            data,
            spec,
            n_trials=trials,
            cv=cv,
            fractions=fractions,
            random_state=seed,
            storage=study_storage,
            study_name=study_name,
            progress=progress,
            before_tuning=lambda: models.mkdir(parents=True, exist_ok=True),
            **tuning_settings(jobs, trial_timeout, pruner, fidelity),
            allow_trained_groups=allow_trained_groups,
        )
    tuner = result.tuner
    result.notes += shortcut_warnings(data_store, real_sources, fake_sources, seed)
    card = tuned_card(name, spec, result, data, real_sources, fake_sources, seed, cv, study_storage)
    model_path, card = save_model(tuner.predictor_, card, models, name)
    click.echo(f"features: {data.key.describe()}")
    click.echo(f"best {tuner.scoring} (grouped {cv}-fold CV, {tuner.n_trials_} trials in study): {tuner.best_score_:.4f}  {tuner.best_params_}")
    click.echo(f"trials: {format_counts(tuner.trial_counts_)}; final fit {'converged' if tuner.refit_converged_ else 'did NOT converge (iteration cap)'}")
    click.echo(f"probabilities: {tuner.calibration_}")
    click.echo("cross-validation, mean ± std:")
    click.echo(format_summary(result.cv_summary))
    click.echo(f"held-out test ({result.rows['test']} rows), 95% bootstrap interval over groups:")
    click.echo(format_scored(result.test))
    click.echo(f"thresholds of best_threshold_accuracy and tpr_at_fpr_*: chosen on {result.thresholds['chosen_on']}")
    for note in result.notes:
        click.echo(f"warning: {note.strip('*').removeprefix('WARNING: ')}", err=True)
    click.echo(f"wrote {model_path} and {model_path.with_suffix('.json')}")


def study_status(storage: str, study_name: str) -> str:
    """Trials by state and the best trial of a stored study, as a few lines (``fdt tune --status``)."""
    import optuna

    from fdt.cli.common import UserError
    from fdt.extras import postgres_driver
    from sqlalchemy.exc import SQLAlchemyError

    from fdt.errors import one_line
    from fdt.pipelines.tuning import count_trials, sqlite_file

    postgres_driver(storage)
    database = sqlite_file(storage)
    if database is not None and not database.is_file():  # optuna would create an empty database just to say so
        raise UserError(f"no study {study_name!r} in {storage} yet; run fdt tune without --status first")
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise UserError(f"no study {study_name!r} in {storage} yet; run fdt tune without --status first") from None
    except SQLAlchemyError as error:
        raise UserError(f"cannot open the study storage {storage}: {one_line(error)}") from None
    states = count_trials(study.trials)
    lines = [f"study {study_name} in {storage}", "trials: " + format_counts(states)]
    if states.get("complete"):
        best = study.best_trial
        lines.append(f"best: trial {best.number}, value {best.value:.4f}, params {best.params}")
    return "\n".join(lines)
