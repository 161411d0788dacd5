"""``fdt models``: train the networks fdt owns. Thin commands over :mod:`fdt.models`."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def models() -> None:
    """Train the networks fdt owns (autoencoder)."""


@models.command("train-autoencoder")
@click.argument("images", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Model file to write, e.g. models/ae.pt.")
@click.option("--size", default=64, show_default=True, type=click.IntRange(min=16), help="Input side in pixels (a power of two).")
@click.option("--latent", "latent_dim", default=128, show_default=True, type=click.IntRange(min=1), help="Latent size: the number of features.")
@click.option("--epochs", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--lr", default=1e-3, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Adam learning rate.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of weight init and shuffling.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--resume/--no-resume", default=True, show_default=True, help="Continue from <OUT>.ckpt if an earlier run left one.")
@click.option(
    "--real-source",
    "real_sources",
    multiple=True,
    default=("real",),
    show_default=True,
    help="Sub-folder (source) holding real images; repeatable. Ignored for CSV manifests, which carry labels.",
)
@click.option("--split", default="80/10/10", show_default=True, help="Train only on the train share of this group split (as fdt tune/report use it).")
@click.option("--split-seed", default=0, show_default=True, type=int, help="The --seed fdt tune and fdt report will use.")
@click.option("--all-images", is_flag=True, help="Train on every real image (then none of them may be scored with its features).")
def train_autoencoder(
    images: Path,
    out: Path,
    size: int,
    latent_dim: int,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: str,
    resume: bool,
    real_sources: tuple[str, ...],
    split: str,
    split_seed: int,
    all_images: bool,
) -> None:
    """Train the autoencoder of the `autoencoder` extractor on the real images of IMAGES.

    IMAGES is a folder (one sub-folder per source) or a CSV manifest. Only real
    images (label 0) of the train share of the group split are used, so the
    groups fdt tune and fdt report score with the same --seed and --split stay
    unseen; <OUT>.training.json records what it trained on; a folder with no real source but a single source
    is used whole, with a note. Writes OUT, OUT.ckpt (the resumable checkpoint)
    and the loss curve <stem>.loss.csv / .png beside OUT.
    """
    from fdt.data import DataError, load_image_set
    from fdt.models.autoencoder import AutoencoderError, loss_curve_paths, read_autoencoder_file
    from fdt.models.autoencoder import train_autoencoder as train
    from fdt.pipelines.errors import SplitError
    from fdt.pipelines.splits import parse_fractions

    try:
        fractions = parse_fractions(split)
    except SplitError as error:
        raise click.ClickException(str(error)) from None
    try:
        records = load_image_set(images, real_sources=real_sources)
        train(
            records,
            out,
            size=size,
            latent_dim=latent_dim,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            device=device,
            resume=resume,
            split=None if all_images else {"seed": split_seed, "fractions": list(fractions)},
        )
        summary = read_autoencoder_file(out)["training"]
    except (DataError, AutoencoderError) as error:
        raise click.ClickException(str(error)) from None
    skipped = f" ({summary['skipped_images']} unreadable skipped)" if summary["skipped_images"] else ""
    csv_path, png_path = loss_curve_paths(out)
    click.echo(
        f"wrote {out}: {latent_dim}-d latents at {size} px, {summary['epochs']} epochs on {summary['num_images']} images{skipped}, "
        f"final loss {summary['final_loss']:.5f}; loss curve {csv_path}, {png_path}"
    )
