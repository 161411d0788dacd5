"""PNG figures of a report: matrix heatmap, ROC curves, 2-D PCA scatter of the sources.

Figures are built with ``matplotlib.figure.Figure`` directly, never ``pyplot``,
so no GUI backend or global state is touched and plotting works headless.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from fdt.features_store.featureset import FeatureSet
from fdt.pipelines.evaluation import INVERTED, SEEN_SOURCE, TOO_FEW
from fdt.pipelines.metrics import get_metric

MAX_POINTS_PER_SOURCE = 500
FLAG_MARKS = {INVERTED: " †", TOO_FEW: " ‡", SEEN_SOURCE: " §"}


def heatmap(matrix, path: Path, weights: dict[str, str]) -> Path:
    """The matrix's metric as an annotated heatmap, with row and column means in the labels."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    values = matrix.values
    metric = get_metric(matrix.metric)
    figure = Figure(figsize=(1.8 + 1.5 * len(matrix.columns), 1.6 + 0.9 * len(matrix.rows)), layout="constrained")
    axes = figure.add_subplot()
    low, high = np.nanmin(values), np.nanmax(values)
    # the better end of the scale is yellow whichever way the metric runs
    image = axes.imshow(values, cmap="viridis" if metric.higher_is_better else "viridis_r", vmin=low, vmax=high)
    axes.set_xticks(
        range(len(matrix.columns)), [f"{c}\nmean {m:.3f}" for c, m in zip(matrix.columns, matrix.column_means)],
        fontsize=8, rotation=30, ha="right", rotation_mode="anchor",
    )
    axes.set_yticks(range(len(matrix.rows)), [f"{r}\nmean {m:.3f}" for r, m in zip(matrix.rows, matrix.row_means)], fontsize=8)
    axes.set_xlabel("tested on\n(bold: diagonal, held-out groups; [95% interval])", fontsize=8)
    axes.set_ylabel("trained on")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            bright = high > low and metric.sign * (values[i, j] - (low + high) / 2) / (high - low) > 0.1  # yellow end: dark text there
            interval = matrix.interval(i, j)
            text = f"{values[i, j]:.3f}" if not interval or np.isnan(interval[0]) else f"{values[i, j]:.2f}\n[{interval[0]:.2f}, {interval[1]:.2f}]"
            text += "".join(mark for flag, mark in FLAG_MARKS.items() if flag in matrix.flags(i, j))
            if SEEN_SOURCE in matrix.flags(i, j):  # hatched: not a cross-generator result
                axes.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="//", edgecolor="white", linewidth=0))
            axes.text(
                j, i, text, ha="center", va="center", fontsize=8,
                color="black" if bright else "white", fontweight="bold" if i == j else "normal",
            )
    figure.colorbar(image, ax=axes, label=f"{metric.label} ({metric.direction})")
    used = [textwrap.fill(f"{mark} {flag}" + (" (hatched)" if flag == SEEN_SOURCE else ""), 55) for flag, mark in FLAG_MARKS.items() if any(flag in matrix.flags(i, j) for i in range(values.shape[0]) for j in range(values.shape[1]))]
    axes.set_title("\n".join([matrix.title, f"weights: {', '.join(sorted(set(weights.values())))}", *used]), fontsize=9)
    figure.savefig(path, dpi=100)
    return path


def roc_curves(matrix, path: Path) -> Path:
    """One panel per training condition, one ROC curve per test condition (AUC in the legend)."""
    from matplotlib.figure import Figure

    n = len(matrix.rows)
    figure = Figure(figsize=(4 * n, 3.8), layout="constrained")
    for i, row in enumerate(matrix.rows):
        axes = figure.add_subplot(1, n, i + 1)
        for j, column in enumerate(matrix.columns):
            fpr, tpr = matrix.roc[i][j]
            axes.plot(fpr, tpr, label=f"{column} (AUC {matrix.cells[i][j]['roc_auc']:.3f})")
        axes.plot([0, 1], [0, 1], color="grey", linestyle=":")
        axes.set(title=f"trained: {row}", xlabel="false positive rate", ylabel="true positive rate")
        axes.legend(fontsize=7, loc="lower right")
    figure.savefig(path, dpi=100)
    return path


def pca_scatter(data: FeatureSet, path: Path, weights: str, random_state: int = 0) -> Path:
    """Standardised features projected on their first two principal components, coloured by source (one feature: its histograms)."""
    from matplotlib.figure import Figure
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(random_state)
    rows = np.concatenate(
        [rng.permutation(np.flatnonzero(data.sources == s))[:MAX_POINTS_PER_SOURCE] for s in np.unique(data.sources)]
    )
    figure = Figure(figsize=(5.5, 4.5), layout="constrained")
    axes = figure.add_subplot()
    if data.X.shape[1] == 1:  # a detector's own score (output=logit): no projection, its distribution per source
        scores = data.X[rows, 0].astype(np.float64)  # float32 edges collapse on the narrow range of an untrained score
        edges = np.histogram_bin_edges(scores, bins=30)
        for source in np.unique(data.sources[rows]):
            axes.hist(scores[data.sources[rows] == source], bins=edges, alpha=0.5, label=str(source))
        axes.set(title=f"{data.key.extractor} score at {data.key.resolution}\nweights: {weights}", xlabel="score", ylabel="images")
        axes.legend(fontsize=8)
        figure.savefig(path, dpi=100)
        return path
    points = PCA(n_components=2, random_state=random_state).fit_transform(StandardScaler().fit_transform(data.X[rows]))
    for source in np.unique(data.sources[rows]):
        mine = data.sources[rows] == source
        axes.scatter(points[mine, 0], points[mine, 1], s=8, alpha=0.6, label=str(source))
    axes.set(title=f"PCA of {data.key.extractor} features at {data.key.resolution}\nweights: {weights}", xlabel="PC 1", ylabel="PC 2")
    axes.legend(fontsize=8, markerscale=2)
    figure.savefig(path, dpi=100)
    return path
