"""Image sets, image loading and resolutions: the data model every stage shares.

An *image set* is a list of :class:`ImageRecord` (path, source, label, group),
built from a folder or a CSV manifest. A *resolution* says how images are
resized or cropped before any extractor sees them. Loading is one documented function,
:func:`load_rgb`, so an image decodes to the same pixels in every stage.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fdt.errors import FdtError, one_line

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
MANIFEST_COLUMNS = ("path", "source", "label", "group")
DEFAULT_MAX_PIXELS = 100_000_000
REAL, FAKE = 0, 1


class DataError(FdtError, ValueError):
    """A user's image set or manifest cannot be used; the message says why in one line."""


class ImageDecodeError(ValueError):
    """One image cannot be decoded; the message is the reason recorded in the store."""


@dataclass(frozen=True)
class ImageRecord:
    """One image of an image set.

    ``group`` ties images that must stay on one side of a split (the source photo
    of an inpainting, the caption of a generation). An empty group means the
    image is its own group; :func:`fdt.grouping.group_of` fills it with the content hash.
    """

    path: str
    source: str
    label: int
    group: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


# --------------------------------------------------------------------------- resolutions


RESIZES_PIXELS = "resize"
"""The kind of a resolution ``N``: the image is resampled (a low-pass filter)."""


def parse_resolution(value: str | int) -> str:
    """Normalise a resolution to ``"native"``, ``"N"``, ``"crop:N"`` or ``"randcrop:N"`` (N a positive integer).

    - ``native``: the pixels as stored.
    - ``N``: resized to N×N (aspect ratio not kept): the right model of "a detector of
      small images", but a low-pass filter that erases up-sampling artefacts.
    - ``crop:N``: the centre N×N pixels, no resampling: the right way to compare spectra.
    - ``randcrop:N``: an N×N window at a position drawn from the image's SHA-256, so
      the same image is always cut at the same place.
    """
    text = str(value).strip().lower()
    if text == "native":
        return "native"
    kind, sep, size = text.rpartition(":")
    if sep and kind in ("crop", "randcrop") and size.isdigit() and int(size) > 0:
        return f"{kind}:{int(size)}"
    if not sep and text.isdigit() and int(text) > 0:
        return str(int(text))
    raise DataError(f"resolution must be 'native', a size N, 'crop:N' or 'randcrop:N' (N a positive integer), not {value!r}")


def resolution_kind(resolution: str) -> str:
    """``"native"``, ``"resize"``, ``"crop"`` or ``"randcrop"`` of a parsed resolution."""
    if resolution == "native":
        return "native"
    return resolution.partition(":")[0] if ":" in resolution else RESIZES_PIXELS


def resolution_size(resolution: str) -> int | None:
    """The side N of a parsed resolution, ``None`` for ``native``."""
    return None if resolution == "native" else int(resolution.rpartition(":")[2])


def apply_resolution(image: Image.Image, resolution: str, sha256: str = "") -> Image.Image:
    """Resize, crop or keep an RGB image as ``resolution`` says (see :func:`parse_resolution`).

    Resizing uses PIL's antialiased bicubic filter (``reducing_gap=None``: it
    averages over the whole footprint when shrinking, so downsampling does not
    alias). Crops never resample: an image smaller than N in either side raises
    :class:`ImageDecodeError` (recorded as that image's failure), because an
    upscaled crop would invent the very frequencies a spectrum is read for.
    ``randcrop`` needs the image's ``sha256``, which seeds the position.
    """
    kind = resolution_kind(resolution)
    if kind == "native":
        return image
    size = resolution_size(resolution)
    width, height = image.size
    if kind == RESIZES_PIXELS:
        if image.size == (size, size):
            return image
        return image.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=None)
    if width < size or height < size:
        raise ImageDecodeError(f"image is {width}x{height}, smaller than {resolution} (crops never upscale)")
    if kind == "crop":
        left, top = (width - size) // 2, (height - size) // 2
    else:
        if not sha256:
            raise ValueError("randcrop needs the image's sha256 to place its window")
        rng = np.random.default_rng(int(sha256, 16))
        left, top = int(rng.integers(0, width - size + 1)), int(rng.integers(0, height - size + 1))
    return image.crop((left, top, left + size, top + size))


# --------------------------------------------------------------------------- loading


def load_rgb(source: str | os.PathLike | bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode an image file (or its bytes) to 8-bit RGB, the one way every stage uses.

    - The header is checked before decoding: more than ``max_pixels`` pixels is refused,
      so a hostile header cannot exhaust memory.
    - EXIF orientation is applied (pixels are rotated as a viewer shows them).
    - Alpha (RGBA, LA, palette transparency) is composited over white.
    - 16-bit and 32-bit integer images are scaled to 8 bits by their type's range;
      float images are clipped to [0, 1] then scaled.
    - Grayscale, palette, CMYK, YCbCr and other modes go through PIL's conversion to RGB.

    Raises :class:`ImageDecodeError` with a one-line reason for any unreadable file.
    """
    try:
        image = Image.open(_as_file(source))
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image file of a known format") from None
    except Image.DecompressionBombError as error:
        raise ImageDecodeError(f"image is too large: {error}") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageDecodeError(f"not a readable image ({one_line(error)})") from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageDecodeError(f"image is {width}x{height} pixels, above the limit of {max_pixels} pixels")
        try:
            image.load()
            image = ImageOps.exif_transpose(image)
            return _to_rgb(image)
        except Image.DecompressionBombError as error:
            raise ImageDecodeError(f"image is too large: {error}") from None
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise ImageDecodeError(f"cannot decode image ({one_line(error)})") from None


def _as_file(source: str | os.PathLike | bytes):
    import io

    if isinstance(source, bytes):
        return io.BytesIO(source)
    with open_regular(source) as handle:  # a FIFO or a device would block the decoder
        return io.BytesIO(handle.read())


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or array.max(initial=0) <= 65535 else 4294967295.0
        return Image.fromarray(np.round(np.clip(array / top, 0, 1) * 255).astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        array = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
        return Image.fromarray(np.round(array * 255).astype(np.uint8), "L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def display_path(path: str | os.PathLike) -> str:
    """A path as printable UTF-8 text: bytes of a name that is not UTF-8 (surrogate escapes) shown as ``\\xNN``.

    Linux file names are bytes; Python keeps undecodable ones as surrogates, which
    a terminal, a CSV or an HDF5 string cannot hold.
    """
    text = os.fspath(path)
    if isinstance(text, str):
        if text.isascii():  # the most common case, checked without encoding anything (a catalog shows three per image)
            return text
        try:
            text.encode("utf-8")  # a name that is UTF-8 already: shown as it is
            return text
        except UnicodeEncodeError:
            pass
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a regular file's bytes: the content address of an image."""
    digest = hashlib.sha256()
    with open_regular(path) as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


_FILE_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


def open_regular(path: str | os.PathLike):
    """Open a file for reading in binary mode, refusing anything but a regular file with an ``OSError``.

    A FIFO or ``/dev/zero`` in a manifest would block or never end a read; the
    file is opened non-blocking and checked with ``fstat`` on the open descriptor,
    so a file swapped for a FIFO after a check cannot slip through.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")
            raise OSError(errno.EINVAL, f"not a regular file ({kind})", os.fspath(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# --------------------------------------------------------------------------- image sets

_COCO_NAME = re.compile(r"^(?:COCO_[a-z]+20\d\d_)?(\d{12})\.jpg$")


def coco_group(image_id: int | str) -> str:
    """The group of a COCO photo and of every image generated from its captions: ``coco:<image id>``."""
    return f"coco:{int(image_id)}"


def coco_image_group(path: str | os.PathLike) -> str:
    """``coco:<id>`` for a file named as COCO names its images (``000000391895.jpg``), else ``""``.

    So a COCO photo and the Stable Diffusion fakes made from its captions share a
    group without a manifest: they must sit on one side of every split.
    """
    match = _COCO_NAME.match(Path(path).name)
    return coco_group(match.group(1)) if match else ""



def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _image_entry(path: Path) -> bool:
    """A folder entry named like an image that is not a folder: regular files, and also dangling or looping
    links, FIFOs and devices, which extraction then reports as skipped with a reason instead of passing over them."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and not path.is_dir()


def from_folder(
    folder: str | os.PathLike,
    real_sources: Iterable[str] = ("real",),
    label: int | None = None,
    source: str | None = None,
) -> list[ImageRecord]:
    """Build an image set from a folder.

    With sub-folders, each sub-folder is a source (its images found recursively);
    a source is real (label 0) if it is named in ``real_sources``, else fake.
    Without sub-folders, the folder itself is one source named ``source`` (default:
    the folder's name) with label ``label`` (default: real if that name is in
    ``real_sources``). Passing ``label`` labels every image, sub-folders or not.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"image folder does not exist: {root}")
    real = set(real_sources)
    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    records: list[ImageRecord] = []
    if subfolders and source is None:
        for sub in subfolders:
            sub_label = label if label is not None else (REAL if sub.name in real else FAKE)
            records += [ImageRecord(str(p), sub.name, sub_label, coco_image_group(p)) for p in _images_under(sub)]
        records += _direct_images(root, root.name, label, real)
    else:
        name = source or root.name
        records = [
            ImageRecord(str(p), name, label if label is not None else (REAL if name in real else FAKE), coco_image_group(p))
            for p in _images_under(root)
        ]
    if not records:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {root}")
    return records


def _direct_images(root: Path, name: str, label: int | None, real: set[str]) -> list[ImageRecord]:
    files = sorted(p for p in root.iterdir() if _image_entry(p))
    image_label = label if label is not None else (REAL if name in real else FAKE)
    return [ImageRecord(str(p), name, image_label, coco_image_group(p)) for p in files]


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if _image_entry(p) and not _hidden(p, folder))


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def from_manifest(manifest: str | os.PathLike) -> list[ImageRecord]:
    """Build an image set from a CSV manifest with columns ``path,source,label,group``.

    Relative paths are relative to the manifest's folder; ``label`` is 0/1 or
    ``real``/``fake``; ``group`` may be empty. Other columns (seed, prompt, mask
    path, ...) are kept in :attr:`ImageRecord.extra`.
    """
    path = Path(manifest)
    if not path.is_file():
        raise DataError(f"manifest does not exist: {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte-order mark
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[error.start]:02x}); save the manifest as UTF-8") from None
    if "\0" in text:
        raise DataError(f"{path}:{text[: text.index(chr(0))].count(chr(10)) + 1}: a NUL byte; a manifest is text")
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        missing = [c for c in ("path", "source", "label") if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"manifest {path} lacks column(s) {', '.join(missing)}; it needs {','.join(MANIFEST_COLUMNS)}")
        records = []
        for row in reader:
            line = reader.line_num
            if any(row.get(column) is None for column in ("path", "source", "label")):
                raise DataError(f"{path}:{line}: a row needs path, source and label; this one has {len([v for v in row.values() if v is not None])} field(s)")
            if not row["path"].strip():
                raise DataError(f"{path}:{line}: empty path")
            if not row["source"].strip():
                raise DataError(f"{path}:{line}: empty source; every image needs one (e.g. real, coco, dcgan)")
            image = Path(row["path"])
            if not image.is_absolute():
                image = path.parent / image
            extra = {k: v for k, v in row.items() if k not in MANIFEST_COLUMNS and k is not None}
            records.append(
                ImageRecord(str(image), row["source"].strip(), _parse_label(row["label"], path, line), (row.get("group") or "").strip(), extra)
            )
    except csv.Error as error:
        raise DataError(f"{path}:{reader.line_num}: not valid CSV ({error})") from None
    if not records:
        raise DataError(f"manifest {path} lists no images")
    return records


def _parse_label(value: str, manifest: Path, line: int) -> int:
    text = (value or "").strip().lower()
    if text in ("0", "real"):
        return REAL
    if text in ("1", "fake"):
        return FAKE
    raise DataError(f"{manifest}:{line}: label must be 0/1 or real/fake, not {value!r}")


def load_image_set(
    data: str | os.PathLike, real_sources: Iterable[str] = ("real",), label: int | None = None, layout: str = "plain"
) -> list[ImageRecord]:
    """An image set from a folder or a ``.csv`` manifest, whichever ``data`` is.

    ``layout`` names a public dataset's folder layout (:mod:`fdt.layouts`; ``auto``
    detects one and falls back to a plain folder or manifest); ``plain`` reads
    folders and manifests as fdt writes them.
    """
    path = Path(data)
    if layout != "plain":
        from fdt.layouts import read_layout

        if layout != "auto" and not path.exists():
            raise DataError(f"no such folder: {path}")
        if path.exists() and (records := read_layout(path, layout)) is not None:
            return records
    if path.suffix.lower() == ".csv":
        return from_manifest(path)
    if not path.exists():
        raise DataError(f"no such folder or manifest: {path}")
    return from_folder(path, real_sources=real_sources, label=label)


def write_manifest(path: str | os.PathLike, rows: Iterable[dict[str, object]], columns: Sequence[str]) -> None:
    """Append rows to a CSV manifest (creating it with a header), flushing to disk.

    Generators call this after each saved batch, so an interrupted run leaves a
    manifest that lists exactly the images already written.
    """
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        if new:
            writer.writeheader()
        for row in rows:
            writer.writerow(row)
        handle.flush()
        os.fsync(handle.fileno())
