"""Everything an experiment refers to, resolved and checked before any stage writes a byte.

A typo found after an hour of generator training wastes the hour, and a half
written workspace is confusing, so :func:`make_plan` checks every folder,
manifest, source name, generator parameter, extractor (and its parameters and
weights), pipeline, metric and split up front, and only reads.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from fdt.data import FAKE, REAL, DataError, ImageRecord, load_image_set, parse_resolution
from fdt.experiment.config import (
    IMAGENET_IF_CACHED,
    CorpusImages,
    Experiment,
    ExperimentError,
    FolderImages,
    GeneratedImages,
    ManifestImages,
)


TRAINER_RESERVED = ("records_or_folder", "out", "device", "resume", "progress", "split")


@dataclass(frozen=True)
class Trainer:
    """How an extractor that learns from images is trained: its training function and the parameter its model goes to."""

    function: Callable[..., Any]
    param: str


def extractor_trainer(extractor: str) -> Trainer | None:
    """The trainer of a registered extractor that trains on images (its class's ``trainer``), else ``None``."""
    from fdt.features_store.registry import extractor_class

    cls = extractor_class(extractor)
    path = getattr(cls, "trainer", None)
    if path is None:
        return None
    module, attribute = path.split(":")
    return Trainer(getattr(importlib.import_module(module), attribute), cls.trained_param)


@dataclass
class Plan:
    """A checked experiment bound to a workspace: where every output goes and what every name means."""

    experiment: Experiment
    workspace: Path
    sources: dict[str, int]
    real: list[str]
    fakes: list[str]
    resolutions: list[str]
    fractions: tuple[float, float, float]
    extractor_params: dict[str, dict[str, Any]]
    weights_choice: dict[str, str]
    static_records: dict[str, list[ImageRecord]]
    models: dict[str, Any] = field(default_factory=dict)
    """``[models.NAME]`` as checked :class:`~fdt.experiment.finetuning.ModelPlan` objects."""
    quality_jobs: list[Any] = field(default_factory=list)
    """The resolved ``[[quality]]`` entries (:class:`fdt.experiment.quality.QualityJob`)."""
    warnings: list[str] = field(default_factory=list)
    """What ``--check`` and the run print but do not refuse: too few groups in a source, random weights under an FID."""

    @property
    def store_root(self) -> Path:
        return self.workspace / "features_store"

    @property
    def models_dir(self) -> Path:
        return self.workspace / "models"

    @property
    def reports_dir(self) -> Path:
        return self.workspace / "reports"

    def data_dir(self, image_set: str) -> Path:
        return self.workspace / "data" / image_set

    def generator_dir(self, image_set: str) -> Path:
        return self.workspace / "generators" / image_set

    def trained_extractor_path(self, label: str) -> Path:
        return self.models_dir / f"{label}.pt"

    def extractors_of(self, labels: tuple[str, ...]) -> list[str]:
        """The extractor labels an entry names, or every label when it names none."""
        return list(labels or self.experiment.extractors)

    def resolutions_of(self, resolutions: tuple[str, ...]) -> list[str]:
        return [parse_resolution(r) for r in resolutions] if resolutions else list(self.resolutions)


def make_plan(experiment: Experiment, workspace: str | os.PathLike) -> Plan:
    """Check everything the experiment names and resolve it against ``workspace``; writes nothing."""
    from fdt.pipelines.errors import PipelineError
    from fdt.pipelines.metrics import check_metric
    from fdt.pipelines.specs import get_spec
    from fdt.pipelines.splits import parse_fractions

    settings = experiment.settings
    try:
        resolutions = list(dict.fromkeys(parse_resolution(r) for r in settings.resolutions))
        fractions = parse_fractions(settings.split)
    except (DataError, PipelineError) as error:
        raise ExperimentError(f"[experiment] {error}") from None
    workspace = Path(workspace)
    if workspace.exists() and not workspace.is_dir():
        raise ExperimentError(f"workspace {workspace} exists and is not a folder")

    static_records, sources = _image_sets(experiment)
    real = list(settings.real) or [name for name, label in sources.items() if label == REAL]
    fakes = list(settings.fakes) or [name for name, label in sources.items() if label == FAKE]
    for names, label, key in ((real, REAL, "real"), (fakes, FAKE, "fakes")):
        for name in names:
            if name not in sources:
                raise ExperimentError(f"[experiment] {key}: no image set has a source {name!r}; sources: {', '.join(sources)}")
            if sources[name] != label:
                raise ExperimentError(f"[experiment] {key}: source {name!r} is labelled {'real' if sources[name] == REAL else 'fake'}")
    if not real or not fakes:
        raise ExperimentError("the experiment needs at least one real and one fake source")

    _check_generators(experiment)
    from fdt.experiment.finetuning import check_models

    models = check_models(experiment, sources, real, fakes, fractions)
    extractor_params, weights_choice = _check_extractors(experiment, settings.device, models)

    def check(where: str, action: Callable[[], Any]) -> None:
        try:
            action()
        except PipelineError as error:
            raise ExperimentError(f"{where}: {error}") from None

    for index, study in enumerate(experiment.studies, 1):
        for pipeline in study.pipelines:
            check(f"[[studies]] #{index}", lambda: get_spec(pipeline, settings.pipelines_file))
        _check_counts(f"[[studies]] #{index}", study.trials, study.cv, study.pipelines)
        check(f"[[studies]] #{index}", study.tuning)
        _check_resolutions(f"[[studies]] #{index}", study.resolutions)
    for index, matrix in enumerate(experiment.matrices, 1):
        check(f"[[matrices]] #{index}", lambda: get_spec(matrix.pipeline, settings.pipelines_file))
        check(f"[[matrices]] #{index}", lambda: check_metric(matrix.metric))
        _check_counts(f"[[matrices]] #{index}", matrix.trials, matrix.cv, (matrix.pipeline,))
        check(f"[[matrices]] #{index}", matrix.tuning)
        _check_resolutions(f"[[matrices]] #{index}", matrix.resolutions)
    if settings.equalise:
        from fdt.perturb import parse_chain

        try:
            parse_chain(list(settings.equalise))
        except DataError as error:
            raise ExperimentError(f"[experiment] equalise: {error}") from None
        if experiment.robustness:
            raise ExperimentError("[experiment] equalise cannot be combined with [[robustness]] tables yet; run them in separate experiments")
    for index, entry in enumerate(experiment.robustness, 1):
        where = f"[[robustness]] #{index}"
        check(where, lambda: get_spec(entry.pipeline, settings.pipelines_file))
        _check_counts(where, entry.trials, entry.cv, (entry.pipeline,))
        _check_resolutions(where, (entry.resolution,))
        _check_perturbations(where, entry.sweeps, entry.train_perturb)
    plan = Plan(experiment, workspace, sources, real, fakes, resolutions, fractions, extractor_params, weights_choice, static_records, models)
    from fdt.experiment.quality import check_quality

    plan.quality_jobs, quality_warnings = check_quality(plan)
    plan.warnings = [*_check_group_counts(plan), *quality_warnings]
    return plan


def groups_needed(fractions: tuple[float, float, float], cv: int) -> int:
    """The fewest groups one source needs for the group assignment to give it a test group and ``cv`` train groups (for grouped folds)."""
    from fdt.grouping import assign_groups

    n = 1
    while True:
        parts = Counter(assign_groups([str(i) for i in range(n)], ["source"] * n, fractions).values())
        if parts["test"] and parts["train"] >= cv:
            return n
        n += 1


def _check_group_counts(plan: Plan) -> list[str]:
    """Warn about fake sources with too few groups to be held out; refuse a prompt file whose prompts can never give enough.

    A text-to-image set grouped by prompt has exactly as many groups as prompts,
    whatever ``per_prompt`` says: the file fixes it, so a run would make every image
    and then find no held-out fakes. Elsewhere the count depends on data the user
    may still add, so it is a warning.
    """
    from fdt.gen.prompts import read_prompts

    experiment = plan.experiment
    if not (experiment.studies or experiment.matrices):
        return []
    folds = max(entry.cv for entry in (*experiment.studies, *experiment.matrices, *experiment.quality))
    needed = groups_needed(plan.fractions, folds)
    counts: Counter[str] = Counter()
    for records in plan.static_records.values():
        seen: dict[str, set[str]] = {}
        for r in records:
            seen.setdefault(r.source, set()).add(r.group or r.path)
        counts.update({source: len(groups) for source, groups in seen.items()})
    warnings = []
    for name, image_set in experiment.images.items():
        if not isinstance(image_set, GeneratedImages) or name not in plan.fakes:
            continue
        if image_set.prompts is None:
            counts[name] = image_set.samples
            continue
        prompts = read_prompts(image_set.prompts, image_set.samples)
        if image_set.sample.get("group_by", "prompt") == "image":
            counts[name] = len(prompts) * int(image_set.sample.get("per_prompt", 1))
            continue
        counts[name] = len({p.group for p in prompts})
        if counts[name] < needed and not any(p.photo for p in prompts):
            raise ExperimentError(
                f"[images.{name}]: its {counts[name]} prompt(s) give {counts[name]} group(s) (one per prompt), fewer than the {needed} the split "
                f"{experiment.settings.split} with {folds} folds needs to hold any out; add prompts, or set group_by = \"image\" "
                f"in [images.{name}.sample] when the prompts are generic and tied to no real photo"
            )
    for source in plan.fakes:
        if counts[source] < needed:
            warnings.append(
                f"fake source {source!r} has {counts[source]} group(s), fewer than the {needed} the split {experiment.settings.split} with "
                f"{folds} folds needs to hold any of them out"
            )
    return warnings


def _check_counts(where: str, trials: int, cv: int, pipelines: tuple[str, ...]) -> None:
    if trials < 0 or cv < 2:
        raise ExperimentError(f"{where} needs trials >= 0 and cv >= 2, not {trials} and {cv}")
    if not pipelines:
        raise ExperimentError(f"{where} names no pipeline")


def _check_perturbations(where: str, sweeps: tuple[str, ...], train_perturb: tuple[str, ...]) -> None:
    from fdt.perturb import parse_chain, parse_sweep

    if not sweeps:
        raise ExperimentError(f"{where} names no sweep (sweeps = [\"jpeg:quality=100,75,50\"])")
    try:
        for sweep in sweeps:
            parse_sweep(sweep)
        parse_chain(list(train_perturb))
    except DataError as error:
        raise ExperimentError(f"{where}: {error}") from None


def _check_resolutions(where: str, resolutions: tuple[str, ...]) -> None:
    for resolution in resolutions:
        try:
            parse_resolution(resolution)
        except DataError as error:
            raise ExperimentError(f"{where}: {error}") from None


def _image_sets(experiment: Experiment) -> tuple[dict[str, list[ImageRecord]], dict[str, int]]:
    """Records of the sets already on disk, and every source name with its label."""
    records: dict[str, list[ImageRecord]] = {}
    sources: dict[str, int] = {}

    def add(source: str, label: int, where: str) -> None:
        if sources.setdefault(source, label) != label:
            raise ExperimentError(f"{where}: source {source!r} is labelled both real and fake across the image sets")

    for name, image_set in experiment.images.items():
        where = f"[images.{name}]"
        if isinstance(image_set, (FolderImages, ManifestImages)):
            try:
                if isinstance(image_set, FolderImages):
                    if not Path(image_set.folder).is_dir():
                        raise DataError(f"image folder does not exist: {image_set.folder}")
                    label = None if image_set.label is None else int(image_set.label == "fake")
                    found = load_image_set(image_set.folder, real_sources=image_set.real, label=label, layout=image_set.layout)
                else:
                    found = load_image_set(image_set.manifest)
            except DataError as error:
                raise ExperimentError(f"{where}: {error}") from None
            records[name] = found
            for record in found:
                add(record.source, record.label, where)
        elif isinstance(image_set, CorpusImages):
            add(name, REAL, where)
        else:
            add(name, FAKE, where)
    return records, sources


def _check_generators(experiment: Experiment) -> None:
    """Each generator is available, its ``train``/``sample`` keys are parameters of its functions, its prompts are readable."""
    from fdt.gen.errors import GenError
    from fdt.gen.prompts import check_group_by, read_prompts
    from fdt.gen.registry import get_generator

    for name, image_set in experiment.images.items():
        if not isinstance(image_set, GeneratedImages):
            continue
        where = f"[images.{name}]"
        spec = get_generator(image_set.generator)
        for table, stage in (("train", "train"), ("sample", "make")):
            if stage == "train" and not spec.train:
                continue
            try:
                spec.check_params(stage, getattr(image_set, table), f"[images.{name}.{table}]")
            except ImportError as error:
                raise ExperimentError(f"{where}: generator {image_set.generator!r} is not available in this installation ({error})") from None
            except GenError as error:
                raise ExperimentError(str(error)) from None
        if image_set.prompts is not None:
            try:
                check_group_by(image_set.sample.get("group_by", "prompt"), read_prompts(image_set.prompts, image_set.samples))
            except GenError as error:
                raise ExperimentError(f"{where}: {error}") from None
        learns_from = image_set.train_on or image_set.inpaint
        if learns_from is not None and isinstance(experiment.images[learns_from], GeneratedImages):
            raise ExperimentError(f"{where} must train on or inpaint real images, not the generated set {learns_from!r}")


def _check_arguments(given: dict[str, Any], function: Callable[..., Any], reserved: tuple[str, ...], where: str) -> None:
    allowed = [p for p in inspect.signature(function).parameters if p not in reserved]
    for key in given:
        if key not in allowed:
            raise ExperimentError(f"unknown key {key!r} in {where}; allowed: {', '.join(allowed)}")


def _check_extractors(experiment: Experiment, device: str, models: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Registered names, valid parameters, and weights: ``imagenet-if-cached`` becomes ``imagenet`` or ``random``.

    An extractor of a ``[models.NAME]`` detector is checked against the model's
    backbone; its ``weights`` (the file) are set when the model is trained.
    """
    from fdt.experiment.finetuning import check_model_extractor
    from fdt.features_store.errors import UnknownExtractorError, WeightsNotFoundError
    from fdt.features_store.extractors.base import resolve_device
    from fdt.features_store.registry import create_extractor, list_extractors

    try:
        resolve_device(device)
    except ValueError as error:
        raise ExperimentError(f"[experiment] {error}") from None
    params_by_label, choice_by_label = {}, {}
    for label, config in experiment.extractors.items():
        where = f"[extractors.{label}]"
        if config.extractor not in list_extractors():
            raise ExperimentError(f"{where}: unknown extractor {config.extractor!r}; choose one of: {', '.join(list_extractors())}")
        params = dict(config.params)
        if config.model is not None:
            checked = check_model_extractor(label, config, models[config.model])
            try:
                create_extractor(config.extractor, **checked).num_features
            except (UnknownExtractorError, ValueError) as error:
                raise ExperimentError(f"{where}: {str(error).splitlines()[0]}") from None
            if config.train_on is not None or config.train:
                raise ExperimentError(f"{where}: the {config.extractor} extractor learns nothing itself; remove train_on and [train]")
            output = "its own score (output=logit)" if params.get("output") == "logit" else "its penultimate features"
            params_by_label[label] = params
            choice_by_label[label] = f"{output} of {models[config.model].describe()}"
            continue
        choice = ""
        if params.get("weights") == IMAGENET_IF_CACHED:
            cached = _imagenet_cached(config.extractor, {k: v for k, v in params.items() if k != "weights"}, where)
            params["weights"] = "imagenet" if cached else "random"
            choice = "ImageNet weights (found in the cache)" if cached else f"seeded random weights (seed {params.get('seed', 0)}): ImageNet weights are not in the cache"
        trainer = extractor_trainer(config.extractor)
        trains = config.train_on is not None or bool(config.train)
        if trainer and not trains:
            raise ExperimentError(f"{where}: the {config.extractor} extractor learns from images; give train_on (the image set it learns)")
        if trains and not trainer:
            raise ExperimentError(f"{where}: the {config.extractor} extractor learns nothing; remove train_on and [train]")
        if trainer and trainer.param in params:
            raise ExperimentError(f"{where}: params.{trainer.param} is set by fdt from train_on; remove it")
        try:
            extractor = create_extractor(config.extractor, **params)
            if not trainer:
                identity = extractor.weights_identity()
                choice = choice or f"weights {identity}"
        except (UnknownExtractorError, WeightsNotFoundError, ValueError) as error:
            raise ExperimentError(f"{where}: {str(error).splitlines()[0]}") from None
        if trainer:
            _check_arguments(config.train, trainer.function, TRAINER_RESERVED, f"{where[:-1]}.train]")
            choice = f"a {config.extractor} fdt trains on {config.train_on!r}"
        params_by_label[label] = params
        choice_by_label[label] = choice
    return params_by_label, choice_by_label


def _imagenet_cached(extractor: str, params: dict[str, Any], where: str) -> bool:
    """Whether a CNN's published ImageNet weights are in the library cache (never downloads)."""
    from fdt.features_store.registry import create_extractor

    model = create_extractor(extractor, **params)
    if not callable(getattr(model, "published_weights", None)):
        raise ExperimentError(f"{where}: weights = {IMAGENET_IF_CACHED!r} applies to the CNNs (extractors with published ImageNet weights), not {extractor!r}")
    return model.published_weights().cached() is not None
