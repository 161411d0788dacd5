"""fdt: detect AI-generated images with frozen deep features and tuned scikit-learn heads.

Importing ``fdt`` is cheap on purpose: torch, diffusers and timm are imported only
where a network runs, so ``fdt --help``, ``fdt tune`` and ``fdt report`` start fast.
"""

__version__ = "0.1.0"
