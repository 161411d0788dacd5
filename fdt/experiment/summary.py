"""``reports/summary.md``: one page that links every report file and reads the numbers in plain words.

Every sentence of the reading is computed from this run's matrices and model
cards (which detector is best, which generator is hardest to catch unseen, how
much is lost across generators and across resolutions), so it changes when the
results change.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fdt.experiment.config import CorpusImages, FolderImages, GeneratedImages

if TYPE_CHECKING:
    from fdt.experiment.runner import RunResult

SUMMARY_NAME = "summary.md"
GRID_IMAGES = 36


def write_summary(result: "RunResult") -> Path:
    """Write the sample grids and ``summary.md`` into the reports folder; return the summary's path."""
    reports = result.plan.reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    lines = [f"# {result.plan.experiment.settings.name}: summary", ""]
    totals = result.record.totals()
    lines += [
        f"{totals['stages_computed']} stages computed and {totals['stages_reused']} reused in {result.record.seconds:.0f} s "
        f"({totals['new_feature_rows']} new feature rows, {totals['reused_feature_rows']} reused); "
        f"what each stage did is in [run.json](run.json).",
        "",
        "## Images",
        "",
    ]
    lines += _images_section(result, reports)
    lines += ["", "## Extractors", "", "| extractor | resolutions | weights |", "|---|---|---|"]
    for label, choice in result.plan.weights_choice.items():
        stored = sorted({s["weights"] for s in result.record.stages if s["stage"] == "extract" and s["name"] == label})
        resolutions = sorted({s["resolution"] for s in result.record.stages if s["stage"] == "extract" and s["name"] == label})
        lines.append(f"| {label} | {', '.join(resolutions)} | {choice} (`{', '.join(stored)}`) |")
    if result.cards:
        lines += ["", "## Tuned detectors (real vs every fake, grouped CV)", "", "| model | trials | CV ROC AUC | held-out test ROC AUC | best parameters |", "|---|---|---|---|---|"]
        for card in result.cards:
            cv = card["cv"]["metrics"]["roc_auc"]
            params = ", ".join(f"{k.split('__')[-1]}={_short(v)}" for k, v in card["best_params"].items()) or "defaults"
            lines.append(f"| [{card['name']}](../models/{card['name']}.json) | {card['trials_in_study']} | {cv['mean']:.3f} ± {cv['std']:.3f} | {card['test_metrics']['roc_auc']:.3f} | {params} |")
    if result.matrix_reports:
        lines += ["", "## Generalisation (train on one generator, test on each)", ""]
        lines += _matrices_section(result, reports)
    lines += ["", "## Reading", ""]
    lines += [f"- {sentence}" for sentence in reading(result)]
    path = reports / SUMMARY_NAME
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return path


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _images_section(result: "RunResult", reports: Path) -> list[str]:
    """One line per image set, with a grid of its first images (and the DCGAN's training record)."""
    lines = []
    for name, image_set in result.plan.experiment.images.items():
        records = result.records[name]
        grid = reports / f"samples-{name}.png"
        _grid([r.path for r in records[:GRID_IMAGES]], grid)
        groups = len({r.group for r in records if r.group})
        if isinstance(image_set, CorpusImages):
            what = f"real {image_set.size}×{image_set.size} crops cut from {groups} photos shipped in installed packages (one group per photo)"
        elif isinstance(image_set, GeneratedImages):
            if image_set.generator == "ddpm-inpaint":
                what = f"fake: {image_set.inpaint!r} images repainted by the DDPM of {image_set.model!r}"
            else:
                epochs = image_set.train.get("epochs")
                what = f"fake: sampled from a {image_set.generator.upper()} fdt trained on {image_set.train_on!r}" + (f" for {epochs} epochs" if epochs else "")
        else:
            labels = "/".join(sorted({"real" if r.label == 0 else "fake" for r in records}))
            what = f"{labels} images from {image_set.folder if isinstance(image_set, FolderImages) else image_set.manifest}"
        links = [f"[sample grid]({grid.name})"]
        if isinstance(image_set, GeneratedImages) and image_set.generator != "ddpm-inpaint":
            history = result.plan.generator_dir(name) / "first_vs_last.png"
            if history.is_file():
                copy = reports / f"{name}-first-vs-last-epoch.png"
                shutil.copyfile(history, copy)
                links.append(f"[first vs last epoch]({copy.name})")
        lines.append(f"- **{name}**: {len(records)} images, {what}; {', '.join(links)}")
    return lines


def _grid(paths: list[str], out: Path) -> None:
    from PIL import Image

    from fdt.gen.plots import image_grid, save_image

    pixels = []
    for path in paths:
        with Image.open(path) as image:
            pixels.append(np.asarray(image.convert("RGB").resize((64, 64))).transpose(2, 0, 1))
    if pixels:
        save_image(image_grid(np.stack(pixels)), out)


def matrix_files(folder: Path) -> dict[str, dict[str, Path]]:
    """Matrix title -> its CSV, heatmap and ROC files, found through each matrix JSON's own title."""
    found = {}
    for path in sorted(folder.glob("*.json")):
        if path.name == "report.json":
            continue
        try:
            title = json.loads(path.read_text(encoding="utf-8")).get("title")
        except (OSError, ValueError):
            continue
        if title:
            stem = path.with_suffix("")
            found[title] = {"csv": stem.with_suffix(".csv"), "heatmap": stem.with_name(stem.name + "-heatmap.png"), "roc": stem.with_name(stem.name + "-roc.png")}
    return found


def _matrices_section(result: "RunResult", reports: Path) -> list[str]:
    lines = []
    for entry in result.matrix_reports:
        folder, report = Path(entry["folder"]), entry["report"]
        relative = folder.relative_to(reports)
        files = matrix_files(folder)
        pca = sorted(folder.glob("pca-*.png"))
        lines.append(f"**{entry['label']}** + `{entry['pipeline']}` ({entry['metric']}), [report]({relative}/report.md):")
        lines.append("")
        for matrix in report["matrices"]:
            mine = files.get(matrix["title"], {})
            links = ", ".join(f"[{kind}]({relative}/{path.name})" for kind, path in mine.items() if path.is_file())
            lines.append(f"- {matrix['title']}: mean {_mean(matrix):.3f}; {links}")
        if pca:
            lines.append(f"- PCA scatter: {', '.join(f'[{p.stem}]({relative}/{p.name})' for p in pca)}")
        lines.append("")
    best = best_report(result)
    if best is not None:
        folder = Path(best["folder"])
        files = matrix_files(folder)
        titles = [m["title"] for m in _per_resolution(best["report"]) if m["title"] in files and files[m["title"]]["heatmap"].is_file()]
        first = files[titles[0]]["heatmap"] if titles else None
        lines += [f"Best on average: **{best['label']}**.", ""]
        if first is not None:
            lines.append(f"![{first.stem}]({folder.relative_to(reports)}/{first.name})")
    return lines


def _mean(matrix: dict[str, Any]) -> float:
    return float(np.nanmean(np.array(matrix["values"], dtype=float)))


def best_report(result: "RunResult") -> dict[str, Any] | None:
    """The matrix report whose per-resolution matrices have the highest mean (lowest for error-like metrics)."""
    if not result.matrix_reports:
        return None
    sign = -1.0 if result.matrix_reports[0]["metric"] in LOWER_IS_BETTER else 1.0
    return max(result.matrix_reports, key=lambda e: sign * np.nanmean([_mean(m) for m in _per_resolution(e["report"])]))


LOWER_IS_BETTER = frozenset({"eer", "brier", "ece"})


def _per_resolution(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in report["matrices"] if m["title"].startswith("generalisation at")]


def _cross(report: dict[str, Any]) -> dict[str, Any] | None:
    return next((m for m in report["matrices"] if m["title"].startswith("cross-resolution")), None)


def reading(result: "RunResult") -> list[str]:
    """Plain-language sentences drawn from this run's numbers."""
    sentences = []
    random = sorted({s["name"] for s in result.record.stages if s["stage"] == "extract" and s["weights"].startswith("random")})
    if random:
        sentences.append(
            f"{', '.join(random)} ran with seeded random weights (no ImageNet weights in the cache), so their features are "
            "the responses of an untrained network, not ImageNet features; place the weight files in the torch cache and re-run to compare."
        )
    if result.cards:
        best = max(result.cards, key=lambda c: c["cv"]["metrics"]["roc_auc"]["mean"])
        worst = min(result.cards, key=lambda c: c["cv"]["metrics"]["roc_auc"]["mean"])
        sentences.append(
            f"Of the {len(result.cards)} tuned detectors, {best['name']} separates real from fake best in grouped cross-validation "
            f"(ROC AUC {best['cv']['metrics']['roc_auc']['mean']:.3f}, {best['test_metrics']['roc_auc']:.3f} on held-out photos and fakes) "
            f"and {worst['name']} worst ({worst['cv']['metrics']['roc_auc']['mean']:.3f})."
        )
    best = best_report(result)
    if best is None:
        return sentences or ["No matrices were requested."]
    metric = best["metric"]
    per_resolution = _per_resolution(best["report"])
    diagonal, off = [], []
    columns: dict[str, list[float]] = {}
    for matrix in per_resolution:
        values = np.array(matrix["values"], dtype=float)
        diagonal += list(np.diag(values))
        off += [values[i, j] for i in range(values.shape[0]) for j in range(values.shape[1]) if i != j]
        for j, fake in enumerate(best["report"]["settings"]["fakes"]):
            columns.setdefault(fake, []).extend(values[i, j] for i in range(values.shape[0]) if i != j)
    ranking = ", ".join(f"{e['label']} {np.nanmean([_mean(m) for m in _per_resolution(e['report'])]):.3f}" for e in result.matrix_reports)
    sentences.append(f"Mean {metric} over every train/test pair: {ranking}; {best['label']} generalises best.")
    if off:
        gap = np.nanmean(diagonal) - np.nanmean(off)
        verdict = (
            "detectors mostly learn their own generator's traces" if gap > 0.1
            else "what they learn transfers between these generators" if gap > -0.1
            else "unseen generators are easier here than the training one"
        )
        sentences.append(
            f"With {best['label']}, detectors tested on the generator they were trained on score {np.nanmean(diagonal):.3f} {metric}, "
            f"and {np.nanmean(off):.3f} on generators they never saw, so {verdict}."
        )
        means = {c: float(np.nanmean(v)) for c, v in columns.items() if v}
        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        hardest = min(means, key=lambda c: sign * means[c])
        sentences.append(f"The hardest fakes to catch unseen are in '{hardest}' (mean {metric} {means[hardest]:.3f} for detectors trained on the other generators).")
    cross = _cross(best["report"])
    if cross is not None:
        values = np.array(cross["values"], dtype=float)
        same, other = np.nanmean(np.diag(values)), np.nanmean(values[~np.eye(len(values), dtype=bool)])
        sentences.append(
            f"Across resolutions ({', '.join(r.removeprefix('train ') for r in cross['rows'])}), a detector scores {same:.3f} {metric} at the resolution "
            f"it was trained at and {other:.3f} at the other one{': resizing hides part of what it learnt' if same - other > 0.05 else ''}."
        )
    test_rows = [count for row in per_resolution[0]["test_rows"] for count in row] if per_resolution and "test_rows" in per_resolution[0] else []
    if test_rows:
        counts = f"{min(test_rows)}" if min(test_rows) == max(test_rows) else f"{min(test_rows)} to {max(test_rows)}"
        sentences.append(f"Each cell is scored on {counts} held-out images of held-out groups; with few groups, differences of a few hundredths are noise.")
    return sentences
