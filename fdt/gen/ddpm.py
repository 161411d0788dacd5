"""A small DDPM (diffusers ``UNet2DModel``) that trains on a laptop CPU, samples with DDIM, and inpaints.

So the toolkit can make diffusion fakes and inpaintings with no downloaded
weights: a UNet of about a million parameters learns 32 px (or 64 px) images
in minutes on two cores; sampling uses DDIM (deterministic, ``eta = 0``) with
``trailing`` timesteps so even a handful of steps starts from pure noise.
Inpainting is RePaint-style conditioning without resampling jumps: before
every denoising step the known region is re-noised to the current timestep
and pasted in through the mask, and the final image keeps the source's known
pixels exactly.

Sizes are any multiple of the UNet's halvings (48 px for seed 003's FER2013
faces); ``channels=1`` makes a grayscale model, and by default the model has
the mode of its training images, so grayscale reals get grayscale fakes.

Files in a model folder: ``checkpoint.pt`` (weights, optimizer, seeded RNG
states, loss history; :mod:`fdt.checkpoints`, written atomically every epoch),
``epochs/epoch_NNN.pt`` (with ``keep_epochs``: the UNet after each epoch), ``config.json``,
``samples/epoch_NNN.png`` (fixed-noise grid per epoch), ``first_vs_last.png``,
``losses.csv`` and ``losses.png``.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from fdt.atomic import write_json
from fdt.checkpoints import Checkpoint, CheckpointMismatchError, training_data_sha256
from fdt.gen.errors import GenError
from fdt.gen.images import Images, as_records, load_training_array
from fdt.gen.images import image_channels as image_channels_of
from fdt.gen.inpainting import check_inpainting_options, inpaint_records
from fdt.gen.output import OutputFolder
from fdt.gen.plots import write_losses
from fdt.gen.resolve import resolve_device
from fdt.gen.training import CHECKPOINT, check_counts, epoch_checkpoint, load_state, record_epoch, to_pil, to_uint8, write_samples

LOSS_COLUMNS = ("epoch", "iteration", "loss")
TRAIN_TIMESTEPS = 1000
BETA_SCHEDULE = "squaredcos_cap_v2"
DEFAULT_CHANNELS = {32: (32, 64, 64), 48: (32, 64, 64), 64: (16, 32, 64, 64)}


def build_unet(size: int, channels: Sequence[int] | None = None, image_channels: int = 3):
    """A small ``UNet2DModel``: one ResNet layer per block, attention only at the coarsest level.

    ``channels`` are the widths per level; ``image_channels`` is 1 for grayscale
    images, 3 for RGB. Weights are initialised from the global torch RNG;
    callers that need a seeded init wrap this in :func:`torch.random.fork_rng`.
    """
    from diffusers import UNet2DModel

    if size not in DEFAULT_CHANNELS and channels is None:
        raise GenError(f"DDPM size must be one of {', '.join(map(str, DEFAULT_CHANNELS))} (or pass channels), not {size}")
    if image_channels not in (1, 3):
        raise GenError(f"image channels must be 1 (grayscale) or 3 (RGB), not {image_channels}")
    channels = tuple(channels or DEFAULT_CHANNELS[size])
    if size % 2 ** (len(channels) - 1) or any(c % 8 for c in channels):
        raise GenError(f"DDPM channels {channels} do not fit {size} px: {len(channels) - 1} halvings of the size, widths multiples of 8")
    down = ("DownBlock2D",) * (len(channels) - 1) + ("AttnDownBlock2D",)
    up = ("AttnUpBlock2D",) + ("UpBlock2D",) * (len(channels) - 1)
    return UNet2DModel(
        sample_size=size,
        in_channels=image_channels,
        out_channels=image_channels,
        layers_per_block=1,
        block_out_channels=channels,
        down_block_types=down,
        up_block_types=up,
        norm_num_groups=8,
    )


def _train_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule=BETA_SCHEDULE)


def _ddim_scheduler(steps: int):
    from diffusers import DDIMScheduler

    if steps < 1:
        raise GenError(f"steps must be at least 1, not {steps}")
    scheduler = DDIMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule=BETA_SCHEDULE, timestep_spacing="trailing")
    scheduler.set_timesteps(steps)
    return scheduler


@dataclass(frozen=True)
class DDPMConfig:
    """What fixes a training run; a resume must match it (only the epoch count may grow)."""

    size: int
    channels: list[int]
    batch_size: int
    lr: float
    seed: int
    grid_size: int
    grid_steps: int
    image_channels: int


def train_ddpm(
    images: Images,
    out_dir: str | os.PathLike,
    size: int = 32,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    resume: bool = True,
    channels: Sequence[int] | None = None,
    grid_size: int = 16,
    grid_steps: int = 25,
    image_channels: int | None = None,
    keep_epochs: bool = False,
) -> Path:
    """Train a small DDPM on real images (noise-prediction MSE) and return the model folder.

    Parameters
    ----------
    images : folder, ``.csv`` manifest, or list of paths / ImageRecords
        Training photos; centre-cropped and resized to ``size``, flipped
        horizontally at random (seeded) for augmentation.
    resume : bool
        Continue from ``out_dir``'s checkpoint if there is one (refused if it was
        trained with other settings or on other images, by content); without it
        an existing checkpoint is an error rather than silently overwritten.
    channels : sequence of int, optional
        UNet widths per level (default ``(32, 64, 64)`` at 32 and 48 px,
        ``(16, 32, 64, 64)`` at 64 px): small enough for a CPU.
    grid_size, grid_steps : int
        Images and DDIM steps of the per-epoch sample grid.
    image_channels : {1, 3}, optional
        1 for a grayscale model, 3 for RGB; by default 1 exactly when every
        training image is stored grayscale.
    keep_epochs : bool
        Also keep the UNet of every epoch as ``epochs/epoch_NNN.pt``, to sample
        any epoch later (:func:`fdt.gen.sampling.sample_checkpoint`).
    """
    if epochs < 1 or batch_size < 1:
        raise GenError(f"epochs and batch size must be at least 1, not {epochs} and {batch_size}")
    out = Path(out_dir)
    checkpoint_path = out / CHECKPOINT
    if checkpoint_path.exists() and not resume:
        raise GenError(f"{out} already holds a DDPM checkpoint; resume it or choose another --out")
    records = as_records(images)
    image_channels = image_channels_of(records) if image_channels is None else image_channels
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = build_unet(size, channels, image_channels)
    data, hashes = load_training_array(records, size, image_channels, progress=progress)
    config = DDPMConfig(size, list(unet.config.block_out_channels), batch_size, lr, seed, grid_size, grid_steps, image_channels)
    device = resolve_device(device)

    noise_rng = torch.Generator().manual_seed(seed + 1)
    shuffle_rng = torch.Generator().manual_seed(seed + 2)
    fixed_noise = torch.randn(grid_size, image_channels, size, size, generator=torch.Generator().manual_seed(seed + 3))
    unet.to(device)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=lr)
    checkpoint = Checkpoint(
        checkpoint_path, "ddpm", asdict(config), training_data_sha256(hashes), {"unet": unet, "optimizer": optimizer},
        {"noise_rng": noise_rng, "shuffle_rng": shuffle_rng},
    )
    try:
        start_epoch, losses = checkpoint.restore(epochs, device)
    except CheckpointMismatchError as error:
        raise GenError(str(error)) from None
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", asdict(config))

    from tqdm.auto import tqdm

    scheduler = _train_scheduler()
    batches = math.ceil(len(data) / batch_size)
    for epoch in tqdm(range(start_epoch + 1, epochs + 1), desc="DDPM epochs", initial=start_epoch, total=epochs, disable=not progress):
        unet.train()
        order = torch.randperm(len(data), generator=shuffle_rng).numpy()
        bar = tqdm(range(batches), desc=f"epoch {epoch}", leave=False, disable=not progress)
        for batch in bar:
            clean = torch.from_numpy(data[order[batch * batch_size : (batch + 1) * batch_size]]).float() / 127.5 - 1
            flip = torch.rand(clean.shape[0], generator=shuffle_rng) < 0.5
            clean = torch.where(flip[:, None, None, None], clean.flip(3), clean)
            noise = torch.randn(clean.shape, generator=noise_rng)
            timesteps = torch.randint(0, TRAIN_TIMESTEPS, (clean.shape[0],), generator=noise_rng)
            noisy = scheduler.add_noise(clean, noise, timesteps)
            prediction = unet(noisy.to(device), timesteps.to(device)).sample
            loss = torch.nn.functional.mse_loss(prediction, noise.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            optimizer.step()
            losses.append({"epoch": epoch, "iteration": len(losses) + 1, "loss": loss.item()})
            bar.set_postfix(loss=f"{losses[-1]['loss']:.4f}")
        checkpoint.save(epoch, losses)
        if keep_epochs:
            checkpoint.snapshot(epoch_checkpoint(out, epoch), epoch, ["unet"])
        unet.eval()
        record_epoch(to_uint8(denoise(unet, fixed_noise, grid_steps, device)), epoch, out)
        write_losses(losses, LOSS_COLUMNS, out / "losses.csv", out / "losses.png")
    return out


def load_ddpm(model: str | os.PathLike, device: str = "cpu"):
    """The trained UNet of a DDPM model folder (its latest epoch) or of one checkpoint file, in eval mode."""
    state = load_state(model, "ddpm", device)
    config = state["config"]
    unet = build_unet(config["size"], config["channels"], config["image_channels"])
    unet.load_state_dict(state["state"]["unet"])
    return unet.to(device).eval()


@torch.no_grad()
def denoise(
    unet,
    noise: torch.Tensor,
    steps: int,
    device: str,
    known: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    generators: Sequence[torch.Generator] | None = None,
) -> torch.Tensor:
    """DDIM from ``noise`` to images in [-1, 1]; with ``known``/``mask``, RePaint-style inpainting.

    ``mask`` is ``(n, 1, h, w)``, 1 where pixels are repainted. Before each step
    the known region of ``known`` is noised to the step's timestep with noise
    from each image's own generator (so an image does not depend on its
    batch-mates) and pasted into the sample.
    """
    scheduler = _ddim_scheduler(steps)
    sample = noise.to(device)
    if known is not None:
        assert mask is not None and generators is not None
        known, mask = known.to(device), mask.to(device)
    for timestep in scheduler.timesteps:
        if known is not None:
            fresh = torch.stack([torch.randn(known.shape[1:], generator=g) for g in generators]).to(device)
            noised = scheduler.add_noise(known, fresh, timestep.repeat(known.shape[0]))
            sample = mask * sample + (1 - mask) * noised
        epsilon = unet(sample, timestep.to(device)).sample
        sample = scheduler.step(epsilon, timestep, sample, eta=0.0).prev_sample
    if known is not None:
        sample = mask * sample + (1 - mask) * known
    return sample


def _noise(seeds: Sequence[int], unet) -> tuple[torch.Tensor, list[torch.Generator]]:
    """Starting noise from one generator per image, and those generators for any later draws."""
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    shape = (unet.config.in_channels, unet.config.sample_size, unet.config.sample_size)
    return torch.stack([torch.randn(shape, generator=g) for g in generators]), generators


def sample_ddpm(
    model_dir: str | os.PathLike,
    n: int,
    out_dir: str | os.PathLike,
    steps: int = 50,
    seed: int = 0,
    batch_size: int = 64,
    device: str = "auto",
    source: str | None = None,
    progress: bool = True,
) -> Path:
    """Write ``n`` DDPM samples plus manifest rows into ``out_dir`` and return the manifest path.

    ``model_dir`` is a model folder (its latest epoch) or one checkpoint file
    (``epochs/epoch_NNN.pt``). Grayscale models write grayscale PNGs. Image number ``i`` of the folder starts from noise seeded ``seed + i``
    (:func:`~fdt.gen.training.write_samples`).
    """
    check_counts(n, batch_size)
    device = resolve_device(device)
    unet = load_ddpm(model_dir, device)
    folder = OutputFolder(out_dir, model_id=str(model_dir), source=source)
    return write_samples(folder, n, seed, batch_size, lambda seeds: to_uint8(denoise(unet, _noise(seeds, unet)[0], steps, device)), "DDPM samples", progress)


def inpaint_ddpm(
    model_dir: str | os.PathLike,
    images: Images,
    out_dir: str | os.PathLike,
    masks: str | Sequence[str] = ("diagonal", "random"),
    per_image: int = 1,
    coverage: tuple[float, float] = (0.1, 0.4),
    steps: int = 50,
    seed: int = 0,
    batch_size: int = 64,
    device: str = "auto",
    source: str | None = None,
    progress: bool = True,
) -> Path:
    """Repaint masked regions of real images with a trained DDPM; return the manifest path.

    Sources are centre-cropped to the model's size (and made grayscale for a
    grayscale model). Each output keeps its source
    as ``group`` and its mask under ``.masks/`` (see :mod:`fdt.gen.inpainting`
    for which mask each output gets). ``per_image`` defaults to 1 so ``n``
    sources give ``n`` fakes; 5 with ``diagonal,random`` is the seed study's
    four triangles plus one random mask per source.
    """
    if batch_size < 1:
        raise GenError(f"batch size must be at least 1, not {batch_size}")
    check_inpainting_options(masks, per_image, coverage)
    device = resolve_device(device)
    unet = load_ddpm(model_dir, device)
    size = unet.config.sample_size
    grayscale = unet.config.in_channels == 1
    records = as_records(images)
    folder = OutputFolder(out_dir, model_id=str(model_dir), source=source)

    def repaint(sources: list[Image.Image], mask_arrays: list[np.ndarray], seeds: list[int]) -> list[Image.Image]:
        pixels = [np.asarray(s.convert("L"))[None] if grayscale else np.asarray(s).transpose(2, 0, 1) for s in sources]
        known = torch.from_numpy(np.stack(pixels)).float() / 127.5 - 1
        mask = torch.from_numpy(np.stack(mask_arrays)[:, None].astype(np.float32))
        noise, generators = _noise(seeds, unet)
        return [to_pil(p) for p in to_uint8(denoise(unet, noise, steps, device, known, mask, generators))]

    return inpaint_records(records, folder, repaint, size, masks, per_image, coverage, seed, batch_size, progress=progress, desc="DDPM inpainting")
