"""Robustness sweeps: train once, test on held-out groups at every level of JPEG, blur, resize, ...

This is the evaluation the field's benchmarks (CNNDetection, UnivFD, GenImage,
AIGCDetectBenchmark) run: a detector trained on clean images (or with
CNNDetection's blur+JPEG augmentation, ``train_perturb="blurjpeg:prob=0.5"``) is
scored on the test groups perturbed at each level of a sweep, per fake source.
Every figure carries a 95 % bootstrap interval over test groups. Accuracy is
reported at 0.5 (which collapses under JPEG: the scores shift) and at the
threshold chosen on the training condition's *validation* rows, never on the
rows it scores::

    from fdt.pipelines.robustness import robustness_report, write_robustness
    report = robustness_report(FeatureStore(), "fft", get_spec("logreg"), ["coco"], ["sd21"],
                               ["jpeg:quality=100,90,75,50,30", "blur:sigma=0,1,2,4"])
    write_robustness(report, "reports/robustness-fft-logreg")

Features of each level come from the store (``fdt extract ... --sweep SPEC``);
one group assignment serves training, validation and every level.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Sequence

import numpy as np

from fdt.atomic import write_text
from fdt.features_store.featureset import FeatureSet
from fdt.perturb import Sweep, parse_chain, parse_sweep
from fdt.pipelines.errors import PipelineError
from fdt.pipelines.evaluation import load_condition
from fdt.pipelines.intervals import DEFAULT_RESAMPLES, bootstrap_metrics, choose_thresholds, format_interval
from fdt.pipelines.leakage import check_scored_rows
from fdt.pipelines.metrics import compute_metrics, get_metric
from fdt.pipelines.specs import PipelineSpec
from fdt.pipelines.splits import DEFAULT_FRACTIONS, assign_groups, check_binary, grouped_folds, holdout_masks
from fdt.pipelines.tuning import make_tuner

METRICS = ("roc_auc", "average_precision", "accuracy", "best_threshold_accuracy")
LABELS = {name: get_metric(name).label for name in METRICS}
ALL_FAKES = "all fakes"


@dataclass
class RobustnessReport:
    """Scores per sweep, level and fake source, with intervals, and what they were computed from."""

    rows: list[dict[str, Any]]
    sweeps: list[Sweep]
    specs: list[str]
    settings: dict[str, Any]
    extractor: str
    weights: str
    threshold: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """Warnings every reader must see first (shortcuts ``fdt audit`` found)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "extractor": self.extractor, "weights": self.weights, "settings": self.settings, "threshold": self.threshold,
            "notes": self.notes, "rows": self.rows,
        }

    def to_csv(self) -> str:
        buffer = io.StringIO()
        columns = ["sweep", "level", "perturb", "source", "rows", "real_groups", "fake_groups"]
        columns += [f"{m}{suffix}" for m in METRICS for suffix in ("", "_low", "_high")]
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            flat = dict(row)
            for metric in METRICS:
                flat[metric] = row["metrics"][metric]
                flat[f"{metric}_low"], flat[f"{metric}_high"] = row["intervals"][metric]
            writer.writerow(flat)
        return buffer.getvalue()

    def to_markdown(self) -> str:
        lines = [f"# Robustness: {self.extractor} ({self.weights}), {self.settings['pipeline']}", ""]
        lines += [f"**{note}**" for note in self.notes] + ([""] if self.notes else [])
        lines += [f"- {name}: {value}" for name, value in self.settings.items()]
        lines += [f"- validation threshold: {self.threshold.get('value')} (chosen on {self.threshold.get('chosen_on')})", ""]
        for sweep, spec in zip(self.sweeps, self.specs):
            lines += [f"## {spec}", "", "| level | source | " + " | ".join(LABELS[m] for m in METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
            for row in self.rows:
                if row["sweep"] == spec:
                    cells = [format_interval(row["metrics"][m], tuple(row["intervals"][m])) for m in METRICS]
                    lines.append(f"| {sweep.param}={row['level']} | {row['source']} | " + " | ".join(cells) + " |")
            lines.append("")
        return "\n".join(lines)


def _aligned(base: FeatureSet, other: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``other`` in ``base``'s order: ``(X, present mask)``; an image without features at a level is absent."""
    index = {(s, src): i for i, (s, src) in enumerate(zip(other.sha256, other.sources))}
    where = np.array([index.get((s, src), -1) for s, src in zip(base.sha256, base.sources)])
    present = where >= 0
    X = np.zeros((len(base), other.X.shape[1]), dtype=other.X.dtype)
    X[present] = other.X[where[present]]
    return X, present


def robustness_report(
    store,
    extractor: str,
    spec: PipelineSpec,
    real: Sequence[str],
    fake: Sequence[str],
    sweeps: Sequence[str],
    train_perturb: str | Sequence[str] | None = None,
    resolution: str = "native",
    params: dict | None = None,
    weights: str | None = None,
    n_trials: int = 0,
    cv: int = 5,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    random_state: int = 0,
    n_resamples: int = DEFAULT_RESAMPLES,
    progress: bool = False,
    images: Collection[str] | None = None,
) -> RobustnessReport:
    """Train on the train share of the groups (clean, or perturbed by ``train_perturb``), score the test share at each sweep level.

    The groups are split once (``fractions``, ``random_state``) over the clean
    rows; training, validation and every level use that one assignment, so no
    test group is ever trained on. The operating threshold for
    ``best_threshold_accuracy`` is chosen on the validation rows of the training
    condition, as a deployed detector would fix it before seeing perturbed data.
    Every level's features must be in the store; a missing level is reported
    with the ``fdt extract`` command that computes it, before anything is fitted.
    ``images`` (SHA-256 hashes) keeps only those images, as ``fdt run`` does for its own.
    """
    if not sweeps:
        raise PipelineError("name at least one sweep (--sweep jpeg:quality=100,90,75,50,30)")
    parsed = [parse_sweep(spec_text) for spec_text in sweeps]
    train_chain = parse_chain(train_perturb)
    clean = load_condition(store, extractor, resolution, real, fake, params, weights)
    if images is not None:
        clean = clean.subset(np.isin(clean.sha256.astype(str), list(images)))
    keyed = dict(params or {}, **clean.key.params)
    wanted = {chain.key for sweep in parsed for chain in sweep.chains} | {train_chain.key}
    levels = {key: clean if key == "" else store.load(extractor, resolution, list(real) + list(fake), keyed, clean.key.weights, key) for key in sorted(wanted)}

    fractions = tuple(float(f) for f in fractions)
    masks = holdout_masks(clean.groups, assign_groups(clean.groups, clean.sources, fractions, random_state, clean.y))
    # a network fdt trained (the autoencoder) must not be scored on its own training groups
    check_scored_rows(clean, masks["val"] | masks["test"], "validation and test")
    train_X, train_present = _aligned(clean, levels[train_chain.key])
    train = masks["train"] & train_present
    check_binary(clean.y[train])
    check_binary(clean.y[masks["test"]], "held-out test split (add images or enlarge its share)")
    grouped_folds(clean.y[train], clean.groups[train], cv, random_state)

    model = make_tuner(spec, random_state, n_trials=n_trials, cv=cv, progress=progress).fit(train_X[train], clean.y[train], clean.groups[train])
    val = masks["val"] & train_present
    if val.any() and np.unique(clean.y[val]).size == 2:
        thresholds, chosen_on = choose_thresholds(clean.y[val], model.predict_proba(train_X[val])[:, 1]), "validation rows"
    else:
        raise PipelineError("the validation split needs real and fake images to choose a threshold; enlarge its share (--split)")
    thresholds = {"best": thresholds["best"]}

    rows: list[dict[str, Any]] = []
    fakes = list(fake)
    for sweep, spec_text in zip(parsed, sweeps):
        for level, chain in zip(sweep.levels, sweep.chains):
            X, present = _aligned(clean, levels[chain.key])
            test = masks["test"] & present
            proba = np.full(len(clean), math.nan)
            proba[test] = model.predict_proba(X[test])[:, 1]
            for source in ([ALL_FAKES] if len(fakes) > 1 else []) + fakes:
                keep = test & ((clean.y == 0) | (np.isin(clean.sources, fakes) if source == ALL_FAKES else clean.sources == source))
                y, p, g = clean.y[keep], proba[keep], clean.groups[keep]
                metrics = compute_metrics(y, p, thresholds=thresholds)
                intervals = bootstrap_metrics(y, p, g, thresholds=thresholds, n_resamples=n_resamples, random_state=random_state)
                rows.append({
                    "sweep": spec_text,
                    "level": level,
                    "perturb": chain.key,
                    "source": source,
                    "rows": int(keep.sum()),
                    "missing_rows": int((masks["test"] & ~present & ((clean.y == 0) | np.isin(clean.sources, fakes if source == ALL_FAKES else [source]))).sum()),
                    "real_groups": int(np.unique(g[y == 0]).size),
                    "fake_groups": int(np.unique(g[y == 1]).size),
                    "metrics": {m: _number(metrics[m]) for m in METRICS},
                    "intervals": {m: [_number(v) for v in intervals[m]] for m in METRICS},
                })
    return RobustnessReport(
        rows=rows,
        sweeps=parsed,
        specs=list(sweeps),
        settings={
            "pipeline": spec.name,
            "real": list(real),
            "fakes": fakes,
            "resolution": resolution,
            "trained on": f"train groups perturbed by {train_chain.key}" if train_chain else "clean train groups",
            "trials": n_trials,
            "cv folds": cv,
            "split train/val/test": "/".join(f"{f:.2f}" for f in fractions),
            "seed": random_state,
            "intervals": f"95 % percentile bootstrap over test groups, stratified, {n_resamples} resamples",
            "rows": {part: int(mask.sum()) for part, mask in masks.items()},
        },
        extractor=clean.key.describe(),
        weights=clean.key.weights,
        threshold={"value": thresholds["best"], "chosen_on": chosen_on},
    )


def _number(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def plot_sweep(report: RobustnessReport, index: int, path: Path) -> Path:
    """One PNG per sweep: each metric against the level, a line per fake source, its interval as a band."""
    from matplotlib.figure import Figure

    sweep, spec_text = report.sweeps[index], report.specs[index]
    rows = [row for row in report.rows if row["sweep"] == spec_text]
    sources = list(dict.fromkeys(row["source"] for row in rows))
    figure = Figure(figsize=(9.5, 7.0), layout="constrained")
    axes_list = figure.subplots(2, 2).ravel()
    x = np.arange(len(sweep.levels))
    for axes, metric in zip(axes_list, METRICS):
        for source in sources:
            mine = {row["level"]: row for row in rows if row["source"] == source}
            values = np.array([_nan(mine[level]["metrics"][metric]) for level in sweep.levels])
            low = np.array([_nan(mine[level]["intervals"][metric][0]) for level in sweep.levels])
            high = np.array([_nan(mine[level]["intervals"][metric][1]) for level in sweep.levels])
            style = dict(color="black", linewidth=2.2) if source == ALL_FAKES else {}
            line, = axes.plot(x, values, marker="o", label=source, **style)
            axes.fill_between(x, low, high, alpha=0.18, color=line.get_color())
        axes.set_xticks(x, sweep.levels)
        axes.set_xlabel(f"{sweep.operation} {sweep.param}".strip())
        axes.set_title(LABELS[metric], fontsize=10)
        axes.set_ylim(0.0, 1.02)
        if get_metric(metric).chance is not None:
            axes.axhline(get_metric(metric).chance, color="grey", linewidth=0.8, linestyle=":")
        axes.grid(alpha=0.3)
    axes_list[0].legend(fontsize=8, title="test fakes", title_fontsize=8)
    random = " (RANDOM weights)" if report.weights.startswith("random") else ""
    figure.suptitle(
        f"{report.settings['pipeline']} on {report.extractor}{random}\ntrained on {report.settings['trained on']}; bands: 95 % bootstrap over test groups",
        fontsize=9,
    )
    figure.savefig(path, dpi=110)
    return path


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def write_robustness(report: RobustnessReport, directory: str | Path) -> list[Path]:
    """``robustness.csv``, ``robustness.json``, ``robustness.md`` and one PNG per sweep into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("robustness.csv", report.to_csv()), ("robustness.json", json.dumps(report.to_dict(), indent=2)), ("robustness.md", report.to_markdown())):
        written.append(write_text(directory / name, text))
    for index, sweep in enumerate(report.sweeps):
        written.append(plot_sweep(report, index, directory / f"robustness-{sweep.name}.png"))
    return written
