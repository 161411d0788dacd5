"""Training records a person looks at: sample grids, first-vs-last comparisons, loss curves.

Plots use matplotlib's object API (no pyplot), so they work headless and never
touch a global figure state. Files are written atomically (:mod:`fdt.atomic`).
"""

from __future__ import annotations

import csv
import io
import math
import os
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from fdt.atomic import atomic_path, write_text


def image_grid(images: np.ndarray, padding: int = 2) -> Image.Image:
    """Tile ``uint8`` images ``(n, 3, h, w)`` into a near-square grid with a white border."""
    n, _, height, width = images.shape
    columns = math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    canvas = np.full((rows * (height + padding) + padding, columns * (width + padding) + padding, 3), 255, np.uint8)
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        canvas[top : top + height, left : left + width] = image.transpose(1, 2, 0)
    return Image.fromarray(canvas)


def side_by_side(left: Image.Image, right: Image.Image, left_title: str, right_title: str) -> Image.Image:
    """Two images next to each other with a title above each (the seed study's epoch 1 vs 100)."""
    title_height = 16
    width = left.width + right.width + 8
    canvas = Image.new("RGB", (width, max(left.height, right.height) + title_height), "white")
    canvas.paste(left, (0, title_height))
    canvas.paste(right, (left.width + 8, title_height))
    draw = ImageDraw.Draw(canvas)
    draw.text((2, 2), left_title, fill="black")
    draw.text((left.width + 10, 2), right_title, fill="black")
    return canvas


def save_image(image: Image.Image, path: str | os.PathLike) -> None:
    """Save a PNG atomically."""
    with atomic_path(path) as temporary:
        image.save(temporary, format="PNG")


def write_losses(rows: Sequence[dict[str, float]], columns: Sequence[str], csv_path: str | os.PathLike, png_path: str | os.PathLike) -> None:
    """Rewrite the loss table and its plot from the full history.

    The history lives in the checkpoint, so rewriting (not appending) keeps the
    CSV free of duplicate rows when an interrupted epoch is trained again.
    """
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)
    write_text(csv_path, table.getvalue())

    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.add_subplot()
    steps = np.arange(1, len(rows) + 1)
    for column in columns:
        if column.startswith("loss"):
            axes.plot(steps, [row[column] for row in rows], label=column, linewidth=1)
    axes.set_xlabel("iteration")
    axes.set_ylabel("loss")
    axes.legend()
    with atomic_path(png_path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
