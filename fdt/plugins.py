"""Third-party packages extend fdt through ``importlib.metadata`` entry points.

Four groups, one per kind of thing a plugin adds:

- ``fdt.extractors``: an :class:`~fdt.features_store.extractors.base.Extractor` subclass,
- ``fdt.pipelines``: a :class:`~fdt.pipelines.specs.PipelineSpec` or a table as in a spec file,
- ``fdt.generators``: read by the generator registry,
- ``fdt.metrics``: a :class:`~fdt.pipelines.metrics.Metric`.

A plugin package declares them in its packaging metadata; the entry point's name is
the name users type::

    [options.entry_points]
    fdt.extractors =
        my_extractor = my_package.features:MyExtractor
    fdt.pipelines =
        my-svm = my_package.specs:MY_SVM

Listing names reads only the installed packages' metadata, so ``fdt --help`` and
``fdt extract --help`` stay cheap; a plugin's module is imported when its name is
looked up, or when a command needs every plugin of a group. A plugin that fails to
load is reported as one warning line naming it and its package, once per process,
and skipped: a broken third-party package never breaks a command that does not
use it.
"""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points
from typing import Any

GROUPS = ("fdt.extractors", "fdt.generators", "fdt.metrics", "fdt.pipelines")

_log = logging.getLogger(__name__)
_reported: set[tuple[str, str]] = set()


def _entry_points(group: str) -> dict[str, EntryPoint]:
    if group not in GROUPS:
        raise ValueError(f"unknown plugin group {group!r}; fdt reads {', '.join(GROUPS)}")
    # importlib.metadata scans sys.path afresh on every call: a package installed mid-session is seen
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=group):
        found.setdefault(point.name, point)  # the first on sys.path wins, as for imports
    return found


def plugin_names(group: str) -> list[str]:
    """Names the installed plugins declare in ``group``, sorted; nothing is imported."""
    return sorted(_entry_points(group))


def load_plugin(group: str, name: str) -> Any | None:
    """The object plugin ``name`` of ``group`` points at; ``None`` if no plugin has that name or it fails to load."""
    point = _entry_points(group).get(name)
    if point is None:
        return None
    try:
        return point.load()
    except Exception as error:  # a plugin's own bug must not take fdt down with it: reported, then skipped
        report_broken(group, name, f"{point.value} does not load ({type(error).__name__}: {error})", point)
        return None


def load_plugins(group: str) -> dict[str, Any]:
    """Every plugin of ``group`` that loads, by name (broken ones reported and left out)."""
    loaded = {name: load_plugin(group, name) for name in plugin_names(group)}
    return {name: value for name, value in loaded.items() if value is not None}


def report_broken(group: str, name: str, why: str, point: EntryPoint | None = None) -> None:
    """One warning line, once per process, for a plugin fdt skips (it failed to load, or is not what its group takes)."""
    if (group, name) in _reported:
        return
    _reported.add((group, name))
    point = point or _entry_points(group).get(name)
    package = f" (package {point.dist.name})" if point is not None and point.dist is not None else ""
    # logging's last-resort handler prints exactly this one line on stderr when the application configured none
    _log.warning("warning: skipping fdt plugin %r in %s%s: %s", name, group, package, why)
