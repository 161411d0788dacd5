"""The ``[[quality]]`` stage of ``fdt run``: quality vs detectability, and the same across a generator's kept epochs.

Seed studies 000 and 003 ask how realistic each generator's images are and how
easily they are caught. Each ``[[quality]]`` entry becomes one report per
quality extractor (``reports/quality-<label>-<resolution>/``, as ``fdt report
quality`` writes it) and one per followed generator
(``reports/training-<set>-<label>-<resolution>/``, as ``fdt report training``
writes it). Detectability is never scored on groups a detector trained on: it is
the diagonal of this run's matrix (held-out test groups) or out-of-fold scores
of a grouped cross-validation.

:func:`check_quality` resolves and checks every entry when the plan is made (one
line per mistake, nothing written); :func:`run_quality` runs after the studies and
matrices, sampling, extracting and measuring only what is missing.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from fdt.data import FAKE, REAL, DataError, parse_resolution
from fdt.experiment.config import ExperimentError, GeneratedImages, QualityConfig, checked_sources

if TYPE_CHECKING:
    from fdt.experiment.plan import Plan
    from fdt.experiment.runner import Features, RunRecord

CV_PIPELINE = "logreg"
"""The detector of cross-validated detectability when an entry names none (as ``fdt report quality``)."""


@dataclass(frozen=True)
class QualityJob:
    """One quality report: the feature space it measures in, where its detectability comes from, the generators it follows."""

    entry: QualityConfig
    label: str
    detector: str
    resolution: str
    real: tuple[str, ...]
    fakes: tuple[str, ...]
    pipeline: str
    matrix: bool
    """True: the diagonal of ``reports/matrix-<detector>-<pipeline>/``; False: grouped CV of ``pipeline``."""

    @property
    def folder(self) -> str:
        return f"quality-{self.label}-{self.resolution.replace(':', '')}"

    def training_folder(self, image_set: str) -> str:
        return f"training-{image_set}-{self.label}-{self.resolution.replace(':', '')}"

    def describe_detector(self) -> str:
        if self.matrix:
            return f"the diagonal of this run's {self.detector} + {self.pipeline} matrix (held-out test groups)"
        return f"grouped {self.entry.cv}-fold CV of {self.pipeline} on {self.detector} features (out-of-fold scores)"


def check_quality(plan: "Plan") -> tuple[list[QualityJob], list[str]]:
    """Resolve every ``[[quality]]`` entry of ``plan`` into jobs; return them with the warnings ``--check`` prints."""
    from fdt.experiment.plan import extractor_trainer

    experiment = plan.experiment
    jobs: list[QualityJob] = []
    warnings: list[str] = []
    folders: dict[str, str] = {}
    for index, entry in enumerate(experiment.quality, 1):
        where = f"[[quality]] #{index}"
        try:
            resolution = parse_resolution(entry.resolution)
        except DataError as error:
            raise ExperimentError(f"{where}: {error}") from None
        _check_numbers(where, entry)
        real = checked_sources(plan.sources, where, "real", entry.real, plan.real, REAL)
        fakes = checked_sources(plan.sources, where, "fakes", entry.fakes, plan.fakes, FAKE)
        if entry.pipeline is not None:
            _check_pipeline(plan, where, entry.pipeline)
        labels = plan.extractors_of(entry.extractors)
        for label in dict.fromkeys([*labels, *([entry.detector] if entry.detector else [])]):
            config = experiment.extractors[label]
            if extractor_trainer(config.extractor) is not None or config.model is not None:
                raise ExperimentError(
                    f"{where}: {label!r} is a network fdt trains on these images; quality or detectability in its feature space would flatter "
                    "the images it saw, so name an extractor with fixed weights"
                )
        for name in entry.follow:
            _check_follow(plan, where, name, entry.epochs)
        for label in labels:
            detector = entry.detector or label
            matrix = _matching_matrix(plan, entry, detector, resolution, real, fakes, where)
            pipeline = matrix or entry.pipeline or CV_PIPELINE
            job = QualityJob(entry, label, detector, resolution, real, fakes, pipeline, matrix is not None)
            for folder in (job.folder, *(job.training_folder(name) for name in entry.follow)):
                if folder in folders:
                    raise ExperimentError(f"{where} writes reports/{folder}/, as {folders[folder]} does; measure each extractor at a resolution once")
                folders[folder] = where
            jobs.append(job)
            if experiment.extractors[label].extractor == "inception_v3" and _random_weights(plan, label):
                warnings.append(
                    f"{where}: {label} (inception_v3) runs with random weights ({plan.weights_choice[label]}): its Fréchet distances are not FIDs"
                )
    return jobs, warnings


def _check_numbers(where: str, entry: QualityConfig) -> None:
    bounds = {"cv": 2, "k": 1, "kid_subsets": 1, "kid_subset_size": 2, "resamples": 10, "samples": 2}
    for key, least in bounds.items():
        if getattr(entry, key) < least:
            raise ExperimentError(f"{where} {key} must be at least {least}, not {getattr(entry, key)}")
    if entry.epochs and not entry.follow:
        raise ExperimentError(f"{where} epochs applies to the generators it follows; add follow = [\"<image set>\"] or remove epochs")
    if entry.follow and entry.samples <= entry.k:  # found now, not after every epoch was sampled and extracted
        raise ExperimentError(f"{where} samples = {entry.samples} are too few for k = {entry.k} nearest neighbours: sample at least {entry.k + 1}")
    if any(epoch < 1 for epoch in entry.epochs):
        raise ExperimentError(f"{where} epochs are numbered from 1, not {min(entry.epochs)}")


def _check_pipeline(plan: "Plan", where: str, pipeline: str) -> None:
    from fdt.pipelines.errors import PipelineError
    from fdt.pipelines.specs import get_spec

    try:
        get_spec(pipeline, plan.experiment.settings.pipelines_file)
    except PipelineError as error:
        raise ExperimentError(f"{where}: {error}") from None


def _check_follow(plan: "Plan", where: str, name: str, epochs: tuple[int, ...]) -> None:
    """A followed set is a generator fdt trains here with ``keep_epochs = true``, asked only for epochs it will keep."""
    from fdt.gen.registry import get_generator

    image_set = plan.experiment.images[name]
    spec = get_generator(image_set.generator) if isinstance(image_set, GeneratedImages) else None
    if spec is None or not spec.train or spec.kind != "sample":
        raise ExperimentError(f"{where} follow: {name!r} is not a generator fdt trains and samples (dcgan, ddpm), so it has no epochs to follow")
    if "keep_epochs" not in spec.parameters("train") or image_set.train.get("keep_epochs") is not True:
        raise ExperimentError(f"{where} follow: {name!r} keeps no per-epoch checkpoints; set keep_epochs = true in [images.{name}.train]")
    trained = image_set.train.get("epochs", spec.default("train", "epochs"))
    beyond = [epoch for epoch in epochs if isinstance(trained, int) and epoch > trained]
    if beyond:
        raise ExperimentError(f"{where} epochs: {name!r} trains for {trained} epochs, so it keeps no epoch {', '.join(map(str, beyond))}")


def _matching_matrix(
    plan: "Plan", entry: QualityConfig, detector: str, resolution: str, real: tuple[str, ...], fakes: tuple[str, ...], where: str
) -> str | None:
    """The pipeline of the first ``[[matrices]]`` entry whose diagonal holds every fake of ``entry`` on ``detector`` at ``resolution``."""
    if entry.matrix is False:
        return None
    found = [
        matrix.pipeline for matrix in plan.experiment.matrices
        if detector in plan.extractors_of(matrix.extractors) and resolution in plan.resolutions_of(matrix.resolutions)
        and entry.pipeline in (None, matrix.pipeline)
    ]
    usable = list(real) == plan.real and set(fakes) <= set(plan.fakes)
    if found and usable:
        return found[0]
    if entry.matrix is True:
        if not found:
            pipeline = f" with pipeline {entry.pipeline!r}" if entry.pipeline else ""
            raise ExperimentError(f"{where}: matrix = true, but no [[matrices]] entry{pipeline} covers {detector!r} at {resolution}; add one or set matrix = false")
        raise ExperimentError(f"{where}: matrix = true needs the experiment's real sources and a subset of its fakes (the matrix's rows); set matrix = false")
    return None


def _random_weights(plan: "Plan", label: str) -> bool:
    from fdt.features_store.registry import create_extractor

    config = plan.experiment.extractors[label]
    return create_extractor(config.extractor, **plan.extractor_params[label]).weights_identity().startswith("random")


# ---------------------------------------------------------------- the stage

Log = Callable[[str], None]


def run_quality(
    plan: "Plan", features: dict[tuple[str, str], "Features"], trained: dict[str, tuple[str, Path]], record: "RunRecord", progress: bool, log: Log,
    shortcuts: list[str],
) -> list[dict[str, Any]]:
    """Write every quality report and every followed generator's epoch curve; reuse those whose stamp matches.

    ``trained`` maps extractor labels whose model fdt trained to the parameter and file it goes to, as the extraction stage had them.
    """
    reports = []
    for job in plan.quality_jobs:
        reports.append(_quality(plan, job, features, record, progress, log, shortcuts))
        for name in job.entry.follow:
            reports.append(_training(plan, job, name, features, trained, record, progress, log, shortcuts))
    return reports


def _quality(
    plan: "Plan", job: QualityJob, features: dict[tuple[str, str], "Features"], record: "RunRecord", progress: bool, log: Log, shortcuts: list[str]
) -> dict[str, Any]:
    from fdt.experiment.runner import STAMP, _load, digest, read_stamp, write_json
    from fdt.pipelines.evaluation import fingerprint
    from fdt.pipelines.quality_report import detectability_from_matrix, quality_report, write_quality

    seed = plan.experiment.settings.seed
    data = _load(plan, job.label, job.resolution, features, job.real, job.fakes)
    folder = plan.reports_dir / job.folder
    if job.matrix:
        matrix_json = plan.reports_dir / f"matrix-{job.detector}-{job.pipeline}" / "report.json"
        detected = {"matrix": digest(matrix_json.read_text(encoding="utf-8"))}
    else:
        detector_data = _load(plan, job.detector, job.resolution, features, job.real, job.fakes)
        detected = {"data": fingerprint(detector_data), "pipeline": _spec(plan, job.pipeline).to_dict()}
    wanted = {"data": fingerprint(data), "detector": detected, "settings": _settings(job), "seed": seed, "shortcuts": shortcuts}
    fresh = read_stamp(folder / STAMP) != wanted or not (folder / "quality.json").is_file()
    if fresh:
        log(f"quality {job.label}@{job.resolution}: {len(job.fakes)} fake sources; detectability from {job.describe_detector()}")
        if job.matrix:
            detectability = detectability_from_matrix(matrix_json, job.real, job.fakes, job.resolution)
        else:
            detectability = _cross_validated(detector_data, job, plan, progress)
        report = quality_report(data, job.real, job.fakes, detectability, **_options(job), random_state=seed, progress=progress)
        report.notes += shortcuts
        write_quality(report, folder)
        write_json(folder / STAMP, wanted)
    result = json.loads((folder / "quality.json").read_text(encoding="utf-8"))
    record.add(
        "quality", job.folder.removeprefix("quality-"), fresh, extractor=job.label, detector=job.detector, resolution=job.resolution,
        detectability=job.describe_detector(), feature_space=result["feature_space"], folder=str(folder),
    )
    return {"kind": "quality", "job": job, "folder": folder, "report": result}


def _training(
    plan: "Plan", job: QualityJob, name: str, features: dict[tuple[str, str], "Features"], trained: dict[str, tuple[str, Path]],
    record: "RunRecord", progress: bool, log: Log, shortcuts: list[str],
) -> dict[str, Any]:
    """Sample the kept epochs of ``name``, extract them with the quality and detector extractors, and write the epoch curve."""
    from fdt.experiment.follow import sample_epochs
    from fdt.experiment.runner import STAMP, read_stamp, write_json
    from fdt.pipelines.evaluation import fingerprint
    from fdt.pipelines.quality_report import quality_report
    from fdt.pipelines.training_curve import write_training_curve

    settings = plan.experiment.settings
    model_dir = plan.generator_dir(name)
    samples_dir = plan.data_dir(name) / "epochs"
    options = {k: v for k, v in plan.experiment.images[name].sample.items() if k != "seed"}  # image i of every epoch: seed + i
    wanted_samples = {"model": read_stamp(model_dir / STAMP), "seed": settings.seed, "sample": options}
    if read_stamp(samples_dir / STAMP) != wanted_samples:  # another model or sampling: earlier epoch samples are stale
        shutil.rmtree(samples_dir, ignore_errors=True)
        write_json(samples_dir / STAMP, wanted_samples)
    log(f"training {name}: sampling {job.entry.samples} images of each kept epoch")
    sampled = sample_epochs(model_dir, job.entry.samples, samples_dir, job.entry.epochs or None, settings.seed, settings.device, progress, options)
    record.add(
        "epoch-samples", name, any(new for *_, new in sampled.values()), epochs=[epoch for epoch, *_ in sampled.values()],
        new_images=sum(new for *_, new in sampled.values()), folder=str(samples_dir),
    )
    epochs = {source: epoch for source, (epoch, _, _) in sampled.items()}
    data = _with_epochs(plan, job.label, job, features, trained, sampled, record, progress, log)
    detector_data = data if job.detector == job.label else _with_epochs(plan, job.detector, job, features, trained, sampled, record, progress, log)
    folder = plan.reports_dir / job.training_folder(name)
    wanted = {
        "data": fingerprint(data), "detector": fingerprint(detector_data), "pipeline": _spec(plan, job.pipeline).to_dict(),
        "settings": {**_settings(job), "samples": job.entry.samples, "epochs": list(job.entry.epochs)}, "seed": settings.seed, "shortcuts": shortcuts,
    }
    fresh = read_stamp(folder / STAMP) != wanted or not (folder / "training.csv").is_file()
    if fresh:
        log(f"training {name}: quality and detectability of {len(epochs)} epochs in {job.label}@{job.resolution}")
        # epochs are in no matrix: the same detector, cross-validated
        detectability = _cross_validated(detector_data, dataclasses.replace(job, matrix=False), plan, progress, list(epochs))
        report = quality_report(data, job.real, list(epochs), detectability, **_options(job), random_state=settings.seed, progress=progress)
        report.settings["generator"] = f"{name}: {len(epochs)} kept epochs, {job.entry.samples} samples each (seed {settings.seed})"
        report.notes += shortcuts
        write_training_curve(report, epochs, folder)
        write_json(folder / STAMP, wanted)
    result = json.loads((folder / "quality.json").read_text(encoding="utf-8"))
    record.add(
        "training", job.training_folder(name).removeprefix("training-"), fresh, image_set=name, extractor=job.label, detector=job.detector,
        epochs=list(epochs.values()), feature_space=result["feature_space"], folder=str(folder),
    )
    return {"kind": "training", "job": job, "image_set": name, "folder": folder, "report": result, "epochs": epochs}


def _with_epochs(
    plan: "Plan", label: str, job: QualityJob, features: dict[tuple[str, str], "Features"], trained: dict[str, tuple[str, Path]],
    sampled: dict[str, tuple[int, Path, int]], record: "RunRecord", progress: bool, log: Log,
):
    """The reals of ``job`` and every sampled epoch, in ``label``'s features at the job's resolution (epochs extracted as any source)."""
    import numpy as np

    from fdt.data import from_manifest
    from fdt.features_store.extraction import extract_records
    from fdt.features_store.store import FeatureStore
    from fdt.pipelines.evaluation import load_condition

    settings = plan.experiment.settings
    stored = features[label, job.resolution]
    params = dict(plan.extractor_params[label])  # the key holds no weights: build the extractor as the extraction stage did
    if label in trained:
        param, path = trained[label]
        params[param] = str(path)
    hashes = set(stored.hashes)
    for source, (_, manifest, _) in sampled.items():
        summary = extract_records(
            from_manifest(manifest), stored.key.extractor, params, job.resolution, plan.store_root, perturb=list(settings.equalise),
            batch_size=settings.batch_size, device=settings.device, workers=settings.workers, progress=progress,
        )
        if summary.key.id != stored.key.id:
            raise RuntimeError(f"epoch samples of {source} went under {summary.key.describe()}, not the reals' {stored.key.describe()}")
        record.add(
            "extract", label, summary.new_rows > 0, extractor=stored.key.extractor, resolution=job.resolution, new_rows=summary.new_rows,
            reused_rows=summary.reused_rows, failed=summary.failed, key=summary.key.describe(), weights=summary.key.weights,
            weights_choice=plan.weights_choice[label], images=source,
        )
        log(f"extract {label}@{job.resolution} {source}: {summary.line()}")
        hashes |= {h for h in summary.hashes if h}
    data = load_condition(
        FeatureStore(plan.store_root), stored.key.extractor, job.resolution, list(job.real), list(sampled), stored.key.params, stored.key.weights,
        stored.key.perturb,
    )
    return data.subset(np.isin(data.sha256.astype(str), list(hashes)))


def _cross_validated(data: Any, job: QualityJob, plan: "Plan", progress: bool, sources: list[str] | None = None) -> dict[str, Any]:
    """Each fake source's out-of-fold ROC AUC of ``job``'s pipeline (default parameters), as ``fdt report quality`` computes it."""
    from tqdm.auto import tqdm

    from fdt.pipelines.intervals import DEFAULT_RESAMPLES
    from fdt.pipelines.quality_report import detectability_by_cv

    spec = _spec(plan, job.pipeline)
    seed = plan.experiment.settings.seed
    return {
        source: detectability_by_cv(data, job.real, source, spec, job.entry.cv, seed, DEFAULT_RESAMPLES)
        for source in tqdm(sources or list(job.fakes), desc=f"detectability ({job.detector})", disable=not progress)
    }


def _spec(plan: "Plan", pipeline: str) -> Any:
    from fdt.pipelines.specs import get_spec

    return get_spec(pipeline, plan.experiment.settings.pipelines_file)


def _options(job: QualityJob) -> dict[str, Any]:
    entry = job.entry
    return {"cv": entry.cv, "k": entry.k, "kid_subsets": entry.kid_subsets, "kid_subset_size": entry.kid_subset_size, "n_resamples": entry.resamples}


def _settings(job: QualityJob) -> dict[str, Any]:
    """What a quality report's numbers depend on besides its data (so changing ``follow`` alone leaves it reused)."""
    return {**_options(job), "real": list(job.real), "fakes": list(job.fakes), "detector": job.detector, "pipeline": job.pipeline, "matrix": job.matrix}
