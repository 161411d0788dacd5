"""``fdt layouts``: the public datasets fdt reads as downloaded, and FER2013's one-time conversion."""

from __future__ import annotations

import click

from fdt.cli.common import user_errors


@click.group()
def layouts() -> None:
    """Dataset layouts that fdt extract --layout reads with no manifest."""


@layouts.command("ls")
@click.argument("root", required=False, type=click.Path(exists=True))
def list_layouts(root: str | None) -> None:
    """List the layouts; with ROOT, say which one it is detected as."""
    from fdt.layouts import LAYOUTS, detect_layout

    if root:
        click.echo(detect_layout(root) or "plain")
        return
    for name, layout in LAYOUTS.items():
        click.echo(f"{name:13} {layout.description}")


@layouts.command("fer2013")
@click.argument("csv_path", type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New or empty folder for the PNGs and manifest.csv.")
def fer2013(csv_path: str, out: str) -> None:
    """Write FER2013's CSV of pixel strings as {train,val,test}/<emotion>/*.png plus manifest.csv."""
    from fdt.layouts import LayoutError, convert_fer2013

    with user_errors(LayoutError):
        manifest = convert_fer2013(csv_path, out)
    click.echo(f"wrote {manifest}")
