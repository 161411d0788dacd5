"""Perturbations: what happens to an image between sharing and detection, applied in memory.

Detectors that look perfect on pristine files often fail on the JPEG-compressed,
resized, slightly blurred copies people share; the field's benchmarks
(CNNDetection, UnivFD, GenImage) sweep exactly these. A *chain* is an ordered
list of operations, each written ``name:param=value[,param=value]``::

    chain = parse_chain(["jpeg:quality=75", "blur:sigma=1"])
    chain.key                       # 'jpeg:quality=75,backend=pil|blur:sigma=1'
    perturbed = chain.apply(rgb, sha256)

A chain is applied after :func:`fdt.data.load_rgb` and before the resolution
step and the extractor, so a perturbed image is never written to disk unless
asked (``fdt perturb``). Its :attr:`Chain.key` goes into the feature key: the
canonical text, every parameter spelled out (defaults included), so two ways of
writing one chain share their rows. Operations that leave pixels unchanged
(``blur:sigma=0``, ``resize:scale=1``, ``noise:sigma=0``, ``gamma:g=1``) drop
out of the chain, so the clean level of a sweep is the clean key and reuses the
clean rows. Randomness (noise, a random crop's window) is drawn from a
generator seeded by the image's SHA-256 and the operation's place in the chain:
the same image always gets the same perturbation.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from fdt.data import DataError, ImageDecodeError


class PerturbError(DataError):
    """A perturbation spec or sweep cannot be used; the message says why in one line."""


@dataclass(frozen=True)
class _Param:
    kind: Callable[[str], Any]
    default: Any = None
    check: Callable[[Any], bool] = lambda value: True
    rule: str = ""


def _choice(*allowed: str) -> _Param:
    return _Param(str, allowed[0], lambda value: value in allowed, "one of " + "|".join(allowed))


# name -> parameters in canonical order; a parameter without a default is required
OPERATIONS: dict[str, dict[str, _Param]] = {
    "jpeg": {
        "quality": _Param(int, None, lambda q: 1 <= q <= 100, "an integer 1..100"),
        "backend": _choice("pil", "cv2"),
    },
    "webp": {"quality": _Param(int, None, lambda q: 1 <= q <= 100, "an integer 1..100")},
    "png": {},
    "blur": {"sigma": _Param(float, None, lambda s: s >= 0, "a number >= 0 (pixels)")},
    "resize": {
        "scale": _Param(float, None, lambda f: 0 < f <= 1, "a number in (0, 1]"),
        "mode": _choice("updown", "down"),
    },
    "crop": {
        "size": _Param(int, None, lambda n: n > 0, "a positive integer"),
        "at": _choice("centre", "random"),
    },
    "noise": {"sigma": _Param(float, None, lambda s: s >= 0, "a number >= 0 (in 0..255 pixel units)")},
    "gamma": {"g": _Param(float, None, lambda g: g > 0, "a number > 0")},
    # CNNDetection's training augmentation (Wang et al. 2020): with probability `prob` each,
    # a Gaussian blur of sigma ~ U[0, sigma_max] and a JPEG of quality ~ U{quality_min..100}
    "blurjpeg": {
        "prob": _Param(float, None, lambda p: 0 <= p <= 1, "a probability in [0, 1]"),
        "sigma_max": _Param(float, 3.0, lambda s: s >= 0, "a number >= 0"),
        "quality_min": _Param(int, 30, lambda q: 1 <= q <= 100, "an integer 1..100"),
        "backend": _choice("pil", "cv2"),
    },
}

_IDENTITY = {"blur": ("sigma", 0.0), "resize": ("scale", 1.0), "noise": ("sigma", 0.0), "gamma": ("g", 1.0), "blurjpeg": ("prob", 0.0)}


def _text(value: Any) -> str:
    """Canonical text of a parameter value: ``75``, ``0.5``, ``1`` (a float that is whole loses its ``.0``)."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


@dataclass(frozen=True)
class Operation:
    """One perturbation with every parameter filled in."""

    name: str
    params: tuple[tuple[str, Any], ...]

    @property
    def key(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}:" + ",".join(f"{name}={_text(value)}" for name, value in self.params)

    @property
    def is_identity(self) -> bool:
        name, value = _IDENTITY.get(self.name, (None, None))
        return name is not None and dict(self.params)[name] == value

    def apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return _APPLY[self.name](image, rng, **dict(self.params))


def parse_operation(spec: str) -> Operation:
    """``"jpeg:quality=75"`` -> :class:`Operation`; unknown names, parameters or values raise :class:`PerturbError`."""
    name, _, rest = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in OPERATIONS:
        raise PerturbError(f"unknown perturbation {name!r} in {spec!r}; known: {', '.join(OPERATIONS)}")
    given: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise PerturbError(f"perturbation {spec!r}: expected param=value, not {part!r}")
        given[key.strip()] = value.strip()
    return _build(name, given, spec)


def _build(name: str, given: dict[str, str], spec: str) -> Operation:
    allowed = OPERATIONS[name]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise PerturbError(f"perturbation {spec!r}: unknown parameter {unknown[0]!r}; {name} takes {', '.join(allowed) or 'no parameters'}")
    params = []
    for key, param in allowed.items():
        if key not in given:
            if param.default is None:
                raise PerturbError(f"perturbation {spec!r}: {name} needs {key}= ({param.rule})")
            params.append((key, param.default))
            continue
        try:
            value = param.kind(given[key])
        except ValueError:
            value = None
        if value is None or (isinstance(value, float) and not math.isfinite(value)) or not param.check(value):
            raise PerturbError(f"perturbation {spec!r}: {key} must be {param.rule}, not {given[key]!r}")
        params.append((key, value))
    if dict(params).get("backend") == "cv2":
        try:
            import cv2  # noqa: F401
        except ImportError:
            raise PerturbError(f"perturbation {spec!r} needs OpenCV: pip install opencv-python-headless") from None
    return Operation(name, tuple(params))


@dataclass(frozen=True)
class Chain:
    """Operations applied in order; the empty chain is the clean image."""

    operations: tuple[Operation, ...] = ()

    @property
    def key(self) -> str:
        """Canonical text naming the chain (``""`` for clean): the part of the feature key it fills."""
        return "|".join(op.key for op in self.operations)

    def __bool__(self) -> bool:
        return bool(self.operations)

    def then(self, other: "Chain") -> "Chain":
        return Chain(self.operations + other.operations)

    def apply(self, image: Image.Image, sha256: str) -> Image.Image:
        """The perturbed RGB image, the same every time for the same image (``sha256`` seeds any randomness).

        An operation an image cannot take (a crop larger than it) raises
        :class:`ImageDecodeError`, recorded as that image's failure for this key.
        """
        for index, operation in enumerate(self.operations):
            seed = hashlib.sha256(f"{sha256}|{index}|{operation.key}".encode()).digest()
            image = operation.apply(image, np.random.default_rng(int.from_bytes(seed[:8], "little")))
        return image


def parse_chain(specs: Sequence[str] | str | None) -> Chain:
    """A :class:`Chain` from specs such as ``["jpeg:quality=75", "blur:sigma=1"]`` (or one key string joined by ``|``)."""
    if specs is None:
        return Chain()
    if isinstance(specs, str):
        specs = specs.split("|")
    operations = (parse_operation(spec) for spec in specs if spec.strip())
    return Chain(tuple(op for op in operations if not op.is_identity))


@dataclass(frozen=True)
class Sweep:
    """The levels of one perturbation, mildest first as the user wrote them: ``jpeg:quality=100,90,75``."""

    operation: str
    param: str
    levels: tuple[str, ...]
    chains: tuple[Chain, ...]

    @property
    def name(self) -> str:
        """``jpeg-quality``: a file-name-safe label of the sweep."""
        return f"{self.operation}-{self.param}" if self.param else self.operation


def parse_sweep(spec: str) -> Sweep:
    """The levels of a sweep: ``"jpeg:quality=100,90,75"`` -> three chains, in the order given.

    One parameter takes several values (the tokens after it without ``=``);
    others are fixed: ``"resize:scale=1,0.5,mode=down"``. A level that leaves
    pixels unchanged (``blur:sigma=0``) is the clean chain.
    """
    name, _, rest = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in OPERATIONS:
        raise PerturbError(f"unknown perturbation {name!r} in sweep {spec!r}; known: {', '.join(OPERATIONS)}")
    values: dict[str, list[str]] = {}
    current = None
    for token in filter(None, (t.strip() for t in rest.split(","))):
        key, sep, value = token.partition("=")
        if sep:
            current = key.strip()
            values[current] = [value.strip()]
        elif current is None:
            raise PerturbError(f"sweep {spec!r}: expected param=value first, not {token!r}")
        else:
            values[current].append(token)
    swept = [key for key, vals in values.items() if len(vals) > 1]
    if len(swept) > 1:
        raise PerturbError(f"sweep {spec!r} varies {' and '.join(swept)}; a sweep varies one parameter")
    param = swept[0] if swept else next(iter(values), "")
    levels = tuple(values[param]) if param else ("",)
    fixed = {k: v[0] for k, v in values.items() if k != param}
    chains = []
    for level in levels:
        operation = _build(name, dict(fixed, **({param: level} if param else {})), spec)
        chains.append(Chain(() if operation.is_identity else (operation,)))
    return Sweep(name, param, levels, tuple(chains))


# --------------------------------------------------------------------------- operations


def _encode(image: Image.Image, fmt: str, **options: Any) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def _jpeg(image: Image.Image, rng: np.random.Generator, quality: int, backend: str) -> Image.Image:
    if backend == "cv2":
        import cv2

        ok, encoded = cv2.imencode(".jpg", np.asarray(image)[:, :, ::-1], [int(cv2.IMWRITE_JPEG_QUALITY), quality])
        if not ok:
            raise ImageDecodeError("OpenCV could not JPEG-encode the image")
        return Image.fromarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[:, :, ::-1].copy())
    return _encode(image, "JPEG", quality=quality)


def _webp(image: Image.Image, rng: np.random.Generator, quality: int) -> Image.Image:
    return _encode(image, "WEBP", quality=quality)


def _png(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return _encode(image, "PNG")


def _blur(image: Image.Image, rng: np.random.Generator, sigma: float) -> Image.Image:
    """Gaussian blur per channel as CNNDetection applies it (``scipy.ndimage.gaussian_filter``, reflect borders)."""
    from scipy.ndimage import gaussian_filter

    array = np.asarray(image, dtype=np.float32)
    blurred = gaussian_filter(array, sigma=(sigma, sigma, 0))
    return Image.fromarray(np.clip(np.rint(blurred), 0, 255).astype(np.uint8))


def _resize(image: Image.Image, rng: np.random.Generator, scale: float, mode: str) -> Image.Image:
    width, height = image.size
    small = image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BICUBIC, reducing_gap=None)
    return small if mode == "down" else small.resize((width, height), Image.Resampling.BICUBIC)


def _crop(image: Image.Image, rng: np.random.Generator, size: int, at: str) -> Image.Image:
    width, height = image.size
    if width < size or height < size:
        raise ImageDecodeError(f"image is {width}x{height}, smaller than the perturbation crop:size={size}")
    if at == "centre":
        left, top = (width - size) // 2, (height - size) // 2
    else:
        left, top = int(rng.integers(0, width - size + 1)), int(rng.integers(0, height - size + 1))
    return image.crop((left, top, left + size, top + size))


def _noise(image: Image.Image, rng: np.random.Generator, sigma: float) -> Image.Image:
    array = np.asarray(image, dtype=np.float32)
    noisy = array + rng.normal(0.0, sigma, array.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


def _gamma(image: Image.Image, rng: np.random.Generator, g: float) -> Image.Image:
    table = np.clip(np.rint(255.0 * (np.arange(256) / 255.0) ** g), 0, 255).astype(np.uint8)
    return Image.fromarray(table[np.asarray(image)])


def _blurjpeg(image: Image.Image, rng: np.random.Generator, prob: float, sigma_max: float, quality_min: int, backend: str) -> Image.Image:
    """CNNDetection's augmentation; the draws come from the image's own generator, so one image always gets the same."""
    blur, sigma, jpeg, quality = rng.random() < prob, rng.uniform(0, sigma_max), rng.random() < prob, int(rng.integers(quality_min, 101))
    if blur and sigma > 0:
        image = _blur(image, rng, sigma)
    return _jpeg(image, rng, quality, backend) if jpeg else image


_APPLY: dict[str, Callable[..., Image.Image]] = {
    "jpeg": _jpeg,
    "webp": _webp,
    "png": _png,
    "blur": _blur,
    "resize": _resize,
    "crop": _crop,
    "noise": _noise,
    "gamma": _gamma,
    "blurjpeg": _blurjpeg,
}
