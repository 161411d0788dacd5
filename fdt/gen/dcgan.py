"""DCGAN (Radford et al. 2016): train on real photos, checkpoint every epoch, resume, sample fakes.

The classic architecture: a generator of transposed convolutions (five at 64 px,
one fewer per halving of the size) with batch norm and ReLU, and a mirrored
discriminator of strided convolutions with leaky ReLU, trained with Adam
(2e-4, beta1 0.5) on binary cross-entropy. Sizes that are 3, 5 or 7 times a
power of two (48 px: seed 003's FER2013 faces) start from a 3×3 (5×5, 7×7)
map instead of 4×4. ``channels=1`` makes a grayscale model; by default the
model has the mode of its training images, so grayscale reals get grayscale
fakes and colour is never a shortcut. Every random draw (weight init,
shuffling, noise) comes from a seeded ``torch.Generator``; the checkpoint
(:mod:`fdt.checkpoints`) holds those generators' states with the models and
optimizers, so a resumed run ends exactly where an uninterrupted one would.

Files in a model folder: ``checkpoint.pt`` (latest epoch, written atomically),
``epochs/epoch_NNN.pt`` (with ``keep_epochs``: the generator after each epoch),
``config.json``, ``samples/epoch_NNN.png`` (a fixed-noise grid per epoch),
``first_vs_last.png``, ``losses.csv`` and ``losses.png``.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fdt.atomic import write_json
from fdt.checkpoints import Checkpoint, CheckpointMismatchError, training_data_sha256
from fdt.gen.errors import GenError
from fdt.gen.images import Images, as_records, image_channels, load_training_array
from fdt.gen.output import OutputFolder
from fdt.gen.plots import write_losses
from fdt.gen.resolve import resolve_device
from fdt.gen.training import CHECKPOINT, check_counts, epoch_checkpoint, load_state, record_epoch, to_uint8, write_samples

LOSS_COLUMNS = ("epoch", "iteration", "loss_d", "loss_g", "d_real", "d_fake")


def _shape(size: int) -> tuple[int, int]:
    """``(base, doublings)`` with ``size == base * 2 ** doublings``: 64 px is 4×4 doubled four times, 48 px is 3×3 doubled four times."""
    doublings = 0
    while size % 2 ** (doublings + 1) == 0 and size // 2 ** (doublings + 1) >= 3:
        doublings += 1
    base = size // 2**doublings
    if size < 16 or base not in (3, 4, 5, 7):
        raise GenError(f"DCGAN size must be at least 16 and a power of two or 3, 5 or 7 times one (16, 24, 32, 48, 64, ...), not {size}")
    return base, doublings


def _check_channels(channels: int) -> None:
    if channels not in (1, 3):
        raise GenError(f"channels must be 1 (grayscale) or 3 (RGB), not {channels}")


class Generator(nn.Module):
    """Noise ``(n, nz)`` to images ``(n, channels, size, size)`` in [-1, 1]: a ``base``×``base`` map, then doubling to ``size``."""

    def __init__(self, size: int = 64, nz: int = 100, features: int = 64, channels: int = 3) -> None:
        super().__init__()
        base, doublings = _shape(size)
        _check_channels(channels)
        widths = [features * 2 ** (doublings - 1 - i) for i in range(doublings)]
        modules: list[nn.Module] = []
        width_in = nz
        for i, width in enumerate(widths):
            kernel, stride, padding = (base, 1, 0) if i == 0 else (4, 2, 1)
            modules += [nn.ConvTranspose2d(width_in, width, kernel, stride, padding, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
            width_in = width
        modules += [nn.ConvTranspose2d(width_in, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*modules)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.shape[0], -1, 1, 1))


class Discriminator(nn.Module):
    """Images ``(n, channels, size, size)`` to one real-vs-fake logit each (sigmoid lives in the loss)."""

    def __init__(self, size: int = 64, features: int = 64, channels: int = 3) -> None:
        super().__init__()
        base, doublings = _shape(size)
        _check_channels(channels)
        modules: list[nn.Module] = [nn.Conv2d(channels, features, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        width = features
        for _ in range(doublings - 1):
            modules += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), nn.LeakyReLU(0.2, True)]
            width *= 2
        modules += [nn.Conv2d(width, 1, base, 1, 0, bias=False)]
        self.main = nn.Sequential(*modules)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.main(images).view(-1)


def _init_weights(module: nn.Module, generator: torch.Generator) -> None:
    """DCGAN's initialisation: conv weights N(0, 0.02), batch-norm scales N(1, 0.02)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, 0.02, generator=generator)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02, generator=generator)
            nn.init.zeros_(layer.bias)


@dataclass(frozen=True)
class DCGANConfig:
    """What fixes a training run; a resume must match it (only the epoch count may grow)."""

    size: int
    nz: int
    features: int
    batch_size: int
    lr: float
    beta1: float
    seed: int
    grid_size: int
    channels: int


def train_dcgan(
    images: Images,
    out_dir: str | os.PathLike,
    size: int = 64,
    epochs: int = 100,
    batch_size: int = 128,
    features: int = 64,
    nz: int = 100,
    lr: float = 2e-4,
    beta1: float = 0.5,
    seed: int = 0,
    resume: bool = True,
    device: str = "auto",
    grid_size: int = 64,
    progress: bool = True,
    channels: int | None = None,
    keep_epochs: bool = False,
) -> Path:
    """Train a DCGAN on real images and return the model folder.

    Parameters
    ----------
    images : folder, ``.csv`` manifest, or list of paths / ImageRecords
        Real training photos; centre-cropped and resized to ``size``.
    out_dir : path
        The model folder (see the module docstring for its files).
    size : int
        Image side: a power of two, or 3, 5 or 7 times one (48 for FER2013).
    resume : bool
        Continue from ``out_dir``'s checkpoint if there is one (refused if it was
        trained with other settings or on other images, by content). Without it,
        an existing checkpoint is an error rather than silently overwritten.
    features : int
        Width of the first discriminator / last generator layer (64 in the paper;
        tiny values make a CPU test run in seconds).
    channels : {1, 3}, optional
        1 for a grayscale model, 3 for RGB; by default 1 exactly when every
        training image is stored grayscale.
    keep_epochs : bool
        Also keep the generator of every epoch as ``epochs/epoch_NNN.pt``, to
        sample any epoch later (:func:`fdt.gen.sampling.sample_checkpoint`).
    """
    if epochs < 1 or batch_size < 1:
        raise GenError(f"epochs and batch size must be at least 1, not {epochs} and {batch_size}")
    _shape(size)
    out = Path(out_dir)
    records = as_records(images)
    channels = image_channels(records) if channels is None else channels
    _check_channels(channels)
    checkpoint_path = out / CHECKPOINT
    if checkpoint_path.exists() and not resume:
        raise GenError(f"{out} already holds a DCGAN checkpoint; resume it or choose another --out")
    data, hashes = load_training_array(records, size, channels, progress=progress)
    config = DCGANConfig(size, nz, features, batch_size, lr, beta1, seed, grid_size, channels)
    device = resolve_device(device)

    init_rng = torch.Generator().manual_seed(seed)
    noise_rng = torch.Generator().manual_seed(seed + 1)
    shuffle_rng = torch.Generator().manual_seed(seed + 2)
    generator, discriminator = Generator(size, nz, features, channels), Discriminator(size, features, channels)
    _init_weights(generator, init_rng)
    _init_weights(discriminator, init_rng)
    fixed_noise = torch.randn(grid_size, nz, generator=init_rng)
    generator.to(device)
    discriminator.to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(beta1, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(beta1, 0.999))
    checkpoint = Checkpoint(
        checkpoint_path, "dcgan", asdict(config), training_data_sha256(hashes),
        {"generator": generator, "discriminator": discriminator, "opt_g": opt_g, "opt_d": opt_d},
        {"noise_rng": noise_rng, "shuffle_rng": shuffle_rng},
    )
    try:
        start_epoch, losses = checkpoint.restore(epochs, device)
    except CheckpointMismatchError as error:
        raise GenError(str(error)) from None
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", asdict(config))

    from tqdm.auto import tqdm

    criterion = nn.BCEWithLogitsLoss()
    batches = math.ceil(len(data) / batch_size)
    for epoch in tqdm(range(start_epoch + 1, epochs + 1), desc="DCGAN epochs", initial=start_epoch, total=epochs, disable=not progress):
        generator.train()
        discriminator.train()
        order = torch.randperm(len(data), generator=shuffle_rng).numpy()
        for batch in tqdm(range(batches), desc=f"epoch {epoch}", leave=False, disable=not progress):
            real = torch.from_numpy(data[order[batch * batch_size : (batch + 1) * batch_size]]).to(device).float() / 127.5 - 1
            n = real.shape[0]
            ones, zeros = torch.ones(n, device=device), torch.zeros(n, device=device)
            fake = generator(torch.randn(n, nz, generator=noise_rng).to(device))

            opt_d.zero_grad(set_to_none=True)
            out_real, out_fake = discriminator(real), discriminator(fake.detach())
            loss_d = criterion(out_real, ones) + criterion(out_fake, zeros)
            loss_d.backward()
            opt_d.step()

            opt_g.zero_grad(set_to_none=True)
            loss_g = criterion(discriminator(fake), ones)
            loss_g.backward()
            opt_g.step()
            losses.append(
                {
                    "epoch": epoch,
                    "iteration": len(losses) + 1,
                    "loss_d": loss_d.item(),
                    "loss_g": loss_g.item(),
                    "d_real": torch.sigmoid(out_real).mean().item(),
                    "d_fake": torch.sigmoid(out_fake).mean().item(),
                }
            )
        checkpoint.save(epoch, losses)
        if keep_epochs:
            checkpoint.snapshot(epoch_checkpoint(out, epoch), epoch, ["generator"])
        generator.eval()
        with torch.no_grad():
            record_epoch(to_uint8(generator(fixed_noise.to(device))), epoch, out)
        write_losses(losses, LOSS_COLUMNS, out / "losses.csv", out / "losses.png")
    return out


def load_generator(model: str | os.PathLike, device: str = "cpu") -> Generator:
    """The trained generator of a DCGAN model folder (its latest epoch) or of one checkpoint file, in eval mode."""
    state = load_state(model, "dcgan", device)
    config = state["config"]
    generator = Generator(config["size"], config["nz"], config["features"], config["channels"])
    generator.load_state_dict(state["state"]["generator"])
    return generator.to(device).eval()


@torch.no_grad()
def sample_dcgan(
    model_dir: str | os.PathLike,
    n: int,
    out_dir: str | os.PathLike,
    seed: int = 0,
    batch_size: int = 256,
    device: str = "auto",
    source: str | None = None,
    progress: bool = True,
) -> Path:
    """Write ``n`` DCGAN fakes plus manifest rows into ``out_dir`` and return the manifest path.

    ``model_dir`` is a model folder (its latest epoch) or one checkpoint file
    (``epochs/epoch_NNN.pt``). Grayscale models write grayscale PNGs. Image number ``i`` of the folder is drawn from its own generator seeded
    ``seed + i`` (:func:`~fdt.gen.training.write_samples`).
    """
    check_counts(n, batch_size)
    device = resolve_device(device)
    generator = load_generator(model_dir, device)
    folder = OutputFolder(out_dir, model_id=str(model_dir), source=source)
    nz = generator.main[0].in_channels

    def draw(seeds: list[int]) -> np.ndarray:
        noise = torch.stack([torch.randn(nz, generator=torch.Generator().manual_seed(s)) for s in seeds])
        return to_uint8(generator(noise.to(device)))

    return write_samples(folder, n, seed, batch_size, draw, "DCGAN samples", progress)
