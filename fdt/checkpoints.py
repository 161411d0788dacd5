"""One checkpoint/resume helper for every network fdt trains (DCGAN, small DDPM, autoencoder, fine-tuned CNN).

A training loop builds its models, optimisers and seeded ``torch.Generator`` s,
wraps them in a :class:`Checkpoint`, calls :meth:`Checkpoint.restore` once and
:meth:`Checkpoint.save` after every epoch::

    checkpoint = Checkpoint(out / "checkpoint.pt", "dcgan", config, training_data_sha256(hashes),
                            modules={"generator": g, "optimizer": opt}, generators={"shuffle": rng})
    start, history = checkpoint.restore(epochs, device)
    for epoch in range(start + 1, epochs + 1):
        ...
        checkpoint.save(epoch, history)

The file holds everything the run's future depends on (weights, optimiser
moments, the generators' states, the global torch/numpy/Python RNG states and the
loss history), so a run interrupted at any moment and resumed ends with the
same weights as an uninterrupted one. It is written atomically: a kill mid-write
leaves the previous epoch's file.

**Same training data** is decided by content: :func:`training_data_sha256` is
the SHA-256 over the training images' own SHA-256s (as :func:`fdt.data.sha256_file`
and the feature store compute them) in training order, so moving or renaming the
images does not matter and replacing one does. A checkpoint of other settings or
other images is **refused** with a one-line :class:`CheckpointMismatchError`,
never silently restarted: the caller (or the user, with ``--no-resume`` or
another output folder) decides to throw training away. ``fdt run`` does this
itself when an experiment's settings or data change.

:meth:`Checkpoint.snapshot` writes a small copy with only the modules needed to
sample (per-epoch checkpoints); :func:`read_checkpoint` opens either kind.

File layout (``torch.save`` of a dict, read with ``weights_only=True``):
``format`` (``"fdt.checkpoint"``), ``format_version`` (1), ``kind`` (who wrote it:
``dcgan``, ``ddpm``, ``autoencoder``, ``finetune``), ``config``, ``data_sha256``, ``epoch``,
``history``, ``state`` (module name -> state dict), and, in full checkpoints only,
``rng`` (generator name -> state) and ``global_rng``.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from fdt.atomic import atomic_path
from fdt.errors import FdtError
from fdt.torch_files import TorchFileError, load_tensors

FORMAT = "fdt.checkpoint"
FORMAT_VERSION = 1


START_OVER = "to start over, pass --no-resume (fdt gen/models) or delete the checkpoint (fdt run), or choose another output"


class CheckpointMismatchError(FdtError, ValueError):
    """A checkpoint that cannot be resumed or read as asked (other settings, other images, another kind)."""


def training_data_sha256(image_sha256s: Iterable[str]) -> str:
    """The identity of a training set: SHA-256 over its images' content SHA-256s, in training order."""
    return hashlib.sha256("\n".join(image_sha256s).encode()).hexdigest()


class Checkpoint:
    """The resumable state of one training run, saved to ``path`` after each epoch.

    Parameters
    ----------
    path : path
        The checkpoint file.
    kind : str
        What trains (``"dcgan"``); a checkpoint of another kind is refused.
    config : dict
        Every setting that fixes the run (JSON-like values); a resume must match it.
    data_sha256 : str
        :func:`training_data_sha256` of the training images; a resume must match it.
    modules : mapping of name to object with ``state_dict``/``load_state_dict``
        Models and optimisers.
    generators : mapping of name to torch.Generator
        Every seeded generator the loop draws from.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        kind: str,
        config: Mapping[str, Any],
        data_sha256: str,
        modules: Mapping[str, Any],
        generators: Mapping[str, torch.Generator] | None = None,
    ) -> None:
        self.path = Path(path)
        self.kind = kind
        self.config = dict(config)
        self.data_sha256 = data_sha256
        self.modules = dict(modules)
        self.generators = dict(generators or {})

    def restore(self, epochs: int, device: str | torch.device = "cpu") -> tuple[int, list[Any]]:
        """Load the checkpoint into the modules and generators: ``(last finished epoch, history)``; ``(0, [])`` without one.

        Raises :class:`CheckpointMismatchError` when the file is of another kind,
        settings or training images, or has more than ``epochs`` epochs.
        """
        if not self.path.exists():
            return 0, []
        state = read_checkpoint(self.path, self.kind, device)
        if "rng" not in state:
            raise CheckpointMismatchError(f"{self.path} is a per-epoch snapshot, not a checkpoint training can resume from")
        changed = sorted(key for key in {*self.config, *state["config"]} if self.config.get(key) != state["config"].get(key))
        if changed:
            details = "; ".join(f"{key} {state['config'].get(key)!r} -> {self.config.get(key)!r}" for key in changed)
            raise CheckpointMismatchError(f"cannot resume {self.path}: other settings ({details}); {START_OVER}")
        if state["data_sha256"] != self.data_sha256:
            raise CheckpointMismatchError(
                f"cannot resume {self.path}: it was trained on other images (their content hashes differ); {START_OVER}"
            )
        if state["epoch"] > epochs:
            raise CheckpointMismatchError(f"{self.path} has {state['epoch']} epochs, more than the {epochs} asked; raise the epochs, or {START_OVER}")
        for name, target in self.modules.items():
            target.load_state_dict(state["state"][name])
        for name, generator in self.generators.items():
            generator.set_state(state["rng"][name].cpu())
        _set_global_rng(state["global_rng"])
        return int(state["epoch"]), list(state["history"])

    def save(self, epoch: int, history: Sequence[Any]) -> None:
        """Write the full state after ``epoch`` atomically over the previous checkpoint."""
        payload = self._payload(epoch, history, self.modules)
        payload["rng"] = {name: generator.get_state() for name, generator in self.generators.items()}
        payload["global_rng"] = _global_rng()
        save_atomic(payload, self.path)

    def snapshot(self, path: str | os.PathLike, epoch: int, modules: Sequence[str]) -> Path:
        """Write only ``modules`` (what sampling needs) with the config and epoch: a per-epoch checkpoint."""
        payload = self._payload(epoch, [], {name: self.modules[name] for name in modules})
        save_atomic(payload, Path(path))
        return Path(path)

    def _payload(self, epoch: int, history: Sequence[Any], modules: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "config": self.config,
            "data_sha256": self.data_sha256,
            "epoch": int(epoch),
            "history": list(history),
            "state": {name: {k: _cpu(v) for k, v in module.state_dict().items()} for name, module in modules.items()},
        }


def read_checkpoint(path: str | os.PathLike, kind: str | None = None, device: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint's (or snapshot's) contents, checked: format, version and, if given, ``kind``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointMismatchError(f"no checkpoint at {path}")
    try:
        state = load_tensors(path, map_location=device)
    except TorchFileError as error:
        raise CheckpointMismatchError(f"{path} is not an fdt checkpoint ({error})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointMismatchError(f"{path} is not an fdt checkpoint this fdt reads; {START_OVER}")
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointMismatchError(f"{path} is an fdt checkpoint of format_version {state.get('format_version')!r}; this fdt reads {FORMAT_VERSION}")
    if kind is not None and state.get("kind") != kind:
        raise CheckpointMismatchError(f"{path} is a {state.get('kind')} checkpoint, not a {kind} one")
    return state


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` atomically (:mod:`fdt.atomic`), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        torch.save(obj, temporary)


def _cpu(value: Any) -> Any:
    return value.detach().cpu() if isinstance(value, torch.Tensor) else value


def _global_rng() -> dict[str, Any]:
    """Global RNG states, saved so code that draws from them (libraries, augmentations) resumes too."""
    numpy_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "numpy_key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
        "numpy_pos": numpy_state["state"]["pos"],
        "numpy_gauss": (numpy_state["has_gauss"], numpy_state["gauss"]),
        "python": random.getstate(),
    }


def _set_global_rng(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    has_gauss, gauss = state["numpy_gauss"]
    np.random.set_state(("MT19937", state["numpy_key"].cpu().numpy().astype(np.uint32), state["numpy_pos"], has_gauss, gauss))
    random.setstate(state["python"])
