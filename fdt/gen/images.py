"""Turning the images a generator is given (folder, manifest, file or records) into pixels.

Generators take the same image sets as every other stage, through
:func:`fdt.data.load_image_set` and :func:`fdt.data.load_rgb`, so a photo
decodes to the same pixels for training a GAN as for extracting features.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence, Union

import numpy as np
from PIL import Image, ImageOps

from fdt.data import IMAGE_SUFFIXES, REAL, DataError, ImageDecodeError, ImageRecord, load_image_set, load_rgb, sha256_file

GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "F")

Images = Union[str, os.PathLike, Sequence[Union[str, os.PathLike, ImageRecord]]]


def as_records(images: Images) -> list[ImageRecord]:
    """An image set from a folder, a ``.csv`` manifest, one image file, or a list of paths/records."""
    if isinstance(images, (str, os.PathLike)):
        path = Path(images)
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            return [ImageRecord(str(path), path.parent.name, REAL)]
        return load_image_set(path)
    records = [item if isinstance(item, ImageRecord) else ImageRecord(str(item), Path(item).parent.name, REAL) for item in images]
    if not records:
        raise DataError("no images given")
    return records


def load_square(path: str | os.PathLike, size: int, channels: int = 3) -> Image.Image:
    """Centre-crop to a square and resize to ``size×size`` (bicubic), keeping aspect ratio; ``channels=1`` gives grayscale."""
    image = ImageOps.fit(load_rgb(path), (size, size), Image.Resampling.BICUBIC)
    return image.convert("L") if channels == 1 else image


def image_channels(records: Sequence[ImageRecord]) -> int:
    """1 if every image is stored grayscale, else 3: generators make fakes in the mode of their reals.

    A grayscale real set with RGB fakes could be told apart by colour alone, so a
    model trained on grayscale images is a grayscale model. Only headers are read.
    """
    for record in records:
        try:
            with Image.open(record.path) as image:
                if image.mode not in GRAYSCALE_MODES:
                    return 3
        except (OSError, ValueError, Image.DecompressionBombError):  # unreadable files are reported when they are decoded
            continue
    return 1


def source_group(record: ImageRecord) -> str:
    """The group of an image made from ``record``: the source's own group, else its content hash.

    The content hash is the group :func:`fdt.grouping.group_of` gives an
    ungrouped real image, so an inpainting and its source always share a group
    and never sit on both sides of a split.
    """
    return record.group or f"sha256:{sha256_file(record.path)}"


def load_training_array(records: Sequence[ImageRecord], size: int, channels: int = 3, progress: bool = True) -> tuple[np.ndarray, list[str]]:
    """All training images as one ``uint8`` array ``(n, channels, size, size)`` held in memory, and their content SHA-256s.

    The hashes say which images a checkpoint was trained on
    (:func:`fdt.checkpoints.training_data_sha256`). Unreadable images are skipped
    with one warning naming how many and the first reason: one corrupt file
    should not stop a 100-epoch run, nor pass unnoticed.
    """
    from tqdm.auto import tqdm

    arrays, hashes, failures = [], [], []
    for record in tqdm(records, desc="loading images", unit="img", disable=not progress):
        try:
            pixels = np.asarray(load_square(record.path, size, channels))
        except ImageDecodeError as error:
            failures.append(f"{record.path}: {error}")
            continue
        arrays.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))
        hashes.append(sha256_file(record.path))
    if failures:
        warnings.warn(f"skipped {len(failures)} unreadable image(s), e.g. {failures[0]}", stacklevel=2)
    if not arrays:
        raise DataError("none of the training images could be read")
    return np.stack(arrays), hashes
