"""Quality next to detectability (seed study 003): one row per fake source, a table and a scatter plot.

Quality is :func:`fdt.pipelines.quality.measure_quality` on stored features;
detectability is a detector's ROC AUC with its interval, taken from one of:

- a generalisation matrix (``fdt report matrix``'s ``report.json``): its diagonal
  cell "real vs A", scored on held-out groups of A;
- tuned models' cards (``fdt tune``): the test split's ROC AUC of the model whose
  fake sources include A (per source when it was trained on several);
- neither: a grouped k-fold cross-validation of real vs A with the pipeline
  spec's default parameters, scored on out-of-fold predictions, so no image is
  scored by a model that trained on its group.

The report always names the feature space the quality numbers live in: a
Fréchet distance is "the FID" only on Inception-v3 pool3 features at 299 px with
published weights, and a random-weights extractor gives numbers that are not FID.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fdt.atomic import atomic_path, write_json, write_text
from fdt.features_store.featureset import ExtractorKey, FeatureSet
from fdt.pipelines.errors import PipelineError
from fdt.pipelines.intervals import DEFAULT_RESAMPLES, format_interval
from fdt.pipelines.quality import KID_SUBSET_SIZE, KID_SUBSETS, NEAREST_K, PRDC, QUALITY_RESAMPLES, Quality, format_kid, measure_quality

DETECTABILITY_METRIC = "roc_auc"


@dataclass
class Detectability:
    """How well a detector tells one fake source from the reals: ROC AUC with its 95 % interval, and where it comes from."""

    value: float
    interval: tuple[float, float]
    how: str
    rows: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"metric": DETECTABILITY_METRIC, "value": self.value, "interval": list(self.interval), "how": self.how, "rows": self.rows, "notes": self.notes}


@dataclass
class QualityRow:
    source: str
    quality: Quality
    detectability: Detectability | None


@dataclass
class QualityReport:
    """Every fake source's quality against the reals and its detectability, with the feature space named."""

    rows: list[QualityRow]
    key: ExtractorKey
    real: list[str]
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def distance_name(self) -> str:
        return "FID" if is_fid(self.key) else "FD"

    @property
    def feature_space(self) -> str:
        return describe_feature_space(self.key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_space": self.feature_space,
            "extractor_key": self.key.to_dict(),
            "distance": self.distance_name,
            "real": self.real,
            "settings": self.settings,
            "notes": self.notes,
            "sources": [
                {"source": row.source, **row.quality.to_dict(), "detectability": row.detectability.to_dict() if row.detectability else None}
                for row in self.rows
            ],
        }

    def to_csv(self) -> str:
        columns = ["source", "n_real", "n_fake", "fd", "fd_low", "fd_high", "kid", "kid_std"]
        columns += [f"{name}{part}" for name in PRDC for part in ("", "_low", "_high")]
        columns += ["detect_roc_auc", "detect_low", "detect_high", "detect_how"]
        lines = [",".join(columns)]
        for row in self.rows:
            q, d = row.quality, row.detectability
            values: list[Any] = [row.source, q.n_real, q.n_fake, q.fd, *q.fd_interval, q.kid, q.kid_std]
            for name in PRDC:
                values += [q.prdc[name], *q.prdc_intervals[name]]
            values += [d.value, *d.interval, json.dumps(d.how)] if d else ["", "", "", ""]
            lines.append(",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in values))
        return "\n".join(lines) + "\n"

    def to_markdown(self) -> str:
        name = self.distance_name
        lines = [
            "# Quality vs detectability",
            "",
            f"- feature space: {self.feature_space}",
            f"- reals: {', '.join(self.real)}",
            *[f"- {key}: {value}" for key, value in self.settings.items()],
            "",
            *[f"**{note}**" for note in self.notes],
            *([""] if self.notes else []),
            f"| fake source | n fake (n real) | {name} | KID ± std | precision | recall | density | coverage | detectability (ROC AUC) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            q, d = row.quality, row.detectability
            cells = [row.source, f"{q.n_fake} ({q.n_real})", format_interval(q.fd, q.fd_interval, 3), format_kid(q.kid, q.kid_std)]
            cells += [format_interval(q.prdc[m], q.prdc_intervals[m], 3) for m in PRDC]
            cells.append(format_interval(d.value, d.interval, 3) if d else "–")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines.append(
            f"Intervals: {name}, precision, recall, density and coverage: 95 % percentile bootstrap over groups "
            f"({self.settings['bootstrap resamples']} resamples; a k-NN metric resamples the images it averages over, against the other set's full manifold). "
            f"KID: mean ± std over {self.settings['KID subsets']} random subsets. Detectability: 95 % bootstrap over groups of its scored rows."
        )
        for row in self.rows:
            if row.detectability:
                lines.append(f"- {row.source} detectability: {row.detectability.how}")
            lines += [f"- {row.source}: {note}" for note in row.quality.notes + (row.detectability.notes if row.detectability else [])]
        return "\n".join(lines) + "\n"


def is_fid(key: ExtractorKey) -> bool:
    """True for Inception-v3 pool3 features of published (not random) weights at the 299 px of the FID's definition."""
    return key.extractor == "inception_v3" and not key.weights.startswith("random") and key.params.get("input_size") == 299


def describe_feature_space(key: ExtractorKey) -> str:
    """The feature space in words: extractor key and weights identity, and whether its Fréchet distance is an FID."""
    text = f"`{key.describe()}`"
    if key.weights.startswith("random"):
        return f"{text}; random weights: not FID (numbers are comparable only within this report)"
    if is_fid(key) and key.params.get("variant") == "pytorch-fid":
        return f"{text}; pytorch-fid's FID Inception pool3 at 299 px: the Fréchet distance is the FID, as published FIDs compute it"
    if is_fid(key):
        return (
            f"{text}; Inception-v3 pool3 at 299 px: the Fréchet distance is the FID of torchvision's weights "
            "(not pytorch-fid's TF-ported ones, so not comparable to published FIDs)"
        )
    return f"{text}; a Fréchet distance in this feature space, not the FID (which is Inception-v3 pool3)"


# ---- detectability


def detectability_from_matrix(path: str | os.PathLike, real: Sequence[str], sources: Sequence[str], resolution: str) -> dict[str, Detectability]:
    """The diagonal cells "real vs A" of a matrix report's JSON (``report.json`` or one matrix's ``.json``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as error:
        raise PipelineError(f"{path} is not valid JSON ({error})") from None
    matrices = data.get("matrices", [data]) if isinstance(data, dict) else []
    matrices = [m for m in matrices if isinstance(m, dict) and str(m.get("title", "")).startswith("generalisation at")]
    if not matrices:
        raise PipelineError(f"{path} holds no generalisation matrix (fdt report matrix writes report.json)")
    found = {}
    for source in sources:
        row = f"{'+'.join(real)} vs {source}"
        having = [m for m in matrices if row in m.get("rows", []) and row in m.get("columns", [])]
        if len(having) > 1:
            having = [m for m in having if m["title"] == f"generalisation at {resolution}"] or having
        if not having:
            rows = sorted({r for m in matrices for r in m.get("rows", [])})
            raise PipelineError(f"{path} has no diagonal cell {row!r} (its rows: {', '.join(rows)}); name the same --real and --fake")
        if len(having) > 1:
            raise PipelineError(f"{path} has {row!r} in several matrices ({', '.join(m['title'] for m in having)}); none at resolution {resolution}")
        matrix = having[0]
        i = matrix["rows"].index(row)
        cell = matrix["cells"][i][matrix["columns"].index(row)]
        interval = cell.get("intervals", {}).get(DETECTABILITY_METRIC)
        if not interval or None in interval:
            raise PipelineError(f"{path}: the cell {row!r} has no ROC AUC interval (written before fdt kept intervals); rerun fdt report matrix")
        found[source] = Detectability(
            float(cell["metrics"][DETECTABILITY_METRIC]), (float(interval[0]), float(interval[1])),
            f"diagonal of {matrix['title']} in {path} (held-out test groups; features {data.get('extractors', {}) or 'as in that report'})",
            rows=matrix["test_rows"][i][i] if "test_rows" in matrix else None,
            notes=list(cell.get("flags", [])),
        )
    return found


def detectability_from_cards(model_paths: Sequence[str | os.PathLike], sources: Sequence[str]) -> dict[str, Detectability]:
    """The test-split ROC AUC of the tuned model (read from its card) that trained on each fake source."""
    from fdt.pipelines.cards import read_card

    found: dict[str, Detectability] = {}
    for model in model_paths:
        card = read_card(model)
        fakes = list(card.get("sources", {}).get("fake", []))
        test = card.get("test") or {}
        for source in set(fakes) & set(sources):
            scored = test if len(fakes) == 1 else test.get("per_source", {}).get(source)
            interval = (scored or {}).get("intervals", {}).get(DETECTABILITY_METRIC)
            if not scored or not interval:
                raise PipelineError(f"the card of {model} has no test ROC AUC interval for {source!r}; retune it with this fdt")
            if source in found:
                raise PipelineError(f"two --model files trained on {source!r} ({found[source].how} and {model}); name one")
            key = card.get("extractor_key", {})
            found[source] = Detectability(
                float(scored["metrics"][DETECTABILITY_METRIC]), (float(interval[0]), float(interval[1])),
                f"test split of model {model} ({card.get('pipeline', {}).get('name', '?')} on {ExtractorKey.from_dict(key).describe() if key else '?'})",
                rows=scored.get("rows"),
                notes=list(scored.get("flags", [])) + list(card.get("notes", [])),
            )
    missing = [s for s in sources if s not in found]
    if missing:
        raise PipelineError(f"no --model file was trained on {', '.join(missing)}; add one per fake source or leave --model out (grouped CV)")
    return found


def detectability_by_cv(data: FeatureSet, real: Sequence[str], source: str, spec: Any, cv: int, random_state: int, n_resamples: int) -> Detectability:
    """Grouped ``cv``-fold cross-validation of real vs ``source`` with ``spec``'s default parameters, out-of-fold ROC AUC."""
    from fdt.pipelines.evaluation import cross_validate_metrics, evaluate_rows
    from fdt.pipelines.splits import grouped_folds

    rows = data.subset(np.isin(data.sources, [*real, source]))
    folds = grouped_folds(rows.y, rows.groups, cv, random_state)
    _, _, scores = cross_validate_metrics(spec.build(random_state), rows.X, rows.y, rows.groups, folds, cv, random_state)
    scored = evaluate_rows(rows.y, scores, rows.groups, rows.sources, {}, random_state, n_resamples)
    interval = scored["intervals"][DETECTABILITY_METRIC]
    return Detectability(
        float(scored["metrics"][DETECTABILITY_METRIC]), (float(interval[0]), float(interval[1])),
        f"grouped {cv}-fold CV of {spec.name} (default parameters, out-of-fold scores) on these features",
        rows=len(rows), notes=list(scored["flags"]),
    )


# ---- the report


def quality_report(
    data: FeatureSet,
    real: Sequence[str],
    fakes: Sequence[str],
    detectability: dict[str, Detectability] | None = None,
    spec: Any = None,
    cv: int = 5,
    k: int = NEAREST_K,
    kid_subsets: int = KID_SUBSETS,
    kid_subset_size: int = KID_SUBSET_SIZE,
    n_resamples: int = QUALITY_RESAMPLES,
    detect_resamples: int = DEFAULT_RESAMPLES,
    random_state: int = 0,
    progress: bool = False,
    allow_trained_groups: bool = False,
) -> QualityReport:
    """Quality of every fake source against the pooled ``real`` sources, and each source's detectability.

    ``detectability`` maps sources to numbers read from a matrix or model cards;
    sources without one get grouped cross-validation with ``spec`` (``None``: no
    detectability). Features of a network fdt trained on these images are refused
    (``allow_trained_groups`` reports them anyway, flagged): reals it trained on
    look "typical" to it, which would flatter every fake's distance.
    """
    from tqdm.auto import tqdm

    from fdt.pipelines.leakage import check_scored_rows

    notes = [note for note in [check_scored_rows(data, np.ones(len(data), bool), "quality", allow_trained_groups)] if note]
    reals = data.subset(np.isin(data.sources, list(real)))
    rows = []
    for source in tqdm(list(fakes), desc="quality per fake source", disable=not progress):
        fake = data.subset(data.sources == source)
        quality = measure_quality(
            reals.X, fake.X, reals.groups, fake.groups, k=k, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size,
            n_resamples=n_resamples, random_state=random_state, progress=progress,
        )
        detect = (detectability or {}).get(source)
        if detect is None and spec is not None:
            detect = detectability_by_cv(data, real, source, spec, cv, random_state, detect_resamples)
        rows.append(QualityRow(source, quality, detect))
    settings = {
        "k nearest neighbours": k,
        "KID subsets": kid_subsets,
        "KID subset size": f"min({kid_subset_size}, n real, n fake)",
        "bootstrap resamples": n_resamples,
        "seed": random_state,
    }
    small = [row.source for row in rows if min(row.quality.n_real, row.quality.n_fake) < row.quality.dimensions]
    if small:
        notes.append(f"{', '.join(small)}: fewer images than the {data.X.shape[1]} feature dimensions, so the Fréchet distance is biased upwards; compare only at equal n")
    if data.key.weights.startswith("random"):
        notes.append(f"RANDOM weights ({data.key.weights}): these are not FIDs")
    return QualityReport(rows, data.key, list(real), settings, notes)


def write_quality(report: QualityReport, directory: str | os.PathLike) -> list[Path]:
    """``quality.json``, ``quality.csv``, ``quality.md`` and ``quality-vs-detectability.png`` in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return [
        write_json(directory / "quality.json", report.to_dict(), default=str),
        write_text(directory / "quality.csv", report.to_csv()),
        write_text(directory / "quality.md", report.to_markdown()),
        quality_scatter(report, directory / "quality-vs-detectability.png"),
    ]


def quality_scatter(report: QualityReport, path: Path) -> Path:
    """One panel per quality metric: x the metric with its interval, y the detectability with its interval."""
    from matplotlib.figure import Figure

    panels = [(report.distance_name, "fd"), ("KID (± std)", "kid"), *[(name, name) for name in PRDC]]
    figure = Figure(figsize=(13, 7.5), layout="constrained")
    for index, (label, metric) in enumerate(panels):
        axes = figure.add_subplot(2, 3, index + 1)
        for row in report.rows:
            q, d = row.quality, row.detectability
            x = q.fd if metric == "fd" else q.kid if metric == "kid" else q.prdc[metric]
            if metric == "fd":
                xerr = _error_bar(x, q.fd_interval)
            elif metric == "kid":
                xerr = [[q.kid_std], [q.kid_std]]
            else:
                xerr = _error_bar(x, q.prdc_intervals[metric])
            y = d.value if d else math.nan
            yerr = _error_bar(y, d.interval) if d else None
            axes.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="o", capsize=3, label=row.source)
            axes.annotate(row.source, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        axes.set(xlabel=label, ylabel="detectability: ROC AUC")
        axes.grid(alpha=0.3)
    figure.suptitle(f"Quality vs detectability; features: {report.key.describe()}\n{report.feature_space.split('; ', 1)[-1]}", fontsize=9)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    return path


def _error_bar(value: float, interval: tuple[float, float]) -> list[list[float]]:
    low, high = interval
    return [[max(value - low, 0.0)], [max(high - value, 0.0)]]
