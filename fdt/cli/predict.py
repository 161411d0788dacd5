"""``fdt predict``: score images with a tuned model, extracting with the model's own extractor key."""

from __future__ import annotations

import json
from pathlib import Path

import click

from fdt.cli.common import UserError, user_errors

UNLABELLED = "unlabelled"  # placeholder source of images to score; never written to the store's catalog


def extractor_params(key) -> dict:
    """Parameters that recreate a stored key's extractor, its weights identity included."""
    params = dict(key.params)
    kind, _, rest = key.weights.partition(":")
    if kind == "random":
        seed = rest.partition("=")[2] or "0"
        if not seed.lstrip("-").isdigit():
            raise UserError(f"the model card's weights {key.weights!r} are not random:seed=N")
        params.update(weights="random", seed=int(seed))
    elif kind == "imagenet":
        params["weights"] = "imagenet"
    elif kind == "file":
        raise UserError(f"the model's features used a local weights file ({key.weights}); pass it with --weights PATH")
    return params


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
@click.option("--threshold", default=0.5, show_default=True, type=click.FloatRange(0, 1), help="Fake probability at or above which an image is called fake.")
@click.option("--weights", "weights_file", default=None, type=click.Path(dir_okay=False), help="Local weights file, for models whose extractor used one.")
@click.option("--store", "store_root", default="features_store", show_default=True, type=click.Path(file_okay=False), help="Store that caches the extracted features.")
@click.option("--trust", is_flag=True, help="Load a pickled model (.joblib from fdt 0.1): loading a pickle runs any code it holds.")
@click.option("--device", default="auto", show_default=True)
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
def predict(model: str, images: tuple[str, ...], as_json: bool, threshold: float, weights_file: str | None, store_root: str, trust: bool, device: str, batch_size: int) -> None:
    """Print each image's fake probability and label; the model file must match its card's sha256."""
    from fdt.data import ImageRecord, display_path, from_folder, is_image_file
    import warnings

    from fdt.pipelines.cards import UntrustedModelWarning, card_extractor_key, load_model

    with user_errors(model, *images, store_root, weights_file):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UntrustedModelWarning)
            fitted, card = load_model(model, trust_pickle=trust)
        for warning in caught:
            click.echo(f"warning: {warning.message}", err=True)
        key = card_extractor_key(card, model)
        records: list[ImageRecord] = []
        for item in images:
            path = Path(item)
            if path.is_dir():
                records += from_folder(path, label=0, source=UNLABELLED)
            elif is_image_file(path):
                records.append(ImageRecord(str(path), UNLABELLED, 0))
            else:
                raise UserError(f"{display_path(item)} is not an image file or a folder of images")
    params = extractor_params(key)
    if weights_file:
        params["weights"] = weights_file
    from fdt.features_store.extraction import extract_records
    from fdt.features_store.store import FeatureStore

    with user_errors(model, *images, store_root, weights_file):
        # rehash: which features score an image must follow its bytes now, never a remembered hash
        summary = extract_records(
            records, key.extractor, params, key.resolution, store_root, batch_size=batch_size, device=device, progress=False, catalog=False, rehash=True
        )
        if summary.key.id != key.id:
            raise UserError(f"the extractor now gives {summary.key.describe()}, but the model was trained on {key.describe()}")
        done = [i for i in range(len(records)) if i not in summary.failures]
        X = FeatureStore(store_root).load_rows(key, [summary.hashes[i] for i in done]) if done else None
    proba = dict(zip(done, fitted.predict_proba(X)[:, 1])) if done else {}
    for index, record in enumerate(records):
        if index in proba:
            row = {"path": display_path(record.path), "fake_probability": float(proba[index]), "label": "fake" if proba[index] >= threshold else "real"}
        else:
            row = {"path": display_path(record.path), "fake_probability": None, "label": None, "error": summary.failures[index]}
        if as_json:
            click.echo(json.dumps(row))
        elif row["label"] is None:
            click.echo(f"{row['path']}\terror: {row['error']}")
        else:
            click.echo(f"{row['path']}\t{row['fake_probability']:.4f}\t{row['label']}")
    if summary.failures:
        click.echo(f"{len(summary.failures)} image(s) could not be read", err=True)
