"""Can real and fake be told apart without looking at a pixel? A metadata-only detector.

Seed study 000 compares COCO photos (JPEG) with generated PNGs; seed 004 compares
full-size sources with 512 px inpaintings. A detector can then "win" by file
format, JPEG quality or image size, and its score says nothing about the
generator. The audit reads every image's header only (no pixel decoding): format,
JPEG quality (estimated from the quantisation tables), chroma subsampling,
width, height, aspect, mode and bit depth, EXIF and ICC presence, and bytes per
pixel; then it trains a classifier on those properties alone (grouped CV, the
same protocol as the detectors) for real vs each fake source. When every image
of a condition is lossless, bytes per pixel is left out of that classifier: a
PNG's size is a function of its pixels (their entropy), so a pixel detector
cannot "win by" it; a separation by it is reported as a note about content. Where that
metadata-only classifier reaches ROC AUC ≥ 0.8, every report of the condition
carries a bold warning naming the property that separates the classes.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fdt.errors import one_line
from fdt.pipelines.errors import PipelineError

SHORTCUT_AUC = 0.8
CATEGORICAL = ("format", "mode", "subsampling")
NUMERIC = ("jpeg_quality", "width", "height", "aspect", "bit_depth", "has_exif", "has_icc", "bytes_per_pixel")
PROPERTIES = CATEGORICAL + NUMERIC
CONTENT_DERIVED = ("bytes_per_pixel",)
"""Properties that, for lossless files, are a function of the pixels (a PNG's size is its content's entropy)."""
LOSSLESS = frozenset({"PNG", "BMP", "PPM", "TIFF", "GIF"})
MAX_PER_SOURCE = 5000
BITS = {"1": 1, "L": 8, "P": 8, "RGB": 8, "RGBA": 8, "CMYK": 8, "YCbCr": 8, "LA": 8, "I;16": 16, "I;16B": 16, "I;16L": 16, "I": 32, "F": 32}
SUBSAMPLING = {-1: "none", 0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}

# IJG's standard luminance table (JPEG Annex K), in natural order, the base the quality scale multiplies.
_LUMA_BASE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=float)


def jpeg_quality(luma_table: Sequence[int]) -> float:
    """The IJG quality (1–100) whose scaled standard table is closest to ``luma_table``.

    libjpeg scales the standard table by ``S = 5000 / Q`` (Q < 50) or ``200 - 2Q``,
    clipped to 1..255; inverting the mean scale recovers Q to within about one step
    for libjpeg/PIL encoders. Other encoders' tables give an approximate value.
    """
    table = np.asarray(luma_table, dtype=float)
    if table.size != 64:
        return math.nan
    best, best_error = math.nan, math.inf
    for quality in range(1, 101):
        scale = 5000 / quality if quality < 50 else 200 - 2 * quality
        expected = np.clip(np.floor((_LUMA_BASE * scale + 50) / 100), 1, 255)
        error = float(np.abs(np.sort(expected) - np.sort(table)).sum())
        if error < best_error:
            best, best_error = float(quality), error
    return best


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """One image's header properties (no pixel decoding); ``{"error": reason}`` if unreadable."""
    from PIL import Image, JpegImagePlugin

    try:
        size = os.stat(path).st_size
        with Image.open(path) as image:
            width, height = image.size
            quality, subsampling = math.nan, "none"
            if image.format == "JPEG":
                tables = getattr(image, "quantization", None) or {}
                quality = jpeg_quality(tables[0]) if 0 in tables else math.nan
                subsampling = SUBSAMPLING.get(JpegImagePlugin.get_sampling(image), "other")
            return {
                "format": image.format or "unknown",
                "mode": image.mode,
                "subsampling": subsampling,
                "jpeg_quality": quality,
                "width": width,
                "height": height,
                "aspect": width / height if height else math.nan,
                "bit_depth": BITS.get(image.mode, 8),
                "has_exif": float(bool(image.info.get("exif"))),
                "has_icc": float(bool(image.info.get("icc_profile"))),
                "bytes_per_pixel": size / max(width * height, 1),
            }
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:  # a bomb's header claims more pixels than PIL will open
        return {"error": one_line(error)}


@dataclass
class Condition:
    """Real vs one fake source (or every fake): the metadata classifier's score and what separates the classes."""

    fake: str
    roc_auc: float
    interval: tuple[float, float]
    rows: int
    strongest: str
    description: str
    per_property: dict[str, float] = field(default_factory=dict)
    lossless: bool = False
    """Every image of the condition is in a lossless format: its size says what its pixels say, so it is no shortcut."""

    @property
    def shortcut(self) -> bool:
        return self.roc_auc >= SHORTCUT_AUC

    def content_note(self) -> str | None:
        """For lossless files, a separation by bytes per pixel is a property of the content (noise, detail), said plainly."""
        auc = max(self.per_property.get(p, 0.0) for p in CONTENT_DERIVED)
        if not self.lossless or auc < SHORTCUT_AUC:
            return None
        return (
            f"bytes per pixel alone separates real from {self.fake} at ROC AUC {auc:.2f}; every image is lossless, so this "
            "measures the content's entropy (noise, fine detail), which a pixel detector may use legitimately: not a file-handling shortcut"
        )

    def warning(self) -> str:
        return (
            f"metadata alone separates real from {self.fake} at ROC AUC {self.roc_auc:.2f} "
            f"[{self.interval[0]:.2f}, {self.interval[1]:.2f}]: {self.description}; a detector can win by this shortcut "
            "(equalise with --equalise, or crop:N, before trusting its score)"
        )


@dataclass
class Audit:
    """The metadata of every image, per source, and the metadata-only classifier per condition."""

    sources: dict[str, int]
    table: dict[str, np.ndarray]
    conditions: list[Condition]
    unreadable: int = 0
    detector: list[dict[str, Any]] = field(default_factory=list)
    """:func:`detector_by_equalisation` rows, when the audit was asked to compare them."""

    def warnings(self) -> list[str]:
        return [c.warning() for c in self.conditions if c.shortcut]

    def notes(self) -> list[str]:
        return [note for c in self.conditions if (note := c.content_note())]

    def to_dict(self) -> dict[str, Any]:
        summary = {}
        for source in self.sources:
            mine = self.table["source"] == source
            summary[source] = {name: _describe(self.table[name][mine], name) for name in PROPERTIES}
        return {
            "shortcut_auc": SHORTCUT_AUC,
            "unreadable": self.unreadable,
            "sources": summary,
            "conditions": [
                {"fake": c.fake, "roc_auc": c.roc_auc, "interval": list(c.interval), "rows": c.rows, "strongest": c.strongest,
                 "description": c.description, "per_property_auc": c.per_property, "lossless": c.lossless, "shortcut": c.shortcut}
                for c in self.conditions
            ],
            "warnings": self.warnings(),
            "notes": self.notes(),
            "detector_by_equalisation": self.detector,
        }

    def to_markdown(self) -> str:
        lines = ["# Metadata audit", "", "Can real and fake be told apart from file headers alone (no pixels)?", ""]
        lines += [f"**WARNING: {w}.**" for w in self.warnings()] or ["No metadata shortcut found (every metadata-only ROC AUC below 0.8)."]
        lines += [f"Note: {n}." for n in self.notes()]
        lines += ["", "| real vs | metadata-only ROC AUC [95 %] | most separating property |", "|---|---|---|"]
        for c in self.conditions:
            lines.append(f"| {c.fake} | {c.roc_auc:.2f} [{c.interval[0]:.2f}, {c.interval[1]:.2f}] | {c.description} |")
        lines += ["", "## Properties per source", "", "| source | " + " | ".join(PROPERTIES) + " |", "|---" * (len(PROPERTIES) + 1) + "|"]
        for source, props in self.to_dict()["sources"].items():
            lines.append(f"| {source} | " + " | ".join(props[name] for name in PROPERTIES) + " |")
        if self.detector:
            lines += [
                "", "## The detector with and without equalisation", "",
                "Standardisation + logistic regression, grouped CV, real vs all fakes, on each stored variant:", "",
                "| resolution | equalised before extraction | ROC AUC [95 %] | rows |", "|---|---|---|---|",
            ]
            lines += [f"| {r['resolution']} | {r['equalised']} | {r['roc_auc']:.2f} [{r['interval'][0]:.2f}, {r['interval'][1]:.2f}] | {r['rows']} |" for r in self.detector]
        if self.unreadable:
            lines += ["", f"{self.unreadable} file(s) could not be read and are left out."]
        return "\n".join(lines) + "\n"


def _describe(values: np.ndarray, name: str) -> str:
    if values.size == 0:
        return "–"
    if name in CATEGORICAL:
        kinds, counts = np.unique(values.astype(str), return_counts=True)
        order = np.argsort(-counts)[:3]
        return ", ".join(f"{kinds[i]} {counts[i] / values.size:.0%}" for i in order)
    numbers = values.astype(float)
    numbers = numbers[~np.isnan(numbers)]
    if numbers.size == 0:
        return "–"
    low, mid, high = np.percentile(numbers, [5, 50, 95])
    return f"{mid:.3g}" if low == high else f"{mid:.3g} ({low:.3g}–{high:.3g})"


def audit_records(
    paths: Sequence[str], sources: Sequence[str], labels: Sequence[int], groups: Sequence[str], random_state: int = 0, n_resamples: int = 1000
) -> Audit:
    """Read every header, then fit the metadata-only classifier for real vs each fake source (and vs all fakes)."""
    from tqdm.auto import tqdm

    paths, sources = np.asarray(paths, dtype=object), np.asarray(sources).astype(str)
    labels, groups = np.asarray(labels).astype(int), np.asarray(groups).astype(str)
    keep = _sample(sources, random_state)
    rows, readable = [], []
    for index in tqdm(keep, desc="reading headers", unit="img", disable=len(keep) < 2000):
        meta = read_metadata(paths[index])
        readable.append("error" not in meta)
        if "error" not in meta:
            rows.append(meta)
    kept = keep[np.array(readable, dtype=bool)] if len(keep) else keep
    table = {name: np.array([row[name] for row in rows], dtype=object if name in CATEGORICAL else float) for name in PROPERTIES}
    table.update(source=sources[kept], label=labels[kept], group=groups[kept])
    fakes = sorted(set(table["source"][table["label"] == 1]))
    conditions = [_condition(table, fake, [fake], random_state, n_resamples) for fake in fakes]
    if len(fakes) > 1:
        conditions.append(_condition(table, "all fakes", fakes, random_state, n_resamples))
    counts = {s: int((table["source"] == s).sum()) for s in sorted(set(table["source"]))}
    return Audit(counts, table, [c for c in conditions if c is not None], unreadable=int(len(keep) - len(kept)))


def _sample(sources: np.ndarray, random_state: int) -> np.ndarray:
    """Every row, or a seeded sample of ``MAX_PER_SOURCE`` per source (headers are cheap, but not free)."""
    rng = np.random.default_rng(random_state)
    chosen = []
    for source in sorted(set(sources)):
        rows = np.flatnonzero(sources == source)
        chosen.append(rows if rows.size <= MAX_PER_SOURCE else np.sort(rng.choice(rows, MAX_PER_SOURCE, replace=False)))
    return np.concatenate(chosen) if chosen else np.array([], dtype=int)


def _encode(table: dict[str, np.ndarray], rows: np.ndarray, names: Sequence[str]) -> np.ndarray:
    columns = []
    for name in names:
        values = table[name][rows]
        if name in CATEGORICAL:
            for kind in sorted(set(table[name].astype(str))):
                columns.append((values.astype(str) == kind).astype(float))
        else:
            columns.append(np.nan_to_num(values.astype(float), nan=-1.0))
    return np.column_stack(columns) if columns else np.zeros((rows.size, 0))


def _condition(table: dict[str, np.ndarray], name: str, fakes: list[str], random_state: int, n_resamples: int) -> Condition | None:
    """Real vs ``fakes`` on metadata alone: one forest on every property, then each property on its own.

    The folds are drawn once and shared by all the classifiers (drawing grouped
    folds costs as much as fitting here). Each property alone is scored by one
    depth-6 tree, not a forest: one feature needs no ensemble to be ranked, and
    the audit runs before every tune and report. A property constant over the
    rows carries nothing and scores 0.5 without a fit.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
    from sklearn.tree import DecisionTreeClassifier

    from fdt.pipelines.intervals import bootstrap_metrics
    from fdt.pipelines.metrics import compute_metrics

    rows = np.flatnonzero((table["label"] == 0) | np.isin(table["source"], fakes))
    y, groups = table["label"][rows], table["group"][rows]
    folds = min(5, *(np.unique(groups[y == k]).size for k in (0, 1)))
    if folds < 2:
        return None
    splits = list(StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=random_state).split(rows, y, groups))

    def out_of_fold(model: Any, X: np.ndarray) -> np.ndarray:
        return cross_val_predict(model, X, y, cv=splits, method="predict_proba")[:, 1]

    def alone(prop: str) -> float:
        X = _encode(table, rows, [prop])
        if not np.ptp(X, axis=0).any():
            return 0.5
        tree = DecisionTreeClassifier(max_depth=6, min_samples_leaf=5, random_state=random_state)
        return float(compute_metrics(y, out_of_fold(tree, X))["roc_auc"])

    lossless = set(table["format"][rows].astype(str)) <= LOSSLESS
    used = [p for p in PROPERTIES if not (lossless and p in CONTENT_DERIVED)]
    forest = RandomForestClassifier(n_estimators=50, max_depth=6, random_state=random_state, n_jobs=1)
    scores = out_of_fold(forest, _encode(table, rows, used))
    auc = compute_metrics(y, scores)["roc_auc"]
    interval = bootstrap_metrics(y, scores, groups, n_resamples=n_resamples, random_state=random_state)["roc_auc"]
    per_property = {prop: alone(prop) for prop in PROPERTIES}
    strongest = max(used, key=lambda p: per_property[p])
    real_values, fake_values = table[strongest][rows][y == 0], table[strongest][rows][y == 1]
    description = f"{strongest}: real {_describe(real_values, strongest)}, {name} {_describe(fake_values, strongest)}"
    return Condition(name, float(auc), (float(interval[0]), float(interval[1])), int(rows.size), strongest, description, per_property, lossless)


def audit_store(store: Any, real: Sequence[str], fakes: Sequence[str], random_state: int = 0) -> Audit:
    """The audit of the images a store's catalog lists for these sources (files read where they still are)."""
    catalog = store.catalog()
    rows = np.isin(catalog.source, list(real) + list(fakes))
    return audit_records(catalog.path[rows], catalog.source[rows], catalog.label[rows], catalog.group[rows], random_state)


def detector_by_equalisation(store: Any, extractor: str, real: Sequence[str], fakes: Sequence[str], random_state: int = 0) -> list[dict[str, Any]]:
    """A quick detector's ROC AUC on every stored variant of ``extractor``: as extracted, and each equalisation.

    For each key of ``extractor`` in the store (one per resolution, parameters and
    pre-extraction chain), standardisation + logistic regression is scored by
    grouped 5-fold CV out-of-fold ROC AUC with a bootstrap interval, for real vs
    all ``fakes``. Shown side by side, a score that drops once every image went
    through the same re-encoding was (partly) the format's, not the generator's.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fdt.pipelines.intervals import bootstrap_metrics
    from fdt.pipelines.metrics import compute_metrics

    keys = [key for key in store.keys() if key.extractor == extractor]
    if not keys:
        stored = sorted({key.extractor for key in store.keys()})
        raise PipelineError(
            f"no stored features of extractor {extractor!r} in {store.root} (stored: {', '.join(stored) or 'none'}); run fdt extract DATA -e {extractor} first"
        )
    rows = []
    for key in keys:
        data = store.load(extractor, key.resolution, sources=list(real) + list(fakes), params=key.params, weights=key.weights,
                          **({"perturb": key.perturb} if getattr(key, "perturb", "") else {}))
        if data.key.id != key.id:
            continue
        folds = min(5, *(np.unique(data.groups[data.y == k]).size for k in (0, 1)))
        if folds < 2:
            continue
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000))
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=random_state)
        scores = cross_val_predict(model, data.X, data.y, groups=data.groups, cv=splitter, method="predict_proba")[:, 1]
        interval = bootstrap_metrics(data.y, scores, data.groups, random_state=random_state)["roc_auc"]
        rows.append({
            "resolution": key.resolution,
            "equalised": getattr(key, "perturb", "") or "no",
            "key": key.describe(),
            "roc_auc": compute_metrics(data.y, scores)["roc_auc"],
            "interval": [float(interval[0]), float(interval[1])],
            "rows": len(data),
        })
    return sorted(rows, key=lambda r: (r["resolution"], r["equalised"] != "no", r["equalised"]))


def shortcut_warnings(store: Any, real: Sequence[str], fakes: Sequence[str], random_state: int = 0) -> list[str]:
    """The audit's warnings for these sources, as every report of them must print them (bold, one per condition)."""
    audit = audit_store(store, real, fakes, random_state)
    return [f"**WARNING: {warning}.**" for warning in audit.warnings()]


def write_audit(audit: Audit, directory: str | os.PathLike) -> list[Path]:
    """``audit.md``, ``audit.json`` and ``audit.png`` (the properties' distributions per source)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / "audit.md", directory / "audit.json", directory / "audit.png"]
    written[0].write_text(audit.to_markdown(), encoding="utf-8")
    written[1].write_text(json.dumps(audit.to_dict(), indent=2, default=float), encoding="utf-8")
    _plot(audit, written[2])
    return written


def _plot(audit: Audit, path: Path) -> None:
    from matplotlib.figure import Figure

    shown = ("format", "jpeg_quality", "width", "height", "bytes_per_pixel", "mode")
    figure = Figure(figsize=(4 * len(shown) / 2, 7), layout="constrained")
    sources = list(audit.sources)
    for index, name in enumerate(shown):
        axes = figure.add_subplot(2, len(shown) // 2, index + 1)
        if name in CATEGORICAL:
            kinds = sorted(set(audit.table[name].astype(str)))
            bottom = np.zeros(len(sources))
            for kind in kinds:
                share = np.array([np.mean(audit.table[name][audit.table["source"] == s].astype(str) == kind) for s in sources])
                axes.bar(sources, share, bottom=bottom, label=kind)
                bottom += share
            axes.legend(fontsize=7)
            axes.set_ylabel("share")
        else:
            plotted = False
            for source in sources:
                values = audit.table[name][audit.table["source"] == source].astype(float)
                values = values[~np.isnan(values)]
                if values.size:
                    axes.hist(values, bins=20, alpha=0.5, label=source)
                    plotted = True
            if plotted:
                axes.legend(fontsize=7)
        axes.set_title(name, fontsize=9)
        axes.tick_params(labelsize=7)
        for label in axes.get_xticklabels():
            label.set_rotation(30)
    figure.suptitle("Metadata per source (headers only; a shortcut a detector can use)", fontsize=10)
    figure.savefig(path, dpi=90)
