"""fdt: detect AI-generated images with frozen deep features and tuned scikit-learn heads.

Importing ``fdt`` is cheap on purpose: torch, diffusers and timm are imported only
where a network runs, so ``fdt --help``, ``fdt tune`` and ``fdt report`` start fast.
The notebook API (:mod:`fdt.api`: ``fdt.open_store``, ``fdt.load``, ``fdt.extract``,
``fdt.build_pipeline``, ``fdt.tune``, ``fdt.matrix``, ``fdt.run``) is resolved on first use
(PEP 562), so ``import fdt`` pays for none of it.
"""

__version__ = "0.1.0"

__all__ = ["build_pipeline", "extract", "load", "matrix", "open_store", "run", "tune"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from fdt import api

        return getattr(api, name)
    raise AttributeError(f"module 'fdt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
