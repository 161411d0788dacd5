"""``fdt gen``: make fakes. Thin commands over :mod:`fdt.gen`; torch and diffusers load inside them.

Modules that run a network are imported in the command bodies (the defaults
come from :mod:`fdt.gen.sd` and :mod:`fdt.gen.inpaint`, which import torch
only when called), so ``fdt gen --help`` answers in a fraction of a second.
"""

from __future__ import annotations

from pathlib import Path
import click

from fdt.cli.common import split_list, user_errors
from fdt.errors import check_outside
from fdt.gen.inpaint import DEFAULT_MODEL as DEFAULT_INPAINT_MODEL
from fdt.gen.inpaint import DEFAULT_PROMPT as DEFAULT_INPAINT_PROMPT
from fdt.gen.sd import DEFAULT_MODEL as DEFAULT_SD_MODEL

_device = click.option(
    "--device", default="auto", show_default=True, help="auto (CUDA where present, else CPU), cpu, cuda or cuda:N."
)
_seed = click.option("--seed", default=0, show_default=True, type=int, help="Image k of the output folder uses seed + k.")
_source = click.option("--source", default=None, help="Source name in the manifest [default: the output folder's name].")
_out = click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder; continues if not empty.")
_masks = click.option("--masks", default="diagonal,random", show_default=True, help="Comma list of diagonal, random, upper-left, upper-right, lower-left, lower-right.")
_channels = click.option(
    "--channels", default="auto", show_default=True, type=click.Choice(["auto", "1", "3"]),
    help="1 grayscale, 3 RGB; auto: grayscale exactly when every training image is, so fakes keep the reals' mode.",
)
_keep_epochs = click.option("--keep-epochs", is_flag=True, help="Also keep each epoch's weights as OUT/epochs/epoch_NNN.pt, to sample any epoch later.")
_model = click.argument("model_dir", type=click.Path(path_type=Path))
_coverage = click.option("--coverage", nargs=2, type=click.FloatRange(0, 1, min_open=True, max_open=True), default=(0.1, 0.4), show_default=True, help="Range of a random mask's covered fraction.")


def _done(manifest: Path) -> None:
    with open(manifest, encoding="utf-8") as handle:
        rows = sum(1 for _ in handle) - 1
    click.echo(f"{manifest}: {rows} images")


@click.group()
def gen() -> None:
    """Generate fakes: DCGAN, Stable Diffusion, inpainting, small DDPM."""


@gen.command("list")
def list_() -> None:
    """Every generator (built-in and installed plugins): what it makes images from, and its parameters.

    The parameters are those an experiment file's [images.NAME.train] and
    [images.NAME.sample] tables may set, read from the functions themselves.
    """
    with user_errors():
        from fdt.gen.registry import get_generator, list_generators

        for name in list_generators():
            spec = get_generator(name)
            click.echo(f"{name}: {spec.description} [{', '.join(spec.capabilities)}]")
            for stage, table in (("train", "train"), ("make", "sample")):
                if stage == "train" and not spec.train:
                    continue
                params = ", ".join(_describe(p) for p in spec.parameters(stage).values())
                click.echo(f"  {table}: {params}")


def _describe(parameter) -> str:
    return parameter.name if parameter.default is parameter.empty else f"{parameter.name}={parameter.default!r}"


# ---------------------------------------------------------------- DCGAN


@gen.group()
def dcgan() -> None:
    """Train a DCGAN on real photos and sample fakes from it."""


@dcgan.command("train")
@click.argument("images", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Model folder, e.g. models/dcgan.")
@click.option("--size", default=64, show_default=True, type=click.IntRange(min=16), help="Image side in pixels: a power of two, or 3, 5 or 7 times one (48).")
@click.option("--epochs", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--features", default=64, show_default=True, type=click.IntRange(min=1), help="Width of the first D / last G layer.")
@click.option("--nz", default=100, show_default=True, type=click.IntRange(min=1), help="Noise dimension.")
@click.option("--lr", default=2e-4, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Adam learning rate (beta1 0.5).")
@_seed
@_device
@click.option("--resume/--no-resume", default=True, show_default=True, help="Continue from OUT's checkpoint if there is one.")
@_channels
@_keep_epochs
def dcgan_train(
    images: Path, out_dir: Path, size: int, epochs: int, batch_size: int, features: int, nz: int, lr: float, seed: int, device: str, resume: bool,
    channels: str, keep_epochs: bool,
) -> None:
    """Train a DCGAN on IMAGES (a folder, a CSV manifest or one image file).

    Writes OUT/checkpoint.pt every epoch, a sample grid per epoch under
    OUT/samples, OUT/first_vs_last.png and the loss curves OUT/losses.csv/.png.
    """
    with user_errors(images, out_dir):
        check_outside(out_dir, [images], "--out")
        from fdt.gen.dcgan import train_dcgan

        out = train_dcgan(
            images, out_dir, size=size, epochs=epochs, batch_size=batch_size, features=features, nz=nz, lr=lr, seed=seed, device=device, resume=resume,
            channels=None if channels == "auto" else int(channels), keep_epochs=keep_epochs,
        )
    click.echo(f"{out}: DCGAN trained for {epochs} epochs")


@dcgan.command("sample")
@_model
@click.option("-n", "n", required=True, type=click.IntRange(min=1), help="Number of images.")
@_out
@_seed
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1))
@_device
@_source
def dcgan_sample(model_dir: Path, n: int, out_dir: Path, seed: int, batch_size: int, device: str, source: str | None) -> None:
    """Sample N fakes from the DCGAN in MODEL_DIR (a model folder, or one checkpoint such as MODEL/epochs/epoch_005.pt) into OUT."""
    with user_errors(model_dir, out_dir):
        from fdt.gen.dcgan import sample_dcgan

        _done(sample_dcgan(model_dir, n, out_dir, seed=seed, batch_size=batch_size, device=device, source=source))


# ---------------------------------------------------------------- Stable Diffusion


def _sd_options(function):
    for option in reversed(
        [
            click.option("--steps", default=50, show_default=True, type=click.IntRange(min=1), help="Denoising steps."),
            click.option("--guidance", default=7.5, show_default=True, type=float, help="Classifier-free guidance scale."),
            click.option("--negative-prompt", default=None, help="What the images should not show."),
            click.option("--batch-size", default=4, show_default=True, type=click.IntRange(min=1)),
            click.option("--dtype", default="auto", show_default=True, type=click.Choice(["auto", "float32", "float16", "bfloat16"]), help="auto: float16 on CUDA, float32 on CPU."),
        ]
    ):
        function = option(function)
    return function


@gen.command("sd")
@click.argument("prompts", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", default=DEFAULT_SD_MODEL, show_default=True, help="Hub id (via the Hugging Face cache) or a save_pretrained folder.")
@_out
@click.option("--max-captions", default=None, type=click.IntRange(min=1), help="Use only the first N prompts / captions.")
@click.option("--per-prompt", default=1, show_default=True, type=click.IntRange(min=1), help="Images per prompt.")
@click.option(
    "--group-by", default="prompt", show_default=True, type=click.Choice(["prompt", "image"]),
    help="An image's group: its prompt's (COCO: its photo's id), or its own (generic prompts tied to no photo; not for COCO captions).",
)
@click.option("--size", default=None, type=click.IntRange(min=8), help="Image side in pixels [default: the model's].")
@_sd_options
@_seed
@_device
@_source
def sd(
    prompts: Path, model: str, out_dir: Path, max_captions: int | None, per_prompt: int, group_by: str, size: int | None, steps: int,
    guidance: float, negative_prompt: str | None, batch_size: int, dtype: str, seed: int, device: str, source: str | None,
) -> None:
    """Text-to-image from PROMPTS: a text file (one prompt per line) or a COCO captions JSON.

    The group of an image is its COCO image id, or its prompt for a text file
    (with --group-by image: the prompt and the image's seed, one group per image).
    """
    with user_errors(prompts, out_dir, model):
        from fdt.gen.sd import generate_sd

        manifest = generate_sd(
            prompts, out_dir, model=model, per_prompt=per_prompt, max_captions=max_captions, steps=steps, guidance=guidance, size=size,
            batch_size=batch_size, negative_prompt=negative_prompt, seed=seed, device=device, dtype=dtype, source=source, group_by=group_by,
        )
    _done(manifest)


@gen.command("inpaint")
@click.argument("images", type=click.Path(exists=True, path_type=Path))
@click.option("--model", default=DEFAULT_INPAINT_MODEL, show_default=True, help="Hub id (via the Hugging Face cache) or a save_pretrained folder.")
@_out
@_masks
@click.option("--per-image", default=5, show_default=True, type=click.IntRange(min=1), help="Outputs per source image.")
@_coverage
@click.option("--prompt", default=DEFAULT_INPAINT_PROMPT, show_default=True)
@click.option("--size", default=512, show_default=True, type=click.IntRange(min=8), help="Sources are centre-cropped to this side (a multiple of 8).")
@_sd_options
@_seed
@_device
@_source
def inpaint(
    images: Path, model: str, out_dir: Path, masks: str, per_image: int, coverage: tuple[float, float], prompt: str, size: int, steps: int,
    guidance: float, negative_prompt: str | None, batch_size: int, dtype: str, seed: int, device: str, source: str | None,
) -> None:
    """Repaint masked regions of IMAGES (a folder, a CSV manifest or one image) with Stable Diffusion.

    Each output keeps its source image as group; its mask is saved under OUT/.masks.
    """
    with user_errors(images, out_dir, model):
        from fdt.gen.inpaint import inpaint_sd

        manifest = inpaint_sd(
            images, out_dir, model=model, masks=split_list(masks), per_image=per_image, coverage=coverage, prompt=prompt,
            negative_prompt=negative_prompt, steps=steps, guidance=guidance, size=size, batch_size=batch_size, seed=seed,
            device=device, dtype=dtype, source=source,
        )
    _done(manifest)


# ---------------------------------------------------------------- small DDPM


@gen.group()
def ddpm() -> None:
    """A small DDPM that trains on a CPU: train, sample, inpaint."""


@ddpm.command("train")
@click.argument("images", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Model folder, e.g. models/ddpm.")
@click.option("--size", default="32", show_default=True, type=click.Choice(["32", "48", "64"]), help="Image side in pixels.")
@click.option("--epochs", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--lr", default=1e-3, show_default=True, type=click.FloatRange(min=0, min_open=True), help="AdamW learning rate.")
@_seed
@_device
@click.option("--resume/--no-resume", default=True, show_default=True, help="Continue from OUT's checkpoint if there is one.")
@_channels
@_keep_epochs
def ddpm_train(
    images: Path, out_dir: Path, size: str, epochs: int, batch_size: int, lr: float, seed: int, device: str, resume: bool, channels: str, keep_epochs: bool
) -> None:
    """Train the small DDPM on IMAGES (a folder, a CSV manifest or one image file).

    Writes OUT/checkpoint.pt every epoch, a sample grid per epoch, OUT/first_vs_last.png
    and the loss curves OUT/losses.csv/.png.
    """
    with user_errors(images, out_dir):
        check_outside(out_dir, [images], "--out")
        from fdt.gen.ddpm import train_ddpm

        out = train_ddpm(
            images, out_dir, size=int(size), epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device, resume=resume,
            image_channels=None if channels == "auto" else int(channels), keep_epochs=keep_epochs,
        )
    click.echo(f"{out}: DDPM trained for {epochs} epochs")


@ddpm.command("sample")
@_model
@click.option("-n", "n", required=True, type=click.IntRange(min=1), help="Number of images.")
@_out
@click.option("--steps", default=50, show_default=True, type=click.IntRange(min=1), help="DDIM steps.")
@_seed
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@_device
@_source
def ddpm_sample(model_dir: Path, n: int, out_dir: Path, steps: int, seed: int, batch_size: int, device: str, source: str | None) -> None:
    """Sample N images with DDIM from the DDPM in MODEL_DIR (a model folder, or one checkpoint such as MODEL/epochs/epoch_005.pt) into OUT."""
    with user_errors(model_dir, out_dir):
        from fdt.gen.ddpm import sample_ddpm

        _done(sample_ddpm(model_dir, n, out_dir, steps=steps, seed=seed, batch_size=batch_size, device=device, source=source))


@ddpm.command("inpaint")
@_model
@click.argument("images", type=click.Path(exists=True, path_type=Path))
@_out
@_masks
@click.option("--per-image", default=1, show_default=True, type=click.IntRange(min=1), help="Outputs per source image.")
@_coverage
@click.option("--steps", default=50, show_default=True, type=click.IntRange(min=1), help="DDIM steps.")
@_seed
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@_device
@_source
def ddpm_inpaint(
    model_dir: Path, images: Path, out_dir: Path, masks: str, per_image: int, coverage: tuple[float, float], steps: int, seed: int,
    batch_size: int, device: str, source: str | None,
) -> None:
    """Repaint masked regions of IMAGES with the DDPM in MODEL_DIR (RePaint-style), with masks and a manifest."""
    with user_errors(model_dir, images, out_dir):
        from fdt.gen.ddpm import inpaint_ddpm

        manifest = inpaint_ddpm(
            model_dir, images, out_dir, masks=split_list(masks), per_image=per_image, coverage=coverage, steps=steps, seed=seed,
            batch_size=batch_size, device=device, source=source,
        )
    _done(manifest)
