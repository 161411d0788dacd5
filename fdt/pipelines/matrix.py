"""Generalisation matrices: train on real vs fake source A, test on real vs fake source B.

Every row is one training condition, every column one test condition, and a
cell holds every metric; the chosen metric fills the table, with row and column
means. One grouped train/validation/test assignment covers every source and
every resolution, so test rows are never trained on: the diagonal is scored on
held-out groups of the training generator, off-diagonal cells on held-out reals
plus held-out fakes of a generator the model never saw, and the cross-resolution
matrix tests the same held-out images at another resolution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from sklearn.metrics import roc_curve

from fdt.atomic import write_json, write_text
from fdt.features_store.featureset import FeatureSet
from fdt.pipelines.evaluation import INVERTED, SEEN_SOURCE, TOO_FEW, evaluate_rows
from fdt.pipelines.intervals import DEFAULT_RESAMPLES, choose_thresholds, format_interval
from fdt.pipelines.leakage import check_scored_rows, seen_rows
from fdt.pipelines.metrics import check_metric
from fdt.pipelines.specs import PipelineSpec
from fdt.pipelines.splits import DEFAULT_FRACTIONS, assign_groups, check_binary, grouped_folds, holdout_masks
from fdt.pipelines.tuning import make_tuner


@dataclass
class Matrix:
    """One matrix: ``cells[i][j]`` holds every metric of row condition ``i`` tested on column condition ``j``."""

    title: str
    rows: list[str]
    columns: list[str]
    metric: str
    cells: list[list[dict[str, float]]]
    counts: list[list[int]]
    roc: list[list[tuple[np.ndarray, np.ndarray]]] = field(repr=False, default_factory=list)
    details: list[list[dict[str, Any]]] = field(default_factory=list)
    """Per cell: ``intervals`` (95 % bootstrap over groups), shortcut ``flags``, and ``per_source`` for pooled fakes."""

    def interval(self, i: int, j: int) -> tuple[float, float] | None:
        """The bootstrap interval of the shown metric in cell ``(i, j)``."""
        return tuple(self.details[i][j]["intervals"][self.metric]) if self.details else None

    def flags(self, i: int, j: int) -> list[str]:
        return list(self.details[i][j]["flags"]) if self.details else []

    @property
    def values(self) -> np.ndarray:
        """The chosen metric as a ``(rows, columns)`` array."""
        return np.array([[cell[self.metric] for cell in row] for row in self.cells], dtype=float)

    @property
    def row_means(self) -> np.ndarray:
        return np.nanmean(self.values, axis=1)

    @property
    def column_means(self) -> np.ndarray:
        return np.nanmean(self.values, axis=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "metric": self.metric,
            "rows": self.rows,
            "columns": self.columns,
            "values": _nan_to_none(self.values.tolist()),
            "row_means": _nan_to_none(self.row_means.tolist()),
            "column_means": _nan_to_none(self.column_means.tolist()),
            "test_rows": self.counts,
            "intervals": [[_nan_to_none(list(self.interval(i, j) or ())) for j in range(len(self.columns))] for i in range(len(self.rows))],
            "cells": [
                [
                    {"train": r, "test": c, "metrics": _nan_to_none(cell), **(_nan_to_none(self.details[i][j]) if self.details else {})}
                    for j, (c, cell) in enumerate(zip(self.columns, row))
                ]
                for i, (r, row) in enumerate(zip(self.rows, self.cells))
            ],
        }

    def to_csv(self) -> str:
        """Rows = training conditions, columns = test conditions, plus a ``mean`` row and column."""
        lines = [",".join(["train \\ test", *self.columns, "mean"])]
        for name, values, mean in zip(self.rows, self.values, self.row_means):
            lines.append(",".join([name, *(f"{v:.6f}" for v in values), f"{mean:.6f}"]))
        lines.append(",".join(["mean", *(f"{v:.6f}" for v in self.column_means), f"{np.nanmean(self.values):.6f}"]))
        return "\n".join(lines) + "\n"

    def to_markdown(self) -> str:
        header = f"| train \\ test | {' | '.join(self.columns)} | mean |"
        lines = [f"### {self.title} ({self.metric})", "", header, "|" + "---|" * (len(self.columns) + 2)]
        marks = {INVERTED: "†", TOO_FEW: "‡", SEEN_SOURCE: "§"}
        for i, (name, values, mean) in enumerate(zip(self.rows, self.values, self.row_means)):
            shown = []
            for j, v in enumerate(values):
                text = format_interval(v, self.interval(i, j)) + "".join(marks[f] for f in self.flags(i, j) if f in marks)
                shown.append(f"**{text}**" if i == j else text)
            lines.append(f"| {name} | {' | '.join(shown)} | {mean:.2f} |")
        lines.append(f"| mean | {' | '.join(f'{v:.2f}' for v in self.column_means)} | {np.nanmean(self.values):.2f} |")
        lines += ["", "Cells: value [95 % bootstrap interval over groups]. Bold: the diagonal, scored on held-out groups of the training condition."]
        used = {f for i in range(len(self.rows)) for j in range(len(self.columns)) for f in self.flags(i, j)}
        lines += [f"{marks[f]} {f}" for f in (INVERTED, TOO_FEW, SEEN_SOURCE) if f in used]
        return "\n".join(lines) + "\n"


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    return value


@dataclass
class MatrixReport:
    """Every matrix of one ``fdt report matrix`` run, with what produced it."""

    matrices: list[Matrix]
    spec: PipelineSpec
    extractors: dict[str, str]
    weights: dict[str, str]
    settings: dict[str, Any]
    best_params: dict[str, dict[str, Any]]
    data: dict[str, FeatureSet] = field(repr=False, default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """Warnings every reader must see (leaks, shortcuts), in bold at the top of the report."""
    network_sources: dict[str, list[str]] = field(default_factory=dict)
    """Per resolution, the sources the extractor's network trained on (fine-tuned CNNs, the autoencoder); empty when it learnt nothing from data."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.spec.to_dict(),
            "extractors": self.extractors,
            "weights": self.weights,
            "network_sources": self.network_sources,
            "settings": self.settings,
            "best_params": self.best_params,
            "notes": self.notes,
            "matrices": [m.to_dict() for m in self.matrices],
        }

    def to_markdown(self) -> str:
        lines = ["# Generalisation report", ""]
        lines += [f"- pipeline: `{self.spec.name}` ({self.spec.description})"]
        for resolution, described in self.extractors.items():
            lines.append(f"- features at {resolution}: `{described}`; extractor weights: **{self.weights[resolution]}**")
            seen = self.network_sources.get(resolution)
            if seen:
                fakes = [source for source in self.settings.get("fakes", []) if source in seen]
                lines.append(
                    f"- the extractor's network trained on sources {', '.join(seen)} (train-share groups)"
                    + (f"; off-diagonal cells testing {', '.join(fakes)} are not cross-generator results (§)" if fakes else "")
                )
        lines += [f"- {name}: {value}" for name, value in self.settings.items()]
        lines.append("")
        lines += [f"{note}" if note.startswith("**") else f"**{note}**" for note in self.notes]
        lines.append("") if self.notes else None
        for matrix in self.matrices:
            lines += [matrix.to_markdown(), ""]
        return "\n".join(lines)


def generalisation_matrices(
    data: Mapping[str, FeatureSet],
    real: Sequence[str],
    fakes: Sequence[str],
    spec: PipelineSpec,
    metric: str = "roc_auc",
    n_trials: int = 0,
    cv: int = 5,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    random_state: int = 0,
    progress: bool = False,
    client: Any = None,
    allow_trained_groups: bool = False,
    n_resamples: int = DEFAULT_RESAMPLES,
    n_jobs: int = 1,
    **tuning: Any,
) -> MatrixReport:
    """Per-resolution generalisation matrices, plus the cross-resolution matrix when ``data`` has several resolutions.

    Parameters
    ----------
    data : mapping
        Resolution -> rows of every ``real`` and ``fakes`` source at that resolution.
    real, fakes : sequences of source names
        Row ``A`` trains on ``real`` vs fake source ``A``; column ``B`` tests on held-out ``real`` vs ``B``.
    spec : PipelineSpec
        The pipeline; tuned with ``n_trials`` Optuna trials per training condition (0: the spec's defaults).
    metric : str
        The metric shown in tables and heatmaps (every metric is kept per cell).
    client : distributed.Client, optional
        Tune the training conditions as parallel tasks on a Dask cluster; results
        are the same as without it.
    n_jobs : int
        Training conditions tuned at once on local cores (joblib); results are the same as with 1.
    tuning
        More :class:`~fdt.pipelines.tuning.OptunaSearchCV` settings (``pruner``, ``trial_timeout``, ...).
    allow_trained_groups : bool
        Score features of a network fdt trained on the test groups anyway, with a
        bold warning (by default that is refused).

    Every cell carries a 95 % bootstrap interval over the test groups and shortcut
    flags; thresholds of ``best_threshold_accuracy`` and ``tpr_at_fpr_K`` are chosen
    on the training condition's validation rows; the pooled "all fakes" cells are
    also scored per fake source.
    """
    check_metric(metric)
    fractions = tuple(float(f) for f in fractions)
    assignment = assign_groups(
        np.concatenate([fs.groups for fs in data.values()]),
        np.concatenate([fs.sources for fs in data.values()]),
        fractions,
        random_state,
        np.concatenate([fs.y for fs in data.values()]),
    )
    masks = {res: holdout_masks(fs.groups, assignment) for res, fs in data.items()}
    conditions = [(fake, list(real) + [fake]) for fake in fakes]
    if len(data) > 1:
        conditions.append(("all fakes", list(real) + list(fakes)))
    # Refuse what cannot be trained before any model is fitted.
    for res, fs in data.items():
        for name, sources in conditions:
            train = masks[res]["train"] & np.isin(fs.sources, sources)
            check_binary(fs.y[train], f"training set (real vs {name} at {res})")
            grouped_folds(fs.y[train], fs.groups[train], cv, random_state)
            check_binary(fs.y[masks[res]["test"] & np.isin(fs.sources, sources)], f"held-out test split (real vs {name} at {res})")
    notes = list(dict.fromkeys(
        note for res, fs in data.items() if (note := check_scored_rows(fs, masks[res]["test"], f"test rows at {res}", allow_trained_groups))
    ))

    training = {}
    for res, fs in data.items():
        for name, sources in conditions:
            train = masks[res]["train"] & np.isin(fs.sources, sources)
            training[res, name] = (fs.X[train], fs.y[train], fs.groups[train])
    if client is not None or n_jobs > 1:  # one task per training condition; they are independent
        models = dict(zip(training, _fit_in_parallel(list(training.values()), spec, random_state, n_trials, cv, client, n_jobs, tuning)))
    else:
        models = {cell: _fit_condition(spec, random_state, n_trials, cv, progress, *rows, **tuning) for cell, rows in training.items()}
    best_params = {f"{name} @ {res}": model.best_params_ for (res, name), model in models.items()}

    thresholds = {}
    for (res, name), model in models.items():
        fs, sources = data[res], dict(conditions)[name]
        val = masks[res]["val"] & np.isin(fs.sources, sources)
        thresholds[res, name] = choose_thresholds(fs.y[val], model.predict_proba(fs.X[val])[:, 1]) if val.any() else {}

    def score(res_train: str, train_name: str, res_test: str, sources: list[str]):
        fs = data[res_test]
        rows = masks[res_test]["test"] & np.isin(fs.sources, sources)
        proba = models[res_train, train_name].predict_proba(fs.X[rows])[:, 1]
        fpr, tpr, _ = roc_curve(fs.y[rows], proba)
        scored = evaluate_rows(fs.y[rows], proba, fs.groups[rows], fs.sources[rows], thresholds[res_train, train_name], random_state, n_resamples)
        details = {"intervals": scored["intervals"], "flags": scored["flags"], "groups": scored["groups"]}
        if "per_source" in scored:
            details["per_source"] = {s: {"metrics": p["metrics"], "intervals": p["intervals"], "flags": p["flags"]} for s, p in scored["per_source"].items()}
        return scored["metrics"], int(rows.sum()), (fpr, tpr), details

    # a network trained on fake source B has seen B's artefacts: "train on A, test on B" is not a cross-generator result
    network_sources = {res: seen.sources if (seen := seen_rows(fs)) is not None else [] for res, fs in data.items()}
    matrices = []
    for res in data:
        cells = [[score(res, a, res, list(real) + [b]) for b in fakes] for a in fakes]
        for a, row in zip(fakes, cells):
            for b, cell in zip(fakes, row):
                if b != a and b in network_sources[res]:
                    cell[3]["flags"] = [*cell[3]["flags"], SEEN_SOURCE]
        matrices.append(_matrix(f"generalisation at {res}", [f"{'+'.join(real)} vs {a}" for a in fakes], [f"{'+'.join(real)} vs {b}" for b in fakes], metric, cells))
    if len(data) > 1:
        everything = list(real) + list(fakes)
        resolutions = list(data)
        cells = [[score(r1, "all fakes", r2, everything) for r2 in resolutions] for r1 in resolutions]
        matrices.append(_matrix("cross-resolution (real vs all fakes)", [f"train {r}" for r in resolutions], [f"test {r}" for r in resolutions], metric, cells))

    return MatrixReport(
        matrices=matrices,
        spec=spec,
        extractors={res: fs.key.describe() for res, fs in data.items()},
        weights={res: fs.key.weights for res, fs in data.items()},
        settings={
            "metric": metric,
            "real": list(real),
            "fakes": list(fakes),
            "trials per training condition": n_trials,
            "cv folds": cv,
            "split train/val/test": "/".join(f"{f:.2f}" for f in fractions),
            "seed": random_state,
            "intervals": f"95 % percentile bootstrap over test groups, stratified, {n_resamples} resamples",
            "thresholds": "best_threshold_accuracy and tpr_at_fpr_* use thresholds chosen on the training condition's validation rows",
            **({"tuning": dict(tuning)} if tuning else {}),
        },
        best_params=best_params,
        data=dict(data),
        notes=notes,
        network_sources=network_sources,
    )


def _fit_in_parallel(
    training: list[tuple[np.ndarray, np.ndarray, np.ndarray]], spec: PipelineSpec, random_state: int, n_trials: int, cv: int,
    client: Any, n_jobs: int, tuning: Mapping[str, Any],
) -> list:
    """Tune the training conditions at once: on ``n_jobs`` local processes, or as tasks on ``client``'s Dask cluster.

    Both go through joblib (its Dask backend for a cluster), so both return in
    the order given, and each condition's result depends only on its inputs: the
    same as tuning them one after another.
    """
    import optuna
    from joblib import Parallel, delayed, parallel_config

    level = optuna.logging.get_verbosity()  # workers start at Optuna's default; keep the caller's
    backend = parallel_config(backend="dask", client=client) if client is not None else parallel_config(backend="loky", n_jobs=n_jobs)
    with backend:
        return Parallel()(delayed(_fit_condition_in_worker)(spec, random_state, n_trials, cv, *rows, level, **tuning) for rows in training)


def _fit_condition(
    spec: PipelineSpec, random_state: int, n_trials: int, cv: int, progress: bool, X: np.ndarray, y: np.ndarray, groups: np.ndarray, **tuning: Any
):
    """Tune and fit one training condition (a row of the matrix)."""
    return make_tuner(spec, random_state, n_trials=n_trials, cv=cv, progress=progress, **tuning).fit(X, y, groups)


def _fit_condition_in_worker(
    spec: PipelineSpec, random_state: int, n_trials: int, cv: int, X: np.ndarray, y: np.ndarray, groups: np.ndarray, optuna_verbosity: int, **tuning: Any
):
    """:func:`_fit_condition` in a joblib worker or a Dask task, whose fold workers (a trial time budget starts them) end with it."""
    import optuna

    from fdt.pipelines.folds import stop_workers

    optuna.logging.set_verbosity(optuna_verbosity)
    try:
        return _fit_condition(spec, random_state, n_trials, cv, False, X, y, groups, **tuning)
    finally:
        stop_workers()


def _matrix(title: str, rows: list[str], columns: list[str], metric: str, scored: list[list[tuple]]) -> Matrix:
    return Matrix(
        title,
        rows,
        columns,
        metric,
        cells=[[cell[0] for cell in row] for row in scored],
        counts=[[cell[1] for cell in row] for row in scored],
        roc=[[cell[2] for cell in row] for row in scored],
        details=[[cell[3] for cell in row] for row in scored],
    )


def write_report(report: MatrixReport, directory: str | Path) -> list[Path]:
    """Write CSV, JSON, Markdown and PNG heatmap per matrix, ROC curves, a PCA scatter and ``report.md``/``report.json``."""
    from fdt.pipelines import plots

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for matrix in report.matrices:
        stem = directory / _slug(matrix.title)
        for suffix, text in ((".csv", matrix.to_csv()), (".md", matrix.to_markdown()), (".json", json.dumps(matrix.to_dict(), indent=2))):
            written.append(write_text(stem.with_suffix(suffix), text))
        written.append(plots.heatmap(matrix, stem.with_name(stem.name + "-heatmap.png"), report.weights))
        written.append(plots.roc_curves(matrix, stem.with_name(stem.name + "-roc.png")))
    for res, fs in report.data.items():
        written.append(plots.pca_scatter(fs, directory / _slug(f"pca at {res}.png"), report.weights[res]))
    write_json(directory / "report.json", report.to_dict(), default=str)
    write_text(directory / "report.md", report.to_markdown())
    return written + [directory / "report.json", directory / "report.md"]


def _slug(text: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch == "." else "-" for ch in text.lower())
    return "-".join(part for part in keep.split("-") if part)
