"""``fdt audit``: can file metadata alone (format, JPEG quality, size, ...) separate real from fake?"""

from __future__ import annotations

from pathlib import Path

import click

from fdt.cli.common import UserError, split_list, user_errors
from fdt.errors import check_outside


@click.command()
@click.argument("data", nargs=-1, required=True, type=click.Path())
@click.option("--real", default="real", show_default=True, help="Comma list of sub-folder (source) names that hold real images.")
@click.option("--out", default="reports/audit", show_default=True, type=click.Path(file_okay=False), help="Folder for audit.md, audit.json, audit.png.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seeds the folds, the classifier and the bootstrap.")
@click.option("--extractor", default=None, help="Also score a quick detector on this extractor's stored features, with and without equalisation.")
@click.option("--store", "store_root", default="features_store", show_default=True, type=click.Path(file_okay=False))
def audit(data: tuple[str, ...], real: str, out: str, seed: int, extractor: str | None, store_root: str) -> None:
    """Read the headers of the images in DATA and train a metadata-only real-vs-fake classifier per fake source.

    Where it reaches ROC AUC 0.8 or more, detectors on those sources can win by the
    shortcut it names; fdt tune, fdt report matrix and fdt run print the same warning.
    """
    from fdt.data import load_image_set
    from fdt.pipelines.audit import audit_records, write_audit

    with user_errors(*data):
        check_outside(out, data, "--out")
        records = [r for item in data for r in load_image_set(item, real_sources=split_list(real))]
    if not {r.label for r in records} >= {0, 1}:
        raise UserError("the audit needs real and fake images; name the real sources with --real")
    result = audit_records(
        [r.path for r in records], [r.source for r in records], [r.label for r in records],
        [r.group or f"path:{r.path}" for r in records], random_state=seed,
    )
    if extractor:
        from fdt.features_store.store import FeatureStore
        from fdt.pipelines.audit import detector_by_equalisation

        fakes = sorted({r.source for r in records if r.label == 1})
        reals = sorted({r.source for r in records if r.label == 0})
        with user_errors(store_root):
            result.detector = detector_by_equalisation(FeatureStore(store_root), extractor, reals, fakes, seed)
    with user_errors(out):
        written = write_audit(result, Path(out))
    for condition in result.conditions:
        click.echo(f"real vs {condition.fake}: metadata-only ROC AUC {condition.roc_auc:.2f} [{condition.interval[0]:.2f}, {condition.interval[1]:.2f}] ({condition.description})")
    for row in result.detector:
        click.echo(f"{extractor} at {row['resolution']}, equalised: {row['equalised']}: ROC AUC {row['roc_auc']:.2f} [{row['interval'][0]:.2f}, {row['interval'][1]:.2f}]")
    for warning in result.warnings():
        click.echo(f"WARNING: {warning}", err=True)
    for note in result.notes():
        click.echo(f"note: {note}")
    click.echo(f"wrote {', '.join(str(p) for p in written)}")
