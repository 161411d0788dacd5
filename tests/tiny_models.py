"""Tiny model folders built offline from configs (random weights), in the layout the real models ship in."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def tiny_clip_vision(folder: Path, weights: bool = False) -> Path:
    """A 2-layer CLIP vision tower (30 px, patch 15, projection 16) with its CLIP image-processor config."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    config = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=30, patch_size=15, projection_dim=16)
    if weights:
        import torch

        torch.manual_seed(1)
        CLIPVisionModelWithProjection(config).save_pretrained(folder)
    else:
        config.save_pretrained(folder)
    CLIPImageProcessorPil(size={"shortest_edge": 30}, crop_size={"height": 30, "width": 30}).save_pretrained(folder)
    return folder


def tiny_full_clip(folder: Path) -> Path:
    """A whole tiny CLIP (text and image towers, a ``clip`` config with ``vision_config``), as OpenAI's checkpoints are."""
    import torch
    from transformers import CLIPConfig, CLIPModel
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    config = CLIPConfig(
        text_config=dict(vocab_size=99, hidden_size=16, intermediate_size=20, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=8),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=30, patch_size=15),
        projection_dim=12,
    )
    torch.manual_seed(2)
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessorPil(size={"shortest_edge": 30}, crop_size={"height": 30, "width": 30}).save_pretrained(folder)
    return folder


def tiny_dinov2(folder: Path, weights: bool = False) -> Path:
    """A 2-layer DINOv2 (28 px, patch 14) with DINOv2's processor config (shortest edge 32, centre crop 28)."""
    from transformers import Dinov2Config, Dinov2Model
    from transformers.models.bit.image_processing_pil_bit import BitImageProcessorPil

    config = Dinov2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=28, patch_size=14)
    if weights:
        import torch

        torch.manual_seed(3)
        Dinov2Model(config).save_pretrained(folder)
    else:
        config.save_pretrained(folder)
    BitImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 28, "width": 28}, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD, resample=3
    ).save_pretrained(folder)
    return folder


def tiny_vae_config(folder: Path) -> Path:
    """A two-level ``AutoencoderKL`` config (8 and 16 channels, 4 latent channels): downsampling factor 2."""
    from diffusers import AutoencoderKL

    folder.mkdir(parents=True, exist_ok=True)
    AutoencoderKL.from_config(tiny_vae_dict()).save_config(folder)
    return folder


def tiny_vae_dict() -> dict:
    return dict(
        block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1, latent_channels=4, norm_num_groups=4, sample_size=16,
    )


def as_hub_cache(folder: Path, cache: Path, repo: str, commit: str = "0" * 40) -> None:
    """Lay ``folder``'s files out as the Hugging Face cache does: ``blobs/<sha256>`` and ``snapshots/<commit>/`` links."""
    import hashlib

    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        blob = root / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, blob)
        link = root / "snapshots" / commit / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
