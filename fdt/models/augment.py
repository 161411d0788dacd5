"""Training-time augmentation: random flips and :mod:`fdt.perturb` operations, each with a probability.

CNNDetection (Wang et al. 2020) trains with random flips, random crops, and blur
and JPEG each with a probability; fdt's perturbations already implement those
operations the way the field's benchmarks apply them, so augmentation reuses
them. A spec is ``flip``, or any perturbation (``blurjpeg:prob=0.1``,
``crop:size=56,at=random``, ``jpeg:quality=75``), each optionally with ``p=``
(the probability it is applied; ``flip`` defaults to 0.5, the others to 1).

Augmentation runs only in training, never on validation images or at
extraction. Its randomness is drawn from a generator seeded by (run seed,
epoch, image hash), so each image changes from epoch to epoch, and a resumed run
replays exactly the augmentations of an uninterrupted one, in any worker.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

from fdt.perturb import Operation, PerturbError, parse_operation


@dataclass(frozen=True)
class Augmentation:
    """One augmentation step: ``flip`` (``operation`` None) or a perturbation, applied with probability ``p``."""

    operation: Operation | None
    p: float

    @property
    def key(self) -> str:
        name = "flip" if self.operation is None else self.operation.key
        return f"{name},p={self.p:g}" if (self.operation is None or self.p != 1.0) else name

    def apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        if rng.random() >= self.p:
            return image
        if self.operation is None:
            return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return self.operation.apply(image, rng)


def parse_augmentation(spec: str) -> Augmentation:
    """``"flip"``, ``"flip:p=0.3"``, ``"blurjpeg:prob=0.1"``, ``"jpeg:quality=75,p=0.5"`` -> :class:`Augmentation`."""
    name, _, rest = spec.strip().partition(":")
    parts = [part.strip() for part in rest.split(",") if part.strip()]
    probability = [part for part in parts if part.replace(" ", "").startswith("p=")]
    others = [part for part in parts if part not in probability]
    p = 0.5 if name.strip().lower() == "flip" else 1.0
    if probability:
        text = probability[-1].partition("=")[2]
        try:
            p = float(text)
        except ValueError:
            p = -1.0
        if not 0.0 <= p <= 1.0:
            raise PerturbError(f"augmentation {spec!r}: p must be a probability in [0, 1], not {text!r}")
    if name.strip().lower() == "flip":
        if others:
            raise PerturbError(f"augmentation {spec!r}: flip takes only p=")
        return Augmentation(None, p)
    return Augmentation(parse_operation(f"{name}:{','.join(others)}" if others else name), p)


def parse_augmentations(specs: Sequence[str]) -> tuple[Augmentation, ...]:
    return tuple(parse_augmentation(spec) for spec in specs if spec.strip())


def augment(image: Image.Image, steps: Sequence[Augmentation], seed: int, epoch: int, sha256: str) -> Image.Image:
    """``image`` through ``steps`` in order, with randomness fixed by (seed, epoch, image hash)."""
    if not steps:
        return image
    digest = hashlib.sha256(f"{seed}|{epoch}|{sha256}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    for step in steps:
        image = step.apply(image, rng)
    return image
