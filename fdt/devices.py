"""Where a network runs: the one rule for ``--device`` that extractors, generators and trained models share.

``auto`` is CUDA where torch sees it, else the CPU. A device that was asked for
by name and is absent is an error, never a silent fallback to the CPU: a run
that should take minutes on a GPU must not quietly take hours.
"""

from __future__ import annotations

from fdt.errors import DeviceError

_KINDS = ("cpu", "cuda", "mps")


def resolve_device(device: str = "auto") -> str:
    """``device`` as torch names it (``cpu``, ``cuda``, ``cuda:1``, ``mps``), ``auto`` resolved; :class:`DeviceError` if absent.

    Torch is imported here, not at module import, so code that only validates
    settings stays cheap to import.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        parsed = None
    if parsed is None or parsed.type not in _KINDS:
        raise DeviceError(f"device must be auto, cpu or cuda[:N] (or mps on Apple silicon), not {device!r}")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"CUDA is not available: device {device!r} was asked for but torch sees no CUDA device; use --device cpu or auto")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r} was asked for but torch sees {torch.cuda.device_count()} CUDA device(s)")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"MPS is not available: device {device!r} was asked for but torch sees no MPS device; use --device cpu or auto")
    return str(parsed)
