"""Numeric options of network extractors: autocast precision and channels-last memory format.

Both change the features' last bits (half-precision arithmetic, other convolution
kernels), so both are part of the store key when not at their defaults (float32,
contiguous), and extracting with them never reuses or mixes with float32 rows.
They are meant for GPUs (``--device cuda``), where they are what makes a large
network keep up with decoding; on a CPU, ``bf16`` autocast runs and ``fp16``
runs where the installed torch supports it.
"""

from __future__ import annotations

import contextlib
from typing import Any, ContextManager

from fdt.features_store.errors import ExtractorError

PRECISIONS = ("fp32", "fp16", "bf16")


def checked_precision(precision: Any) -> str:
    if precision not in PRECISIONS:
        raise ExtractorError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return precision


def checked_flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ExtractorError(f"{name} must be true or false, not {value!r}")
    return value


def numeric_key(precision: str, channels_last: bool | None = None) -> dict[str, Any]:
    """The key entries of the numeric options: none at the defaults, so float32 rows keep the key they always had."""
    key: dict[str, Any] = {}
    if checked_precision(precision) != "fp32":
        key["precision"] = precision
    if channels_last is not None and checked_flag("channels_last", channels_last):
        key["channels_last"] = True
    return key


def autocast(device: str, precision: str) -> ContextManager[Any]:
    """``torch.autocast`` for ``precision`` on ``device``'s type; for ``fp32`` on a GPU, IEEE float32 arithmetic.

    Why the latter: torch runs a GPU's float32 convolutions in TF32 by default
    (10-bit mantissas on Ampere and later), which would give rows that differ
    from a CPU's float32 rows by about 1e-3 under the same key. Rows of one key
    must be interchangeable, so ``fp32`` means IEEE float32 everywhere, and the
    faster arithmetic is what ``fp16`` and ``bf16`` (keyed) are for.
    """
    import torch

    if checked_precision(precision) == "fp32":
        return _ieee_float32() if device.startswith("cuda") else contextlib.nullcontext()
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=dtype)


@contextlib.contextmanager
def _ieee_float32():
    """cuDNN convolutions and CUDA matrix products in IEEE float32 (no TF32) inside the block; the settings restored after."""
    import torch

    settings = (torch.backends.cudnn.conv, torch.backends.cuda.matmul)
    before = [setting.fp32_precision for setting in settings]
    try:
        for setting in settings:
            setting.fp32_precision = "ieee"
        yield
    finally:
        for setting, value in zip(settings, before):
            setting.fp32_precision = value
