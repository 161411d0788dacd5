"""Perturbed copies on disk, for looking at: ``fdt perturb DATA --out DIR``.

Extraction never writes perturbed images (it perturbs in memory); this is the
one place that does, so a researcher can see what a level does to the images
before trusting a sweep. Copies are PNG, so what is on disk is exactly what an
extractor sees (a JPEG level's artefacts included, nothing added by saving).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Sequence

from fdt.data import DataError, ImageDecodeError, ImageRecord, load_rgb, write_manifest
from fdt.perturb import Chain

COLUMNS = ("path", "source", "label", "group", "perturb", "original")


def level_folder(chain: Chain) -> str:
    """A file-name-safe folder name for a level: ``clean``, ``jpeg-quality-75-backend-pil``."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", chain.key).strip("-") or "clean"


def write_perturbed(
    records: Sequence[ImageRecord], levels: Sequence[Chain], out: str | os.PathLike, grid: int = 6, progress: bool = True
) -> tuple[Path, Path, dict[str, str]]:
    """Write every record at every level as ``out/<level>/<source>/<name>.png`` plus ``manifest.csv`` and ``grid.png``.

    Returns ``(manifest, grid PNG, {path: reason} of images that could not be read or perturbed)``.
    ``out`` must be new or empty: nothing the user had is overwritten.
    """
    from tqdm.auto import tqdm

    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise DataError(f"{target} is not an empty folder; give a new or empty one")
    levels = list(dict.fromkeys(levels)) or [Chain()]
    rows, failures, samples = [], {}, []
    for record in tqdm(records, unit="img", desc="perturb", disable=not progress):
        try:
            data = Path(record.path).read_bytes()
            image = load_rgb(data)
        except (OSError, ImageDecodeError) as error:
            failures[record.path] = str(error)
            continue
        sha = hashlib.sha256(data).hexdigest()
        outputs = []
        for chain in levels:
            try:
                perturbed = chain.apply(image, sha)
            except ImageDecodeError as error:
                failures[record.path] = str(error)
                outputs.append(None)
                continue
            relative = Path(level_folder(chain)) / record.source / f"{Path(record.path).stem}-{sha[:8]}.png"
            (target / relative.parent).mkdir(parents=True, exist_ok=True)
            perturbed.save(target / relative)
            rows.append({"path": relative.as_posix(), "source": record.source, "label": record.label, "group": record.group, "perturb": chain.key, "original": record.path})
            outputs.append(perturbed)
        if len(samples) < grid and None not in outputs:
            samples.append((record, outputs))
    target.mkdir(parents=True, exist_ok=True)
    manifest = target / "manifest.csv"
    write_manifest(manifest, rows, COLUMNS)
    return manifest, sample_grid(samples, levels, target / "grid.png"), failures


def sample_grid(samples: list, levels: Sequence[Chain], path: Path) -> Path:
    """A PNG with one row per sample image and one column per level."""
    from matplotlib.figure import Figure

    rows, columns = max(1, len(samples)), len(levels)
    figure = Figure(figsize=(2.2 * columns, 2.3 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for i in range(rows):
        for j, chain in enumerate(levels):
            ax = axes[i][j]
            ax.set_axis_off()
            if i < len(samples):
                record, outputs = samples[i]
                ax.imshow(outputs[j])
                if i == 0:
                    ax.set_title(chain.key.replace("|", "\n") or "clean", fontsize=7)
                if j == 0:
                    ax.text(0, -0.02, f"{record.source}", transform=ax.transAxes, fontsize=7, va="top")
    figure.savefig(path, dpi=100)
    return path
