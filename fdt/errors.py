"""The root of fdt's exception families.

Every error a user can fix (a bad input, a missing file they named, a damaged
store) derives from :class:`FdtError`; the command line prints those as one line
with exit code 2. Anything else that escapes a command is a bug in fdt or a
library and keeps its traceback, so narrowing the mapping to this one type is
what keeps a numpy or h5py bug from passing for a user mistake.
"""

from __future__ import annotations


class FdtError(Exception):
    """A mistake in what the user asked for or gave fdt; the message says why in one line."""
