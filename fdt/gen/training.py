"""What the generators fdt trains share: the model folder's checkpoints, pixel conversions and the per-epoch record.

Checkpoints are :class:`fdt.checkpoints.Checkpoint` files: ``checkpoint.pt``
(latest epoch, resumable) and, with ``keep_epochs``, ``epochs/epoch_NNN.pt``
(only what sampling needs) for comparing quality across training.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
from PIL import Image

from fdt.checkpoints import CheckpointMismatchError, read_checkpoint
from fdt.gen.errors import GenError
from fdt.gen.plots import image_grid, save_image, side_by_side

if TYPE_CHECKING:
    from fdt.gen.output import OutputFolder

CHECKPOINT = "checkpoint.pt"
EPOCHS = "epochs"


def epoch_checkpoint(out: Path, epoch: int) -> Path:
    """Where ``keep_epochs`` puts the snapshot of ``epoch``: ``out/epochs/epoch_NNN.pt``."""
    return out / EPOCHS / f"epoch_{epoch:03d}.pt"


def load_state(model: str | os.PathLike, kind: str, device: str = "cpu") -> dict[str, Any]:
    """The checkpoint of a model folder (its latest epoch) or a checkpoint file, or a one-line error saying how to make one."""
    path = Path(model)
    if path.is_dir() or not path.suffix:
        path = path / CHECKPOINT
    if not path.is_file():
        raise GenError(f"no {kind.upper()} checkpoint at {path}; train one with `fdt gen {kind} train`")
    try:
        return read_checkpoint(path, kind, device)
    except CheckpointMismatchError as error:
        raise GenError(str(error)) from None


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1] ``(n, channels, h, w)`` to ``uint8`` on the CPU."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


def to_pil(pixels: np.ndarray) -> Image.Image:
    """One ``uint8`` ``(channels, h, w)`` array as a PIL image: grayscale (mode ``L``) for one channel, else RGB."""
    return Image.fromarray(pixels[0]) if pixels.shape[0] == 1 else Image.fromarray(pixels.transpose(1, 2, 0))


def record_epoch(samples: np.ndarray, epoch: int, out: Path) -> None:
    """Save the epoch's sample grid and refresh ``first_vs_last.png`` (epoch 1 beside this one).

    The grids come from noise fixed for the whole run, so the comparison shows
    what training changed, not what the noise changed.
    """
    grid = image_grid(samples)
    folder = out / "samples"
    folder.mkdir(exist_ok=True)
    save_image(grid, folder / f"epoch_{epoch:03d}.png")
    first_path = folder / "epoch_001.png"
    first = grid
    if first_path.exists():
        with Image.open(first_path) as image:
            first = image.convert("RGB")
    save_image(side_by_side(first, grid, "epoch 1", f"epoch {epoch}"), out / "first_vs_last.png")


def check_counts(n: int, batch_size: int) -> None:
    """Refuse ``n`` images or a batch size below one, before a model is loaded."""
    if n < 1 or batch_size < 1:
        raise GenError(f"n and batch size must be at least 1, not {n} and {batch_size}")


def write_samples(
    folder: "OutputFolder", n: int, seed: int, batch_size: int, draw: Callable[[list[int]], np.ndarray], desc: str, progress: bool = True
) -> Path:
    """Write ``n`` images into ``folder``, ``batch_size`` at a time, and return its manifest: the sampling loop of every trained generator.

    Image ``i`` of the folder gets seed ``seed + i``, so an image is reproducible
    from its manifest row alone, independently of the batch size, and continuing
    a folder adds new images instead of repeating old ones. ``draw(seeds)``
    returns one ``uint8`` ``(channels, h, w)`` array per seed.
    """
    from tqdm.auto import tqdm

    from fdt.gen.output import GeneratedImage

    with tqdm(total=n, desc=desc, unit="img", disable=not progress) as bar:
        for start in range(0, n, batch_size):
            seeds = [seed + folder.next_index + i for i in range(min(batch_size, n - start))]
            folder.write([GeneratedImage(to_pil(p), s) for p, s in zip(draw(seeds), seeds)])
            bar.update(len(seeds))
    return folder.manifest
