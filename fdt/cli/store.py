"""``fdt store ls|info|verify``: look inside a feature store without writing to it."""

from __future__ import annotations

import json
from collections import Counter

import click

from fdt.cli.common import UserError, user_errors

_STORE = click.option("--store", "store_root", default="features_store", show_default=True, type=click.Path(file_okay=False))


def _open(store_root: str):
    from fdt.features_store import FeatureStore

    store = FeatureStore(store_root)
    if not store.exists():
        raise UserError(f"{store_root} is not an fdt feature store (run fdt extract first)")
    return store


@click.group()
def store() -> None:
    """Inspect and verify the feature store."""


@store.command("ls")
@_STORE
def ls(store_root: str) -> None:
    """One line per stored extractor key: rows, failures, weights, resolution."""
    from fdt.features_store import StoreError

    with user_errors(StoreError):
        fs = _open(store_root)
        for key in fs.keys():
            shards = fs.live_shards(key.id)
            rows = sum(s.rows for s in shards)
            failed = len(fs.failures(key))
            click.echo(f"{key.id}  {rows:>8} rows  {failed:>4} failed  {key.describe()}")
        catalog = fs.catalog()
        counts = Counter(zip(catalog.source.tolist(), catalog.label.tolist()))
        sources = ", ".join(f"{s} ({'real' if l == 0 else 'fake'}, {n})" for (s, l), n in sorted(counts.items()))
        click.echo(f"sources: {sources or 'none'}")


@store.command()
@click.argument("key_id", required=False)
@_STORE
def info(key_id: str | None, store_root: str) -> None:
    """Everything the store says about itself, or about one key (by id, as `fdt store ls` prints)."""
    from fdt.features_store import StoreError

    with user_errors(StoreError):
        fs = _open(store_root)
        keys = fs.keys()
        if key_id is not None:
            keys = [k for k in keys if k.id.startswith(key_id)]
            if not keys:
                raise UserError(f"no key {key_id!r} in {store_root}; see fdt store ls")
        marker = json.loads((fs.root / "fdt-store.json").read_text())
        size = sum(p.stat().st_size for p in fs.root.rglob("*.h5"))
        click.echo(f"store: {fs.root} ({marker['encoding-type']} v{marker['encoding-version']}, created {marker.get('created')}, {size / 1e6:.1f} MB)")
        click.echo(f"catalog rows: {len(fs.catalog())}")
        for key in keys:
            shards = fs.live_shards(key.id)
            newest = shards[-1].attrs if shards else {}
            click.echo(f"\nkey {key.id}")
            click.echo(f"  extractor:  {key.extractor}")
            click.echo(f"  params:     {json.dumps(key.params, sort_keys=True)}")
            click.echo(f"  weights:    {key.weights}{'  (RANDOM: not ImageNet features)' if key.weights.startswith('random') else ''}")
            click.echo(f"  resolution: {key.resolution}")
            click.echo(f"  perturb:    {key.perturb or 'none (clean images)'}")
            click.echo(f"  rows:       {sum(s.rows for s in shards)} in {len(shards)} shard(s), {len(fs.failures(key))} failed images")
            click.echo(f"  features:   {shards[0].num_features if shards else '?'} per row")
            click.echo(f"  written:    {newest.get('created')} by fdt {newest.get('fdt_version')}, torch {newest.get('torch_version', '-')}")
            click.echo(f"  extractor info: {newest.get('extractor_info', '{}')}")


@store.command()
@_STORE
def verify(store_root: str) -> None:
    """Check every file against the format spec and its checksum; exit 1 if the store is damaged."""
    from fdt.features_store.verify import verify_store
    from fdt.features_store import FeatureStore

    report = verify_store(FeatureStore(store_root))
    for note in report.notes:
        click.echo(f"note: {note}")
    for error in report.errors:
        click.echo(f"error: {error}", err=True)
    click.echo(
        f"{'ok' if report.ok else 'DAMAGED'}: {report.shards} shard(s), {report.rows} feature rows, "
        f"{report.failures} failed images, {report.catalog_rows} catalog rows, {len(report.errors)} error(s)"
    )
    if not report.ok:
        raise SystemExit(1)


@store.command()
@_STORE
@click.option("--wait", default=0.0, show_default=True, type=click.FloatRange(min=0), help="Seconds to wait for a writer to finish.")
def compact(store_root: str, wait: float) -> None:
    """Merge each key's small shard files into one and delete leftovers of killed writers.

    Writers do this when they finish; run it by hand only after jobs were killed.
    """
    from fdt.features_store import StoreError

    with user_errors(StoreError):
        merged = _open(store_root).compact(wait=wait)
    click.echo(f"merged the shards of {merged} key(s)")
