"""``fdt extract``: image sets -> feature rows in the store."""

from __future__ import annotations

import click

from fdt.cli.common import UserError, param_paths, parse_params, split_list, user_errors


class _ExtractorOption(click.Option):
    """``--extractor``, whose help lists the registered names when help is shown (never on a plain run)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        from fdt.features_store.registry import list_extractors

        self.help = f"Registered extractor name: {', '.join(list_extractors())}."
        return super().get_help_record(ctx)


@click.command()
@click.argument("data", nargs=-1, required=True, type=click.Path())
@click.option("--extractor", "-e", cls=_ExtractorOption, required=True, help="Registered extractor name.")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE", help="Extractor parameter, repeatable (e.g. weights=random, size=64).")
@click.option("--resolution", "-r", default="native", show_default=True, help="native, N (resize to NxN), crop:N (centre NxN, no resampling), randcrop:N, or a comma list such as 64,crop:256.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--device", default="auto", show_default=True, help="auto (CUDA where present), cpu or cuda.")
@click.option("--workers", type=click.IntRange(min=0), default=None, help="Decoding processes [default: one per core; 0 decodes in-process].")
@click.option("--store", "store_root", default="features_store", show_default=True, type=click.Path(file_okay=False))
@click.option("--real", default="real", show_default=True, help="Comma list of sub-folder (source) names that hold real images.")
@click.option("--label", type=click.Choice(["real", "fake"]), default=None, help="Label every image of a folder DATA, whatever its sources.")
@click.option("--max-pixels", default=100_000_000, show_default=True, type=click.IntRange(min=1), help="Refuse images larger than this.")
@click.option("--wait", default=0.0, show_default=True, type=click.FloatRange(min=0), help="Seconds to wait for another writer of the store.")
@click.option("--flush-every", default=1024, show_default=True, type=click.IntRange(min=1), help="Rows per shard file: at most this much work is lost on a kill.")
@click.option("--shard", default=None, metavar="I/N", help="Extract only shard I of N (by image content); N jobs may write one store at once.")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Run on a Dask cluster (tcp://host:8786), one task per shard.")
@click.option("--shards", default=None, type=click.IntRange(min=1), help="With --scheduler: number of tasks [default: one per worker thread].")
@click.option("--rehash", is_flag=True, help="Hash every file again instead of trusting remembered hashes of unchanged files.")
@click.option("--equalise", "equalise", multiple=True, metavar="OP:K=V", help="Re-encode every image, real and fake, the same way before extraction (jpeg:quality=95, png, crop:size=N); repeat to chain. Part of the feature key.")
@click.option("--perturb", "perturb", multiple=True, metavar="OP:K=V", help="Perturb every image before the resolution step (jpeg:quality=75, blur:sigma=1, ...); repeat to chain. Part of the feature key.")
@click.option("--sweep", "sweeps", multiple=True, metavar="OP:K=V1,V2", help="Extract every level of a robustness sweep (jpeg:quality=100,90,75), decoding each image once; repeatable.")
@click.option("--layout", default="auto", show_default=True, help="How DATA folders are organised: auto, plain, or a dataset layout (genimage, cnndetection, ...).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def extract(data, extractor, params, resolution, batch_size, device, workers, store_root, real, label, max_pixels, wait, flush_every, shard, scheduler, shards, rehash, equalise, perturb, sweeps, layout, quiet):
    """Extract features of the images in DATA (folders or CSV manifests) into the feature store.

    A folder with sub-folders is one source per sub-folder; sources named in
    --real are real (label 0), the others fake. Images already in the store for
    this extractor, its parameters, weights and resolution are not computed again.
    """
    from fdt.data import display_path, load_image_set, parse_resolution

    with user_errors(*data):
        resolutions = [parse_resolution(r) for r in split_list(resolution)]
        records = []
        for item in data:
            records += load_image_set(item, real_sources=split_list(real), label=None if label is None else int(label == "fake"), layout=layout)
        from fdt.layouts import split_note
        from fdt.perturb import parse_chain, parse_sweep

        if note := split_note(records):
            click.echo(f"note: {note}", err=True)

        base = parse_chain([*equalise, *perturb])  # equalisation first: it stands for how the files were made
        levels = list(dict.fromkeys(base.then(chain) for spec in sweeps for chain in parse_sweep(spec).chains)) or [base]
    if not resolutions:
        raise UserError("--resolution is empty")
    from fdt.features_store.sharding import parse_shard

    with user_errors():
        shard_spec = parse_shard(shard) if shard else None
    if scheduler and len(levels) > 1:
        raise UserError("--sweep runs on one machine; with --scheduler, extract one --perturb level at a time")
    if shard_spec and scheduler:
        raise UserError("--shard and --scheduler exclude each other: the scheduler runs every shard")

    from fdt.features_store.extraction import extract_levels

    import warnings

    from fdt.features_store.extraction import SpectralResizeWarning, spectral_resize_warning

    with user_errors():
        notes = [spectral_resize_warning(extractor, res) for res in resolutions]
    for note in filter(None, notes):
        click.echo(f"warning: {note}", err=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpectralResizeWarning)  # said once above, not once per run
        for res in resolutions:
            options = dict(batch_size=batch_size, device=device, progress=not quiet, max_pixels=max_pixels, wait=wait, flush_rows=flush_every)
            with user_errors(*data, store_root, *param_paths(params)):
                if scheduler:
                    from fdt.features_store.distributed import extract_on_dask

                    summaries = [extract_on_dask(records, extractor, parse_params(params), res, store_root, scheduler, shards=shards, perturb=levels[0], **options)]
                else:
                    summaries = extract_levels(records, extractor, parse_params(params), res, store_root, levels, workers=workers, shard=shard_spec, rehash=rehash, **options)
            for summary in summaries:
                for index, reason in sorted(summary.failures.items()):
                    click.echo(f"skipped {display_path(records[index].path)}: {reason}", err=True)
                click.echo(summary.line())
