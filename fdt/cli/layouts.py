"""``fdt layouts``: the public datasets fdt reads as downloaded, and FER2013's one-time conversion."""

from __future__ import annotations

import os

import click

from fdt.cli.common import user_errors


@click.group()
def layouts() -> None:
    """Dataset layouts that fdt extract --layout reads with no manifest."""


@layouts.command("ls")
@click.argument("root", required=False, type=click.Path(exists=True))
def list_layouts(root: str | None) -> None:
    """List the layouts; with ROOT, say which one it is detected as."""
    from fdt.layouts import LAYOUTS, LayoutError, detect_layout

    if root:
        with user_errors(root):
            detected = detect_layout(root)
            if detected is None and not os.path.isdir(root):
                raise LayoutError(f"{root} is a file, not a dataset folder (nor FER2013's CSV)")
        click.echo(detected or "plain")
        return
    for name, layout in LAYOUTS.items():
        click.echo(f"{name:13} {layout.description}")


@layouts.command("fer2013")
@click.argument("csv_path", type=click.Path())
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New or empty folder for the PNGs and manifest.csv.")
def fer2013(csv_path: str, out: str) -> None:
    """Write FER2013's CSV of pixel strings as {train,val,test}/<emotion>/*.png plus manifest.csv."""
    from fdt.layouts import convert_fer2013

    with user_errors(csv_path, out):
        manifest = convert_fer2013(csv_path, out)
    click.echo(f"wrote {manifest}")


@layouts.command("manifest")
@click.argument("root", type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="A new CSV manifest (path, source, label, group, split and the layout's other columns).")
@click.option("--layout", default="auto", show_default=True, help="The layout to read ROOT with (auto: detected).")
def manifest(root: str, out: str, layout: str) -> None:
    """Write ROOT's records as a manifest: the dataset's own split column included, to read or edit."""
    from pathlib import Path

    from fdt.data import MANIFEST_COLUMNS, DataError, write_manifest
    from fdt.layouts import read_layout

    target = Path(out)
    with user_errors(root, out):
        if target.exists():
            raise DataError(f"{target} exists; give a new file")
        records = read_layout(root, layout)
        if records is None:
            raise DataError(f"{root} is in no known layout; fdt layouts ls lists them")
    extra = sorted({name for record in records for name in record.extra})
    rows = [dict(record.extra, path=os.path.abspath(record.path), source=record.source, label=record.label, group=record.group) for record in records]
    write_manifest(target, rows, list(MANIFEST_COLUMNS) + extra)
    click.echo(f"wrote {len(rows)} rows to {target}")
