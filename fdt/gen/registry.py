"""The generator registry: one entry per generator, read by ``fdt gen list`` and ``fdt run``.

A generator is a function that writes images plus a manifest into a folder
(:mod:`fdt.gen.output`), optionally preceded by a function that trains a model
on an image set. What the generator *makes its images from* is its kind:

- ``sample``: ``n`` images from a trained model (``model_dir, n``);
- ``inpaint``: repainted copies of the images of another image set (``images``);
- ``text``: images from prompts, a text file or COCO captions (``prompts``).

Capabilities follow from the entry: ``train`` (it trains on an image set:
``train_on`` in an experiment file), its kind, and ``model_of`` (it uses the
model another image set's generator trained: ``model`` in an experiment file).
Parameters are read from the functions' signatures (:func:`inspect.signature`);
the arguments the caller sets itself (:data:`RESERVED`) are left out, so the
parameters an experiment file may set are exactly the rest.

Built-in generators are listed by import path, so importing this module costs
nothing; third-party packages add theirs through the ``fdt.generators``
entry-point group (:mod:`fdt.plugins`; an entry point loads to a
:class:`GeneratorSpec`), and code can call :func:`register_generator`.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable

from fdt.gen.errors import GenError

KINDS = ("sample", "inpaint", "text")
COMMON_RESERVED = ("out_dir", "device", "source", "progress")
RESERVED: dict[str, tuple[str, ...]] = {
    "train": ("images", "out_dir", "resume", "device", "progress"),
    # text: the experiment's `samples` says how many prompts are used, so max_captions is the runner's
    "sample": ("model_dir", "n", *COMMON_RESERVED),
    "inpaint": ("model_dir", "images", *COMMON_RESERVED),
    "text": ("prompts", "max_captions", *COMMON_RESERVED),
}
ENTRY_POINT_GROUP = "fdt.generators"


class UnknownGeneratorError(GenError):
    """A generator name that no built-in, registered or installed plugin provides."""


@dataclass(frozen=True)
class GeneratorSpec:
    """One generator: what it makes its images from, and the functions that do it.

    Parameters
    ----------
    name : str
        The name experiment files use (``generator = "dcgan"``).
    kind : {"sample", "inpaint", "text"}
        What the ``make`` function makes images from (see the module docstring).
    make : str
        ``"module:function"`` writing images into ``out_dir`` and returning the manifest path.
    train : str, optional
        ``"module:function(images, out_dir, resume, device, progress, ...)"`` that
        trains a model folder on an image set; ``make`` then receives it as ``model_dir``.
    model_of : str, optional
        The generator whose trained model ``make`` uses (``ddpm-inpaint`` repaints
        with a ``ddpm``'s model), named by the experiment's ``model`` key.
    per_input : str, optional
        The ``make`` parameter giving how many images each input (source image,
        prompt) yields, so a run knows how many it has: ``per_image``, ``per_prompt``.
    description : str
        One line for ``fdt gen list``.
    """

    name: str
    kind: str
    make: str
    train: str | None = None
    model_of: str | None = None
    per_input: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise GenError(f"generator {self.name!r}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.train and self.model_of:
            raise GenError(f"generator {self.name!r} cannot both train its model and use the model of {self.model_of!r}")

    @property
    def uses_model(self) -> bool:
        """Whether ``make`` needs a trained model folder (its own or another image set's)."""
        return bool(self.train or self.model_of)

    @property
    def capabilities(self) -> tuple[str, ...]:
        return (*(("train",) if self.train else ()), self.kind, *((f"uses a {self.model_of} model",) if self.model_of else ()))

    def function(self, stage: str) -> Callable[..., Any]:
        """The ``train`` or ``make`` function, imported on first use."""
        path = self.train if stage == "train" else self.make
        if path is None:
            raise GenError(f"generator {self.name!r} does not train")
        module, attribute = path.split(":")
        return getattr(importlib.import_module(module), attribute)

    def parameters(self, stage: str) -> dict[str, inspect.Parameter]:
        """The parameters of ``stage`` (``train`` or ``make``) a user sets: the signature less :data:`RESERVED`."""
        reserved = RESERVED["train" if stage == "train" else self.kind]
        signature = inspect.signature(self.function(stage))
        return {name: p for name, p in signature.parameters.items() if name not in reserved and p.kind is not p.VAR_KEYWORD}

    def default(self, stage: str, name: str) -> Any:
        """The signature's default of one parameter (``per_image`` is 1 for the DDPM, 5 for Stable Diffusion)."""
        return self.parameters(stage)[name].default

    def check_params(self, stage: str, given: dict[str, Any], where: str) -> None:
        """Refuse keys that are not parameters of ``stage``, naming the allowed ones."""
        allowed = list(self.parameters(stage))
        for key in given:
            if key not in allowed:
                raise GenError(f"unknown key {key!r} in {where}; allowed: {', '.join(allowed)}")


_BUILTINS: dict[str, GeneratorSpec] = {
    spec.name: spec
    for spec in (
        GeneratorSpec("dcgan", "sample", "fdt.gen.dcgan:sample_dcgan", train="fdt.gen.dcgan:train_dcgan", description="DCGAN trained on an image set"),
        GeneratorSpec("ddpm", "sample", "fdt.gen.ddpm:sample_ddpm", train="fdt.gen.ddpm:train_ddpm", description="small DDPM trained on an image set"),
        GeneratorSpec(
            "ddpm-inpaint", "inpaint", "fdt.gen.ddpm:inpaint_ddpm", model_of="ddpm", per_input="per_image",
            description="RePaint-style inpainting with a trained small DDPM",
        ),
        GeneratorSpec("sd", "text", "fdt.gen.sd:generate_sd", per_input="per_prompt", description="Stable Diffusion text-to-image from prompts or COCO captions"),
        GeneratorSpec("sd-inpaint", "inpaint", "fdt.gen.inpaint:inpaint_sd", per_input="per_image", description="Stable Diffusion inpainting with diagonal and random masks"),
    )
}
_REGISTERED: dict[str, GeneratorSpec] = {}


def register_generator(spec: GeneratorSpec) -> GeneratorSpec:
    """Make ``spec`` available to ``fdt run`` and ``fdt gen list`` under ``spec.name``."""
    _REGISTERED[spec.name] = spec
    return spec


def list_generators() -> list[str]:
    """Names of every built-in, registered and installed generator, sorted."""
    from fdt.plugins import plugin_names

    return sorted(set(_BUILTINS) | set(_REGISTERED) | set(plugin_names(ENTRY_POINT_GROUP)))


def get_generator(name: str) -> GeneratorSpec:
    """The spec of generator ``name``; an unknown name is an error listing the known ones."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in _BUILTINS:
        return _BUILTINS[name]
    from fdt.plugins import load_plugin, report_broken

    spec = load_plugin(ENTRY_POINT_GROUP, name)  # None for no such plugin, or one that fails to load (reported)
    if spec is None:
        raise UnknownGeneratorError(f"unknown generator {name!r}; choose one of: {', '.join(list_generators())}")
    if not isinstance(spec, GeneratorSpec) or spec.name != name:
        report_broken(ENTRY_POINT_GROUP, name, f"it is not a GeneratorSpec named {name!r}")
        raise GenError(f"plugin {name!r} of {ENTRY_POINT_GROUP} is not a GeneratorSpec named {name!r}")
    return spec
