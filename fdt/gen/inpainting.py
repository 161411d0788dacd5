"""Inpainting shared by every model: which mask each output gets, loading sources, writing outputs.

A model only supplies a ``repaint`` function (source images, masks, seeds ->
images); this module decides the rest identically for Stable Diffusion and the
small DDPM. Output number ``k`` of a folder has seed ``seed + k`` (its random
mask and its noise come from that seed), so every image is reproducible from
its manifest row, and continuing a folder never repeats an earlier output.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from fdt.data import ImageDecodeError, ImageRecord
from fdt.gen.errors import GenError
from fdt.gen.masks import check_coverage, make_mask, mask_plan
from fdt.gen.output import GeneratedImage, OutputFolder

Repaint = Callable[[list[Image.Image], list[np.ndarray], list[int]], list[Image.Image]]


@dataclass(frozen=True)
class Inpainting:
    """One planned output: its source, mask kind and seed."""

    record: ImageRecord
    mask_kind: str
    seed: int


def check_inpainting_options(masks: str | Sequence[str], per_image: int, coverage: tuple[float, float]) -> None:
    """Refuse bad mask options before a model loads, not after the first outputs are written."""
    mask_plan(masks, per_image)
    check_coverage(coverage)


def plan_inpaintings(records: Sequence[ImageRecord], masks: str | Sequence[str], per_image: int, seed: int, first_index: int) -> list[Inpainting]:
    """Every output of a run, in the order they will be numbered from ``first_index``."""
    plan: list[Inpainting] = []
    for record in records:
        index = first_index + len(plan)
        plan += [Inpainting(record, kind, seed + index + j) for j, kind in enumerate(mask_plan(masks, per_image, offset=index))]
    return plan


def inpaint_records(
    records: Sequence[ImageRecord],
    folder: OutputFolder,
    repaint: Repaint,
    size: int,
    masks: str | Sequence[str],
    per_image: int,
    coverage: tuple[float, float],
    seed: int,
    batch_size: int,
    prompt: str = "",
    progress: bool = True,
    desc: str = "inpainting",
) -> Path:
    """Repaint ``per_image`` masked copies of each source, batch by batch, and return the manifest.

    Sources are centre-cropped to ``size``; unreadable ones are skipped with one
    warning. Each output's group is its source's (see
    :func:`fdt.gen.images.source_group`) and its mask is saved beside it.
    """
    from tqdm.auto import tqdm

    from fdt.gen.images import load_square, source_group

    plan = plan_inpaintings(records, masks, per_image, seed, folder.next_index)
    failures: list[str] = []
    groups: dict[str, str] = {}
    with tqdm(total=len(plan), desc=desc, unit="img", disable=not progress) as bar:
        for start in range(0, len(plan), batch_size):
            batch = plan[start : start + batch_size]
            sources, kept = [], []
            for item in batch:
                try:
                    sources.append(load_square(item.record.path, size))
                    kept.append(item)
                except ImageDecodeError as error:
                    failures.append(f"{item.record.path}: {error}")
            if kept:
                mask_arrays = [make_mask(item.mask_kind, size, size, coverage, item.seed) for item in kept]
                images = repaint(sources, mask_arrays, [item.seed for item in kept])
                outputs = []
                for item, image, mask in zip(kept, images, mask_arrays):
                    group = groups.setdefault(item.record.path, source_group(item.record))
                    outputs.append(GeneratedImage(image, item.seed, prompt=prompt, group=group, mask=mask, mask_kind=item.mask_kind))
                folder.write(outputs)
            bar.update(len(batch))
    if plan and len(failures) == len(plan):
        raise GenError(f"none of the {len(records)} source image(s) could be read, e.g. {failures[0]}")
    if failures:
        warnings.warn(f"skipped {len(failures)} output(s) of unreadable source image(s), e.g. {failures[0]}", stacklevel=2)
    return folder.manifest
