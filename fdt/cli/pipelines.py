"""``fdt pipelines ls``: the pipeline specs (built in, from plugins, and the user's) with their search spaces."""

from __future__ import annotations

import click

from fdt.cli.common import user_errors

_SPECS = click.option(
    "--specs",
    type=click.Path(dir_okay=False),
    envvar="FDT_PIPELINES",
    help="TOML file of extra pipeline specs ([pipelines.<name>] tables); env FDT_PIPELINES.",
)


def _allow(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> None:
    from fdt.pipelines.specs import allow_class

    with user_errors():
        for value in values:
            allow_class(value)


_ALLOW = click.option(
    "--allow-class",
    multiple=True,
    metavar="MODULE.CLASS",
    expose_value=False,
    is_eager=True,
    callback=_allow,
    help="A classifier class outside scikit-learn that spec files may name (its module is imported); repeatable.",
)


def SPECS_OPTION(function):
    """``--specs FILE`` and ``--allow-class MODULE.CLASS``: user specs, and the non-scikit-learn classes they may import."""
    return _SPECS(_ALLOW(function))


@click.group()
def pipelines() -> None:
    """List pipeline specs and their search spaces."""


@pipelines.command("ls")
@SPECS_OPTION
def ls(specs: str | None) -> None:
    """Show every pipeline spec: steps, default parameters and search space."""
    from fdt.plugins import plugin_names
    from fdt.pipelines.specs import BUILTIN_SPECS, CLASSIFIERS, FEATURE_MAPS, PLUGIN_GROUP, load_specs

    with user_errors(specs):
        found = load_specs(specs)
    from_plugins = set(plugin_names(PLUGIN_GROUP))
    for name, spec in found.items():
        origin = "built-in" if name in BUILTIN_SPECS else "plugin" if name in from_plugins else specs
        click.echo(f"{name}  [{origin}]  {spec.description}")
        click.echo(f"  cost: {spec.cost or 'not stated'}" + ("  (time estimate before tuning)" if spec.quadratic else ""))
        click.echo(f"  steps: {' -> '.join(spec.steps)}  ({CLASSIFIERS.get(spec.classifier, spec.classifier)})")
        if spec.pca is not None:
            click.echo(f"  pca: n_components={spec.pca}" + (", whitened" if spec.whiten else ""))
        if spec.features is not None:
            click.echo(f"  features: {FEATURE_MAPS.get(spec.features, spec.features)} {dict(spec.features_params)}")
        defaults = ", ".join(f"{k}={v}" for k, v in spec.params.items()) or "library defaults"
        click.echo(f"  defaults: {defaults}")
        for parameter, dimension in spec.space.items():
            click.echo(f"  search {parameter}: {dimension.describe()}")
