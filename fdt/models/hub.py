"""Hugging Face-hosted models (CLIP, DINOv2, a diffusers VAE) under fdt's weights policy.

A model is named by a hub id (``openai/clip-vit-large-patch14``; a third path
part is a subfolder, as in ``stabilityai/stable-diffusion-2-1/vae``) or by a
local folder holding the same files. Files come from the Hugging Face cache
(``HF_HOME``), downloaded only where a network is allowed (see
:func:`fdt.models.weights.offline`); absent and not fetchable, the error names
the model id, the file and the cache folder it belongs in. ``weights`` is
``published`` (the model's own file), ``random`` (a seeded init from the model's
config, an explicit choice) or a path to a state-dict file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from fdt.data import sha256_file
from fdt.features_store.errors import ExtractorError, WeightsNotFoundError
from fdt.models.weights import load_state_dict, offline

_SHA256_BLOB = re.compile(r"[0-9a-f]{64}")


def is_local(model: str) -> bool:
    return Path(model).expanduser().is_dir()


def split_hub_id(model: str) -> tuple[str, str]:
    """``owner/name[/sub/folder]`` -> ``("owner/name", "sub/folder")``; anything else is an error."""
    parts = [part for part in model.strip("/").split("/") if part]
    if len(parts) < 2:
        raise ExtractorError(f"model must be a local folder or a Hugging Face id such as owner/name, not {model!r}")
    return "/".join(parts[:2]), "/".join(parts[2:])


def model_file(model: str, filename: str) -> Path:
    """Path of ``filename`` of ``model``: in its local folder, or in the Hugging Face cache (downloading if allowed)."""
    if is_local(model):
        path = Path(model).expanduser() / filename
        if not path.is_file():
            raise WeightsNotFoundError(f"model folder {model} has no {filename}")
        return path
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.constants import HF_HUB_CACHE

    repo, subfolder = split_hub_id(model)
    in_repo = f"{subfolder}/{filename}" if subfolder else filename
    cached = try_to_load_from_cache(repo, in_repo)
    if isinstance(cached, str) and Path(cached).is_file():
        return Path(cached)
    hint = (
        f"{model}: {in_repo} is not in the Hugging Face cache; files of {repo} go under {HF_HUB_CACHE} "
        f"(run `hf download {repo} {in_repo}` where there is a network, or set HF_HOME), or give a local folder, "
        f"or choose weights=random or weights=PATH"
    )
    if offline():
        raise WeightsNotFoundError(hint + " (offline: FDT_OFFLINE/HF_HUB_OFFLINE is set)")
    try:
        return Path(hf_hub_download(repo, in_repo))
    except Exception as error:  # any hub failure means the same to the user: the file is absent
        raise WeightsNotFoundError(f"{hint} (download failed: {type(error).__name__})") from None


def read_json(model: str, filename: str) -> dict[str, Any]:
    path = model_file(model, filename)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ExtractorError(f"{model}: {filename} is not readable JSON ({error})") from None


def config_digest(*configs: dict[str, Any]) -> str:
    """A short hash of the architecture and preprocessing configs: features depend on them as much as on the weights."""
    text = json.dumps([{k: v for k, v in c.items() if k not in ("transformers_version", "_diffusers_version", "_name_or_path")} for c in configs], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def file_identity(path: Path) -> str:
    """``sha256:<16 hex>`` of a weights file; a Hugging Face cache blob is named by its SHA-256 already, so it is not read."""
    blob = Path(os.path.realpath(path))
    if blob.parent.name == "blobs" and _SHA256_BLOB.fullmatch(blob.name):
        return f"sha256:{blob.name[:16]}"
    return f"sha256:{sha256_file(path)[:16]}"


def weights_choice(model: str, weights: str, seed: int, filename: str) -> tuple[str, Path | None]:
    """``(identity, file)`` for ``weights`` = ``published``, ``random`` or a path."""
    if weights == "random":
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ExtractorError(f"seed must be an integer, not {seed!r}")
        return f"random:seed={seed}", None
    if weights == "published":
        path = model_file(model, filename)
        return f"published:{file_identity(path)}", path
    path = Path(str(weights)).expanduser()
    if not path.is_file():
        raise ExtractorError(f"weights must be 'published', 'random' or an existing file, not {weights!r}")
    return f"file:{file_identity(path)}", path


def load_weights(net: Any, path: Path, prefix: str = "") -> None:
    """Load the tensors ``net`` needs from ``path`` (a checkpoint may hold more, e.g. CLIP's text tower); missing ones are an error."""
    state = load_state_dict(path)
    wanted = net.state_dict()
    missing = [name for name in wanted if prefix + name not in state]
    if missing:
        raise ExtractorError(f"{path} does not fit the model: {len(missing)} tensor(s) missing, e.g. {missing[0]}")
    try:
        net.load_state_dict({name: state[prefix + name] for name in wanted})
    except RuntimeError as error:
        raise ExtractorError(f"{path} does not fit the model: {str(error).splitlines()[-1].strip()}") from None
