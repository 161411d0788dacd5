"""``fdt models``: train the networks fdt owns. Thin commands over :mod:`fdt.models`."""

from __future__ import annotations

from pathlib import Path

import click

from fdt.cli.common import output_folder, user_errors
from fdt.errors import check_outside


@click.group()
def models() -> None:
    """Train the networks fdt owns (autoencoder, fine-tuned CNN detectors)."""


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
    from fdt.data import load_image_set
    from fdt.models.autoencoder import loss_curve_paths, read_autoencoder_file
    from fdt.models.autoencoder import train_autoencoder as train
    from fdt.pipelines.splits import parse_fractions

    with user_errors(images, output_folder(out)):
        check_outside(output_folder(out), [images], "--out")
        fractions = parse_fractions(split)
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
    skipped = f" ({summary['skipped_images']} unreadable skipped)" if summary["skipped_images"] else ""
    csv_path, png_path = loss_curve_paths(out)
    click.echo(
        f"wrote {out}: {latent_dim}-d latents at {size} px, {summary['epochs']} epochs on {summary['num_images']} images{skipped}, "
        f"final loss {summary['final_loss']:.5f}; loss curve {csv_path}, {png_path}"
    )


@models.command("finetune")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--backbone", required=True, help="mobilenet_v2, xception, vgg16, resnet50 or densenet121.")
@click.option("--real", "real", required=True, help="Real source(s), comma-separated (sub-folders of DATA, or sources of its manifest).")
@click.option("--fake", "fake", default=None, help="Fake source(s), comma-separated [default: every other source].")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Model file to write, e.g. models/mobilenet_v2.pt.")
@click.option("--weights", default="imagenet", show_default=True, help="Starting weights: imagenet (library cache), random (seeded; flagged everywhere) or a state-dict file.")
@click.option("--input", "input_kind", default="pixels", show_default=True, type=click.Choice(["pixels", "spectrum"]), help="What the network sees: the pixels, or the centred log-magnitude spectrum of the grey image (seed 002).")
@click.option("--input-size", default=None, type=click.IntRange(min=32), help="Network input side [default: the backbone's, e.g. 224].")
@click.option("--resolution", default="native", show_default=True, help="Resolution step before the network (native, N, crop:N, randcrop:N), as for fdt extract.")
@click.option("--epochs", default=10, show_default=True, type=click.IntRange(min=1), help="Stage 1: epochs of the new head on the frozen backbone.")
@click.option("--finetune-epochs", default=0, show_default=True, type=click.IntRange(min=0), help="Stage 2: epochs with the last --unfreeze blocks trained too.")
@click.option("--unfreeze", default=0, show_default=True, type=click.IntRange(min=-1), help="Backbone blocks stage 2 trains, counted from the end (-1: all).")
@click.option("--lr", default=1e-3, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Adam learning rate of stage 1.")
@click.option("--finetune-lr", default=1e-4, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Adam learning rate of stage 2.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--dropout", default=0.2, show_default=True, type=click.FloatRange(0, 1, max_open=True), help="Dropout before the new head.")
@click.option("--patience", default=3, show_default=True, type=click.IntRange(min=0), help="Stop a stage after this many epochs without a lower validation loss (0: never).")
@click.option("--val-share", default=0.1, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True), help="Share of the train groups that early stopping watches.")
@click.option("--augment", multiple=True, help="Training augmentation, repeatable: flip, crop:size=N,at=random, blurjpeg:prob=0.1, jpeg:quality=75,p=0.5, ...")
@click.option("--class-weight", default="balanced", show_default=True, type=click.Choice(["balanced", "none"]), help="Weight the loss so each class counts equally.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the head, shuffling, dropout, augmentation and early-stopping groups.")
@click.option("--split", default="80/10/10", show_default=True, help="Train only on the train share of this group split (as fdt tune/report use it).")
@click.option("--split-seed", default=0, show_default=True, type=int, help="The --seed fdt tune and fdt report will use.")
@click.option("--all-images", is_flag=True, help="Train on every image (then none of them may be scored with its features).")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--workers", default=0, show_default=True, type=click.IntRange(min=0), help="DataLoader worker processes decoding images.")
@click.option("--resume/--no-resume", default=True, show_default=True, help="Continue from <OUT>.ckpt if an earlier run left one.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar over batches.")
def finetune(data: Path, backbone: str, real: str, fake: str | None, out: Path, weights: str, input_kind: str, input_size: int | None, resolution: str,
             epochs: int, finetune_epochs: int, unfreeze: int, lr: float, finetune_lr: float, batch_size: int, dropout: float, patience: int,
             val_share: float, augment: tuple[str, ...], class_weight: str, seed: int, split: str, split_seed: int, all_images: bool, device: str,
             workers: int, resume: bool, progress: bool) -> None:
    """Transfer learning of a CNN detector on the real and fake images of DATA (seeds 001, 002, 004).

    Stage 1 trains a new head on the frozen pretrained backbone; stage 2 (with
    --finetune-epochs and --unfreeze) trains the last blocks too. Only the train
    share of the group split is read, so the groups fdt tune and fdt report score
    with the same --seed and --split stay unseen; early stopping watches a grouped
    share of the train groups. Writes OUT (use it with the extractor of the same
    backbone: --param weights=OUT, and output=logit for the network's own score),
    OUT.training.json, OUT.ckpt, and the curves <stem>.curves.csv/.png and
    <stem>.tensorboard/.
    """
    from fdt.cli.common import split_list
    from fdt.models import curves
    from fdt.models.finetune import FinetuneConfig, iter_history
    from fdt.models.finetune import finetune as train
    from fdt.pipelines.splits import parse_fractions

    with user_errors(data, output_folder(out), weights):
        check_outside(output_folder(out), [data], "--out")
        fractions = parse_fractions(split)
        records = _labelled_records(data, split_list(real), split_list(fake) if fake else None)
        config = FinetuneConfig(
            backbone=backbone, weights=weights, input=input_kind, input_size=input_size, resolution=resolution, epochs=epochs,
            finetune_epochs=finetune_epochs, unfreeze=unfreeze, lr=lr, finetune_lr=finetune_lr, batch_size=batch_size, dropout=dropout,
            patience=patience, val_share=val_share, augment=tuple(augment), class_weight=class_weight, seed=seed,
            split=None if all_images else {"seed": split_seed, "fractions": list(fractions)},
        )
        summary = train(records, out, config, device=device, workers=workers, resume=resume, progress=progress)
    for line in iter_history(summary):
        click.echo(line)
    share = "every image" if all_images else f"the train share of split {split} (seed {split_seed})"
    skipped = f", {summary['skipped_images']} unreadable skipped" if summary["skipped_images"] else ""
    click.echo(
        f"wrote {out}: {backbone} on {input_kind}, {summary['num_train']} training and {summary['num_val']} early-stopping images of {share}{skipped}; "
        f"best epoch {summary['best_epoch']} (val loss {summary['best_val_loss']:.4f}); trained groups in {out}.training.json; curves {', '.join(summary['curves'])}"
    )
    if summary["start_weights"].startswith("random"):
        click.echo(f"warning: started from RANDOM weights ({summary['start_weights']}), not ImageNet: a test network, not a pretrained detector")
    if not curves.tensorboard_available():
        click.echo(curves.NO_TENSORBOARD)


def _labelled_records(data: Path, real: list[str], fake: list[str] | None) -> list:
    """The images of the named sources, each labelled as the command line says; a source with the other label is refused."""
    from fdt.data import DataError, load_image_set

    if not real:
        raise DataError("name at least one real source with --real")
    records = load_image_set(data, real_sources=real)
    sources = {r.source: r.label for r in records}
    fake = fake if fake is not None else sorted(s for s in sources if s not in real)
    for names, label, option in ((real, 0, "--real"), (fake, 1, "--fake")):
        for name in names:
            if name not in sources:
                raise DataError(f"{option} names source {name!r}, which {data} does not hold; its sources: {', '.join(sorted(sources)) or 'none'}")
            if sources[name] != label:
                raise DataError(f"source {name!r} is labelled {'fake' if label == 0 else 'real'} in {data}, not as {option} says")
    if not fake:
        raise DataError(f"{data} holds no fake source besides {', '.join(real)}; name them with --fake")
    wanted = set(real) | set(fake)
    return [r for r in records if r.source in wanted]
