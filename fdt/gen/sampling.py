"""Sampling any checkpoint a generator fdt trained: the latest, or one epoch's (quality across training).

A model trained with ``keep_epochs=True`` keeps ``epochs/epoch_NNN.pt``;
:func:`epoch_checkpoints` lists them and :func:`sample_checkpoint` writes ``n``
images from any one of them (or from a model folder's latest checkpoint) into
an output folder with a manifest, whichever generator wrote it. Seeds follow
the generator's own sampling function, so two epochs sampled with the same
seed start from the same noise and differ only by training.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from fdt.gen.errors import GenError
from fdt.gen.training import EPOCHS

_EPOCH = re.compile(r"^epoch_(\d+)\.pt$")


def epoch_checkpoints(model_dir: str | os.PathLike) -> dict[int, Path]:
    """Epoch number to per-epoch checkpoint file of a model folder trained with ``keep_epochs``, in epoch order."""
    folder = Path(model_dir) / EPOCHS
    found = {int(m.group(1)): path for path in folder.glob("epoch_*.pt") if (m := _EPOCH.match(path.name))} if folder.is_dir() else {}
    return dict(sorted(found.items()))


def sample_checkpoint(
    checkpoint: str | os.PathLike,
    n: int,
    out_dir: str | os.PathLike,
    seed: int = 0,
    device: str = "auto",
    source: str | None = None,
    progress: bool = True,
    **options: Any,
) -> Path:
    """Write ``n`` images from ``checkpoint`` (a model folder or a checkpoint file) into ``out_dir``; return the manifest.

    The checkpoint's ``kind`` picks the generator (:mod:`fdt.gen.registry`), so
    DCGAN and DDPM checkpoints are sampled alike; ``options`` go to that
    generator's sampling function (``steps`` for the DDPM, ``batch_size``).
    """
    from fdt.checkpoints import CheckpointMismatchError, read_checkpoint
    from fdt.gen.registry import get_generator
    from fdt.gen.training import CHECKPOINT

    path = Path(checkpoint)
    file = path / CHECKPOINT if path.is_dir() else path
    try:
        kind = read_checkpoint(file)["kind"]
    except CheckpointMismatchError as error:
        raise GenError(str(error)) from None
    spec = get_generator(kind)
    if spec.kind != "sample" or not spec.train:
        raise GenError(f"{file} is a {kind} checkpoint, which fdt does not sample from")
    spec.check_params("make", options, f"the sampling options of a {kind} checkpoint")
    make = spec.function("make")
    return make(model_dir=file, n=n, out_dir=out_dir, seed=seed, device=device, source=source, progress=progress, **options)
