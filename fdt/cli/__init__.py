"""The ``fdt`` command line: one thin click command per stage.

Sub-commands live in sibling modules and are imported only when invoked, so
``fdt --help`` never pays for torch, diffusers or timm. A command module exposes
a click command or group named like the module (``fdt.cli.extract:extract``).
"""

from __future__ import annotations

import importlib
import importlib.util

import click

from fdt import __version__
from fdt.cli.config import CONFIG_OPTION

INTERRUPTED_EXIT = 130

# command name -> (module, attribute, one-line help shown by `fdt --help`)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "audit": ("fdt.cli.audit", "audit", "Check whether file metadata alone separates real from fake."),
    "extract": ("fdt.cli.extract", "extract", "Extract features of image sets into the feature store."),
    "perturb": ("fdt.cli.perturb", "perturb", "Write perturbed copies (JPEG, blur, resize, ...) of images, with a sample grid."),
    "layouts": ("fdt.cli.layouts", "layouts", "Public dataset layouts fdt reads as downloaded."),
    "store": ("fdt.cli.store", "store", "Inspect and verify the feature store."),
    "models": ("fdt.cli.models", "models", "Train the networks fdt owns: the autoencoder, fine-tuned CNN detectors."),
    "gen": ("fdt.cli.gen", "gen", "Generate fakes: DCGAN, Stable Diffusion, inpainting, small DDPM."),
    "pipelines": ("fdt.cli.pipelines", "pipelines", "List pipeline specs and their search spaces."),
    "tune": ("fdt.cli.tune", "tune", "Tune and cross-validate a pipeline on stored features."),
    "report": ("fdt.cli.report", "report", "Generalisation matrices, robustness sweeps, ROC curves and plots."),
    "predict": ("fdt.cli.predict", "predict", "Score images with a tuned model."),
    "run": ("fdt.cli.run", "run", "Run every stage of an experiment file, reusing finished work."),
    "demo": ("fdt.cli.run", "demo", "Run the whole toolkit offline on bundled photos."),
}


class _LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (module, _, _) in _COMMANDS.items() if _module_exists(module))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _COMMANDS or not _module_exists(_COMMANDS[name][0]):
            return None
        module, attribute, _ = _COMMANDS[name]
        return getattr(importlib.import_module(module), attribute)

    def invoke(self, ctx: click.Context):
        """Every command's errors pass here: fdt's own and click's become one line and exit code 2; anything else is a bug."""
        from fdt.cli.common import REPORT_BUG, USER_ERROR_EXIT, user_errors

        try:
            with user_errors():
                return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.exceptions.UsageError as error:
            raise one_line_usage(error) from None
        except click.exceptions.ClickException as error:
            # click's own user errors exit 1 (a plain ClickException, a FileError) or 2 (usage): one code for all
            error.exit_code = USER_ERROR_EXIT
            raise
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            # Ctrl-C: what click prints, with the shell's exit code for a SIGINT (128 + 2), so scripts can tell it from a failure
            click.echo("Aborted!", err=True)
            raise click.exceptions.Exit(INTERRUPTED_EXIT) from None
        except Exception as error:
            error.add_note(REPORT_BUG)
            raise

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra) -> click.Context:
        """The group's own options and arguments (``fdt --bogus``) are checked here, before :meth:`invoke`: the same one-line errors."""
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError:  # a bare group shows its help, as click does
            raise
        except click.exceptions.UsageError as error:
            raise one_line_usage(error) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def one_line_usage(error: click.exceptions.UsageError) -> click.ClickException:
    """A usage mistake (bad option value, missing argument, unknown option) as one line naming the command's help.

    click prints the usage line, a hint and the error on three lines; fdt prints
    every user mistake as one line, so scripts and people read the same thing.
    """
    from fdt.cli.common import UserError

    where = f" (see {error.ctx.command_path} --help)" if error.ctx is not None else ""
    return UserError(error.format_message().strip().splitlines()[0] + where)


def _module_exists(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@click.group(cls=_LazyGroup)
@click.version_option(__version__, prog_name="fdt")
@CONFIG_OPTION
def cli() -> None:
    """fdt: detect AI-generated images with frozen features and tuned classical heads."""
    _one_line_warnings()


def _one_line_warnings() -> None:
    """Print fdt's own warnings as one line each (``fdt: warning: ...``), not Python's two with a source line.

    Other packages' warnings keep Python's format, which names where they came from.
    """
    import os
    import warnings

    if getattr(warnings.formatwarning, "fdt_one_line", False):
        return
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    default = warnings.formatwarning

    def one_line(message, category, filename, lineno, line=None) -> str:
        if os.path.abspath(filename).startswith(package):
            return f"fdt: warning: {message}\n"
        return default(message, category, filename, lineno, line)

    one_line.fdt_one_line = True
    warnings.formatwarning = one_line


def main() -> None:
    cli(prog_name="fdt")
