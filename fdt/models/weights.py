"""Where published weights come from, and what identifies the weights a network ran with.

Published weights are read from the library's own cache: ``TORCH_HOME`` for files
published at a URL (torchvision, older timm releases), ``HF_HOME`` for files on the
Hugging Face hub (timm's current releases, CLIP, DINOv2, diffusers). Both go
through :func:`resolve_published`: a file is downloaded only when missing and a
network is allowed (neither ``FDT_OFFLINE`` nor ``HF_HUB_OFFLINE`` is set);
otherwise the error names the exact file and where to put it. There is never a
silent fallback to random weights.

:func:`resolve_weights` is the one place a ``weights`` parameter (the published
file, ``random``, or a path) becomes a file and the identity the store keeps.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlparse

from fdt.data import sha256_file
from fdt.errors import one_line
from fdt.features_store.errors import ExtractorError, WeightsNotFoundError
from fdt.torch_files import TorchFileError, load_tensors

_SHA256_BLOB = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class WeightsSource:
    """One published file: at a URL (cached by torch.hub) or in a Hugging Face repository (cached by huggingface_hub).

    ``name`` is what the user asked for (``vgg16``, ``timm/resnet50.a1_in1k``), for messages.
    """

    name: str
    url: str | None = None
    hf_repo: str | None = None
    hf_filename: str = "model.safetensors"

    @property
    def file_name(self) -> str:
        return os.path.basename(urlparse(self.url).path) if self.url else self.hf_filename

    def cached(self) -> Path | None:
        """The file in its library's cache, or ``None``; never downloads."""
        if self.url:
            target = torch_cache_file(self.url)
            return target if target.is_file() else None
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(self.hf_repo, self.hf_filename)
        return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def offline() -> bool:
    """True when the user forbade network access (``FDT_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``)."""
    return any(os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on") for var in ("FDT_OFFLINE", "HF_HUB_OFFLINE"))


def torch_cache_file(url: str) -> Path:
    """The file torch.hub caches ``url`` as: ``$TORCH_HOME/hub/checkpoints/<basename>``."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def resolve_published(source: WeightsSource, what: str = "", alternatives: str = "or choose --param weights=random or weights=PATH") -> Path:
    """Path of ``source``'s cached file, downloading it only where that is allowed and possible.

    ``what`` names the file in messages (default: ``source.name``'s published
    weights); ``alternatives`` is what else the user may do.
    """
    found = source.cached()
    if found is not None:
        return found
    if source.url:
        target = torch_cache_file(source.url)
        hint = (
            f"{what or f'ImageNet weights for {source.name}'} are not in the torch cache: place {target.name} "
            f"(from {source.url}) at {target}, {alternatives}"
        )
    else:
        from huggingface_hub.constants import HF_HUB_CACHE

        hint = (
            f"{what or f'{source.name}: the published weights file {source.hf_filename}'} is not in the Hugging Face cache; "
            f"files of {source.hf_repo} go under {HF_HUB_CACHE} (run `hf download {source.hf_repo} {source.hf_filename}` "
            f"where there is a network, or set HF_HOME), {alternatives}"
        )
    if offline():
        raise WeightsNotFoundError(hint + " (offline: FDT_OFFLINE/HF_HUB_OFFLINE is set)")
    try:
        return _download(source)
    except Exception as error:  # any network failure means the same to the user: the file is absent
        raise WeightsNotFoundError(f"{hint} (download failed: {one_line(error)})") from None


def _download(source: WeightsSource) -> Path:
    if source.url:
        import torch.hub

        target = torch_cache_file(source.url)
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(source.url, str(target), progress=True)
        return target
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(source.hf_repo, source.hf_filename))


def file_identity(path: Path) -> str:
    """``sha256:<16 hex>`` of a weights file; a Hugging Face cache blob is named by its SHA-256 already, so it is not read."""
    blob = Path(os.path.realpath(path))
    if blob.parent.name == "blobs" and _SHA256_BLOB.fullmatch(blob.name):
        return f"sha256:{blob.name[:16]}"
    return f"sha256:{sha256_file(path)[:16]}"


def resolve_weights(weights: str, seed: int, published: Callable[[], Path], words: Iterable[str] = ("published",)) -> tuple[str, Path | None]:
    """``(identity, file)`` for a ``weights`` parameter: the store's weights identity and the file to load (``None``: random init).

    ``words`` are the values that mean the published weights (``imagenet`` for the
    CNNs, ``published`` for hub models; the first is the identity's); ``published()``
    finds that file (it may download or raise). ``random`` is a seeded init; anything else must be a local
    file. The identity is ``<word>:sha256:<hex>``, ``random:seed=<n>`` or
    ``file:sha256:<hex>``: new weights always give a new store key.
    """
    words = tuple(words)
    if weights == "random":
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ExtractorError(f"seed must be an integer, not {seed!r}")
        return f"random:seed={seed}", None
    if weights in words:
        path = published()
        return f"{words[0]}:{file_identity(path)}", path
    path = Path(str(weights)).expanduser()
    if not path.is_file():
        choices = ", ".join(repr(w) for w in (*words, "random"))
        raise ExtractorError(f"weights must be {choices} or an existing file, not {weights!r}")
    return f"file:{file_identity(path)}", path


def load_state_dict(path: str | os.PathLike) -> dict:
    """A state dict from a ``.pth``/``.pt`` (optionally wrapped in ``state_dict``) or ``.safetensors`` file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"weights file does not exist: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = load_tensors(path)
    except TorchFileError as error:
        raise ExtractorError(f"{path} is not a loadable torch weights file ({error})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ExtractorError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state
