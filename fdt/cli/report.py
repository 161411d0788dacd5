"""``fdt report matrix``: generalisation matrices (per resolution and across resolutions) with plots."""

from __future__ import annotations

from pathlib import Path

import click

from fdt.cli.common import (
    ALLOW_TRAINED_GROUPS_OPTION,
    EQUALISE_OPTION,
    STORE_OPTION,
    UserError,
    equalise_key,
    parse_params,
    pipeline_options,
    progress_option,
    protocol_options,
    quality_metric_options,
    source_options,
    split_list,
    stored_features_options,
    user_errors,
)
from fdt.cli.tune import tuning_options, tuning_settings, warn_if_slow


@click.group()
def report() -> None:
    """Generalisation matrices, ROC curves, robustness sweeps, quality vs detectability, and plots."""


@report.command()
@stored_features_options(
    "Extractor whose stored features to use.",
    "native, N, crop:N or randcrop:N (ignored with --resolutions).",
    "Weights identity prefix narrowing the stored key.",
    click.option("--resolutions", default=None, help="Several resolutions, e.g. 64,256: a matrix for each plus the cross-resolution matrix."),
)
@pipeline_options("svm-linear")
@source_options("Real source(s), comma-separated; every condition uses them.", "Fake sources, comma-separated: one matrix row and column each.")
@click.option("--metric", default="roc_auc", show_default=True, help="Metric shown in the tables and heatmaps (all are in the JSON).")
@protocol_options(0, "Optuna trials per training condition (0: spec defaults).", "Grouped folds for tuning and calibration.")
@STORE_OPTION
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Output folder (default: reports/matrix-EXTRACTOR-PIPELINE).")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Tune the training conditions as tasks on a Dask cluster (tcp://host:8786).")
@progress_option()
@EQUALISE_OPTION
@tuning_options
@ALLOW_TRAINED_GROUPS_OPTION
def matrix(
    extractor: str,
    resolution: str,
    resolutions: str | None,
    params: tuple[str, ...],
    weights: str | None,
    pipeline_name: str,
    specs: str | None,
    real: str,
    fake: str,
    metric: str,
    trials: int,
    cv: int,
    split: str,
    seed: int,
    store_root: str,
    out: str | None,
    scheduler: str | None,
    progress: bool,
    jobs: int,
    trial_timeout: float,
    pruner: str,
    fidelity: float | None,
    time_warning: float,
    allow_trained_groups: bool,
    equalise: tuple[str, ...],
) -> None:
    """Train on real vs fake A, test on real vs fake B, for every A and B (diagonal on held-out groups)."""
    from fdt.data import parse_resolution
    from fdt.features_store.store import FeatureStore
    from fdt.pipelines.audit import shortcut_warnings
    from fdt.pipelines.evaluation import load_condition
    from fdt.pipelines.matrix import generalisation_matrices, write_report
    from fdt.pipelines.metrics import check_metric
    from fdt.pipelines.specs import get_spec
    from fdt.pipelines.splits import parse_fractions

    real_sources, fake_sources = split_list(real), split_list(fake)
    with user_errors(store_root, specs):
        spec = get_spec(pipeline_name, specs)
        check_metric(metric)
        fractions = parse_fractions(split)
        wanted = [parse_resolution(r) for r in (split_list(resolutions) if resolutions else [resolution])]
        store = FeatureStore(store_root)
        data = {res: load_condition(store, extractor, res, real_sources, fake_sources, parse_params(params), weights, equalise_key(equalise)) for res in wanted}
        tuning = tuning_settings(jobs, trial_timeout, pruner, fidelity)
        conditions = len(fake_sources) + (len(wanted) > 1)
        for res, fs in data.items():  # a condition trains on about (train share) of the rows, once per fake source
            warn_if_slow(spec, fs, max(trials, 1) * conditions, cv, time_warning, seed)
        if scheduler:
            from fdt.features_store.distributed import connect

            with connect(scheduler) as client:
                result = generalisation_matrices(
                    data, real_sources, fake_sources, spec, metric, trials, cv, fractions, seed, progress, client=client,
                    allow_trained_groups=allow_trained_groups, **tuning,
                )
        else:
            result = generalisation_matrices(
                data, real_sources, fake_sources, spec, metric, trials, cv, fractions, seed, progress, allow_trained_groups=allow_trained_groups, **tuning
            )
    result.notes += shortcut_warnings(store, real_sources, fake_sources, seed)
    folder = Path(out or Path("reports") / f"matrix-{extractor}-{pipeline_name}")
    with user_errors(folder):
        write_report(result, folder)
    for res, weights_identity in result.weights.items():
        click.echo(f"features at {res}: {result.extractors[res]} (weights: {weights_identity})")
    for table in result.matrices:
        click.echo(table.to_markdown())
    for note in result.notes:
        click.echo(f"warning: {note.strip('*').removeprefix('WARNING: ')}", err=True)
    click.echo(f"wrote {folder}/ (CSV, JSON, Markdown, heatmap, ROC and PCA PNGs)")


@report.command()
@stored_features_options(
    "Extractor whose stored features to use.",
    "Resolution of the stored features.",
    "Weights identity prefix narrowing the stored key.",
)
@pipeline_options("logreg")
@source_options("Real source(s), comma-separated.", "Fake sources, comma-separated: one line each in the plots.")
@click.option("--sweep", "sweeps", multiple=True, required=True, metavar="OP:K=V1,V2", help="Levels to test at, e.g. jpeg:quality=100,90,75,50,30; repeatable.")
@click.option("--train-perturb", "train_perturb", multiple=True, metavar="OP:K=V", help="Train on perturbed features (e.g. blurjpeg:prob=0.5); repeat to chain.")
@protocol_options(0, "Optuna trials (0: spec defaults).", "Grouped folds for tuning and calibration.")
@click.option("--resamples", default=1000, show_default=True, type=click.IntRange(min=10), help="Bootstrap resamples per interval.")
@STORE_OPTION
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Output folder (default: reports/robustness-EXTRACTOR-PIPELINE).")
@progress_option()
def robustness(extractor, resolution, params, weights, pipeline_name, specs, real, fake, sweeps, train_perturb, trials, cv, split, seed, resamples, store_root, out, progress) -> None:
    """Train once (clean, or --train-perturb), test held-out groups at every level of each --sweep.

    Needs the levels' features in the store: fdt extract DATA -e EXTRACTOR --sweep SPEC.
    """
    from fdt.data import parse_resolution
    from fdt.features_store.store import FeatureStore
    from fdt.pipelines.robustness import robustness_report, write_robustness
    from fdt.pipelines.specs import get_spec
    from fdt.pipelines.splits import parse_fractions

    with user_errors(store_root, specs):
        spec = get_spec(pipeline_name, specs)
        result = robustness_report(
            FeatureStore(store_root), extractor, spec, split_list(real), split_list(fake), list(sweeps), list(train_perturb),
            parse_resolution(resolution), parse_params(params), weights, trials, cv, parse_fractions(split), seed, resamples, progress,
        )
    folder = Path(out or Path("reports") / f"robustness-{extractor}-{pipeline_name}")
    with user_errors(folder):
        write_robustness(result, folder)
    click.echo(result.to_markdown())
    click.echo(f"wrote {folder}/ (CSV, JSON, Markdown, one PNG per sweep)")


@report.command()
@stored_features_options(
    "Extractor whose stored features to measure quality in (inception_v3 for FID).",
    "Resolution of the stored features.",
    "Weights identity prefix narrowing the stored key.",
    EQUALISE_OPTION,
)
@source_options("Real source(s), comma-separated, pooled as the reference set.", "Fake sources, comma-separated: one table row and one point each.")
@click.option("--matrix", "matrix_file", default=None, type=click.Path(dir_okay=False), help="Detectability from this fdt report matrix report.json (its diagonal).")
@click.option("--model", "models", multiple=True, type=click.Path(dir_okay=False), help="Detectability from this tuned model's card (test ROC AUC); repeatable.")
@pipeline_options("logreg")
@click.option("--cv", default=5, show_default=True, type=click.IntRange(min=2), help="Grouped folds of the cross-validated detectability (without --matrix or --model).")
@quality_metric_options()
@click.option("--seed", default=0, show_default=True, type=int)
@STORE_OPTION
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Output folder (default: reports/quality-EXTRACTOR).")
@progress_option()
@ALLOW_TRAINED_GROUPS_OPTION
def quality(
    extractor, resolution, equalise, params, weights, real, fake, matrix_file, models, pipeline_name, specs, cv, k, kid_subsets,
    kid_subset_size, resamples, seed, store_root, out, progress, allow_trained_groups,
) -> None:
    """Fréchet distance, KID and precision/recall/density/coverage of each fake source against the reals, next to its detectability.

    Works on any extractor's stored features; the report names the feature space
    (only inception_v3 with published weights at 299 px gives an FID).
    """
    from fdt.data import parse_resolution
    from fdt.features_store.store import FeatureStore
    from fdt.pipelines.evaluation import load_condition
    from fdt.pipelines.quality_report import detectability_from_cards, detectability_from_matrix, quality_report, write_quality
    from fdt.pipelines.specs import get_spec

    real_sources, fake_sources = split_list(real), split_list(fake)
    if matrix_file and models:
        raise UserError("take detectability from --matrix or from --model files, not both")
    with user_errors(store_root, specs, matrix_file, *models):
        res = parse_resolution(resolution)
        data = load_condition(FeatureStore(store_root), extractor, res, real_sources, fake_sources, parse_params(params), weights, equalise_key(equalise))
        if matrix_file:
            detectability = detectability_from_matrix(matrix_file, real_sources, fake_sources, res)
        elif models:
            detectability = detectability_from_cards(models, fake_sources)
        else:
            detectability = {}
        spec = None if detectability else get_spec(pipeline_name, specs)
        result = quality_report(
            data, real_sources, fake_sources, detectability, spec, cv, k, kid_subsets, kid_subset_size, resamples,
            random_state=seed, progress=progress, allow_trained_groups=allow_trained_groups,
        )
    folder = Path(out or Path("reports") / f"quality-{extractor}")
    with user_errors(folder):
        write_quality(result, folder)
    click.echo(result.to_markdown())
    for note in result.notes:
        click.echo(f"warning: {note}", err=True)
    click.echo(f"wrote {folder}/ (quality.md, quality.csv, quality.json, quality-vs-detectability.png)")


@report.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--real", required=True, help="Real source(s) in the store, comma-separated: the reference set.")
@click.option("--extractor", required=True, help="Extractor to measure quality in (inception_v3 for FID); the reals need its features.")
@click.option("--resolution", default="native", show_default=True, help="Resolution to extract the samples at (the reals' stored features must match).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Extractor parameter, as given to fdt extract for the reals; repeatable.")
@click.option("--n", "n", default=500, show_default=True, type=click.IntRange(min=2), help="Samples per kept epoch.")
@click.option("--samples", "samples_dir", required=True, type=click.Path(file_okay=False), help="Folder for the samples (one sub-folder per epoch; reused when it has --n).")
@click.option("--epochs", default=None, help="Kept epochs to follow, comma-separated (default: all).")
@click.option("--sample-param", "sample_params", multiple=True, metavar="KEY=VALUE", help="Option of the generator's sampling (steps=50 for the DDPM); repeatable.")
@click.option("--device", default="auto", show_default=True, help="Where to sample and extract: auto, cpu or cuda.")
@pipeline_options("logreg")
@click.option("--cv", default=5, show_default=True, type=click.IntRange(min=2), help="Grouped folds of each epoch's cross-validated detectability.")
@quality_metric_options()
@click.option("--seed", default=0, show_default=True, type=int, help="Sampling seed (image i of every epoch from the same noise) and analysis seed.")
@STORE_OPTION
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Output folder (default: reports/training-MODEL).")
@progress_option()
def training(
    model_dir, real, extractor, resolution, params, n, samples_dir, epochs, sample_params, device, pipeline_name, specs, cv, k,
    kid_subsets, kid_subset_size, resamples, seed, store_root, out, progress,
) -> None:
    """Follow a generator across its training: FD, KID, PRDC and detectability of each kept epoch's samples, against the epoch.

    MODEL_DIR is a DCGAN or DDPM folder trained with --keep-epochs. Each kept
    epoch's samples are extracted into the store next to the reals and measured
    as in fdt report quality, with grouped-CV detectability.
    """
    from fdt.data import parse_resolution
    from fdt.experiment.follow import follow_training
    from fdt.pipelines.specs import get_spec
    from fdt.pipelines.training_curve import write_training_curve

    try:
        chosen = [int(e) for e in split_list(epochs)] or None
    except ValueError:
        raise UserError(f"--epochs takes epoch numbers, comma-separated, not {epochs!r}") from None
    with user_errors(store_root, specs, samples_dir, model_dir):
        spec = get_spec(pipeline_name, specs)
        report_, sources = follow_training(
            model_dir, split_list(real), n, samples_dir, extractor, parse_params(params), parse_resolution(resolution), store_root,
            epochs=chosen, seed=seed, device=device, spec=spec, progress=progress,
            quality={"cv": cv, "k": k, "kid_subsets": kid_subsets, "kid_subset_size": kid_subset_size, "n_resamples": resamples},
            sample_options=parse_params(sample_params),
        )
    folder = Path(out or Path("reports") / f"training-{Path(model_dir).resolve().name}")
    with user_errors(folder):
        write_training_curve(report_, sources, folder)
    click.echo(report_.to_markdown())
    for note in report_.notes:
        click.echo(f"warning: {note}", err=True)
    click.echo(f"wrote {folder}/ (training.csv, quality-vs-epoch.png, quality.md, quality.csv, quality.json, quality-vs-detectability.png)")
