"""Hugging Face-hosted models (CLIP, DINOv2, a diffusers VAE) under fdt's weights policy.

A model is named by a hub id (``openai/clip-vit-large-patch14``; a third path
part is a subfolder, as in ``stabilityai/stable-diffusion-2-1/vae``) or by a
local folder holding the same files. Files come from the Hugging Face cache
(``HF_HOME``) through :func:`fdt.models.weights.resolve_published`, downloaded only
where a network is allowed; absent and not fetchable, the error names the model
id, the file and the cache folder it belongs in. ``weights`` is
``published`` (the model's own file), ``random`` (a seeded init from the model's
config, an explicit choice) or a path to a state-dict file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from fdt.errors import one_line
from fdt.features_store.errors import ExtractorError, WeightsNotFoundError
from fdt.models.weights import WeightsSource, resolve_published, resolve_weights


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
    repo, subfolder = split_hub_id(model)
    in_repo = f"{subfolder}/{filename}" if subfolder else filename
    source = WeightsSource(model, hf_repo=repo, hf_filename=in_repo)
    return resolve_published(source, what=f"{model}: {in_repo}", alternatives="or give a local folder, or choose weights=random or weights=PATH")


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


def weights_choice(model: str, weights: str, seed: int, filename: str) -> tuple[str, Path | None]:
    """``(identity, file)`` for ``weights`` = ``published`` (``filename`` of ``model``), ``random`` or a path."""
    return resolve_weights(weights, seed, lambda: model_file(model, filename))


def load_pretrained(from_pretrained: Callable[..., Any], weights_file: Path, filename: str, config_json: dict[str, Any], **kwargs: Any) -> Any:
    """A network from ``weights_file`` through its library's own ``from_pretrained`` (which knows its checkpoints' renamed keys).

    The file is staged in a temporary folder next to ``config_json`` under the name
    the library expects, so published files, local folders and ``weights=PATH``
    load the same way. A tensor the network needs that the file lacks, or one of
    another shape, is an error, never a silent random init; tensors it does not
    need (CLIP's text tower) are ignored.
    """
    suffix = ".safetensors" if weights_file.suffix == ".safetensors" else ".bin"
    with tempfile.TemporaryDirectory(prefix="fdt-weights-") as stage, _quiet_libraries():
        (Path(stage) / "config.json").write_text(json.dumps(config_json), encoding="utf-8")
        os.symlink(os.path.realpath(weights_file), Path(stage) / (Path(filename).stem + suffix))
        try:
            net, info = from_pretrained(stage, output_loading_info=True, **kwargs)
        except (OSError, RuntimeError, ValueError) as error:
            raise ExtractorError(f"{weights_file} does not load into the model: {one_line(error)}") from None
    wrong = list(info.get("missing_keys") or []) + [str(item) for item in info.get("mismatched_keys") or []]
    if wrong:
        raise ExtractorError(f"{weights_file} does not fit the model: {len(wrong)} tensor(s) missing or of another shape, e.g. {sorted(wrong)[0]}")
    return net


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """transformers and diffusers log every unused tensor of a checkpoint; fdt checks the loading report itself."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    levels = transformers_logging.get_verbosity(), diffusers_logging.get_verbosity()
    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    diffusers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(levels[0])
        diffusers_logging.set_verbosity(levels[1])
        if bars:
            transformers_logging.enable_progress_bar()
