"""``reports/summary.md``: one page that links every report file and reads the numbers in plain words.

Every sentence of the reading is computed from this run's matrices and model
cards (which detector is best, which generator is hardest to catch unseen, how
much is lost across generators and across resolutions), so it changes when the
results change.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fdt.atomic import write_text
from fdt.experiment.config import CorpusImages, FolderImages, GeneratedImages
from fdt.experiment.finetuning import summary_lines
from fdt.pipelines.evaluation import INVERTED, SEEN_SOURCE, TOO_FEW
from fdt.pipelines.intervals import format_interval
from fdt.pipelines.metrics import Metric, get_metric

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
    lines += summary_lines(result.record.stages, reports)
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
    if result.robustness_reports:
        lines += ["", "## Robustness (held-out test groups, real vs all fakes)", ""]
        lines += _robustness_section(result, reports)
    if result.quality_reports:
        lines += ["", "## Quality vs detectability", ""]
        lines += _quality_section(result, reports)
    lines += ["", "## Reading", ""]
    lines += [f"- {sentence}" for sentence in reading(result)]
    return write_text(reports / SUMMARY_NAME, "\n".join(lines) + "\n")


def _robustness_section(result: "RunResult", reports: Path) -> list[str]:
    """Per report and sweep: ROC AUC at the first and last level, with intervals, and links to the plots."""
    from fdt.perturb import parse_sweep
    from fdt.pipelines.intervals import format_interval

    lines = ["| detector | sweep | ROC AUC at the first level | at the last level | plot |", "|---|---|---|---|---|"]
    for entry in result.robustness_reports:
        relative = Path(entry["folder"]).relative_to(reports)
        rows = entry["report"]["rows"]
        for spec in entry["sweeps"]:
            mine = [r for r in rows if r["sweep"] == spec]
            pooled = [r for r in mine if r["source"] == "all fakes"] or mine
            first, last = pooled[0], pooled[-1]
            sweep = parse_sweep(spec)

            def auc(row: dict[str, Any]) -> str:
                value = row["metrics"]["roc_auc"]
                return f"{format_interval(float('nan') if value is None else value, tuple(row['intervals']['roc_auc']))} ({sweep.param}={row['level']})"

            lines.append(
                f"| [{entry['label']} + {entry['pipeline']}]({relative}/robustness.md) | `{spec}` | {auc(first)} | {auc(last)} | "
                f"[png]({relative}/robustness-{sweep.name}.png) |"
            )
    return lines


def _quality_section(result: "RunResult", reports: Path) -> list[str]:
    """Per quality report: its feature space (FID or not) and detector, then one row per fake source or kept epoch."""
    from fdt.pipelines.quality import format_kid

    lines = []
    for entry in result.quality_reports:
        report, job = entry["report"], entry["job"]
        relative = Path(entry["folder"]).relative_to(reports)
        distance = report["distance"]
        if entry["kind"] == "training":
            title = f"**{entry['image_set']} across its kept epochs**, in {job.label} features at {job.resolution}"
            links = f"[training.csv]({relative}/training.csv), [plot]({relative}/quality-vs-epoch.png), [table]({relative}/quality.md)"
            detector = f"grouped {job.entry.cv}-fold CV of {job.pipeline} on {job.detector} features"
            epochs = entry["epochs"]
            rows = sorted(report["sources"], key=lambda row: epochs[row["source"]])
            names = {row["source"]: f"epoch {epochs[row['source']]}" for row in rows}
        else:
            title = f"**{job.label}** at {job.resolution}"
            links = f"[table]({relative}/quality.md), [plot]({relative}/quality-vs-detectability.png)"
            detector = job.describe_detector()
            rows = report["sources"]
            names = {row["source"]: row["source"] for row in rows}
        lines += [f"{title}: {links}.", "", f"- features: {report['feature_space']}", f"- detectability: ROC AUC from {detector}"]
        lines += [f"- **{note.strip('*')}**" for note in report["notes"]]
        lines += ["", f"| {'epoch' if entry['kind'] == 'training' else 'fake source'} | n fake | {distance} | KID ± std | precision | recall | detectability |", "|---|---|---|---|---|---|---|"]
        for row in rows:
            detect = row["detectability"]
            cells = [
                names[row["source"]], str(row["n_fake"]), format_interval(row["fd"], tuple(row["fd_interval"]), 3), format_kid(row["kid"], row["kid_std"]),
                format_interval(row["precision"], tuple(row["precision_interval"]), 3), format_interval(row["recall"], tuple(row["recall_interval"]), 3),
                format_interval(detect["value"], tuple(detect["interval"]), 3) if detect else "–",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines


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
            what = _generated(image_set)
        else:
            labels = "/".join(sorted({"real" if r.label == 0 else "fake" for r in records}))
            what = f"{labels} images from {image_set.folder if isinstance(image_set, FolderImages) else image_set.manifest}"
        links = [f"[sample grid]({grid.name})"]
        if isinstance(image_set, GeneratedImages) and image_set.train_on is not None:
            history = result.plan.generator_dir(name) / "first_vs_last.png"
            if history.is_file():
                copy = reports / f"{name}-first-vs-last-epoch.png"
                shutil.copyfile(history, copy)
                links.append(f"[first vs last epoch]({copy.name})")
        lines.append(f"- **{name}**: {len(records)} images, {what}; {', '.join(links)}")
    return lines


def _generated(image_set: GeneratedImages) -> str:
    """What made a generated set, from the keys its generator needed."""
    if image_set.train_on is not None:
        epochs = image_set.train.get("epochs")
        return f"fake: sampled from a {image_set.generator} fdt trained on {image_set.train_on!r}" + (f" for {epochs} epochs" if epochs else "")
    model = f" with the model of {image_set.model!r}" if image_set.model else ""
    if image_set.inpaint is not None:
        return f"fake: {image_set.inpaint!r} images repainted by {image_set.generator}{model}"
    if image_set.prompts is not None:
        return f"fake: made by {image_set.generator} from the prompts of {Path(image_set.prompts).name}"
    return f"fake: made by {image_set.generator}{model}"


def _grid(paths: list[str], out: Path) -> None:
    from fdt.data import ImageDecodeError, load_rgb
    from fdt.gen.plots import image_grid, save_image

    pixels = []
    for path in paths:
        try:
            image = load_rgb(path)
        except ImageDecodeError:  # extraction recorded it as a failure; the grid shows the readable images
            continue
        pixels.append(np.asarray(image.resize((64, 64))).transpose(2, 0, 1))
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
            lines.append(f"- {matrix['title']}: mean {_metric(entry).format(_mean(matrix))}; {links}")
        if pca:
            lines.append(f"- PCA scatter: {', '.join(f'[{p.stem}]({relative}/{p.name})' for p in pca)}")
        lines.append("")
    for best in best_reports(result):
        folder = Path(best["folder"])
        files = matrix_files(folder)
        titles = [m["title"] for m in _per_resolution(best["report"]) if m["title"] in files and files[m["title"]]["heatmap"].is_file()]
        first = files[titles[0]]["heatmap"] if titles else None
        metric = _metric(best)
        lines += [f"Best on average by {metric.name} ({metric.direction}): **{best['label']}**.", ""]
        if first is not None:
            lines += [f"![{first.stem}]({folder.relative_to(reports)}/{first.name})", ""]
    return lines


def _mean(matrix: dict[str, Any]) -> float:
    return float(np.nanmean(np.array(matrix["values"], dtype=float)))


def _metric(entry: dict[str, Any]) -> Metric:
    return get_metric(entry["metric"])


def _report_mean(entry: dict[str, Any]) -> float:
    """The mean of a matrix report's per-resolution matrices, in its own metric."""
    means = [_mean(m) for m in _per_resolution(entry["report"])]
    return float(np.nanmean(means)) if means and not np.isnan(means).all() else float("nan")


def _by_metric(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Matrix reports grouped by the metric each shows, in order of first use: a mean is compared only with means of its own metric."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        groups.setdefault(entry["metric"], []).append(entry)
    return groups


def _best_of(entries: list[dict[str, Any]]) -> dict[str, Any]:
    metric = _metric(entries[0])
    return max(entries, key=lambda e: -np.inf if np.isnan(_report_mean(e)) else metric.sign * _report_mean(e))


def best_reports(result: "RunResult") -> list[dict[str, Any]]:
    """For each metric the matrix reports show, the report with the best mean (lowest for error rates such as ``eer``)."""
    return [_best_of(entries) for entries in _by_metric(result.matrix_reports).values()]


def best_report(result: "RunResult") -> dict[str, Any] | None:
    """The best matrix report of the first metric any report shows (:func:`best_reports`), or ``None`` without reports."""
    best = best_reports(result)
    return best[0] if best else None


def _per_resolution(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in report["matrices"] if m["title"].startswith("generalisation at")]


def _cross(report: dict[str, Any]) -> dict[str, Any] | None:
    return next((m for m in report["matrices"] if m["title"].startswith("cross-resolution")), None)


def _cells(matrix: dict[str, Any]) -> list[tuple[int, int, float, tuple[float, float] | None, list[str]]]:
    """``(row, column, value, interval, flags)`` of every cell of a matrix as written by :meth:`Matrix.to_dict`."""
    out = []
    intervals, cells = matrix.get("intervals"), matrix.get("cells")
    for i, row in enumerate(matrix["values"]):
        for j, value in enumerate(row):
            interval = intervals[i][j] if intervals else None
            flags = cells[i][j].get("flags", []) if cells else []
            out.append((i, j, np.nan if value is None else float(value), tuple(interval) if interval else None, list(flags)))
    return out


def _overlap(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool:
    return a is None or b is None or (a[0] <= b[1] and b[0] <= a[1])


def reading(result: "RunResult") -> list[str]:
    """Plain-language sentences drawn from this run's numbers, saying only what their intervals support."""
    sentences = []
    random = sorted({s["name"] for s in result.record.stages if s["stage"] == "extract" and s["weights"].startswith("random")})
    if random:
        sentences.append(
            f"{', '.join(random)} ran with seeded random weights (no ImageNet weights in the cache), so their features are "
            "the responses of an untrained network, not ImageNet features; place the weight files in the torch cache and re-run to compare."
        )
    sentences += _tuned_reading(result.cards)
    notes = [*result.shortcuts, *(note for entry in result.matrix_reports for note in entry["report"].get("notes", []))]
    sentences += [f"**{note.strip('*')}**" for note in dict.fromkeys(notes)]
    if not result.matrix_reports:
        return sentences or ["No matrices were requested."]
    for entries in _by_metric(result.matrix_reports).values():
        best = _best_of(entries)
        sentences += _ranking_reading(entries, best)
        sentences += _generalisation_reading(best)
    sentences += _flag_reading(result.matrix_reports)
    return sentences


def _tuned_reading(cards: list[dict[str, Any]]) -> list[str]:
    if not cards:
        return []

    def test_auc(card: dict[str, Any]) -> tuple[float, tuple[float, float] | None]:
        test = card.get("test") or {}
        interval = (test.get("intervals") or {}).get("roc_auc")
        return card["test_metrics"]["roc_auc"], tuple(interval) if interval else None

    ranked = sorted(cards, key=lambda c: -test_auc(c)[0])
    best, worst = ranked[0], ranked[-1]
    (b, b_int), (w, w_int) = test_auc(best), test_auc(worst)
    text = f"Of the {len(cards)} tuned detectors, {best['name']} scores the highest held-out test ROC AUC, {format_interval(b, b_int)}"
    if len(cards) > 1:
        text += f", and {worst['name']} the lowest, {format_interval(w, w_int)}"
        tied = [c["name"] for c in ranked[1:] if _overlap(test_auc(c)[1], b_int)]
        if len(tied) == len(cards) - 1:
            text += "; every interval overlaps the best one, so at this sample size they are indistinguishable"
        elif tied:
            text += f"; {', '.join(tied)} {'is' if len(tied) == 1 else 'are'} indistinguishable from the best at this sample size"
    return [text + " (95 % bootstrap intervals over held-out groups)."]


def _ranking_reading(reports: list[dict[str, Any]], best: dict[str, Any]) -> list[str]:
    """How the reports of one metric rank, and whether the best one is apart from the others at this sample size."""
    metric = _metric(best)
    extreme = "highest" if metric.higher_is_better else "lowest"
    ranking = ", ".join(f"{e['label']} {metric.format(_report_mean(e))}" for e in reports)
    text = f"Mean {metric.name} ({metric.direction}) over every train/test pair: {ranking}."
    others = [e for e in reports if e is not best]
    if others:
        mine = [c for m in _per_resolution(best["report"]) for c in _cells(m)]
        indistinct = []
        for other in others:
            theirs = [c for m in _per_resolution(other["report"]) for c in _cells(m)]
            if all(_overlap(a[3], b[3]) for a, b in zip(mine, theirs)):
                indistinct.append(other["label"])
        lead = f" {best['label']} has the best mean (the {extreme})"
        if len(indistinct) == len(others):
            text += f"{lead}, but every one of its cells' intervals overlaps the same cell of every other extractor: at this sample size they are indistinguishable."
        elif indistinct:
            text += f"{lead}; it is indistinguishable from {', '.join(indistinct)} at this sample size (every cell's interval overlaps)."
        else:
            text += f"{lead}, and at least one of its cells is clearly apart (intervals disjoint) from each other extractor's."
    return [text]


def _generalisation_reading(best: dict[str, Any]) -> list[str]:
    metric = _metric(best)
    sentences = []
    worse, better, same = 0, 0, 0
    for matrix in _per_resolution(best["report"]):
        cells = _cells(matrix)
        diagonal = {i: (v, ci) for i, j, v, ci, _ in cells if i == j}
        for i, j, value, interval, flags in cells:
            if i == j or i not in diagonal or SEEN_SOURCE in flags:  # a generator its network saw is not unseen
                continue
            d_value, d_interval = diagonal[i]
            if _overlap(interval, d_interval):
                same += 1
            elif metric.better(d_value, value):
                worse += 1
            else:
                better += 1
    total = worse + better + same
    if total:
        sentences.append(
            f"With {best['label']} ({metric.name}, {metric.direction}), of {total} cells testing a detector on a generator it never saw, {worse} score clearly worse than on its own "
            f"generator (intervals disjoint), {better} clearly better, and {same} are indistinguishable from it at this sample size."
        )
    cross = _cross(best["report"])
    if cross is not None:
        cells = _cells(cross)
        apart = [(i, j) for i, j, v, ci, _ in cells if i != j and not _overlap(ci, next(c[3] for c in cells if c[0] == i and c[1] == i))]
        sentences.append(
            f"Across resolutions ({', '.join(r.removeprefix('train ') for r in cross['rows'])}), "
            + (f"{len(apart)} of {len(cells) - len(cross['rows'])} cells tested at another resolution than the training one are clearly apart from the training resolution's score."
               if apart else "no detector scores clearly differently at another resolution than at its own (intervals overlap).")
        )
    return sentences


def _flag_reading(reports: list[dict[str, Any]]) -> list[str]:
    sentences = []
    for entry in reports:
        for matrix in entry["report"]["matrices"]:
            inverted = [f"{matrix['rows'][i]} → {matrix['columns'][j]}" for i, j, _, _, flags in _cells(matrix) if INVERTED in flags]
            if inverted:
                sentences.append(f"**Shortcut warning** ({entry['label']}, {matrix['title']}): {', '.join(inverted)} score below 0.5 ROC AUC, intervals included: {INVERTED}.")
            few = sum(TOO_FEW in flags for *_, flags in _cells(matrix))
            if few:
                sentences.append(f"{entry['label']}, {matrix['title']}: {few} cell(s) {TOO_FEW}.")
            seen = [f"{matrix['rows'][i]} → {matrix['columns'][j]}" for i, j, _, _, flags in _cells(matrix) if SEEN_SOURCE in flags]
            if seen:
                sentences.append(f"{entry['label']}, {matrix['title']}: {', '.join(seen)} {'is' if len(seen) == 1 else 'are'} {SEEN_SOURCE}; left out of the reading above.")
    return sentences
