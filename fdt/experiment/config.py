"""The experiment file: a TOML document parsed into frozen dataclasses, every key checked.

The file has five kinds of tables (see the README for a full example)::

    [experiment]            name, seed, resolutions, real/fake sources, split, device, ...
    [images.NAME]           one image set: a folder, a manifest, the bundled photo corpus,
                            or a generator run (any name of :mod:`fdt.gen.registry`) that makes one
    [models.NAME]           a CNN detector fdt fine-tunes on the train share (fdt.experiment.finetuning)
    [extractors.LABEL]      an extractor with its parameters (the autoencoder with its training,
                            a CNN with ``model = NAME`` to use a fine-tuned detector)
    [[studies]]             tuned, cross-validated detectors (real vs every fake) per resolution
    [[matrices]]            generalisation matrices per resolution plus the cross-resolution one
    [[robustness]]          robustness sweeps (JPEG, blur, resize, ...) on held-out groups
    [[quality]]             quality (FD/FID, KID, PRDC) vs detectability per fake source, and across a generator's kept epochs

Parsing is purely structural: unknown keys, wrong types and dangling references
between tables are errors naming the key and its table. Whether folders exist,
extractors are registered and pipelines are known is checked by
:mod:`fdt.experiment.plan` before any stage runs.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from fdt.errors import FdtError, UnsafeNameError, check_name
from fdt.gen.errors import GenError
from fdt.gen.registry import GeneratorSpec, UnknownGeneratorError, get_generator, list_generators

IMAGENET_IF_CACHED = "imagenet-if-cached"


class ExperimentError(FdtError, ValueError):
    """An experiment file that cannot be run as written; the message is one line naming the key."""


@dataclass(frozen=True)
class Settings:
    """``[experiment]``: what every stage shares.

    ``real`` and ``fakes`` default to every real and every fake source of the
    image sets; ``resolutions`` are those of the seed study's sets (``native``, N).
    """

    name: str = "experiment"
    seed: int = 0
    resolutions: tuple[str, ...] = ("native",)
    real: tuple[str, ...] = ()
    fakes: tuple[str, ...] = ()
    split: str = "80/10/10"
    device: str = "auto"
    batch_size: int = 32
    workers: int | None = None
    pipelines_file: str | None = None
    equalise: tuple[str, ...] = ()
    """Operations every image, real and fake, goes through before extraction (``["jpeg:quality=95"]``); part of the key."""


@dataclass(frozen=True)
class FolderImages:
    """A folder: one source per sub-folder (``real`` names the real ones), or one source labelled ``label``.

    ``layout`` reads a public dataset's own folder layout (``coco``, ``fer2013``,
    ``deepfakeface``, ... of :mod:`fdt.layouts`; ``auto`` detects one) as downloaded.
    """

    name: str
    folder: str
    real: tuple[str, ...] = ("real",)
    label: str | None = None
    layout: str = "plain"


@dataclass(frozen=True)
class ManifestImages:
    """A CSV manifest with ``path,source,label,group`` columns."""

    name: str
    manifest: str


@dataclass(frozen=True)
class CorpusImages:
    """Square crops cut from photographs shipped inside installed packages, grouped by photo (real)."""

    name: str
    corpus: str
    crops: int = 1000
    size: int = 64
    seed: int = 0


@dataclass(frozen=True)
class GeneratedImages:
    """Fakes made by a registered generator (:mod:`fdt.gen.registry`); which keys it needs follows from its entry.

    A generator that trains learns ``train_on``; one that uses another's model
    names that image set in ``model``; an inpainting generator repaints
    ``samples`` of the real images of ``inpaint``; a text-to-image one reads the first
    ``samples`` prompts of ``prompts`` (a text file or COCO captions JSON). Else
    ``samples`` is the number of images. ``train`` is passed to the training
    function and ``sample`` to the function that makes the images; their keys
    are checked against those functions' parameters.
    """

    name: str
    generator: str
    samples: int
    train_on: str | None = None
    model: str | None = None
    inpaint: str | None = None
    prompts: str | None = None
    train: dict[str, Any] = field(default_factory=dict)
    sample: dict[str, Any] = field(default_factory=dict)


ImageSet = FolderImages | ManifestImages | CorpusImages | GeneratedImages


@dataclass(frozen=True)
class ExtractorConfig:
    """``[extractors.LABEL]``: a registered extractor (default: the label) and its parameters.

    ``weights = "imagenet-if-cached"`` (CNNs) uses ImageNet weights where they are
    in the cache and seeded random weights otherwise; reports say which. An
    extractor that trains on images (one with a ``trainer``, like the autoencoder)
    names the image set it trains on (``train_on``) and its training parameters
    (``train``); fdt sets the parameter its trained model goes to. A CNN extractor
    with ``model = "NAME"`` reads the detector of ``[models.NAME]`` (fdt sets its
    ``weights``); ``params.output = "logit"`` gives that network's own score.
    """

    label: str
    extractor: str
    params: dict[str, Any] = field(default_factory=dict)
    train_on: str | None = None
    train: dict[str, Any] = field(default_factory=dict)
    model: str | None = None


@dataclass(frozen=True)
class ModelConfig:
    """``[models.NAME]``: a CNN detector fine-tuned on real vs fake (``fdt models finetune`` inside a run).

    The keys are :class:`fdt.models.finetune.FinetuneConfig`'s; a key left out
    takes that class's default (``None`` here means "not given"). ``real`` and
    ``fakes`` (source names) default to the experiment's. The seed and the
    grouped split are the experiment's, so the network trains on the train share
    that studies and matrices hold out from scoring.
    """

    name: str
    backbone: str
    weights: str | None = None
    input: str | None = None
    input_size: int | None = None
    resolution: str | int | None = None
    epochs: int | None = None
    finetune_epochs: int | None = None
    unfreeze: int | None = None
    lr: float | None = None
    finetune_lr: float | None = None
    batch_size: int | None = None
    dropout: float | None = None
    patience: int | None = None
    val_share: float | None = None
    augment: tuple[str, ...] | None = None
    class_weight: str | None = None
    real: tuple[str, ...] = ()
    fakes: tuple[str, ...] = ()

    def given(self) -> dict[str, Any]:
        """The fine-tuning settings the file gives (not ``name``, ``real``, ``fakes``)."""
        skip = ("name", "real", "fakes")
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip and getattr(self, f.name) is not None}


@dataclass(frozen=True)
class StudyConfig:
    """``[[studies]]``: tune each pipeline on each extractor at each resolution, real vs every fake."""

    pipelines: tuple[str, ...]
    extractors: tuple[str, ...] = ()
    resolutions: tuple[str, ...] = ()
    trials: int = 20
    cv: int = 5
    jobs: int = 1
    pruner: str = "wilcoxon"
    trial_timeout: float = 600.0
    fidelity: float | None = None

    def tuning(self) -> dict[str, Any]:
        """``jobs``, ``pruner``, ``trial_timeout`` and ``fidelity`` as :class:`~fdt.pipelines.tuning.OptunaSearchCV` settings (as ``fdt tune`` takes them)."""
        return _tuning(self)


@dataclass(frozen=True)
class MatrixConfig:
    """``[[matrices]]``: a generalisation matrix per extractor at each resolution, plus the cross-resolution matrix."""

    pipeline: str
    extractors: tuple[str, ...] = ()
    resolutions: tuple[str, ...] = ()
    metric: str = "roc_auc"
    trials: int = 0
    cv: int = 5
    jobs: int = 1
    pruner: str = "wilcoxon"
    trial_timeout: float = 600.0
    fidelity: float | None = None

    def tuning(self) -> dict[str, Any]:
        """As :meth:`StudyConfig.tuning`; ``jobs`` here are training conditions tuned at once (as in ``fdt report matrix``)."""
        return _tuning(self)


def _tuning(entry: StudyConfig | MatrixConfig) -> dict[str, Any]:
    from fdt.pipelines.tuning import tuning_settings

    return tuning_settings(entry.jobs, entry.trial_timeout, entry.pruner, entry.fidelity)


@dataclass(frozen=True)
class RobustnessConfig:
    """``[[robustness]]``: per extractor, train once (clean or ``train_perturb``), test held-out groups at every sweep level."""

    pipeline: str
    sweeps: tuple[str, ...]
    extractors: tuple[str, ...] = ()
    resolution: str = "native"
    train_perturb: tuple[str, ...] = ()
    trials: int = 0
    cv: int = 5


@dataclass(frozen=True)
class QualityConfig:
    """``[[quality]]``: each fake source's quality against the reals in each extractor's feature space, next to its detectability.

    Detectability is the ROC AUC of a detector on ``detector``'s features (default:
    the quality extractor's own): the diagonal of this run's ``[[matrices]]`` report
    at ``resolution`` (``matrix = true``; unset: where a matching matrix exists), else a
    grouped ``cv``-fold cross-validation of ``pipeline``. ``follow`` names generated
    image sets trained with ``keep_epochs``: ``samples`` images of each kept epoch (or
    of ``epochs``) are measured the same way, against the epoch.
    """

    extractors: tuple[str, ...] = ()
    real: tuple[str, ...] = ()
    fakes: tuple[str, ...] = ()
    resolution: str = "native"
    detector: str | None = None
    matrix: bool | None = None
    pipeline: str | None = None
    cv: int = 5
    k: int = 5
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    resamples: int = 100
    follow: tuple[str, ...] = ()
    samples: int = 500
    epochs: tuple[int, ...] = ()


@dataclass(frozen=True)
class Experiment:
    """A parsed experiment file; relative paths are already resolved against the file's folder."""

    settings: Settings
    images: dict[str, ImageSet]
    extractors: dict[str, ExtractorConfig]
    studies: tuple[StudyConfig, ...] = ()
    matrices: tuple[MatrixConfig, ...] = ()
    path: str = ""
    robustness: tuple[RobustnessConfig, ...] = ()
    models: dict[str, ModelConfig] = field(default_factory=dict)
    quality: tuple[QualityConfig, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def input_paths(self) -> list[str]:
        """The folders and manifests the file names: OS errors about them are the user's to fix."""
        named = [getattr(images, "folder", None) or getattr(images, "manifest", None) or getattr(images, "prompts", None) for images in self.images.values()]
        return [self.path, *filter(None, named)]


_TOP_LEVEL = ("experiment", "images", "models", "extractors", "studies", "matrices", "robustness", "quality")
_IMAGE_KINDS: dict[str, type] = {"folder": FolderImages, "manifest": ManifestImages, "corpus": CorpusImages, "generator": GeneratedImages}


def load_experiment(path: str | Path) -> Experiment:
    """Read and check an experiment file; raises :class:`ExperimentError` with a one-line message."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExperimentError(f"experiment file not found: {path}") from None
    except OSError as error:
        raise ExperimentError(f"cannot read experiment file {path}: {error.strerror}") from None
    return parse_experiment(text, base=path.resolve().parent, source=str(path))


def parse_experiment(text: str, base: Path, source: str = "<experiment>") -> Experiment:
    """Parse experiment TOML; relative paths are taken relative to ``base``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ExperimentError(f"{source}: not valid TOML ({error})") from None
    _check_keys(data, _TOP_LEVEL, "the top level")
    settings = _build(Settings, _table(data, "experiment", "[experiment]"), "[experiment]")
    if not settings.resolutions:
        raise ExperimentError("[experiment] resolutions is empty; give at least one (native, 64, ...)")
    if settings.pipelines_file is not None:
        settings = dataclasses.replace(settings, pipelines_file=str(base / settings.pipelines_file))

    images = {name: _image_set(name, table, base) for name, table in _table(data, "images", "[images]").items()}
    if not images:
        raise ExperimentError("the experiment has no [images.NAME] table")
    extractors = {label: _extractor(label, table) for label, table in _table(data, "extractors", "[extractors]").items()}
    if not extractors:
        raise ExperimentError("the experiment has no [extractors.LABEL] table")
    studies = tuple(_build(StudyConfig, table, f"[[studies]] #{i}") for i, table in enumerate(_array(data, "studies"), 1))
    matrices = tuple(_build(MatrixConfig, table, f"[[matrices]] #{i}") for i, table in enumerate(_array(data, "matrices"), 1))
    robustness = tuple(_build(RobustnessConfig, table, f"[[robustness]] #{i}") for i, table in enumerate(_array(data, "robustness"), 1))
    models = {name: _model(name, table) for name, table in _table(data, "models", "[models]").items()}
    quality = tuple(_build(QualityConfig, table, f"[[quality]] #{i}") for i, table in enumerate(_array(data, "quality"), 1))
    experiment = Experiment(settings, images, extractors, studies, matrices, source, robustness, models, quality)
    _check_references(experiment)
    return experiment


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ExperimentError(f"{where} must be a table")
    return value


def _array(data: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ExperimentError(f"{key} must be an array of tables: [[{key}]]")
    return value


def _check_keys(table: Mapping[str, Any], allowed: typing.Iterable[str], where: str) -> None:
    allowed = list(allowed)
    for key in table:
        if key not in allowed:
            raise ExperimentError(f"unknown key {key!r} in {where}; allowed: {', '.join(allowed)}")


def _image_set(name: str, table: Any, base: Path) -> ImageSet:
    where = f"[images.{name}]"
    _safe(name, "image set name", where)
    if not isinstance(table, dict):
        raise ExperimentError(f"{where} must be a table")
    kinds = [kind for kind in _IMAGE_KINDS if kind in table]
    if len(kinds) != 1:
        raise ExperimentError(f"{where} needs exactly one of {', '.join(_IMAGE_KINDS)}, not {len(kinds)}")
    image_set = _build(_IMAGE_KINDS[kinds[0]], table, where, fixed={"name": name})
    if isinstance(image_set, FolderImages):
        if image_set.label not in (None, "real", "fake"):
            raise ExperimentError(f"{where} label must be 'real' or 'fake', not {image_set.label!r}")
        return dataclasses.replace(image_set, folder=str(base / image_set.folder))
    if isinstance(image_set, ManifestImages):
        return dataclasses.replace(image_set, manifest=str(base / image_set.manifest))
    if isinstance(image_set, CorpusImages):
        if image_set.corpus != "bundled":
            raise ExperimentError(f"{where} corpus must be 'bundled' (photos shipped inside installed packages), not {image_set.corpus!r}")
        if image_set.crops < 1 or image_set.size < 8:
            raise ExperimentError(f"{where} needs crops >= 1 and size >= 8")
        return image_set
    spec = _generator(image_set.generator, where)
    needed = _needed_keys(spec)
    for key in ("train_on", "model", "inpaint", "prompts"):
        present = getattr(image_set, key) is not None
        if present != (key in needed):
            raise ExperimentError(f"{where}: a {image_set.generator} generator {'needs' if key in needed else 'takes no'} key {key!r}")
    if not spec.train and image_set.train:
        raise ExperimentError(f"{where}: {image_set.generator} trains nothing; remove [train]")
    if image_set.samples < 1:
        raise ExperimentError(f"{where} samples must be at least 1")
    if image_set.prompts is not None:
        return dataclasses.replace(image_set, prompts=str(base / image_set.prompts))
    return image_set


def _generator(name: str, where: str) -> GeneratorSpec:
    try:
        return get_generator(name)
    except UnknownGeneratorError:
        raise ExperimentError(f"{where} generator must be one of {', '.join(list_generators())}, not {name!r}") from None
    except GenError as error:  # a plugin that does not load to a generator
        raise ExperimentError(f"{where}: {error}") from None


def _needed_keys(spec: GeneratorSpec) -> tuple[str, ...]:
    """The image-set keys a generator's entry asks for: what it trains on, whose model it uses, what it starts from."""
    return (
        *(("train_on",) if spec.train else ()),
        *(("model",) if spec.model_of else ()),
        *(("inpaint",) if spec.kind == "inpaint" else ()),
        *(("prompts",) if spec.kind == "text" else ()),
    )


def _safe(name: str, what: str, where: str) -> None:
    """Table names become folder names in the workspace: refuse ``..`` and separators."""
    try:
        check_name(name, what)
    except UnsafeNameError as error:
        raise ExperimentError(f"{where}: {error}") from None


def _extractor(label: str, table: Any) -> ExtractorConfig:
    where = f"[extractors.{label}]"
    _safe(label, "extractor label", where)
    if not isinstance(table, dict):
        raise ExperimentError(f"{where} must be a table")
    return _build(ExtractorConfig, {"extractor": label, **table}, where, fixed={"label": label})


def _model(name: str, table: Any) -> ModelConfig:
    where = f"[models.{name}]"
    _safe(name, "model name", where)
    return _build(ModelConfig, table, where, fixed={"name": name})


def checked_sources(sources: Mapping[str, int], where: str, key: str, given: tuple[str, ...], default: list[str], label: int) -> tuple[str, ...]:
    """``given`` source names (each one of ``sources`` with ``label``), or ``default`` when none are given."""
    from fdt.data import REAL

    for name in given:
        if name not in sources:
            raise ExperimentError(f"{where} {key}: no image set has a source {name!r}; sources: {', '.join(sources)}")
        if sources[name] != label:
            raise ExperimentError(f"{where} {key}: source {name!r} is labelled {'real' if sources[name] == REAL else 'fake'}")
    return tuple(given or default)


def _check_references(experiment: Experiment) -> None:
    """Names that point at other tables (image sets, extractor labels) must exist."""
    images, extractors = experiment.images, experiment.extractors
    for name, image_set in images.items():
        where = f"[images.{name}]"
        if isinstance(image_set, GeneratedImages):
            for key in ("train_on", "inpaint", "model"):
                target = getattr(image_set, key)
                if target is not None and target not in images:
                    raise ExperimentError(f"{where} {key} = {target!r} names no [images.{target}] table")
            if image_set.model is not None:
                model = images[image_set.model]
                wanted = get_generator(image_set.generator).model_of
                if not (isinstance(model, GeneratedImages) and model.generator == wanted):
                    raise ExperimentError(f"{where} model = {image_set.model!r} must name a {wanted} image set")
    for label, config in extractors.items():
        if config.train_on is not None and config.train_on not in images:
            raise ExperimentError(f"[extractors.{label}] train_on = {config.train_on!r} names no [images.{config.train_on}] table")
        if config.model is not None and config.model not in experiment.models:
            raise ExperimentError(f"[extractors.{label}] model = {config.model!r} names no [models.{config.model}] table")
    for kind, entries in (("studies", experiment.studies), ("matrices", experiment.matrices), ("robustness", experiment.robustness), ("quality", experiment.quality)):
        for index, entry in enumerate(entries, 1):
            for label in entry.extractors:
                if label not in extractors:
                    raise ExperimentError(f"[[{kind}]] #{index} extractors: {label!r} names no [extractors.{label}] table")
    for index, entry in enumerate(experiment.quality, 1):
        if entry.detector is not None and entry.detector not in extractors:
            raise ExperimentError(f"[[quality]] #{index} detector: {entry.detector!r} names no [extractors.{entry.detector}] table")
        for name in entry.follow:
            if name not in images:
                raise ExperimentError(f"[[quality]] #{index} follow: {name!r} names no [images.{name}] table")


def _build(cls: type, table: Mapping[str, Any], where: str, fixed: Mapping[str, Any] | None = None) -> Any:
    """A dataclass from a TOML table: unknown keys, missing keys and wrong types are errors naming the key.

    ``fixed`` fields (a table's name) come from the file's structure, not from keys.
    """
    if not isinstance(table, Mapping):
        raise ExperimentError(f"{where} must be a table")
    fixed = dict(fixed or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in fixed}
    _check_keys(table, list(fields), where)
    values = dict(fixed)
    for name, spec in fields.items():
        if name in table:
            values[name] = _convert(table[name], hints[name], f"{name} in {where}")
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ExperimentError(f"{where} needs key {name!r}")
    return cls(**values)


def _convert(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a field's type; lists become tuples and integer resolutions strings."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    for option in options:
        origin = typing.get_origin(option)
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is str and isinstance(value, str):
            return value
        if origin is tuple and typing.get_args(option)[0] is int and isinstance(value, list):
            if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                return tuple(value)
        elif origin is tuple and isinstance(value, list) and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
            return tuple(str(v) for v in value)
        if origin is dict and isinstance(value, dict):
            return dict(value)
    wanted = " or ".join(_type_name(option) for option in options if option is not type(None))
    raise ExperimentError(f"{where} must be {wanted}, not {value!r}")


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is tuple:
        return "a list of integers" if typing.get_args(hint)[0] is int else "a list of strings"
    if origin is dict:
        return "a table"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))
