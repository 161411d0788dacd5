"""``fdt perturb``: perturbed copies of an image set on disk, with a sample grid, for inspection."""

from __future__ import annotations

import click

from fdt.cli.common import split_list, user_errors
from fdt.errors import check_outside


@click.command()
@click.argument("data", nargs=-1, required=True, type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New or empty folder for the copies, manifest.csv and grid.png.")
@click.option("--perturb", "perturb", multiple=True, metavar="OP:K=V", help="A perturbation; repeat to chain (jpeg:quality=75, blur:sigma=1, ...).")
@click.option("--sweep", "sweeps", multiple=True, metavar="OP:K=V1,V2", help="Write every level of a sweep (jpeg:quality=100,75,30); repeatable.")
@click.option("--real", default="real", show_default=True, help="Comma list of sub-folder (source) names that hold real images.")
@click.option("--layout", default="auto", show_default=True, help="How DATA folders are organised: auto, plain, or a dataset layout.")
@click.option("--limit", default=None, type=click.IntRange(min=1), help="Only the first N images (in each DATA).")
@click.option("--grid", default=6, show_default=True, type=click.IntRange(min=1), help="Images shown in grid.png.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def perturb(data, out, perturb, sweeps, real, layout, limit, grid, quiet):
    """Write perturbed copies of the images in DATA as PNG (what an extractor would see), per level.

    Extraction never needs this (it perturbs in memory); it is for looking at
    what a level does before trusting a robustness sweep.
    """
    from fdt.data import load_image_set
    from fdt.perturb import parse_chain, parse_sweep
    from fdt.perturbed_copies import write_perturbed

    with user_errors(*data, out):
        check_outside(out, data, "--out")
        records = []
        for item in data:
            found = load_image_set(item, real_sources=split_list(real), layout=layout)
            records += found[:limit] if limit else found
        base = parse_chain(perturb)
        levels = list(dict.fromkeys(base.then(chain) for spec in sweeps for chain in parse_sweep(spec).chains)) or [base]
        manifest, grid_png, failures = write_perturbed(records, levels, out, grid=grid, progress=not quiet)
    for path, reason in sorted(failures.items()):
        click.echo(f"skipped {path}: {reason}", err=True)
    click.echo(f"wrote {len(records) - len(failures)} images x {len(levels)} level(s) under {out}/ ({manifest.name}, {grid_png.name})")
