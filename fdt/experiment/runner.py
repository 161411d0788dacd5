"""Run a checked experiment stage by stage, doing only what is missing, and record what was done.

Stages: image sets (bundled corpus, generator training and sampling), the
extractors that learn from images (the autoencoder), fine-tuned CNN detectors
(:mod:`fdt.experiment.finetuning`), feature extraction, tuned studies,
generalisation matrices, robustness sweeps, quality vs detectability
(:mod:`fdt.experiment.quality`), and the summary. Each finished output carries a *stamp* (a small JSON file of the
settings and input digests it was made from); a stage whose stamp matches is
reused, one whose stamp is absent resumes from its checkpoint, and one whose
stamp differs starts over. Features need no stamp: the store is content
addressed and computes only missing rows.

Every stage adds an entry to the run record (``reports/run.json``) with
``action`` ``computed`` or ``reused`` and its counts (new feature rows, images
sampled, models tuned), so tests and people can see what a run did.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fdt import __version__, atomic
from fdt.data import REAL, ImageRecord, load_image_set
from fdt.experiment.config import CorpusImages, GeneratedImages, MatrixConfig, RobustnessConfig, StudyConfig
from fdt.experiment.finetuning import fine_tune_models
from fdt.experiment.plan import Plan, extractor_trainer

STAMP = "fdt-run.json"
RUN_RECORD = "run.json"
Log = Callable[[str], None]


@dataclass
class RunRecord:
    """What one run did, stage by stage; written as ``reports/run.json``."""

    experiment: str
    workspace: str
    stages: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    seconds: float = 0.0

    def add(self, stage: str, name: str, computed: bool, **details: Any) -> dict[str, Any]:
        entry = {"stage": stage, "name": name, "action": "computed" if computed else "reused", **details}
        self.stages.append(entry)
        return entry

    def totals(self) -> dict[str, int]:
        extract = [s for s in self.stages if s["stage"] == "extract"]
        return {
            "stages_computed": sum(s["action"] == "computed" for s in self.stages),
            "stages_reused": sum(s["action"] == "reused" for s in self.stages),
            "new_feature_rows": sum(s["new_rows"] for s in extract),
            "reused_feature_rows": sum(s["reused_rows"] for s in extract),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "workspace": self.workspace,
            "fdt_version": __version__,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "seconds": round(self.seconds, 2),
            "totals": self.totals(),
            "stages": self.stages,
        }


@dataclass
class RunResult:
    """A finished run: its record, the report folders of its matrices, and the model cards of its studies."""

    plan: Plan
    record: RunRecord
    records: dict[str, list[ImageRecord]]
    matrix_reports: list[dict[str, Any]]
    cards: list[dict[str, Any]]
    shortcuts: list[str] = field(default_factory=list)
    summary_path: Path | None = None
    robustness_reports: list[dict[str, Any]] = field(default_factory=list)
    quality_reports: list[dict[str, Any]] = field(default_factory=list)


def run_experiment(plan: Plan, progress: bool = True, log: Log = print) -> RunResult:
    """Run every stage of ``plan``; a second run with the same plan computes nothing.

    Writes ``reports/run.json`` and ``reports/summary.md`` at the end.
    """
    import optuna
    from sklearn.exceptions import ConvergenceWarning

    from fdt.experiment.quality import run_quality
    from fdt.experiment.summary import write_summary

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    record = RunRecord(plan.experiment.settings.name, str(plan.workspace.resolve()))
    for warning in plan.warnings:
        log(f"warning: {warning}")
    records = _image_sets(plan, record, progress, log)
    trained = _trained_extractors(plan, records, record, progress, log)
    trained |= fine_tune_models(plan, records, record, progress, log)
    features = _extract(plan, records, trained, record, progress, log)
    shortcuts = _audit(plan, log)
    with warnings.catch_warnings():
        # Tuning tries extreme regularisation on purpose; a trial that does not converge scores worse, which is the answer.
        warnings.simplefilter("ignore", ConvergenceWarning)
        cards = [card for study in plan.experiment.studies for card in _study(plan, study, features, record, progress, log, shortcuts)]
        matrices = [report for matrix in plan.experiment.matrices for report in _matrices(plan, matrix, features, record, progress, log, shortcuts)]
        robustness = [report for entry in plan.experiment.robustness for report in _robustness(plan, entry, features, record, progress, log, shortcuts)]
        quality = run_quality(plan, features, trained, record, progress, log, shortcuts)
    result = RunResult(plan, record, records, matrices, cards, shortcuts, robustness_reports=robustness, quality_reports=quality)
    record.seconds = time.perf_counter() - started
    result.summary_path = write_summary(result)
    record.seconds = time.perf_counter() - started
    write_json(plan.reports_dir / RUN_RECORD, record.to_dict())
    return result


# ---------------------------------------------------------------- stamps


def digest(value: Any) -> str:
    """SHA-256 of a value's canonical JSON."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def records_digest(records: list[ImageRecord]) -> str:
    """What a model learnt from: every image's name, label, group, size and modification time.

    Size and mtime stand in for content (hashing every image on every run would
    cost more than it saves): a replaced file changes them. Only the file and
    folder name are used, so a workspace moved elsewhere is still recognised.
    """
    rows = []
    for r in records:
        path = Path(r.path)
        stat = path.stat()
        rows.append((f"{path.parent.name}/{path.name}", r.source, r.label, r.group, stat.st_size, stat.st_mtime_ns))
    return digest(sorted(rows))


def read_stamp(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json(path: Path, value: Any) -> None:
    """Write JSON atomically, creating its folder; values JSON cannot hold are written as text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(path, value, default=str)


# ---------------------------------------------------------------- images


def _image_sets(plan: Plan, record: RunRecord, progress: bool, log: Log) -> dict[str, list[ImageRecord]]:
    """Records of every image set, building the corpus and running generators as needed.

    Every set comes after the sets it learns from, repaints or takes a model from.
    """
    from fdt.experiment.corpus import build_corpus, corpus_is_built

    records = dict(plan.static_records)
    images = plan.experiment.images
    for name in _dependency_order(images):
        image_set = images[name]
        if isinstance(image_set, CorpusImages):
            folder = plan.data_dir(name)
            built = corpus_is_built(folder, image_set.crops, image_set.size, image_set.seed)
            if not built:
                log(f"images {name}: cutting {image_set.crops} {image_set.size}px crops from bundled photos")
                build_corpus(folder, name, image_set.crops, image_set.size, image_set.seed, progress)
            records[name] = load_image_set(folder / "manifest.csv")
            groups = len({r.group for r in records[name]})
            record.add("images", name, not built, images=len(records[name]), groups=groups, folder=str(folder))
            log(f"images {name}: {len(records[name])} crops from {groups} photos ({'built' if not built else 'reused'})")
        elif isinstance(image_set, GeneratedImages):
            records[name] = _generate(plan, image_set, records, record, progress, log)
    return records


def _dependency_order(images: dict[str, Any]) -> list[str]:
    """Image-set names, each after the sets its ``train_on``, ``inpaint`` and ``model`` name (file order otherwise)."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        image_set = images[name]
        if isinstance(image_set, GeneratedImages):
            for needed in (image_set.train_on, image_set.inpaint, image_set.model):
                if needed is not None:
                    visit(needed)
        order.append(name)

    for name in images:
        visit(name)
    return order


def _generate(plan: Plan, image_set: GeneratedImages, records: dict[str, list[ImageRecord]], record: RunRecord, progress: bool, log: Log) -> list[ImageRecord]:
    """Train (or reuse) the generator's model if it has one, then top its folder up to what ``samples`` asks.

    What the generator is given follows from its registry entry: ``n`` for a
    sampler, the chosen source images for an inpainter, the chosen prompts for
    text-to-image. An inpainter or text-to-image run makes ``per_image`` /
    ``per_prompt`` outputs per input (the function's own default unless set).
    """
    from fdt.gen.prompts import read_prompts
    from fdt.gen.registry import get_generator

    spec = get_generator(image_set.generator)
    settings = plan.experiment.settings
    name = image_set.name
    out_dir = plan.data_dir(name)
    trained = False
    model_dir: Path | None = None
    model_stamp = None
    if spec.train:
        assert image_set.train_on is not None
        model_dir = plan.generator_dir(name)
        wanted = {"generator": image_set.generator, "train": image_set.train, "data": records_digest(records[image_set.train_on])}
        model_stamp = read_stamp(model_dir / STAMP)
        if model_stamp != wanted:
            if model_stamp is not None:  # other settings or data: a checkpoint would be refused or stale
                shutil.rmtree(model_dir)
            log(f"generator {name}: training {image_set.generator} on {image_set.train_on!r}")
            train = spec.function("train")
            train(images=records[image_set.train_on], out_dir=model_dir, resume=True, device=settings.device, progress=progress, **image_set.train)
            write_json(model_dir / STAMP, wanted)
            model_stamp, trained = wanted, True
    elif spec.model_of:
        assert image_set.model is not None
        model_dir = plan.generator_dir(image_set.model)
        model_stamp = read_stamp(model_dir / STAMP)

    inputs: list[Any] = []
    source_digest = ""
    if spec.kind == "inpaint":
        assert image_set.inpaint is not None
        real = [r for r in records[image_set.inpaint] if r.label == REAL]  # a dataset's own fakes are not sources
        inputs = _subset(real, image_set.samples, settings.seed)
        source_digest = records_digest(inputs)
    elif spec.kind == "text":
        assert image_set.prompts is not None
        inputs = read_prompts(image_set.prompts, image_set.samples)
        source_digest = digest([(p.text, p.group) for p in inputs])
    per_input = int(image_set.sample.get(spec.per_input, spec.default("make", spec.per_input))) if spec.per_input else 1

    sample_wanted = {"model": digest(model_stamp), "sample": image_set.sample, "inputs": source_digest}
    if read_stamp(out_dir / STAMP) != sample_wanted:
        shutil.rmtree(out_dir, ignore_errors=True)
        write_json(out_dir / STAMP, sample_wanted)
    manifest = out_dir / "manifest.csv"
    have = len(load_image_set(manifest)) if manifest.is_file() else 0
    wanted_images = image_set.samples * per_input if spec.kind == "sample" else len(inputs) * per_input
    missing = wanted_images - have
    if missing > 0:
        log(f"generator {name}: {image_set.generator} making {missing} images")
        given: dict[str, Any] = {"out_dir": out_dir, "device": settings.device, "source": name, "progress": progress}
        if model_dir is not None:
            given["model_dir"] = model_dir
        if spec.kind == "sample":
            given["n"] = missing
        else:
            given["images" if spec.kind == "inpaint" else "prompts"] = inputs[have // per_input :]
        spec.function("make")(**given, **image_set.sample)
    found = load_image_set(manifest)
    record.add(
        "generator", name, trained or missing > 0, generator=image_set.generator, trained=trained,
        new_images=max(missing, 0), images=len(found), model=str(model_dir or ""), folder=str(out_dir),
    )
    log(f"generator {name}: {len(found)} images ({'trained, ' if trained else 'model reused, ' if model_dir else ''}{max(missing, 0)} new)")
    return found


def _subset(records: list[ImageRecord], count: int, seed: int) -> list[ImageRecord]:
    """A seeded random choice of ``count`` records (all of them if there are fewer), in a stable order."""
    chosen = random.Random(seed).sample(range(len(records)), min(count, len(records)))
    return [records[i] for i in sorted(chosen)]


# ---------------------------------------------------------------- extractors that learn


def _trained_extractors(plan: Plan, records: dict[str, list[ImageRecord]], record: RunRecord, progress: bool, log: Log) -> dict[str, tuple[str, Path]]:
    """Train each extractor that learns from images (the autoencoder) on the train share of its image set.

    Reused when its stamp matches. Returns, per extractor label, the parameter
    its model goes to and the model file.
    """
    models = {}
    for label, config in plan.experiment.extractors.items():
        trainer = extractor_trainer(config.extractor)
        if config.train_on is None or trainer is None:
            continue
        path = plan.trained_extractor_path(label)
        stamp_path = path.with_name(f"{path.stem}.{STAMP}")
        split = {"seed": plan.experiment.settings.seed, "fractions": list(plan.fractions)}
        wanted = {"train": config.train, "data": records_digest(records[config.train_on]), "split": split}
        stamp = read_stamp(stamp_path)
        fresh = stamp != wanted or not path.is_file()
        if fresh:
            log(f"{config.extractor} {label}: training on {config.train_on!r}")
            # no stamp: an interrupted run, so resume its checkpoint; another stamp: other settings, start over
            # only the train share of the assignment studies and matrices use, so their test groups stay unseen
            trainer.function(
                records[config.train_on], path, device=plan.experiment.settings.device, resume=stamp is None, progress=progress,
                split=split, **config.train,
            )
            write_json(stamp_path, wanted)
        record.add("extractor-training", label, fresh, extractor=config.extractor, model=str(path))
        models[label] = (trainer.param, path)
    return models


# ---------------------------------------------------------------- features


@dataclass
class Features:
    """Where one extractor label's rows live at one resolution, and which images the experiment has."""

    key: Any
    hashes: set[str]


def _extract(
    plan: Plan, records: dict[str, list[ImageRecord]], trained: dict[str, tuple[str, Path]], record: RunRecord, progress: bool, log: Log
) -> dict[tuple[str, str], Features]:
    """Extract every image of every set with each extractor at the resolutions the stages that use it need.

    An extractor no stage uses is extracted at every resolution of ``[experiment]``;
    one that only a quality report uses (Inception for FID) only at that report's.
    """
    from fdt.features_store.extraction import SpectralResizeWarning, extract_records, spectral_resize_warning

    settings = plan.experiment.settings
    everything = list({(r.path, r.source): r for rows in records.values() for r in rows}.values())
    needed: dict[str, list[str]] = {label: [] for label in plan.experiment.extractors}
    for entry in (*plan.experiment.studies, *plan.experiment.matrices):
        for label in plan.extractors_of(entry.extractors):
            needed[label] += [r for r in plan.resolutions_of(entry.resolutions) if r not in needed[label]]
    for entry in plan.experiment.robustness:
        for label in plan.extractors_of(entry.extractors):
            needed[label] += [r for r in plan.resolutions_of((entry.resolution,)) if r not in needed[label]]
    for job in plan.quality_jobs:
        for label in (job.label, job.detector):
            needed[label] += [job.resolution] if job.resolution not in needed[label] else []
    features = {}
    for label, resolutions in needed.items():
        resolutions = resolutions or list(plan.resolutions)
        config = plan.experiment.extractors[label]
        params = dict(plan.extractor_params[label])
        if label in trained:
            param, path = trained[label]
            params[param] = str(path)
        for resolution in resolutions:
            if note := spectral_resize_warning(config.extractor, resolution):
                log(f"warning: {note}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SpectralResizeWarning)  # logged once above
                summary = extract_records(
                    everything, config.extractor, params, resolution, plan.store_root, batch_size=settings.batch_size,
                    device=settings.device, workers=settings.workers, progress=progress, perturb=list(settings.equalise),
                )
            record.add(
                "extract", label, summary.new_rows > 0, extractor=config.extractor, resolution=resolution, new_rows=summary.new_rows,
                reused_rows=summary.reused_rows, failed=summary.failed, key=summary.key.describe(), weights=summary.key.weights,
                weights_choice=plan.weights_choice[label],
            )
            log(f"extract {label}@{resolution}: {summary.line()}")
            features[label, resolution] = Features(summary.key, {h for h in summary.hashes if h})
    for entry in plan.experiment.robustness:
        _extract_levels(plan, entry, everything, trained, record, progress, log)
    return features


def _extract_levels(
    plan: Plan, entry: RobustnessConfig, everything: list[ImageRecord], trained: dict[str, tuple[str, Path]], record: RunRecord, progress: bool, log: Log
) -> None:
    """Every perturbed level a ``[[robustness]]`` entry scores or trains on, each image decoded once for all levels."""
    from fdt.features_store.extraction import extract_levels
    from fdt.perturb import parse_chain, parse_sweep

    settings = plan.experiment.settings
    levels = [chain for sweep in entry.sweeps for chain in parse_sweep(sweep).chains] + [parse_chain(list(entry.train_perturb))]
    levels = [chain for chain in dict.fromkeys(levels) if chain]
    (resolution,) = plan.resolutions_of((entry.resolution,))
    for label in plan.extractors_of(entry.extractors):
        config = plan.experiment.extractors[label]
        params = dict(plan.extractor_params[label])
        if label in trained:
            param, path = trained[label]
            params[param] = str(path)
        summaries = extract_levels(
            everything, config.extractor, params, resolution, plan.store_root, levels=levels, batch_size=settings.batch_size,
            device=settings.device, workers=settings.workers, progress=progress,
        )
        for summary in summaries:
            record.add(
                "extract", label, summary.new_rows > 0, extractor=config.extractor, resolution=resolution, perturb=summary.key.perturb,
                new_rows=summary.new_rows, reused_rows=summary.reused_rows, failed=summary.failed, key=summary.key.describe(),
                weights=summary.key.weights, weights_choice=plan.weights_choice[label],
            )
            log(f"extract {label}@{resolution} {summary.key.perturb}: {summary.line()}")


def _load(
    plan: Plan, label: str, resolution: str, features: dict[tuple[str, str], Features], real: Any = None, fakes: Any = None
):
    """The experiment's own rows (real vs fakes; default the experiment's) for one extractor label and resolution.

    The store may hold other images of the same sources from earlier runs;
    only this run's images are kept, so results describe this experiment.
    """
    from fdt.features_store.store import FeatureStore
    from fdt.pipelines.evaluation import load_condition

    stored = features[label, resolution]
    data = load_condition(
        FeatureStore(plan.store_root), stored.key.extractor, resolution, list(real or plan.real), list(fakes or plan.fakes), stored.key.params,
        stored.key.weights, stored.key.perturb,
    )
    return data.subset(np.isin(data.sha256.astype(str), list(stored.hashes)))


# ---------------------------------------------------------------- audit


def _audit(plan: Plan, log: Log) -> list[str]:
    """The metadata audit of the experiment's sources (``reports/audit/``); its warnings go into every report.

    Reused while its stamp matches: the catalog rows of those sources (content
    hashes, paths, labels, groups) fix every header it reads, and the seed its folds.
    """
    import numpy as np

    from fdt import __version__
    from fdt.features_store.catalog import catalog_checksum
    from fdt.features_store.store import FeatureStore
    from fdt.pipelines.audit import audit_store, write_audit

    store = FeatureStore(plan.store_root)
    catalog = store.catalog()
    rows = np.isin(catalog.source, plan.real + plan.fakes)
    folder = plan.reports_dir / "audit"
    stamp_path = folder / STAMP
    wanted = {
        "catalog": catalog_checksum(catalog.sha256[rows], catalog.path[rows], catalog.source[rows], catalog.label[rows], catalog.group[rows]),
        "real": plan.real, "fakes": plan.fakes, "seed": plan.experiment.settings.seed, "fdt": __version__,
    }
    kept = read_stamp(folder / "audit.json") if read_stamp(stamp_path) == wanted else None
    if isinstance(kept, dict) and isinstance(kept.get("warnings"), list):
        log("audit: reused")
        warnings = list(kept["warnings"])
    else:
        audit = audit_store(store, plan.real, plan.fakes, plan.experiment.settings.seed)
        write_audit(audit, folder)
        write_json(stamp_path, wanted)
        warnings = audit.warnings()
    for warning in warnings:
        log(f"warning: {warning}")
    return [f"**WARNING: {warning}.**" for warning in warnings]


# ---------------------------------------------------------------- studies


def _study(
    plan: Plan, study: StudyConfig, features: dict[tuple[str, str], Features], record: RunRecord, progress: bool, log: Log, shortcuts: list[str]
) -> list[dict[str, Any]]:
    """Tune and cross-validate each pipeline on each extractor and resolution; reuse models whose card matches."""
    from fdt.pipelines.cards import MODEL_SUFFIX, read_card
    from fdt.pipelines.evaluation import fingerprint
    from fdt.pipelines.specs import get_spec

    settings = plan.experiment.settings
    cards = []
    for label in plan.extractors_of(study.extractors):
        for resolution in plan.resolutions_of(study.resolutions):
            data = _load(plan, label, resolution, features)
            data_fingerprint = fingerprint(data)
            for pipeline in study.pipelines:
                spec = get_spec(pipeline, settings.pipelines_file)
                name = f"{label}-{resolution.replace(':', '')}-{pipeline}"
                wanted = {
                    "data": data_fingerprint, "spec": spec.to_dict(), "trials": study.trials, "cv": study.cv,
                    "split": list(plan.fractions), "seed": settings.seed, "tuning": _result_settings(study.tuning()),
                }
                model_path = plan.models_dir / f"{name}{MODEL_SUFFIX}"
                card = read_card(model_path) if model_path.with_suffix(".json").is_file() else None
                fresh = not (card and card.get("experiment_settings") == wanted and model_path.is_file())
                if fresh:
                    log(f"study {name}: tuning ({study.trials} trials, grouped {study.cv}-fold CV)")
                    card = _tune(plan, name, data, spec, study, wanted, progress, shortcuts)
                assert card is not None
                cv_auc, test_auc = card["cv"]["metrics"]["roc_auc"], card["test_metrics"]["roc_auc"]
                record.add(
                    "study", name, fresh, extractor=label, resolution=resolution, pipeline=pipeline,
                    trials_in_study=card["trials_in_study"], cv_roc_auc=cv_auc, test_roc_auc=test_auc, model=str(model_path),
                )
                log(f"study {name}: CV roc_auc {cv_auc['mean']:.3f} ± {cv_auc['std']:.3f}, test {test_auc:.3f} ({'tuned' if fresh else 'reused'})")
                cards.append(card)
    return cards


def _result_settings(tuning: dict[str, Any]) -> dict[str, Any]:
    """The tuning settings that can change results (all but ``n_jobs``): what decides whether earlier work is reused."""
    return {name: value for name, value in tuning.items() if name != "n_jobs"}


def _tune(plan: Plan, name: str, data: Any, spec: Any, study: StudyConfig, wanted: dict, progress: bool, shortcuts: list[str]) -> dict:
    """Tune one condition with a persistent Optuna study and write its model and card (as ``fdt tune`` does)."""
    from fdt.pipelines.cards import save_model, tuned_card
    from fdt.pipelines.evaluation import study_name, tune_condition

    settings = plan.experiment.settings
    storage = f"sqlite:///{(plan.models_dir / 'optuna.db').resolve()}"
    result = tune_condition(
        data, spec, n_trials=study.trials, cv=study.cv, fractions=plan.fractions, random_state=settings.seed, storage=storage,
        study_name=study_name(name, data, spec, settings.seed, plan.fractions, study.cv), progress=progress, before_tuning=lambda: plan.models_dir.mkdir(parents=True, exist_ok=True),
        **study.tuning(),
    )
    result.notes += shortcuts
    card = tuned_card(name, spec, result, data, plan.real, plan.fakes, settings.seed, study.cv, storage)
    card["experiment_settings"] = wanted
    return save_model(result.tuner.predictor_, card, plan.models_dir, name)[1]


# ---------------------------------------------------------------- matrices


def _matrices(
    plan: Plan, matrix: MatrixConfig, features: dict[tuple[str, str], Features], record: RunRecord, progress: bool, log: Log, shortcuts: list[str]
) -> list[dict[str, Any]]:
    """A generalisation report per extractor: a matrix per resolution plus the cross-resolution matrix."""
    from fdt.pipelines.evaluation import fingerprint
    from fdt.pipelines.matrix import generalisation_matrices, write_report
    from fdt.pipelines.specs import get_spec

    settings = plan.experiment.settings
    spec = get_spec(matrix.pipeline, settings.pipelines_file)
    reports = []
    for label in plan.extractors_of(matrix.extractors):
        resolutions = plan.resolutions_of(matrix.resolutions)
        data = {res: _load(plan, label, res, features) for res in resolutions}
        folder = plan.reports_dir / f"matrix-{label}-{matrix.pipeline}"
        wanted = {
            "data": {res: fingerprint(fs) for res, fs in data.items()}, "spec": spec.to_dict(), "metric": matrix.metric,
            "trials": matrix.trials, "cv": matrix.cv, "split": list(plan.fractions), "seed": settings.seed, "real": plan.real, "fakes": plan.fakes,
            "shortcuts": shortcuts, "tuning": _result_settings(matrix.tuning()),
        }
        fresh = read_stamp(folder / STAMP) != wanted or not (folder / "report.json").is_file()
        if fresh:
            log(f"matrix {label}/{matrix.pipeline}: training {len(plan.fakes) + (len(data) > 1)} conditions at {', '.join(resolutions)}")
            report = generalisation_matrices(
                data, plan.real, plan.fakes, spec, matrix.metric, matrix.trials, matrix.cv, plan.fractions, settings.seed, progress, **matrix.tuning()
            )
            report.notes += shortcuts
            write_report(report, folder)
            write_json(folder / STAMP, wanted)
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        means = {m["title"]: float(np.nanmean(np.array(m["values"], dtype=float))) for m in report["matrices"]}
        record.add("matrix", f"{label}-{matrix.pipeline}", fresh, extractor=label, pipeline=matrix.pipeline, folder=str(folder), mean_metric=means)
        reports.append({"label": label, "pipeline": matrix.pipeline, "metric": matrix.metric, "folder": folder, "report": report})
    return reports


# ---------------------------------------------------------------- robustness


def _robustness(
    plan: Plan, entry: RobustnessConfig, features: dict[tuple[str, str], Features], record: RunRecord, progress: bool, log: Log, shortcuts: list[str]
) -> list[dict[str, Any]]:
    """A robustness report per extractor; reused when its data, pipeline, sweeps and protocol are unchanged."""
    from fdt.features_store.store import FeatureStore
    from fdt.pipelines.evaluation import fingerprint
    from fdt.pipelines.robustness import robustness_report, write_robustness
    from fdt.pipelines.specs import get_spec

    settings = plan.experiment.settings
    spec = get_spec(entry.pipeline, settings.pipelines_file)
    (resolution,) = plan.resolutions_of((entry.resolution,))
    reports = []
    for label in plan.extractors_of(entry.extractors):
        stored = features[label, resolution]
        folder = plan.reports_dir / f"robustness-{label}-{entry.pipeline}"
        wanted = {
            "data": fingerprint(_load(plan, label, resolution, features)), "spec": spec.to_dict(), "sweeps": list(entry.sweeps),
            "train_perturb": list(entry.train_perturb), "trials": entry.trials, "cv": entry.cv, "split": list(plan.fractions),
            "seed": settings.seed, "real": plan.real, "fakes": plan.fakes, "shortcuts": shortcuts,
        }
        fresh = read_stamp(folder / STAMP) != wanted or not (folder / "robustness.json").is_file()
        if fresh:
            log(f"robustness {label}/{entry.pipeline}: {', '.join(entry.sweeps)}")
            report = robustness_report(
                FeatureStore(plan.store_root), stored.key.extractor, spec, plan.real, plan.fakes, list(entry.sweeps), list(entry.train_perturb),
                resolution, stored.key.params, stored.key.weights, entry.trials, entry.cv, plan.fractions, settings.seed, progress=progress,
                images=stored.hashes,
            )
            report.notes += shortcuts
            write_robustness(report, folder)
            write_json(folder / STAMP, wanted)
        record.add("robustness", f"{label}-{entry.pipeline}", fresh, extractor=label, pipeline=entry.pipeline, folder=str(folder))
        report = json.loads((folder / "robustness.json").read_text(encoding="utf-8"))
        reports.append({"label": label, "pipeline": entry.pipeline, "folder": folder, "sweeps": list(entry.sweeps), "report": report})
    return reports
