"""What every command shares: user errors as one line with exit code 2, and ``key=value`` parameters.

This is the one place that turns exceptions into what a user sees: the group's
``invoke`` (:mod:`fdt.cli`) runs every command inside :func:`user_errors`, and a
command adds the paths the user named so OS errors about them read as one line too.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterator

import click

from fdt.errors import FdtError, one_line

USER_ERROR_EXIT = 2
"""The exit code of every mistake of the user's: fdt's own errors and click's usage, parameter and file errors alike."""


class UserError(click.ClickException):
    """A mistake in what the user asked for: printed as one line, exit code 2, no traceback."""

    exit_code = USER_ERROR_EXIT


REPORT_BUG = "fdt: this is a bug, not a mistake of yours; please report it with the traceback above (https://github.com/fdt/fdt/issues)"


@contextlib.contextmanager
def user_errors(*paths: str | os.PathLike | None) -> Iterator[None]:
    """Turn fdt's own errors, and OS errors about ``paths`` (those the user named) or files in them, into :class:`UserError`.

    Nothing else is mapped: an ``OSError`` about a file fdt chose, or a
    ``ValueError`` from numpy, is a bug and must keep its traceback.
    """
    try:
        yield
    except FdtError as error:
        raise UserError(one_line(error)) from None
    except OSError as error:
        named = _named_path(error, paths)
        if named is None:
            raise
        raise UserError(f"{named}: {error.strerror or one_line(error)}") from None


def _named_path(error: OSError, paths: tuple[str | os.PathLike | None, ...]) -> str | None:
    """The file of ``error`` if it is one of ``paths`` or inside one of them, else ``None``."""
    roots = [os.path.abspath(os.fsdecode(p)) for p in paths if p is not None and os.fspath(p) != ""]
    for name in (error.filename, error.filename2):
        if name is None or isinstance(name, int):
            continue
        full = os.path.abspath(os.fsdecode(name))
        if any(full == root or full.startswith(root.rstrip(os.sep) + os.sep) for root in roots):
            return os.fsdecode(name)
    return None


def output_folder(path: str | os.PathLike) -> str:
    """The folder of an output file the user named: its checkpoint, curves and atomic-write temporaries go there too."""
    return os.path.dirname(os.path.abspath(os.fspath(path)))


def parse_value(text: str) -> Any:
    """``none``/``true``/``false``, integers and floats become Python values; anything else stays a string."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_params(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``("size=64", "profile=true")`` -> ``{"size": 64, "profile": True}``."""
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--param takes key=value, not {pair!r}")
        params[name.strip()] = parse_value(value)
    return params


def param_paths(pairs: tuple[str, ...] | list[str]) -> list[str]:
    """The values of ``key=value`` parameters, as paths the user may have named (``weights=PATH``, ``model=PATH``)."""
    return [value for value in (pair.partition("=")[2] for pair in pairs) if value]


def split_list(text: str | None) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def equalise_key(operations: tuple[str, ...] | list[str]) -> str:
    """The feature key's chain for ``--equalise`` operations (``""`` for none), checked as ``fdt extract`` checks them."""
    if not operations:
        return ""
    from fdt.perturb import PerturbError, parse_chain

    try:
        return parse_chain(list(operations)).key
    except PerturbError as error:
        raise UserError(f"--equalise: {error}") from None


# --------------------------------------------------------------------------- option blocks shared by fdt tune and fdt report
# Each block is a decorator adding its options in the order --help lists them; commands
# differ only in help texts and defaults, which the blocks take as arguments.

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def options(*decorators: Decorator) -> Decorator:
    """Apply click options so that ``--help`` lists them in the order given (click lists the last-applied first)."""

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


def stored_features_options(extractor_help: str, resolution_help: str, weights_help: str, *after_resolution: Decorator) -> Decorator:
    """``--extractor``, ``--resolution`` (then ``after_resolution``), ``--param``, ``--weights``: which stored key to read."""
    return options(
        click.option("--extractor", required=True, help=extractor_help),
        click.option("--resolution", default="native", show_default=True, help=resolution_help),
        *after_resolution,
        click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Extractor parameter narrowing the stored key; repeatable."),
        click.option("--weights", default=None, help=weights_help),
    )


def pipeline_options(default: str) -> Decorator:
    """``--pipeline`` (a spec name), ``--specs`` and ``--allow-class`` (the user's specs)."""
    from fdt.cli.pipelines import SPECS_OPTION

    return options(
        click.option("--pipeline", "pipeline_name", default=default, show_default=True, help="Pipeline spec (fdt pipelines ls)."),
        SPECS_OPTION,
    )


def source_options(real_help: str, fake_help: str) -> Decorator:
    """``--real`` and ``--fake``: the sources on each side, comma-separated."""
    return options(click.option("--real", required=True, help=real_help), click.option("--fake", required=True, help=fake_help))


def protocol_options(trials_default: int, trials_help: str, cv_help: str, seed_help: str | None = None) -> Decorator:
    """``--trials``, ``--cv``, ``--split``, ``--seed``: the tuning and splitting protocol a study is keyed by."""
    return options(
        click.option("--trials", default=trials_default, show_default=True, type=click.IntRange(min=0), help=trials_help),
        click.option("--cv", default=5, show_default=True, type=click.IntRange(min=2), help=cv_help),
        click.option("--split", default="80/10/10", show_default=True, help="Train/validation/test shares of the groups."),
        click.option("--seed", default=0, show_default=True, type=int, help=seed_help),
    )


def quality_metric_options() -> Decorator:
    """``--k``, ``--kid-subsets``, ``--kid-subset-size``, ``--resamples``: how FD, KID and PRDC are computed."""
    return options(
        click.option("--k", "k", default=5, show_default=True, type=click.IntRange(min=1), help="Nearest neighbours of precision/recall/density/coverage."),
        click.option("--kid-subsets", default=100, show_default=True, type=click.IntRange(min=1), help="KID subsets (mean ± std over them)."),
        click.option("--kid-subset-size", default=1000, show_default=True, type=click.IntRange(min=2), help="Images per KID subset (at most the smaller set)."),
        click.option("--resamples", default=100, show_default=True, type=click.IntRange(min=10), help="Bootstrap resamples of the FD and k-NN metric intervals."),
    )


STORE_OPTION = click.option("--store", "store_root", default="features_store", show_default=True, type=click.Path(file_okay=False))


def progress_option(help: str | None = None) -> Decorator:
    return click.option("--progress/--no-progress", default=True, show_default=True, help=help)


EQUALISE_OPTION = click.option(
    "--equalise", "equalise", multiple=True, metavar="OP:K=V", help="Use the features extracted with this --equalise chain (as given to fdt extract)."
)
ALLOW_TRAINED_GROUPS_OPTION = click.option(
    "--allow-trained-groups", is_flag=True, help="Score features of a trained network on images it trained on anyway (flagged as a leak)."
)
