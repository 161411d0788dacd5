"""Stable Diffusion inpainting of real images with diagonal and random masks (the seed study's SD2 set).

Which mask each output gets, seeds, grouping and mask files are decided by
:mod:`fdt.gen.inpainting`, shared with the small DDPM; this module only runs
the diffusers inpainting pipeline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from fdt.gen.errors import GenError
from fdt.gen.images import Images, as_records
from fdt.gen.inpainting import check_inpainting_options, inpaint_records
from fdt.gen.masks import mask_image
from fdt.gen.output import OutputFolder
from fdt.gen.resolve import load_pipeline, resolve_device, resolve_dtype

DEFAULT_MODEL = "stabilityai/stable-diffusion-2-inpainting"
DEFAULT_PROMPT = "Generate a painting compatible with the rest of the image."


def inpaint_sd(
    images: Images,
    out_dir: str | os.PathLike,
    model: str = DEFAULT_MODEL,
    masks: str | Sequence[str] = ("diagonal", "random"),
    per_image: int = 5,
    coverage: tuple[float, float] = (0.1, 0.4),
    prompt: str = DEFAULT_PROMPT,
    negative_prompt: str | None = None,
    steps: int = 50,
    guidance: float = 7.5,
    size: int = 512,
    batch_size: int = 4,
    seed: int = 0,
    device: str = "auto",
    dtype: str = "auto",
    source: str | None = None,
    progress: bool = True,
) -> Path:
    """Repaint ``per_image`` masked copies of each image and return the manifest path.

    Sources are centre-cropped to ``size`` (a multiple of 8); each output keeps
    its source as ``group`` and its mask (white = repainted) under ``.masks/``.
    The default of 5 per image with ``diagonal,random`` is the seed study's four
    triangles plus one random mask.
    """
    import torch
    from diffusers import AutoPipelineForInpainting

    if size % 8 or size < 8:
        raise GenError(f"size must be a positive multiple of 8, not {size}")
    if batch_size < 1 or steps < 1:
        raise GenError(f"batch size and steps must be at least 1, not {batch_size} and {steps}")
    check_inpainting_options(masks, per_image, coverage)
    records = as_records(images)
    device = resolve_device(device)
    pipeline = load_pipeline(AutoPipelineForInpainting, model, resolve_dtype(dtype, device), device)
    folder = OutputFolder(out_dir, model_id=model, source=source)

    def repaint(sources: list[Image.Image], mask_arrays: list[np.ndarray], seeds: list[int]) -> list[Image.Image]:
        return pipeline(
            prompt=[prompt] * len(sources),
            negative_prompt=[negative_prompt] * len(sources) if negative_prompt else None,
            image=sources,
            mask_image=[mask_image(m) for m in mask_arrays],
            height=size,
            width=size,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=[torch.Generator().manual_seed(s) for s in seeds],
        ).images

    return inpaint_records(records, folder, repaint, size, masks, per_image, coverage, seed, batch_size, prompt=prompt, progress=progress, desc="SD inpainting")
