"""Stable Diffusion text-to-image (any diffusers text-to-image pipeline) into a manifest folder.

Image number ``k`` of the output folder is drawn with a CPU ``torch.Generator``
seeded ``seed + k``: reproducible from its manifest row on any device and batch
size, and continuing a folder makes new images rather than repeats.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from fdt.gen.errors import GenError
from fdt.gen.output import GeneratedImage, OutputFolder
from fdt.gen.prompts import Prompt, check_group_by, image_group, read_prompts
from fdt.gen.resolve import load_pipeline, resolve_device, resolve_dtype

DEFAULT_MODEL = "stabilityai/stable-diffusion-2-1"


def generate_sd(
    prompts: str | os.PathLike | Sequence[str | Prompt],
    out_dir: str | os.PathLike,
    model: str = DEFAULT_MODEL,
    per_prompt: int = 1,
    max_captions: int | None = None,
    steps: int = 50,
    guidance: float = 7.5,
    size: int | None = None,
    batch_size: int = 4,
    negative_prompt: str | None = None,
    seed: int = 0,
    device: str = "auto",
    dtype: str = "auto",
    source: str | None = None,
    progress: bool = True,
    group_by: str = "prompt",
) -> Path:
    """Generate ``per_prompt`` images per prompt and return the manifest path.

    Parameters
    ----------
    prompts : path or list
        A text file (one prompt per line), a COCO captions ``.json`` (group = image
        id), or a list of strings (group = the prompt) / :class:`Prompt`.
    model : str
        A hub id (through the Hugging Face cache) or a ``save_pretrained`` folder.
    size : int, optional
        Output side in pixels; the model's native size by default.
    dtype : str
        ``auto`` is float16 on CUDA and float32 on CPU.
    group_by : {"prompt", "image"}
        An image's group: its prompt's (COCO captions: the photo's id), or its own
        (prompt group and seed) for generic prompts tied to no photo, so a few
        prompts still give a grouped split enough groups; refused for COCO captions.
    """
    import torch
    from diffusers import AutoPipelineForText2Image
    from tqdm.auto import tqdm

    if isinstance(prompts, (str, os.PathLike)):
        items = read_prompts(prompts, max_captions)
    else:
        items = [p if isinstance(p, Prompt) else Prompt(p, p) for p in prompts][:max_captions]
    if not items:
        raise GenError("no prompts given")
    check_group_by(group_by, items)
    if size is not None and (size % 8 or size < 8):
        raise GenError(f"size must be a positive multiple of 8 (the VAE halves it three times), not {size}")
    if per_prompt < 1 or batch_size < 1 or steps < 1:
        raise GenError(f"per-prompt, batch size and steps must be at least 1, not {per_prompt}, {batch_size} and {steps}")
    device = resolve_device(device)
    pipeline = load_pipeline(AutoPipelineForText2Image, model, resolve_dtype(dtype, device), device)
    folder = OutputFolder(out_dir, model_id=model, source=source)
    jobs = [prompt for prompt in items for _ in range(per_prompt)]
    with tqdm(total=len(jobs), desc="Stable Diffusion", unit="img", disable=not progress) as bar:
        for start in range(0, len(jobs), batch_size):
            batch = jobs[start : start + batch_size]
            seeds = [seed + folder.next_index + i for i in range(len(batch))]
            images = pipeline(
                prompt=[p.text for p in batch],
                negative_prompt=[negative_prompt] * len(batch) if negative_prompt else None,
                num_inference_steps=steps,
                guidance_scale=guidance,
                height=size,
                width=size,
                generator=[torch.Generator().manual_seed(s) for s in seeds],
            ).images
            folder.write([GeneratedImage(image, s, prompt=p.text, group=image_group(p, s, group_by)) for image, s, p in zip(images, seeds, batch)])
            bar.update(len(batch))
    return folder.manifest
