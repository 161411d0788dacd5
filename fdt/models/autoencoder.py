"""The convolutional autoencoder fdt trains on real images, its training loop and its file format.

The ``autoencoder`` extractor uses the latent vector of this network as features:
an autoencoder that has only seen real photos encodes generated images
differently. Three things live here because they must agree exactly:

- :func:`preprocess`, the one mapping from a decoded image to the network's input,
  used both by training and by the extractor;
- :func:`train_autoencoder`, deterministic for a seed, with a checkpoint every
  epoch (:mod:`fdt.checkpoints`) from which an interrupted run resumes to the
  same weights as an uninterrupted one;
- the model file (``format: "fdt.autoencoder"``, ``format_version: 1``), documented
  in ``docs/autoencoder.md``, read back by :func:`load_autoencoder`.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from fdt import __version__
from fdt.atomic import atomic_path, write_text
from fdt.checkpoints import Checkpoint, training_data_sha256
from fdt.devices import resolve_device
from fdt.data import REAL, DataError, ImageDecodeError, ImageRecord, apply_resolution, load_image_set, load_rgb, sha256_file
from fdt.errors import FdtError
from fdt.grouping import assign_groups, group_of, training_record, write_training_record
from fdt.torch_files import read_format_file

FORMAT = "fdt.autoencoder"
FORMAT_VERSION = 1
DEFAULT_CHANNELS = (32, 64, 128, 256)
NORMALISATION = {"range": [-1.0, 1.0], "pixels": "8-bit RGB from fdt.data.load_rgb, resized with apply_resolution(size); x / 127.5 - 1"}

logger = logging.getLogger(__name__)


class AutoencoderError(FdtError, ValueError):
    """The autoencoder cannot be built, trained or loaded as asked; the message says why in one line."""


class AutoencoderFormatError(AutoencoderError):
    """A file is not an fdt autoencoder model of a version this fdt reads."""


# --------------------------------------------------------------------------- the network


class ConvAutoencoder(nn.Module):
    """Strided-convolution encoder to a ``latent_dim`` vector, and its mirror decoder.

    Each encoder stage is a 4×4 convolution with stride 2 (halving the side) and a
    LeakyReLU; a linear layer maps the flattened last stage to the latent vector.
    The decoder mirrors it with transposed convolutions and ends in ``tanh``, since
    inputs are scaled to [-1, 1] (see :func:`preprocess`). There is no dropout and
    no batch normalisation, so a latent depends only on its own image: the same in
    train and eval mode, alone or in any batch.

    Parameters
    ----------
    latent_dim : int
        Length of the latent vector, i.e. the number of features the extractor gives.
    size : int
        Input side in pixels: a power of two, at least 16 and at least
        ``2 ** len(channels)`` so that the last stage keeps one pixel.
    channels : sequence of int
        Output channels of each encoder stage.
    """

    def __init__(self, latent_dim: int = 128, size: int = 64, channels: Sequence[int] = DEFAULT_CHANNELS) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        check_config(latent_dim, size, channels)
        self.latent_dim = int(latent_dim)
        self.size = int(size)
        self.channels = channels
        self._bottom = size // 2 ** len(channels)
        flat = channels[-1] * self._bottom**2

        encoder: list[nn.Module] = []
        for c_in, c_out in zip((3,) + channels[:-1], channels):
            encoder += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*encoder, nn.Flatten(), nn.Linear(flat, latent_dim))

        decoder: list[nn.Module] = [
            nn.Linear(latent_dim, flat),
            nn.Unflatten(1, (channels[-1], self._bottom, self._bottom)),
            nn.LeakyReLU(0.2),
        ]
        reversed_channels = channels[::-1]
        for c_in, c_out in zip(reversed_channels, reversed_channels[1:]):
            decoder += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        decoder += [nn.ConvTranspose2d(channels[0], 3, 4, stride=2, padding=1), nn.Tanh()]
        self.decoder = nn.Sequential(*decoder)

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments, as stored in the model file."""
        return {"latent_dim": self.latent_dim, "size": self.size, "channels": list(self.channels)}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent vectors ``(n, latent_dim)`` of images ``(n, 3, size, size)`` scaled to [-1, 1]."""
        expected = (3, self.size, self.size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise AutoencoderError(f"autoencoder input must be (n, {', '.join(map(str, expected))}), not {tuple(x.shape)}; use preprocess()")
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstructed images ``(n, 3, size, size)`` in [-1, 1] from latents ``(n, latent_dim)``."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def check_config(latent_dim: int, size: int, channels: Sequence[int]) -> None:
    """Refuse an autoencoder shape that cannot be built, with a one-line reason."""
    if latent_dim < 1:
        raise AutoencoderError(f"latent size must be at least 1, not {latent_dim}")
    if not channels or any(c < 1 for c in channels):
        raise AutoencoderError(f"channels must be one or more positive integers, not {list(channels)}")
    if size < 16 or size & (size - 1):
        raise AutoencoderError(f"autoencoder size must be a power of two of at least 16, not {size}")
    if size < 2 ** len(channels):
        raise AutoencoderError(f"size {size} is too small for {len(channels)} stride-2 stages; use at least {2 ** len(channels)}")


# --------------------------------------------------------------------------- preprocessing


def image_pixels(image: Image.Image, size: int) -> torch.Tensor:
    """The ``uint8`` tensor ``(3, size, size)`` of an RGB image resized with :func:`fdt.data.apply_resolution`.

    Training keeps images in memory in this form (a quarter of float32's bytes).
    """
    if image.mode != "RGB":
        raise AutoencoderError(f"expected an RGB image, not mode {image.mode!r}; decode images with fdt.data.load_rgb")
    array = np.asarray(apply_resolution(image, str(size)), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def scale_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """Map ``uint8`` pixels to float32 in [-1, 1], the network's input range."""
    return pixels.to(torch.float32).div_(127.5).sub_(1.0)


def preprocess(image: Image.Image, size: int) -> torch.Tensor:
    """The network input ``(3, size, size)`` in [-1, 1] for an image decoded by :func:`fdt.data.load_rgb`.

    Exactly the preprocessing of training, so the extractor's latents are those of
    the images the network learnt from.
    """
    return scale_pixels(image_pixels(image, size))


# --------------------------------------------------------------------------- training


def select_training_records(records: Sequence[ImageRecord]) -> tuple[list[ImageRecord], str | None]:
    """The records to train on, and a note for the user when the choice is not the obvious one.

    The autoencoder must learn what real images look like, so only real images
    (label 0) are used. A set with no real image but a single source (a plain folder
    of photos whose name is not ``real``) is taken whole, with a note. A set with
    several sources and none real is refused: training on fakes would be silent
    nonsense.
    """
    real = [r for r in records if r.label == REAL]
    if real:
        others = len(records) - len(real)
        return real, (f"training on the {len(real)} real images; {others} fake image(s) left out" if others else None)
    sources = sorted({r.source for r in records})
    if len(sources) == 1:
        return list(records), f"no image is labelled real; training on all {len(records)} images of source {sources[0]!r}"
    raise DataError(f"no real images (label 0) among sources {', '.join(sources)}; name the real ones with --real-source")


def train_autoencoder(
    records_or_folder: Sequence[ImageRecord] | str | os.PathLike,
    out: Path,
    size: int = 64,
    latent_dim: int = 128,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    resume: bool = True,
    progress: bool = True,
    channels: Sequence[int] = DEFAULT_CHANNELS,
    split: dict[str, Any] | None = None,
) -> Path:
    """Train a :class:`ConvAutoencoder` on real images and write its model file to ``out``.

    With ``split={"seed": S, "fractions": (train, val, test)}`` only the images of
    the *train* part of :func:`fdt.grouping.assign_groups` (over every record given,
    stratified by source) are used: the same assignment ``fdt tune`` and ``fdt
    report`` make with that seed and those shares, so the groups they score stay
    unseen. Either way the groups and images trained on are written to
    ``<out>.training.json`` (:func:`fdt.grouping.training_record`), which evaluation
    reads to refuse scoring them.

    Adam on the mean squared reconstruction error. Images are decoded once into
    memory (``uint8``); unreadable ones are skipped and counted. All randomness
    (weight init, shuffling) comes from ``seed``; the shuffling generator lives in
    the checkpoint ``<out>.ckpt`` (:class:`fdt.checkpoints.Checkpoint`), written
    atomically after every epoch with the model and optimiser states, so a run
    interrupted at any moment and run again with ``resume=True`` ends with the
    same weights as an uninterrupted run (bit-identical on CPU). The checkpoint
    is kept, so a later run with more ``epochs`` continues training; a
    checkpoint of other settings or other images (by content hash) is refused
    with :class:`fdt.checkpoints.CheckpointMismatchError`; ``resume=False``
    starts over.

    Also writes the loss per epoch to ``<out stem>.loss.csv`` and ``<out stem>.loss.png``.

    Parameters
    ----------
    records_or_folder : image records, or a folder / CSV manifest for :func:`fdt.data.load_image_set`
        Only the real images are used (see :func:`select_training_records`).
    out : Path
        Model file to write (``.pt``).
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA where present).

    Returns
    -------
    Path
        ``out``.
    """
    out = Path(out)
    channels = tuple(int(c) for c in channels)
    check_config(latent_dim, size, channels)
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise AutoencoderError(f"epochs and batch size must be at least 1 and lr positive, not {epochs}, {batch_size}, {lr}")
    target = resolve_device(device)
    records = load_image_set(records_or_folder) if isinstance(records_or_folder, (str, os.PathLike)) else list(records_or_folder)
    records, note = select_training_records(records)
    if note:
        logger.warning(note)
    pixels, skipped, decoded = _decode_all(records, size, progress)
    keep, hashes = _train_share(decoded, split)
    pixels, records = pixels[torch.from_numpy(keep)], [r for r, k in zip(decoded, keep) if k]
    if not records:
        raise DataError(f"the train share of {split} holds none of the {len(decoded)} real images; lower the validation and test shares")
    config = {"latent_dim": int(latent_dim), "size": int(size), "channels": list(channels)}
    trained = [hashes[str(r.path)] for r in records]
    run = {
        "seed": int(seed),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "num_images": len(pixels),
        "data_sha256": training_data_sha256(trained),
        "split": None if split is None else {"seed": int(split["seed"]), "fractions": [float(f) for f in split["fractions"]]},
    }

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ConvAutoencoder(**config)
    model.to(target)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    # Shuffling is the only randomness after init; it draws from this CPU generator
    # alone, so its saved state is all a resumed run needs to replay the same batches.
    shuffle = torch.Generator().manual_seed(seed)
    settings = {**config, **{k: v for k, v in run.items() if k not in ("num_images", "data_sha256")}}
    checkpoint = Checkpoint(
        out.with_name(out.name + ".ckpt"), "autoencoder", settings, run["data_sha256"], {"model": model, "optimizer": optimizer}, {"shuffle_rng": shuffle}
    )
    losses: list[float] = []
    if resume:
        losses = checkpoint.restore(epochs, target)[1]
    out.parent.mkdir(parents=True, exist_ok=True)

    batches = -(-len(pixels) // batch_size)
    bar = _progress_bar(total=epochs * batches, initial=len(losses) * batches, disable=not progress)
    with bar, _deterministic_cudnn():
        model.train()
        for epoch in range(len(losses), epochs):
            bar.set_description(f"epoch {epoch + 1}/{epochs}")
            total = 0.0
            for index in torch.randperm(len(pixels), generator=shuffle).split(batch_size):
                x = scale_pixels(pixels[index].to(target))
                loss = nn.functional.mse_loss(model(x), x)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(index)
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}")
            losses.append(total / len(pixels))
            checkpoint.save(epoch + 1, losses)
    model.eval()
    groups = [group_of(r.group, h) for r, h in zip(records, trained)]
    write_training_record(out, training_record(groups, trained, run["split"], run["data_sha256"]))
    _write_model_file(model, run, losses, skipped, out)
    _write_loss_curve(losses, out)
    return out


def _train_share(records: Sequence[ImageRecord], split: dict[str, Any] | None) -> tuple[np.ndarray, dict[str, str]]:
    """Which decoded real records are in the train part (all of them without ``split``), and their content hashes.

    Only the decoded real images take part in the assignment: a group's part
    depends on the groups of its real rows' source (:func:`fdt.grouping.assign_groups`),
    which are the rows with features that tuning and reports split the same way.
    """
    hashes = {str(r.path): sha256_file(r.path) for r in records}
    if split is None:
        return np.ones(len(records), bool), hashes
    groups = [group_of(r.group, hashes[str(r.path)]) for r in records]
    assignment = assign_groups(groups, [r.source for r in records], split["fractions"], int(split["seed"]), [r.label for r in records])
    return np.array([assignment[g] == "train" for g in groups], bool), hashes


def _write_model_file(model: ConvAutoencoder, run: dict[str, Any], losses: list[float], skipped: int, out: Path) -> None:
    """Write the final model file (format ``fdt.autoencoder`` version 1, see ``docs/autoencoder.md``) atomically."""
    training = {**run, "epochs": len(losses), "final_loss": losses[-1], "losses": losses, "skipped_images": skipped}
    _atomic_torch_save(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "config": model.config,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "normalisation": NORMALISATION,
            "training": training,
            "fdt_version": __version__,
            "torch_version": str(torch.__version__),
        },
        out,
    )


def _decode_all(records: Sequence[ImageRecord], size: int, progress: bool) -> tuple[torch.Tensor, int, list[ImageRecord]]:
    """Every readable image as one ``uint8`` tensor ``(n, 3, size, size)``, how many were skipped, and the decoded records."""
    pixels: list[torch.Tensor] = []
    failures: list[str] = []
    decoded: list[ImageRecord] = []
    for record in _progress_bar(records, desc="decoding", unit="img", disable=not progress):
        try:
            pixels.append(image_pixels(load_rgb(record.path), size))
            decoded.append(record)
        except ImageDecodeError as error:
            failures.append(f"{record.path}: {error}")
    if failures:
        logger.warning("skipped %d unreadable image(s), first: %s", len(failures), failures[0])
    if not pixels:
        raise DataError(f"none of the {len(records)} images could be decoded; first: {failures[0]}")
    return torch.stack(pixels), len(failures), decoded


@contextmanager
def _deterministic_cudnn() -> Iterator[None]:
    """Pin cuDNN to deterministic kernels while training, so a resumed CUDA run replays an uninterrupted one."""
    cudnn = torch.backends.cudnn
    saved = cudnn.deterministic, cudnn.benchmark
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = saved


def _progress_bar(iterable: Any = None, **kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(iterable, dynamic_ncols=True, **kwargs)


# --------------------------------------------------------------------------- files


def load_autoencoder(path: str | os.PathLike, device: str = "cpu") -> ConvAutoencoder:
    """The trained autoencoder of a model file, in eval mode on ``device``.

    Raises :class:`AutoencoderFormatError` (a ``ValueError``) for a file that is
    missing, not an fdt autoencoder, or of an unknown ``format_version``.
    """
    target = resolve_device(device)
    state = read_autoencoder_file(path)
    model = ConvAutoencoder(**state["config"])
    model.load_state_dict(state["state_dict"])
    return model.to(target).eval()


def read_autoencoder_file(path: str | os.PathLike) -> dict[str, Any]:
    """The checked contents of a model file: config, state dict, normalisation, training summary, versions."""
    retrain = f"train one with: fdt models train-autoencoder IMAGES --out {path}"
    state = read_format_file(path, FORMAT, FORMAT_VERSION, "autoencoder model", retrain, AutoencoderFormatError)
    missing = [k for k in ("config", "state_dict") if k not in state]
    if missing:
        raise AutoencoderFormatError(f"{path} is a damaged fdt autoencoder file (no {', '.join(missing)}); {retrain}")
    return state


def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as temporary:
        torch.save(obj, temporary)


def loss_curve_paths(out: Path) -> tuple[Path, Path]:
    """Where the loss curve of model file ``out`` goes: ``<stem>.loss.csv`` and ``<stem>.loss.png`` beside it."""
    out = Path(out)
    return out.with_name(f"{out.stem}.loss.csv"), out.with_name(f"{out.stem}.loss.png")


def _write_loss_curve(losses: Sequence[float], out: Path) -> None:
    # The Agg canvas is attached to this figure only, so a caller's pyplot backend is left alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    csv_path, png_path = loss_curve_paths(out)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["epoch", "loss"])
    writer.writerows((epoch, repr(loss)) for epoch, loss in enumerate(losses, start=1))
    write_text(csv_path, text.getvalue())

    figure = Figure(figsize=(5, 3.2))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(range(1, len(losses) + 1), losses, marker="o")
    axes.set_xlabel("epoch")
    axes.set_ylabel("reconstruction MSE")
    axes.set_title(out.name)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_path(png_path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
