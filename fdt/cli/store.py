"""``fdt store ls|info|verify|failures|compact``: look inside a feature store; compact it or forget its failures."""

from __future__ import annotations

import json
from collections import Counter

import click

from fdt.cli.common import UserError, user_errors

_STORE = click.option("--store", "store_root", default="features_store", show_default=True, type=click.Path(file_okay=False))


def _open(store_root: str):
    from fdt.features_store import FeatureStore

    store = FeatureStore(store_root)
    store.check_format()  # a folder that is not a store is refused as fdt extract refuses it
    if not store.exists():
        raise UserError(f"no fdt feature store at {store_root} yet (fdt extract creates one)")
    return store


@click.group()
def store() -> None:
    """Inspect and verify the feature store."""


@store.command("ls")
@_STORE
def ls(store_root: str) -> None:
    """One line per stored extractor key: rows, failures, weights, resolution."""

    with user_errors(store_root):
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

    with user_errors(store_root):
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

    if not FeatureStore(store_root).exists():
        raise UserError(f"no store here: {store_root} holds no fdt-store.json (fdt extract creates a store)")
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
    """Merge each key's small shard files and delete leftovers of killed writers.

    Writers merge by size tiers as they finish (so growing a key does not
    rewrite it); this merges every shard under 200,000 rows, smallest first,
    into shards of at most that many: e.g. before copying a finished store, or
    after jobs were killed.
    """

    with user_errors(store_root):
        merged = _open(store_root).compact(wait=wait)
    click.echo(f"merged the shards of {merged} key(s)")


@store.command()
@_STORE
@click.option("--clear", is_flag=True, help="Forget every recorded failure, so the next fdt extract tries those images again.")
@click.option("--wait", default=0.0, show_default=True, type=click.FloatRange(min=0), help="With --clear: seconds to wait for a writer to finish.")
def failures(store_root: str, clear: bool, wait: float) -> None:
    """Images that could not be extracted, per key: path and reason (tab-separated); or forget them with --clear.

    Failures with a transient reason (the file could not be read, or changed while
    it was read) are retried by the next extraction anyway; --clear makes it retry
    the others too (e.g. after a decoder upgrade).
    """
    from fdt.features_store.store import is_transient

    with user_errors(store_root):
        fs = _open(store_root)
        if clear:
            changed = fs.clear_failures(wait=wait)
            click.echo(f"cleared the failures of {changed} key(s)")
            return
        total = 0
        for key in fs.keys():
            for sha, path, reason in sorted(fs.failures(key), key=lambda row: row[1]):
                note = "  (retried by the next fdt extract)" if is_transient(reason) else ""
                click.echo(f"{key.id}\t{path}\t{reason}{note}")
                total += 1
        click.echo(f"{total} failed image(s)", err=True)
