"""``[models.NAME]``: CNN detectors fine-tuned inside ``fdt run``, and the extractors that read them.

Seed studies 001, 002 and 004 train CNNs on the detection task. In an
experiment file such a network is a ``[models.NAME]`` table (the settings of
``fdt models finetune``), and any CNN extractor of its backbone reads it with
``model = "NAME"``: its penultimate features go to the tuned heads like any
other features, and ``params.output = "logit"`` gives the network's own score,
which the ``score`` pipeline calibrates (the seeds' "direct approach").

The network trains on the *train share* of the experiment's own group
assignment (its seed and split), so the groups that studies and matrices
score are groups it never saw; the leakage guard refuses the rest. It runs
before extraction, with a stamp like every stage: an unchanged model is
reused, an interrupted one resumes from fine-tuning's checkpoint, one whose
settings or images changed starts over (only more epochs continue).

Its files live in ``workspace/models/NAME/``: the model ``NAME.pt``, its
training record ``NAME.pt.training.json`` (the groups and images it read),
the checkpoint, and the curves as CSV, PNG and TensorBoard events.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from fdt.data import FAKE, REAL, DataError, ImageRecord
from fdt.experiment.config import IMAGENET_IF_CACHED, Experiment, ExperimentError, ExtractorConfig, ModelConfig, checked_sources

if TYPE_CHECKING:
    from fdt.experiment.plan import Plan
    from fdt.experiment.runner import RunRecord

STAGE = "finetune"
_EXTENDABLE = ("epochs", "finetune_epochs")  # settings a checkpoint continues under (fdt.models.finetune)


@dataclass(frozen=True)
class ModelPlan:
    """A checked ``[models.NAME]``: its fine-tuning settings, the sources it learns, and how its start weights were chosen."""

    name: str
    config: Any
    """The :class:`fdt.models.finetune.FinetuneConfig` (seed and split from ``[experiment]``)."""
    real: tuple[str, ...]
    fakes: tuple[str, ...]
    weights_choice: str

    @property
    def sources(self) -> tuple[str, ...]:
        return self.real + self.fakes

    def describe(self) -> str:
        """One phrase for reports: what the network is and what it learnt from."""
        return (
            f"the {self.config.backbone} detector [models.{self.name}] fine-tuned on {'+'.join(self.real)} vs "
            f"{'+'.join(self.fakes)} ({self.config.input}, starting from {self.weights_choice})"
        )


def model_path(models_dir: Path, name: str) -> Path:
    """Where ``[models.NAME]``'s detector file goes: ``models/NAME/NAME.pt``."""
    return models_dir / name / f"{name}.pt"


# ---------------------------------------------------------------- checks (fdt run --check)


def check_models(
    experiment: Experiment, sources: dict[str, int], real: list[str], fakes: list[str], fractions: tuple[float, float, float]
) -> dict[str, ModelPlan]:
    """Every ``[models.NAME]`` as a checked :class:`ModelPlan`: valid settings, a known backbone, available weights, known sources."""
    return {name: _check_model(model, experiment, sources, real, fakes, fractions) for name, model in experiment.models.items()}


def _check_model(
    model: ModelConfig, experiment: Experiment, sources: dict[str, int], real: list[str], fakes: list[str], fractions: tuple[float, float, float]
) -> ModelPlan:
    from fdt.features_store.errors import ExtractorError, WeightsNotFoundError
    from fdt.models.detector import DetectorError
    from fdt.models.finetune import FinetuneConfig, backbone_extractor

    where = f"[models.{model.name}]"
    settings = experiment.settings
    given = model.given()
    if "resolution" in given:
        given["resolution"] = str(given["resolution"])
    if "augment" in given:
        given["augment"] = tuple(given["augment"])
    weights = given.get("weights", "imagenet")
    choice = ""
    try:
        if weights == IMAGENET_IF_CACHED:
            cached = backbone_extractor(model.backbone, "imagenet", settings.seed).published_weights().cached() is not None
            weights = "imagenet" if cached else "random"
            choice = "ImageNet weights (found in the cache)" if cached else f"RANDOM initial weights (seed {settings.seed}): ImageNet weights are not in the cache"
        given["weights"] = weights
        split = {"seed": settings.seed, "fractions": [float(f) for f in fractions]}
        config = FinetuneConfig(**given, seed=settings.seed, split=split)
        config.check()
        identity = backbone_extractor(config.backbone, config.weights, config.seed).weights_identity()
    except (DetectorError, DataError, ExtractorError, WeightsNotFoundError) as error:
        raise ExperimentError(f"{where}: {str(error).splitlines()[0]}") from None
    if not choice:
        choice = f"RANDOM initial weights ({identity})" if identity.startswith("random") else f"weights {identity}"
    chosen_real = checked_sources(sources, where, "real", tuple(model.real), real, REAL)
    chosen_fakes = checked_sources(sources, where, "fakes", tuple(model.fakes), fakes, FAKE)
    return ModelPlan(model.name, config, chosen_real, chosen_fakes, choice)


def check_model_extractor(label: str, extractor: ExtractorConfig, model: ModelPlan) -> dict[str, Any]:
    """Refuse an extractor that cannot read ``model``'s file; the parameters to check it with before the file exists.

    The file is read by the extractor of its backbone (a registered CNN by its
    name, any other timm model by ``timm`` with ``params.model``); its weights
    are the file, so a hand-set ``weights`` is refused rather than overridden.
    """
    from fdt.features_store.registry import list_extractors

    where = f"[extractors.{label}] model = {model.name!r}"
    params = dict(extractor.params)
    if "weights" in params:
        raise ExperimentError(f"{where}: params.weights is set by fdt to the fine-tuned file; remove it")
    backbone = model.config.backbone
    if backbone in list_extractors():
        fits, wanted = extractor.extractor == backbone, f"the {backbone} extractor"
    else:
        fits, wanted = extractor.extractor == "timm" and params.get("model") == backbone, f"the timm extractor with params.model = {backbone!r}"
    if not fits:
        actual = extractor.extractor + (f" (model {params['model']!r})" if extractor.extractor == "timm" and "model" in params else "")
        raise ExperimentError(f"{where}: a {backbone} detector is read by {wanted}, not by {actual}")
    if params.get("input", model.config.input) != model.config.input:
        raise ExperimentError(f"{where}: the detector is fine-tuned on {model.config.input} input, not params.input = {params['input']!r}")
    if params.get("output", "features") not in ("features", "logit"):
        raise ExperimentError(f"{where}: params.output must be features or logit, not {params['output']!r}")
    # before the file exists, check the other parameters on the architecture with seeded random weights
    return {k: v for k, v in params.items() if k not in ("output", "input")} | {"weights": "random"}


# ---------------------------------------------------------------- the stage


def fine_tune_models(
    plan: "Plan", records: dict[str, list[ImageRecord]], record: "RunRecord", progress: bool, log: Callable[[str], None]
) -> dict[str, tuple[str, Path]]:
    """Fine-tune (or reuse) every ``[models.NAME]``; per extractor label that reads one, ``("weights", file)``.

    Each model reads the images of its sources in every image set, and
    fine-tuning keeps only the train share of the experiment's assignment.
    """
    from fdt.experiment.runner import STAMP, read_stamp, records_digest, write_json
    from fdt.models.finetune import _config_dict, finetune

    settings = plan.experiment.settings
    everything = list({(r.path, r.source): r for rows in records.values() for r in rows}.values())
    files = {}
    for name, model in plan.models.items():
        path = model_path(plan.models_dir, name)
        chosen = [r for r in everything if r.source in model.sources]
        stamp_path = path.with_name(STAMP)
        wanted = {"config": _config_dict(model.config), "sources": list(model.sources), "data": records_digest(chosen)}
        stamp = read_stamp(stamp_path)
        fresh = stamp != wanted or not path.is_file()
        if fresh:
            # no stamp: an interrupted run, so resume its checkpoint; more epochs: continue it; other settings or images: start over
            resume = stamp is None or extends_checkpoint(stamp, wanted)
            log(f"model {name}: fine-tuning {model.config.backbone} on {len(chosen)} images of {', '.join(model.sources)} (train share only)")
            try:
                finetune(chosen, path, model.config, device=settings.device, workers=settings.workers or 0, resume=resume, progress=progress)
            except DataError as error:
                raise ExperimentError(f"[models.{name}]: {error}") from None
            write_json(stamp_path, wanted)
        entry = record.add(STAGE, name, fresh, **_describe(model, path))
        log(
            f"model {name}: best epoch {entry['best_epoch']} of {entry['epochs_run']}, val loss {entry['best_val_loss']:.4f} "
            f"({'trained' if fresh else 'reused'}){'; RANDOM initial weights' if entry['random_initial_weights'] else ''}"
        )
        files[name] = path
    return {label: ("weights", files[config.model]) for label, config in plan.experiment.extractors.items() if config.model is not None}


def extends_checkpoint(stamp: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether ``wanted`` differs from ``stamp`` only by more epochs: a checkpoint that fine-tuning can continue."""
    old, new = dict(stamp.get("config", {})), dict(wanted["config"])
    longer = all(new[k] >= old.get(k, new[k]) for k in _EXTENDABLE)
    for key in _EXTENDABLE:
        old.pop(key, None), new.pop(key, None)
    return longer and old == new and {k: v for k, v in stamp.items() if k != "config"} == {k: v for k, v in wanted.items() if k != "config"}


def _describe(model: ModelPlan, path: Path) -> dict[str, Any]:
    """The run-record details of a fine-tuned model, read back from its file (the same whether trained now or reused)."""
    from fdt.grouping import record_path
    from fdt.models.curves import curve_paths
    from fdt.models.detector import read_detector_file

    state = read_detector_file(path)
    training = state["training"]
    start = str(state["start_weights"])
    return {
        "backbone": model.config.backbone,
        "input": model.config.input,
        "model": str(path),
        "training_record": str(record_path(path)),
        "curves": [str(p) for p in curve_paths(path) if p.exists()],
        "start_weights": start,
        "random_initial_weights": start.startswith("random"),
        "real": list(model.real),
        "fakes": list(model.fakes),
        "best_epoch": training["best_epoch"],
        "best_val_loss": training["best_val_loss"],
        "epochs_run": len(training["history"]),
        "num_train": training["num_train"],
        "num_val": training["num_val"],
        "split": training["split"],
    }


# ---------------------------------------------------------------- summary


def summary_lines(stages: list[dict[str, Any]], reports: Path) -> list[str]:
    """The summary's table of fine-tuned detectors: what each learnt from, its best epoch, and its curves."""
    entries = [s for s in stages if s["stage"] == STAGE]
    if not entries:
        return []
    lines = [
        "", "## Fine-tuned detectors (train share of the grouped split only)", "",
        "| model | backbone / input | initial weights | trained on | images train / early-stopping | best epoch | best val loss | curves |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in entries:
        start = f"**RANDOM initial weights** (`{entry['start_weights']}`)" if entry["random_initial_weights"] else f"`{entry['start_weights']}`"
        links = ", ".join(f"[{Path(p).suffix.lstrip('.') or 'tensorboard'}]({_relative(Path(p), reports)})" for p in entry["curves"])
        lines.append(
            f"| {entry['name']} | {entry['backbone']} / {entry['input']} | {start} | {'+'.join(entry['real'])} vs {'+'.join(entry['fakes'])} | "
            f"{entry['num_train']} / {entry['num_val']} | {entry['best_epoch']} of {entry['epochs_run']} | {entry['best_val_loss']:.4f} | {links} |"
        )
    lines += [
        "",
        "A matrix cell that tests a fake source such a network trained on (other than its own row's) is not a cross-generator "
        "result: it is marked § in the matrices of its extractors.",
    ]
    return lines


def _relative(path: Path, reports: Path) -> str:
    try:
        return str(Path("..") / path.relative_to(reports.parent))
    except ValueError:
        return str(path)

