"""Optional dependencies: packages only some users need, installed with an extra (``pip install 'fdt[scale]'``).

Code that needs one imports it through :func:`require`, so a user without it
gets one line naming the command that installs it, not an ``ImportError``
traceback from deep inside a library.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from fdt.errors import MissingExtraError

EXTRAS = {
    "distributed": "scale",  # Dask clusters: fdt extract --scheduler
    "dask": "scale",
    "psycopg2": "scale",  # PostgreSQL study storage shared by several machines
}
"""Optional module -> the extra that installs it (see ``setup.cfg``)."""


def require(module: str, needed_for: str) -> ModuleType:
    """Import optional ``module`` or raise :class:`MissingExtraError` saying what needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        # only the package itself missing is the user's to fix; a broken install of it is not
        if error.name is not None and error.name != module and not module.startswith(f"{error.name}."):
            raise
        extra = EXTRAS.get(module.partition(".")[0], "scale")
        raise MissingExtraError(f"{needed_for} needs the {module} package, which fdt installs as an extra: pip install 'fdt[{extra}]'") from None


def postgres_driver(url: str) -> None:
    """Check that the driver of a ``postgresql://`` storage URL is installed (SQLAlchemy's default is psycopg2)."""
    scheme = url.partition("://")[0].lower()
    if scheme in ("postgresql", "postgres", "postgresql+psycopg2"):
        require("psycopg2", f"the PostgreSQL study storage {url.split('@')[-1]}")
