"""``fdt --config FILE``: option defaults from a TOML file, the way black reads ``[tool.black]``.

A team fixes its store, seed, folds and device once instead of on every command line::

    # fdt.toml (or the same tables under [tool.fdt] in pyproject.toml)
    [extract]
    store = "shared/features_store"
    batch-size = 64

    [tune]
    cv = 10

    [report.matrix]         # a sub-command's table is nested in its group's
    trials = 20

Keys are option names (``batch-size`` or ``batch_size``), one table per command.
Command-line options always win. A table or key that names no command or
option is an error, so a typo never silently leaves a default in place; values
go through the option's own type check when the command runs. A relative path
given to a path-valued option is taken relative to the config file, so the file
means the same from any working folder. Without ``--config``, ``fdt.toml`` or a
``pyproject.toml`` with a ``[tool.fdt]`` table in the working folder is read,
and fdt says which on stderr: defaults that change results never apply unseen.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import click

DISCOVERED = ("fdt.toml", "pyproject.toml")


def _fail(message: str) -> None:
    from fdt.cli.common import UserError

    raise UserError(message)


def read_config(path: Path, explicit: bool) -> dict[str, Any] | None:
    """The option tables of ``path`` (``[tool.fdt]`` for a ``pyproject.toml``); ``None`` where a discovered file has none."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        _fail(f"{path}: {error.strerror}")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        _fail(f"{path}: not valid TOML ({error})")
    if path.name == "pyproject.toml":
        tables = data.get("tool", {}).get("fdt")
        if tables is None:
            if explicit:
                _fail(f"{path} has no [tool.fdt] table")
            return None
        if not isinstance(tables, dict):
            _fail(f"{path}: [tool.fdt] must be a table")
        return tables
    return data


def default_map(group: click.Command, ctx: click.Context, tables: dict[str, Any], base: Path, where: str = "") -> dict[str, Any]:
    """click's ``default_map`` for ``group`` from config ``tables``, every key checked against the commands' options."""
    result: dict[str, Any] = {}
    options = [param for param in group.params if isinstance(param, click.Option) and param.name not in ("config", "help", "version")]
    params = {_key(name): param for param in options for name in (param.name, *(o for o in param.opts if o.startswith("--")))}
    for key, value in tables.items():
        here = f"{where}.{key}" if where else key
        if isinstance(value, dict):
            command = group.get_command(ctx, key) if isinstance(group, click.Group) else None
            if command is None:
                _fail(f"config table [{here}] names no fdt command; see fdt{' ' + where.replace('.', ' ') if where else ''} --help")
            result[key] = default_map(command, ctx, value, base, here)
            continue
        param = params.get(_key(key))
        if param is None:
            names = ", ".join(sorted(next(o[2:] for o in (*p.opts, "--" + p.name) if o.startswith("--")) for p in options))
            command = f"fdt {where.replace('.', ' ')}" if where else "fdt itself"
            _fail(f"config key {key!r} in [{where or 'the top level'}] is no option of {command}; options: {names or 'none'}")
        result[param.name] = _relative_to(base, param, value)
    return result


def _key(name: str) -> str:
    """``--batch-size``, ``batch-size`` and ``batch_size`` name one option."""
    return name.lstrip("-").replace("-", "_")


def _relative_to(base: Path, param: click.Parameter, value: Any) -> Any:
    """A relative path for a path-valued option, taken relative to the config file's folder."""
    if not isinstance(param.type, click.Path):
        return value
    if isinstance(value, str) and value and not os.path.isabs(value):
        return str(base / value)
    if isinstance(value, list):
        return [str(base / v) if isinstance(v, str) and v and not os.path.isabs(v) else v for v in value]
    return value


def apply_config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """The eager ``--config`` callback: read the file (or discover one) and install its defaults for every sub-command."""
    if value is not None:
        path, explicit = Path(value), True
    else:
        found = [Path(name) for name in DISCOVERED if Path(name).is_file()]
        if not found:
            return
        path, explicit = found[0], False
    tables = read_config(path, explicit)
    if not tables:
        return
    if not explicit:
        click.echo(f"fdt: option defaults from {path}{' [tool.fdt]' if path.name == 'pyproject.toml' else ''} (--config FILE to choose another)", err=True)
    ctx.default_map = default_map(ctx.command, ctx, tables, path.resolve().parent)


CONFIG_OPTION = click.option(
    "--config",
    type=click.Path(dir_okay=False),
    is_eager=True,
    expose_value=False,
    callback=apply_config,
    help="TOML file of option defaults, one table per command ([extract], [report.matrix], ...); "
    "default: ./fdt.toml or ./pyproject.toml's [tool.fdt].",
)
