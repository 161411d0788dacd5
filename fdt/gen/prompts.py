"""Prompts for text-to-image: one per line of a text file, or the captions of a COCO annotations file.

Each prompt carries the group its images belong to: ``coco:<image id>`` for a
caption (the five captions of one photo describe one scene, and the photo itself
is grouped the same way by :func:`fdt.data.coco_image_group`, so a photo and the
fakes made from its captions stay on one side of a split), the prompt text
itself for a text file.

A text file of a few generic prompts ("A face of a man", seed study 001) gives
only as many groups as prompts, too few for a grouped split to hold any out;
:func:`image_group` with ``group_by="image"`` makes each image its own group
instead. Captions stay grouped by their photo: splitting a photo from the fakes
drawn from its description is the leak the grouping exists to prevent.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from fdt.data import coco_group
from fdt.gen.errors import GenError


GROUP_BY = ("prompt", "image")


@dataclass(frozen=True)
class Prompt:
    """A prompt and the group of the images made from it; ``photo`` when that group is a real photo's (a COCO caption)."""

    text: str
    group: str
    photo: bool = False


def check_group_by(group_by: str, prompts: Sequence[Prompt]) -> None:
    """Refuse an unknown ``group_by``, and ``"image"`` for prompts grouped with the real photo they describe."""
    if group_by not in GROUP_BY:
        raise GenError(f"group_by must be one of {', '.join(GROUP_BY)}, not {group_by!r}")
    if group_by == "image" and any(p.photo for p in prompts):
        raise GenError(
            "group_by='image' would split COCO captions' fakes from the photo they describe (group coco:<image id>); "
            "captions already give one group per photo, so keep group_by='prompt'"
        )


def image_group(prompt: Prompt, seed: int, group_by: str = "prompt") -> str:
    """The group of the image drawn from ``prompt`` with ``seed``: the prompt's, or (``"image"``) one of its own.

    An image's own group is its prompt's group and its seed, which is unique in
    its output folder and the same on every re-run, so groups are reproducible.
    """
    return prompt.group if group_by == "prompt" else f"{prompt.group}|seed={seed}"


def read_prompts(path: str | os.PathLike, max_captions: int | None = None) -> list[Prompt]:
    """Prompts from a ``.json`` COCO captions file or a text file, the first ``max_captions`` of them."""
    path = Path(path)
    if not path.is_file():
        raise GenError(f"prompt file does not exist: {path}")
    if max_captions is not None and max_captions < 1:
        raise GenError(f"max captions must be at least 1, not {max_captions}")
    try:
        prompts = read_coco_captions(path) if path.suffix.lower() == ".json" else _read_lines(path)
    except UnicodeDecodeError as error:
        raise GenError(f"{path} is not UTF-8 text (byte {error.start}: {error.reason})") from None
    if not prompts:
        raise GenError(f"{path} holds no prompts")
    return prompts[:max_captions]


def _read_lines(path: Path) -> list[Prompt]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [Prompt(line, line) for line in lines if line]


def read_coco_captions(path: str | os.PathLike) -> list[Prompt]:
    """The captions of a COCO ``captions_*.json`` file in file order, grouped by image id."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise GenError(f"{path} is not valid JSON: {error}") from None
    annotations = data.get("annotations") if isinstance(data, dict) else None
    if not isinstance(annotations, list):
        raise GenError(f"{path} is not a COCO captions file (no 'annotations' list)")
    prompts = []
    for index, annotation in enumerate(annotations):
        if not isinstance(annotation, dict) or "caption" not in annotation or "image_id" not in annotation:
            raise GenError(f"{path}: annotation {index} lacks 'caption' or 'image_id'")
        caption = " ".join(str(annotation["caption"]).split())
        if caption:
            prompts.append(Prompt(caption, coco_group(annotation["image_id"]), photo=True))
    return prompts
