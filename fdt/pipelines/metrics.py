"""The metric registry: what each detection metric is, how it is computed, which way is better and how it is shown.

Adding a metric is one :func:`register_metric` call here: evaluations, bootstrap
intervals, matrices, cards, plots and the run summary all read this registry, so
a new metric gets its interval, its column and the right "better" direction
without touching them.

Scores are the probability that an image is fake (label 1), so every metric reads
the same numbers whether it comes from cross-validation, a held-out split, a
generalisation-matrix cell or a benchmark. Every metric is computed over
*weighted* rows (:class:`WeightedRows`): with every weight 1 that is the metric
of the rows; with the weights of a bootstrap resample of groups it is that
resample's metric, so a point estimate and its interval always agree on what a
metric means (:mod:`fdt.pipelines.intervals`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from fdt.pipelines.errors import UnknownMetricError

TPR_AT_FPR = (1, 5, 10)
"""The false positive rates (in %) at which ``tpr_at_fpr_K`` is reported."""
ECE_BINS = 10
"""Equal-width bins of the fake probability for ``ece``."""
_TINY = np.finfo(float).tiny


class WeightedRows:
    """Labels and fake-probabilities with ``b`` weightings of the rows: what every metric is computed from.

    The rows are sorted once by score and the ROC curve's operating points are
    read off cumulative weighted sums, so ``b`` resamples cost a few matrix
    products. Quantities are computed on first use and shared by every metric.

    Parameters
    ----------
    y_true, proba_fake : arrays of shape (n,)
        Labels (0 real, 1 fake) and fake-probabilities.
    weights : array of shape (b, n)
        Non-negative row weights; weighting ``k`` is the data set in which row ``i``
        appears ``weights[k, i]`` times.
    threshold : float
        Probability at or above which an image is called fake.
    thresholds : mapping, optional
        Thresholds chosen on other rows (:func:`fdt.pipelines.intervals.choose_thresholds`):
        ``"best"`` and ``"fpr_K"``. Without them the metrics that pick an operating
        point read it off these rows' own ROC curve.
    """

    def __init__(self, y_true: np.ndarray, proba_fake: np.ndarray, weights: np.ndarray, threshold: float = 0.5, thresholds: Mapping[str, float] | None = None) -> None:
        self.y = np.asarray(y_true).astype(int).ravel()
        self.p = np.asarray(proba_fake, dtype=float).ravel()
        self.w = np.atleast_2d(np.asarray(weights, dtype=float))
        self.threshold = threshold
        self.thresholds = dict(thresholds or {})
        self.fake = self.y == 1
        self.real = ~self.fake

    @cached_property
    def _curve(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(-self.p, kind="mergesort")
        ys, ps, ws = self.y[order], self.p[order], self.w[:, order]
        # The last row of each run of equal scores: an operating point of the ROC curve.
        ends = np.r_[np.flatnonzero(np.diff(ps)), ps.size - 1]
        return np.cumsum(ws * ys, axis=1)[:, ends], np.cumsum(ws * (1 - ys), axis=1)[:, ends]

    @property
    def tp(self) -> np.ndarray:
        """Weighted true positives at each operating point, ``(b, points)``."""
        return self._curve[0]

    @property
    def fp(self) -> np.ndarray:
        """Weighted false positives at each operating point, ``(b, points)``."""
        return self._curve[1]

    @cached_property
    def positives(self) -> np.ndarray:
        return self.w @ self.y.astype(float)

    @cached_property
    def negatives(self) -> np.ndarray:
        return self.w.sum(axis=1) - self.positives

    @cached_property
    def total(self) -> np.ndarray:
        return self.positives + self.negatives

    @cached_property
    def both(self) -> np.ndarray:
        """Whether each weighting holds both classes (ranking metrics are undefined otherwise)."""
        return (self.positives > 0) & (self.negatives > 0)

    @cached_property
    def tpr(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.concatenate([np.zeros((len(self.w), 1)), self.tp / self.positives[:, None]], axis=1)

    @cached_property
    def fpr(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.concatenate([np.zeros((len(self.w), 1)), self.fp / self.negatives[:, None]], axis=1)

    def weighted(self, mask: np.ndarray) -> np.ndarray:
        """Weighted count of the rows in boolean ``mask``, per weighting."""
        return self.w @ mask.astype(float)

    @cached_property
    def called_fake(self) -> np.ndarray:
        return self.p >= self.threshold

    @cached_property
    def true_fake(self) -> np.ndarray:
        return self.weighted(self.called_fake & self.fake)

    @cached_property
    def true_real(self) -> np.ndarray:
        return self.weighted(~self.called_fake & self.real)

    def ratio(self, numerator: np.ndarray, denominator: np.ndarray, empty: float = math.nan) -> np.ndarray:
        """``numerator / denominator``, ``empty`` where the denominator is 0."""
        return np.where(denominator > 0, numerator / np.maximum(denominator, _TINY), empty)

    def if_both(self, values: np.ndarray) -> np.ndarray:
        """``values`` where the weighting holds both classes, NaN elsewhere."""
        return np.where(self.both, values, math.nan)


@dataclass(frozen=True)
class Metric:
    """One detection metric.

    Parameters
    ----------
    name : str
        The key in every metrics dict, card and report (``roc_auc``).
    label : str
        How plots and tables name it (``ROC AUC``).
    compute : callable
        ``compute(rows: WeightedRows) -> array (b,)``: the metric per weighting, NaN where undefined.
    higher_is_better : bool
        ``False`` for error rates (``eer``, ``brier``, ``ece``): verdicts, rankings and colour scales turn round.
    chance : float, optional
        What a detector that cannot tell real from fake scores (0.5 ROC AUC), drawn as a reference line.
    digits : int
        Decimals shown in tables and summaries.
    """

    name: str
    label: str
    compute: Callable[[WeightedRows], np.ndarray]
    higher_is_better: bool = True
    chance: float | None = None
    digits: int = 3

    @property
    def sign(self) -> float:
        """+1 or -1 such that ``sign * value`` grows as the detector gets better."""
        return 1.0 if self.higher_is_better else -1.0

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is a better detector than value ``b``."""
        return self.sign * a > self.sign * b

    def format(self, value: float | None, interval: tuple[float, float] | None = None) -> str:
        """``0.912 [0.861, 0.950]`` at this metric's decimals; ``–`` when undefined."""
        from fdt.pipelines.intervals import format_interval

        return format_interval(math.nan if value is None else value, interval, self.digits)

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"


_REGISTRY: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to the registry (after the built-ins, in report order); a name already taken is refused."""
    if metric.name in _REGISTRY:
        raise ValueError(f"metric {metric.name!r} is already registered")
    _REGISTRY[metric.name] = metric
    return metric


def get_metric(name: str) -> Metric:
    """The registered metric ``name``, or :class:`UnknownMetricError` listing the valid ones.

    A name not registered yet is looked up among installed plugins (entry point group
    ``fdt.metrics``, a :class:`Metric`), so ``--metric`` works for a plugin's metric.
    """
    if name not in _REGISTRY:
        from fdt.plugins import load_plugin, plugin_names, report_broken

        found = load_plugin("fdt.metrics", name)
        if isinstance(found, Metric) and found.name == name:
            register_metric(found)
        elif found is not None:
            report_broken("fdt.metrics", name, f"not a fdt.pipelines.metrics.Metric named {name!r}")
        if name not in _REGISTRY:
            valid = [*_REGISTRY, *(n for n in plugin_names("fdt.metrics") if n not in _REGISTRY)]
            raise UnknownMetricError(f"unknown metric {name!r}; choose one of: {', '.join(valid)}")
    return _REGISTRY[name]


def list_metrics() -> tuple[str, ...]:
    """Every registered metric's name, in report order."""
    return tuple(_REGISTRY)


def check_metric(name: str) -> str:
    """Return ``name`` if it is a metric, else raise :class:`UnknownMetricError` listing the valid ones."""
    return get_metric(name).name


# ---------------------------------------------------------------- the built-in metrics


def _roc_auc(rows: WeightedRows) -> np.ndarray:
    return rows.if_both(np.trapezoid(rows.tpr, rows.fpr, axis=1))


def _average_precision(rows: WeightedRows) -> np.ndarray:
    precision_curve = rows.tp / np.maximum(rows.tp + rows.fp, _TINY)
    return rows.if_both(np.sum(np.diff(rows.tpr, axis=1) * precision_curve, axis=1))


def _real_accuracy(rows: WeightedRows) -> np.ndarray:
    return rows.ratio(rows.true_real, rows.negatives)


def _fake_accuracy(rows: WeightedRows) -> np.ndarray:
    return rows.ratio(rows.true_fake, rows.positives)


def _best_threshold_accuracy(rows: WeightedRows) -> np.ndarray:
    if "best" in rows.thresholds:
        return rows.weighted((rows.p >= rows.thresholds["best"]) == rows.fake) / rows.total
    # Calling fake everything at or above each distinct score covers every achievable split.
    correct = rows.tp + (rows.negatives[:, None] - rows.fp)
    return np.maximum(correct.max(axis=1), rows.negatives) / rows.total


def _precision(rows: WeightedRows) -> np.ndarray:
    return rows.ratio(rows.true_fake, rows.weighted(rows.called_fake), empty=0.0)


def _recall(rows: WeightedRows) -> np.ndarray:
    return rows.ratio(rows.true_fake, rows.positives, empty=0.0)


def _f1(rows: WeightedRows) -> np.ndarray:
    precision, recall = _precision(rows), _recall(rows)
    return rows.ratio(2 * precision * recall, precision + recall, empty=0.0)


def _eer(rows: WeightedRows) -> np.ndarray:
    """Where the false negative rate crosses the false positive rate, interpolated between ROC points."""
    fpr, tpr = rows.fpr, rows.tpr
    gap = (1.0 - tpr) - fpr  # decreasing along the curve, from 1 to -1
    crossed = gap <= 0
    crossing = np.where(crossed.any(axis=1), crossed.argmax(axis=1), gap.shape[1] - 1)
    index = np.arange(len(gap))
    before = np.maximum(crossing - 1, 0)
    g_before, g_after = gap[index, before], gap[index, crossing]
    exact = (crossing == 0) | (g_after == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(exact, 0.0, g_before / np.where(exact, 1.0, g_before - g_after))
        interpolated = fpr[index, before] + weight * (fpr[index, crossing] - fpr[index, before])
    return rows.if_both(np.where(exact, fpr[index, crossing], interpolated))


def _tpr_at_fpr(percent: int) -> Callable[[WeightedRows], np.ndarray]:
    def compute(rows: WeightedRows) -> np.ndarray:
        chosen = rows.thresholds.get(f"fpr_{percent}")
        if chosen is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                value = rows.weighted((rows.p >= chosen) & rows.fake) / rows.positives
        else:
            value = np.where(rows.fpr <= percent / 100 + 1e-12, rows.tpr, -np.inf).max(axis=1)
        return rows.if_both(value)

    return compute


def _brier(rows: WeightedRows) -> np.ndarray:
    if not np.all((rows.p >= 0) & (rows.p <= 1)):
        return np.full(len(rows.w), math.nan)
    return (rows.w @ (rows.p - rows.y) ** 2) / rows.total


def _ece(rows: WeightedRows) -> np.ndarray:
    p = np.clip(rows.p, 0.0, 1.0)
    bins = np.clip(np.ceil(p * ECE_BINS).astype(int) - 1, 0, ECE_BINS - 1)
    onehot = np.eye(ECE_BINS)[bins]
    return np.abs(rows.w @ (onehot * rows.y[:, None]) - rows.w @ (onehot * p[:, None])).sum(axis=1) / rows.total


for _metric in (
    Metric("roc_auc", "ROC AUC", _roc_auc, chance=0.5),
    Metric("average_precision", "average precision", _average_precision),
    Metric("accuracy", "accuracy at 0.5", lambda rows: (rows.true_fake + rows.true_real) / rows.total, chance=0.5),
    Metric("balanced_accuracy", "balanced accuracy", lambda rows: rows.if_both((_real_accuracy(rows) + _fake_accuracy(rows)) / 2), chance=0.5),
    Metric("real_accuracy", "real-class accuracy", _real_accuracy),
    Metric("fake_accuracy", "fake-class accuracy", _fake_accuracy),
    Metric("best_threshold_accuracy", "accuracy at the validation threshold", _best_threshold_accuracy, chance=0.5),
    Metric("precision", "precision", _precision),
    Metric("recall", "recall", _recall),
    Metric("f1", "F1", _f1),
    Metric("eer", "equal error rate", _eer, higher_is_better=False, chance=0.5),
    *(Metric(f"tpr_at_fpr_{k}", f"TPR at {k} % FPR", _tpr_at_fpr(k), chance=k / 100) for k in TPR_AT_FPR),
    Metric("brier", "Brier score", _brier, higher_is_better=False, digits=4),
    Metric("ece", "expected calibration error", _ece, higher_is_better=False, digits=4),
):
    register_metric(_metric)
del _metric

METRICS: tuple[str, ...] = list_metrics()
"""The built-in metrics, in report order (:func:`list_metrics` includes any registered later)."""


# ---------------------------------------------------------------- computing


def weighted_metrics(
    y_true: np.ndarray,
    proba_fake: np.ndarray,
    weights: np.ndarray,
    threshold: float = 0.5,
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Every registered metric for each row of ``weights`` (see :class:`WeightedRows`): name -> array ``(b,)``."""
    rows = WeightedRows(y_true, proba_fake, weights, threshold, thresholds)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {name: np.asarray(metric.compute(rows), dtype=float) for name, metric in _REGISTRY.items()}


def compute_metrics(
    y_true: np.ndarray, proba_fake: np.ndarray, threshold: float = 0.5, thresholds: Mapping[str, float] | None = None
) -> dict[str, float]:
    """All detection metrics of fake-probabilities against labels (0 real, 1 fake).

    Parameters
    ----------
    y_true : array of shape (n,)
        0 for real, 1 for fake.
    proba_fake : array of shape (n,)
        Calibrated probability that each image is fake.
    threshold : float, default=0.5
        Probability at or above which an image is called fake for the thresholded metrics.
    thresholds : mapping, optional
        Thresholds chosen on other rows (validation or out-of-fold predictions, see
        :func:`fdt.pipelines.intervals.choose_thresholds`) for the metrics that pick
        an operating point: ``best_threshold_accuracy`` and ``tpr_at_fpr_K``.

    Returns
    -------
    dict
        One float per registered metric (:func:`list_metrics`). Metrics that need both
        classes (ROC AUC, AP, EER, TPR at FPR, balanced accuracy) are NaN when one is
        missing, rather than a misleading number.

    Notes
    -----
    - ``eer``: the equal error rate, where the false positive rate equals the false
      negative rate, linearly interpolated between consecutive ROC points.
    - ``tpr_at_fpr_K``: with ``thresholds``, the TPR here at the threshold chosen
      elsewhere for an FPR of K %; without, the highest TPR over these rows' own ROC
      points with FPR at most K % (an oracle operating point, never interpolated).
    - ``best_threshold_accuracy``: with ``thresholds``, the accuracy here at the
      accuracy-maximising threshold chosen elsewhere; without, the best accuracy over
      every threshold of these very rows, an optimistic upper bound.
    - ``ece``: expected calibration error over ``ECE_BINS`` equal-width bins of the fake
      probability, ``sum_b n_b / n * |mean(y)_b - mean(p)_b|``; bins are right-closed
      except the first, which also holds 0.

    The computation is :func:`weighted_metrics` with every weight 1, the code
    bootstrap intervals run, so a value and its interval agree.
    """
    y = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(proba_fake, dtype=float).ravel()
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"labels and scores must be non-empty and of one length, got {y.size} and {p.size}")
    values = weighted_metrics(y, p, np.ones((1, y.size)), threshold, thresholds)
    return {name: float(value[0]) for name, value in values.items()}


def expected_calibration_error(y_true: np.ndarray, proba_fake: np.ndarray) -> float:
    """Expected calibration error of fake-probabilities over equal-width bins (see :func:`compute_metrics`)."""
    return compute_metrics(y_true, proba_fake)["ece"]


def summarise(folds: Iterable[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and (population) standard deviation of each metric over folds, ignoring NaN folds."""
    rows = list(folds)
    summary = {}
    for name in rows[0]:
        values = np.array([row[name] for row in rows], dtype=float)
        finite = values[~np.isnan(values)]
        summary[name] = {
            "mean": float(finite.mean()) if finite.size else math.nan,
            "std": float(finite.std()) if finite.size else math.nan,
        }
    return summary


def format_summary(summary: Mapping[str, Mapping[str, float]]) -> str:
    """One ``name  mean ± std`` line per metric, for terminals and Markdown code blocks."""
    width = max(len(name) for name in summary)
    return "\n".join(f"{name:<{width}}  {v['mean']:.4f} ± {v['std']:.4f}" for name, v in summary.items())


def format_scored(scored: Mapping[str, Any], names: Iterable[str] = ("roc_auc", "average_precision", "accuracy", "best_threshold_accuracy", "eer")) -> str:
    """``name  value [low, high]`` lines of a scored set (pooled, then per fake source), and its flags."""
    from fdt.pipelines.intervals import format_interval

    names = list(names)
    width = max(len(name) for name in names)
    lines = [f"{name:<{width}}  {format_interval(scored['metrics'][name], scored['intervals'][name], 4)}" for name in names]
    lines += [f"FLAG: {flag}" for flag in scored.get("flags", [])]
    for source, part in scored.get("per_source", {}).items():
        flags = "".join(f"  FLAG: {flag}" for flag in part["flags"])
        lines.append(f"  reals vs {source}: roc_auc {format_interval(part['metrics']['roc_auc'], part['intervals']['roc_auc'], 4)}{flags}")
    return "\n".join(lines)
