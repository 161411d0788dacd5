"""Quality and detectability across a generator's training: the quality report's rows, one per epoch, against the epoch.

Seed study 003 watched a GAN and a diffusion model improve over hours of
training; this is that view with numbers: the samples of each saved epoch are
one fake source, measured against the same reals (FD, KID, precision, recall,
density, coverage) and given a detectability, then plotted against the epoch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from fdt.atomic import atomic_path, write_text
from fdt.pipelines.quality import PRDC
from fdt.pipelines.quality_report import QualityReport, write_quality


def write_training_curve(report: QualityReport, epochs: Mapping[str, int], directory: str | os.PathLike) -> list[Path]:
    """The quality report's files plus ``training.csv`` (one row per epoch) and ``quality-vs-epoch.png``.

    ``epochs`` maps each fake source of ``report`` to the epoch its samples come from.
    """
    directory = Path(directory)
    written = write_quality(report, directory)
    header, *lines = report.to_csv().splitlines()
    by_source = dict(zip((row.source for row in report.rows), lines))
    ordered = sorted(report.rows, key=lambda row: epochs[row.source])
    text = "\n".join([f"epoch,{header}", *(f"{epochs[row.source]},{by_source[row.source]}" for row in ordered)]) + "\n"
    written.append(write_text(directory / "training.csv", text))
    written.append(epoch_plot(report, epochs, directory / "quality-vs-epoch.png"))
    return written


def epoch_plot(report: QualityReport, epochs: Mapping[str, int], path: Path) -> Path:
    """Four panels against the epoch, each with its interval: the Fréchet distance, KID, the k-NN metrics, detectability."""
    from matplotlib.figure import Figure

    rows = sorted(report.rows, key=lambda row: epochs[row.source])
    x = np.array([epochs[row.source] for row in rows])
    figure = Figure(figsize=(11, 7.5), layout="constrained")

    def panel(index: int, title: str, ylabel: str):
        axes = figure.add_subplot(2, 2, index)
        axes.set(title=title, xlabel="epoch", ylabel=ylabel)
        axes.grid(alpha=0.3)
        return axes

    def bars(axes, at, values, intervals, label=None):
        values = np.asarray(values, float)
        low, high = np.array([i[0] for i in intervals], float), np.array([i[1] for i in intervals], float)
        axes.errorbar(at, values, yerr=[np.maximum(values - low, 0), np.maximum(high - values, 0)], marker="o", capsize=3, label=label)

    name = report.distance_name
    bars(panel(1, f"{name} to the reals (95 % bootstrap)", name), x, [r.quality.fd for r in rows], [r.quality.fd_interval for r in rows])
    kid = panel(2, "KID (mean ± std over subsets)", "KID")
    kid.errorbar(x, [r.quality.kid for r in rows], yerr=[r.quality.kid_std for r in rows], marker="o", capsize=3)
    knn = panel(3, "k-NN metrics (95 % bootstrap)", "value")
    for metric in PRDC:
        bars(knn, x, [r.quality.prdc[metric] for r in rows], [r.quality.prdc_intervals[metric] for r in rows], metric)
    knn.legend(fontsize=8)
    detect = panel(4, "detectability (95 % bootstrap over groups)", "ROC AUC")
    scored = [r for r in rows if r.detectability]
    if scored:
        bars(detect, [epochs[r.source] for r in scored], [r.detectability.value for r in scored], [r.detectability.interval for r in scored])
    detect.axhline(0.5, color="grey", linestyle=":")
    figure.suptitle(f"Quality and detectability across training; features: {report.key.describe()}\n{report.feature_space.split('; ', 1)[-1]}", fontsize=9)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    return path
