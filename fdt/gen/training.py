"""What the generators fdt trains share: resumable checkpoints and the per-epoch record.

A checkpoint holds everything a run's future depends on (weights, optimizer
moments, the seeded ``torch.Generator`` states, the loss history), so training
resumed from it ends exactly where an uninterrupted run with the same seed
would. It is written to a temporary name and renamed: a kill mid-write leaves
the previous epoch's checkpoint intact.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from fdt.atomic import atomic_path
from fdt.data import ImageRecord
from fdt.gen.errors import GenError
from fdt.gen.plots import image_grid, save_image, side_by_side

CHECKPOINT = "checkpoint.pt"


def data_digest(records: Sequence[ImageRecord]) -> str:
    """A short identity of a training set's file paths (not their contents), so a resume on other files is refused."""
    return hashlib.sha256("\n".join(sorted(r.path for r in records)).encode()).hexdigest()[:16]


def check_resume(config: dict[str, Any], saved: dict[str, Any], out: Path) -> None:
    """Refuse to resume a checkpoint trained with other settings (only the epoch count may grow)."""
    differences = [f"{key} {saved.get(key)!r} -> {value!r}" for key, value in config.items() if saved.get(key) != value]
    if differences:
        raise GenError(f"cannot resume {out}: the run differs from its checkpoint ({'; '.join(differences)}); choose another --out")


def global_rng_state() -> dict[str, Any]:
    """Global RNG states, saved so code that draws from them (libraries, augmentations) resumes too."""
    numpy_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "numpy_key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
        "numpy_pos": numpy_state["state"]["pos"],
        "numpy_gauss": (numpy_state["has_gauss"], numpy_state["gauss"]),
        "python": random.getstate(),
    }


def set_global_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    has_gauss, gauss = state["numpy_gauss"]
    np.random.set_state(("MT19937", state["numpy_key"].numpy().astype(np.uint32), state["numpy_pos"], has_gauss, gauss))
    random.setstate(state["python"])


def restore_checkpoint(
    checkpoint_path: Path, config: dict[str, Any], out: Path, device: str, stateful: dict[str, Any], generators: dict[str, torch.Generator]
) -> tuple[list[dict[str, float]], int]:
    """Restore a training run from its checkpoint, if there is one: ``(losses so far, last finished epoch)``.

    ``stateful`` maps checkpoint keys to objects with ``load_state_dict`` (models,
    optimisers) and ``generators`` to the run's ``torch.Generator``s; the global
    RNGs are restored too, so the resumed run continues exactly where it stopped.
    """
    if not checkpoint_path.exists():
        return [], 0
    state = torch.load(checkpoint_path, map_location=device, weights_only=True)
    check_resume(config, state["config"], out)
    for name, target in stateful.items():
        target.load_state_dict(state[name])
    for name, generator in generators.items():
        generator.set_state(state[name])
    set_global_rng_state(state["global_rng"])
    return state["losses"], state["epoch"]


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` atomically over the previous checkpoint."""
    with atomic_path(path) as temporary:
        torch.save(state, temporary)


def load_checkpoint(path: Path, what: str, device: str = "cpu") -> dict[str, Any]:
    """A checkpoint's state, or a one-line error saying how to make one."""
    if not path.is_file():
        raise GenError(f"no {what} checkpoint at {path}; train one with `fdt gen {what.lower()} train`")
    return torch.load(path, map_location=device, weights_only=True)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1] ``(n, 3, h, w)`` to ``uint8`` on the CPU."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


def to_pil(pixels: np.ndarray) -> Image.Image:
    """One ``uint8`` ``(3, h, w)`` array as a PIL image."""
    return Image.fromarray(pixels.transpose(1, 2, 0))


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
