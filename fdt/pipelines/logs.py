"""Optuna's per-trial INFO lines, silenced wherever fdt runs a study.

Optuna logs one INFO line per study created and per trial finished; fdt shows
tuning as a tqdm bar instead, and a notebook or script calling the library must
not get hundreds of lines a run that the command line never prints. Warnings
still show, a stricter level the caller set (``ERROR``) is kept, and every trial
stays in the study (``OptunaSearchCV.study_``), so nothing is lost but the noise.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_saved = logging.INFO


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna logs at WARNING or above inside this block (usable as a decorator); the caller's level comes back after.

    Nested and concurrent blocks (threads fitting at once) count how many are open,
    so the level is restored once, when the last one closes.
    """
    import optuna

    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = optuna.logging.get_verbosity()
            optuna.logging.set_verbosity(max(_saved, logging.WARNING))
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                optuna.logging.set_verbosity(_saved)
