"""Where a model comes from and where it runs: hub ids, local folders, devices, dtypes.

A hub id is looked up in the Hugging Face cache first, so a machine that has
the weights never touches the network; a local ``save_pretrained`` folder always
works offline. When neither exists and downloads are off, the error is one line
that names the id and how to provide a copy, not a stack of retries.
"""

from __future__ import annotations

import os
from pathlib import Path

from fdt.devices import resolve_device  # noqa: F401  (generators import it from here)
from fdt.errors import one_line
from fdt.gen.errors import GenError, ModelNotFoundError

_DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16", "bfloat16": "bfloat16", "bf16": "bfloat16"}


def resolve_dtype(dtype: str, device: str):
    """``auto`` is float16 on CUDA and float32 on CPU; float16 on CPU is refused (slow, often unsupported)."""
    import torch

    if dtype == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    if dtype not in _DTYPES:
        raise GenError(f"unknown dtype {dtype!r}; use auto, float32, float16 or bfloat16")
    if _DTYPES[dtype] == "float16" and not device.startswith("cuda"):
        raise GenError("float16 needs a CUDA device; use --dtype float32 (or bfloat16) on CPU")
    return getattr(torch, _DTYPES[dtype])


def hub_offline() -> bool:
    """Whether Hugging Face downloads are switched off, read now (not at import) so tests can set it."""
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "")
    return constants.HF_HUB_OFFLINE or flag.strip().upper() in {"1", "ON", "YES", "TRUE"}


def resolve_model(model: str) -> tuple[str, bool]:
    """Where to load a diffusers pipeline from: ``(name_or_path, local_files_only)``.

    A folder is used as is (it must hold ``model_index.json``); a hub id found in
    the Hugging Face cache is loaded from there with no network; any other id is
    downloaded by ``from_pretrained`` unless downloads are off, in which case
    :class:`ModelNotFoundError` says how to provide the model.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelNotFoundError(f"{path} is not a diffusers pipeline folder (no model_index.json); save one with pipeline.save_pretrained()")
        return str(path), True
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        cached = try_to_load_from_cache(model, "model_index.json")
    except HFValidationError:
        raise ModelNotFoundError(f"model folder does not exist: {model}") from None
    if isinstance(cached, str):
        return model, True
    if hub_offline():
        raise ModelNotFoundError(
            f"model {model!r} is neither a local folder nor in the Hugging Face cache ({constants.HF_HUB_CACHE}) "
            f"and downloads are off (HF_HUB_OFFLINE); run `hf download {model}` on a connected machine and copy the cache, "
            f"or pass --model /path/to/a/save_pretrained/folder"
        )
    return model, False


def load_pipeline(pipeline_class, model: str, dtype, device: str):
    """Load a diffusers pipeline through :func:`resolve_model`, turning load failures into one line.

    The safety checker is not loaded: fdt generates data for a detector study,
    and a checker that blacks out outputs would silently corrupt the fake set.
    """
    location, local_only = resolve_model(model)
    try:
        pipeline = pipeline_class.from_pretrained(location, dtype=dtype, local_files_only=local_only, safety_checker=None, requires_safety_checker=False)
    except (OSError, ValueError) as error:
        raise ModelNotFoundError(f"cannot load model {model!r}: {one_line(error)}") from None
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(device)
