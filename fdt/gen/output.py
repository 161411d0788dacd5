"""Where generators write: numbered PNGs that never overwrite, and an append-only manifest.

An output folder holds ``000000.png, 000001.png, ...``, the masks of inpaintings
under ``.masks/`` as ``NNNNNN-KIND.png`` (hidden, so loading the folder as an image
set never mistakes a mask for a fake; the name says which mask it was), and
``manifest.csv`` with :data:`GEN_COLUMNS`, paths relative to the folder. Writing into a
folder that already holds images continues the numbering. Each image is written
to a temporary name and renamed, and the manifest is appended after each batch,
so an interrupted run leaves a manifest listing exactly the complete images.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from fdt.atomic import atomic_path
from fdt.data import FAKE, write_manifest
from fdt.gen.errors import GenError
from fdt.gen.masks import mask_image

MANIFEST_NAME = "manifest.csv"
MASK_FOLDER = ".masks"
GEN_COLUMNS = ("path", "source", "label", "group", "seed", "prompt", "model_id", "mask_path")
_NUMBERED = re.compile(r"^(\d{6,})\.png$")


@dataclass
class GeneratedImage:
    """One generated image and what the manifest says about it.

    ``group`` is empty for unconditional samples (each image is its own group);
    ``mask`` is the boolean repaint mask of an inpainting and ``mask_kind`` its
    name (``upper-left``, ``random``, ...).
    """

    image: Image.Image
    seed: int
    prompt: str = ""
    group: str = ""
    mask: np.ndarray | None = None
    mask_kind: str = ""


class OutputFolder:
    """A generator's output folder: numbering, atomic image writes and the manifest.

    Parameters
    ----------
    folder : path
        Created if missing.
    model_id : str
        Written to every row: the hub id or folder the images came from.
    source : str, optional
        The image-set source name; defaults to the folder's name, which is also
        the name :func:`fdt.data.from_folder` gives a sub-folder.
    """

    def __init__(self, folder: str | os.PathLike, model_id: str, source: str | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.model_id = model_id
        self.source = source or self.folder.resolve().name
        self.manifest = self.folder / MANIFEST_NAME
        self._check_manifest_header()
        self.next_index = self._first_free_index()

    def _check_manifest_header(self) -> None:
        if not self.manifest.exists() or self.manifest.stat().st_size == 0:
            return
        with open(self.manifest, newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
        if tuple(header) != GEN_COLUMNS:
            raise GenError(f"{self.manifest} has columns {','.join(header)}, not a generator manifest's {','.join(GEN_COLUMNS)}; choose another --out")

    def _first_free_index(self) -> int:
        used = [int(m.group(1)) for p in self.folder.iterdir() if (m := _NUMBERED.match(p.name))]
        return max(used, default=-1) + 1

    def write(self, items: Sequence[GeneratedImage]) -> list[Path]:
        """Save a batch under the next free numbers, then append its manifest rows."""
        rows, paths = [], []
        for item in items:
            stem = f"{self.next_index:06d}"
            name = f"{stem}.png"
            self.next_index += 1
            _save_png(item.image, self.folder / name)
            mask_path = ""
            if item.mask is not None:
                mask_path = f"{MASK_FOLDER}/{stem}-{item.mask_kind or 'mask'}.png"
                (self.folder / MASK_FOLDER).mkdir(exist_ok=True)
                _save_png(mask_image(item.mask), self.folder / mask_path)
            rows.append(
                {
                    "path": name,
                    "source": self.source,
                    "label": FAKE,
                    "group": item.group,
                    "seed": item.seed,
                    "prompt": item.prompt,
                    "model_id": self.model_id,
                    "mask_path": mask_path,
                }
            )
            paths.append(self.folder / name)
        write_manifest(self.manifest, rows, GEN_COLUMNS)
        return paths


def _save_png(image: Image.Image, path: Path) -> None:
    with atomic_path(path) as temporary:
        image.save(temporary, format="PNG")
