"""Where published weights come from, and what identifies the weights a network ran with.

``imagenet`` weights are read from the library's own cache (``TORCH_HOME`` for
torchvision and URL-hosted timm weights, ``HF_HOME`` for Hugging Face-hosted timm
weights). They are downloaded only when missing and a network is allowed
(neither ``FDT_OFFLINE`` nor ``HF_HUB_OFFLINE`` is set); otherwise the error names
the exact file and where to put it. There is never a silent fallback to random
weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from fdt.features_store.errors import ExtractorError, WeightsNotFoundError


@dataclass(frozen=True)
class WeightsSource:
    """Where a backbone's published weights live: a URL (torch hub cache) or a Hugging Face file."""

    name: str
    url: str | None = None
    hf_repo: str | None = None
    hf_filename: str = "model.safetensors"


def offline() -> bool:
    """True when the user forbade network access (``FDT_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``)."""
    return any(os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on") for var in ("FDT_OFFLINE", "HF_HUB_OFFLINE"))


def torch_cache_file(url: str) -> Path:
    """The file torch.hub caches ``url`` as: ``$TORCH_HOME/hub/checkpoints/<basename>``."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def resolve_published(source: WeightsSource) -> Path:
    """Path of the cached weight file, downloading it only where that is allowed and possible."""
    if source.hf_repo:
        return _resolve_hf(source)
    assert source.url is not None
    target = torch_cache_file(source.url)
    if target.is_file():
        return target
    hint = (
        f"ImageNet weights for {source.name} are not in the torch cache: place {target.name} "
        f"(from {source.url}) at {target}, or choose --param weights=random or weights=PATH"
    )
    if offline():
        raise WeightsNotFoundError(hint + " (offline: FDT_OFFLINE/HF_HUB_OFFLINE is set)")
    import torch.hub

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(source.url, str(target), progress=True)
    except Exception as error:  # any network failure means the same to the user: the file is absent
        raise WeightsNotFoundError(f"{hint} (download failed: {str(error).splitlines()[0] if str(error) else type(error).__name__})") from None
    return target


def _resolve_hf(source: WeightsSource) -> Path:
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.constants import HF_HUB_CACHE

    cached = try_to_load_from_cache(source.hf_repo, source.hf_filename)
    if isinstance(cached, str) and Path(cached).is_file():
        return Path(cached)
    hint = (
        f"ImageNet weights for {source.name} are not in the Hugging Face cache: put {source.hf_filename} of "
        f"{source.hf_repo} under {HF_HUB_CACHE} (huggingface-cli download {source.hf_repo} {source.hf_filename}), "
        f"or choose --param weights=random or weights=PATH"
    )
    if offline():
        raise WeightsNotFoundError(hint + " (offline: FDT_OFFLINE/HF_HUB_OFFLINE is set)")
    try:
        return Path(hf_hub_download(source.hf_repo, source.hf_filename))
    except Exception as error:
        raise WeightsNotFoundError(f"{hint} (download failed: {type(error).__name__})") from None


def load_state_dict(path: str | os.PathLike) -> dict:
    """A state dict from a ``.pth``/``.pt`` (optionally wrapped in ``state_dict``) or ``.safetensors`` file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"weights file does not exist: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ExtractorError(f"{path} is not a loadable torch weights file ({str(error).splitlines()[0]})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ExtractorError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state
