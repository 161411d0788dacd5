"""Readers for the public datasets the field compares on, as they unpack from their downloads.

Each reader maps a dataset's folders to fdt's image-set model the way the
dataset's authors meant: which folders are real and which fake, which
generator made a fake (its *source*), and which images belong together (its
*group*: a DeepFakeFace fake and the Wikipedia photo it was made from, a COCO
photo and its captions' fakes, a DeepfakeArt inpainting and its source). A
dataset's own train/val/test split is kept in ``ImageRecord.extra["split"]``
(and the manifest's ``split`` column): fdt's grouped split reassigns groups
across it, so every command that reads a layout says so instead of mixing them
silently.

``read_layout(root, "auto")`` detects the layout from the folder names; a name
from :data:`LAYOUTS` forces one. ``fdt extract --layout genimage ROOT`` needs no
manifest.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from fdt.data import FAKE, REAL, DataError, ImageRecord, coco_group, is_image_file, write_manifest
from fdt.errors import one_line


class LayoutError(DataError):
    """A folder does not hold the dataset layout asked for; the message says what was expected."""


@dataclass(frozen=True)
class Layout:
    """One dataset's reader and how to recognise its folder."""

    name: str
    description: str
    detect: Callable[[Path], bool]
    read: Callable[[Path], list[ImageRecord]]


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if is_image_file(p) and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _dirs(folder: Path) -> list[Path]:
    """Visible sub-folders; ``scandir`` reads the type from the directory entry, so folders of a million images cost no stat each."""
    if not folder.is_dir():
        return []
    with os.scandir(folder) as entries:
        return sorted(Path(entry.path) for entry in entries if not entry.name.startswith(".") and _is_dir(entry))


def _is_dir(entry: os.DirEntry) -> bool:
    """A looping or unreadable link is not a folder; extraction reports it as a skipped file instead."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _record(path: Path, source: str, label: int, group: str = "", **extra: str) -> ImageRecord:
    return ImageRecord(str(path), source, label, group, {k: v for k, v in extra.items() if v})


# --------------------------------------------------------------------------- CNNDetection / ForenSynths and UniversalFakeDetect

_SPLITS = ("train", "val", "valid", "validation", "test")
_WANG = {"0_real": REAL, "1_fake": FAKE}


def _wang_leaves(root: Path, depth: int = 4) -> list[Path]:
    """Folders holding ``0_real`` or ``1_fake`` (Wang et al. 2020's convention), at most ``depth`` levels down."""
    found, frontier = [], [root]
    for _ in range(depth):
        following = []
        for folder in frontier:
            children = _dirs(folder)
            if any(child.name in _WANG for child in children):
                found.append(folder)
            else:
                following += children
        frontier = following
    return found


def _split_of(part: str) -> str:
    """``train``/``val``/``test`` when a folder name says so (``progan_train``, ``CNN_synth_testset``), else ``""``."""
    lowered = part.lower()
    for split, words in (("train", ("train",)), ("val", ("val", "valid", "validation")), ("test", ("test", "testset"))):
        if lowered in words or any(lowered.endswith("_" + word) for word in words):
            return split
    return ""


def _read_wang(root: Path) -> list[ImageRecord]:
    """``<set>/[<class>/]0_real|1_fake``: a fake's source is its set (the generator), a real's ``<set>-real``.

    In UniversalFakeDetect's diffusion folders a set holds only ``0_real`` (``laion``,
    ``imagenet``: real sources) or only ``1_fake`` (``guided``, ``ldm_200``, ...):
    there the set's name is the source. Folder names that name a split
    (``test/``, ``progan_train/``, ``CNN_synth_testset/``) fill the split column.
    """
    records = []
    for leaf in _wang_leaves(root):
        parts = leaf.relative_to(root).parts
        split = next(filter(None, map(_split_of, parts)), "")
        named = [re.sub(r"_(train|val|valid|test)$", "", p) for p in parts if p.lower() not in _SPLITS and not p.lower().endswith("testset")]
        generator, klass = (named[0], "/".join(named[1:])) if named else (root.name, "")
        kinds = sorted(child.name for child in _dirs(leaf) if child.name in _WANG)
        for kind in kinds:
            label = _WANG[kind]
            source = generator if len(kinds) == 1 or label == FAKE else f"{generator}-real"
            records += [_record(p, source, label, split=split, **{"class": klass}) for p in _images(leaf / kind)]
    return records


def _detect_wang(root: Path) -> bool:
    return bool(_wang_leaves(root))


def _detect_ufd(root: Path) -> bool:
    leaves = _wang_leaves(root)
    return bool(leaves) and all(len({c.name for c in _dirs(leaf) if c.name in _WANG}) == 1 for leaf in leaves)


# --------------------------------------------------------------------------- GenImage


def _genimage_leaves(root: Path, depth: int = 4) -> list[Path]:
    """Folders named ``train`` or ``val`` that hold ``ai`` and/or ``nature``, at most ``depth`` levels down."""
    found, frontier = [], [root]
    for _ in range(depth):
        frontier = [child for folder in frontier for child in _dirs(folder)]
        found += [p for p in frontier if p.name in ("train", "val") and {c.name for c in _dirs(p)} & {"ai", "nature"}]
    return sorted(found)


def _read_genimage(root: Path) -> list[ImageRecord]:
    """``<generator>/[<subset>/]{train,val}/{ai,nature}``: fakes' source is the generator, reals' ``<generator>-nature``.

    Each generator's subset has its own ImageNet photos, so its reals are kept
    apart; the ImageNet class (the file name's ``n0xxxxxxx`` or the fake's class
    index prefix) is kept as ``class``.
    """
    records = []
    for leaf in _genimage_leaves(root):
        generator = leaf.parent.relative_to(root).parts[0] if leaf.parent != root else root.name
        for kind, label in (("ai", FAKE), ("nature", REAL)):
            source = generator if label == FAKE else f"{generator}-nature"
            for path in _images(leaf / kind):
                klass = path.stem.split("_")[0]
                records.append(_record(path, source, label, split=leaf.name, **{"class": klass}))
    return records


# --------------------------------------------------------------------------- DeepFakeFace

_DFF_FAKES = ("inpainting", "text2img", "insight")


def _read_deepfakeface(root: Path) -> list[ImageRecord]:
    """``wiki/`` (real IMDB-WIKI photos) and ``inpainting/``, ``text2img/``, ``insight/`` (fakes made from them).

    A fake at ``inpainting/00/123_1950.jpg`` was made from ``wiki/00/123_1950.jpg``:
    both get the group ``dff:00/123_1950``, so a photo and its fakes never straddle a split.
    """
    records = []
    for name in ("wiki",) + _DFF_FAKES:
        folder = root / name
        if not folder.is_dir():
            continue
        label = REAL if name == "wiki" else FAKE
        for path in _images(folder):
            tie = path.relative_to(folder).with_suffix("").as_posix()
            records.append(_record(path, name, label, f"dff:{tie}"))
    return records


def _detect_deepfakeface(root: Path) -> bool:
    return (root / "wiki").is_dir() and any((root / name).is_dir() for name in _DFF_FAKES)


# --------------------------------------------------------------------------- 140k Real and Fake Faces

_FACES_SPLITS = {"train": "train", "valid": "val", "test": "test"}


def _faces_base(root: Path) -> Path:
    for candidate in (root / "real_vs_fake" / "real-vs-fake", root / "real-vs-fake", root):
        if any((candidate / split).is_dir() for split in _FACES_SPLITS):
            return candidate
    raise LayoutError(f"{root}: no real_vs_fake/real-vs-fake/{{train,valid,test}} folder of the 140k Real and Fake Faces dataset")


def _read_faces140k(root: Path) -> list[ImageRecord]:
    """``real_vs_fake/real-vs-fake/{train,valid,test}/{real,fake}`` (+ its ``train.csv``, ``valid.csv``, ``test.csv``).

    Reals are FFHQ photos (source ``ffhq``), fakes StyleGAN faces (``stylegan``).
    Where the CSVs exist they are authoritative (their ``label_str`` and ``path``);
    otherwise the folders are read.
    """
    base = _faces_base(root)
    records = []
    for split_dir, split in _FACES_SPLITS.items():
        table = root / f"{split_dir}.csv"
        if table.is_file():
            with open(table, newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    kind = (row.get("label_str") or "").strip().lower()
                    if kind not in ("real", "fake") or not row.get("path"):
                        raise LayoutError(f"{table}: rows need label_str real/fake and path, got {row}")
                    records.append(_record(base / row["path"], "ffhq" if kind == "real" else "stylegan", REAL if kind == "real" else FAKE, split=split))
        else:
            for kind, source, label in (("real", "ffhq", REAL), ("fake", "stylegan", FAKE)):
                folder = base / split_dir / kind
                records += [_record(p, source, label, split=split) for p in (_images(folder) if folder.is_dir() else [])]
    return records


def _detect_faces140k(root: Path) -> bool:
    try:
        base = _faces_base(root)
    except LayoutError:
        return False
    return any((base / split / kind).is_dir() for split in _FACES_SPLITS for kind in ("real", "fake"))


# --------------------------------------------------------------------------- COCO 2017


def _read_coco(root: Path) -> list[ImageRecord]:
    """``train2017/``, ``val2017/`` and ``annotations/captions_*2017.json``: real photos, group ``coco:<image id>``.

    The captions JSON gives each file its image id (the group the fakes made from
    its captions share) and its first caption; images the JSON does not list are
    left out, as the dataset's own loaders do.
    """
    records = []
    annotations = sorted((root / "annotations").glob("captions_*.json")) if (root / "annotations").is_dir() else sorted(root.glob("captions_*.json"))
    if not annotations:
        raise LayoutError(f"{root}: no annotations/captions_*.json of COCO")
    for annotation in annotations:
        split = re.sub(r"^captions_", "", annotation.stem)
        try:
            data = json.loads(annotation.read_text(encoding="utf-8"))
            captions: dict[int, str] = {}
            for item in data.get("annotations", []):
                captions.setdefault(int(item["image_id"]), str(item["caption"]).strip())
            images = [(int(item["id"]), str(item["file_name"])) for item in data["images"]]
        except (ValueError, KeyError, TypeError) as error:
            raise LayoutError(f"{annotation}: not a COCO captions file ({error})") from None
        folder = root / split
        for image_id, name in images:
            path = folder / name
            if path.is_file():
                records.append(_record(path, "coco", REAL, coco_group(image_id), split=re.sub(r"20\d\d$", "", split), caption=captions.get(image_id, "")))
    return records


def _detect_coco(root: Path) -> bool:
    return bool(list((root / "annotations").glob("captions_*.json"))) and any((root / f"{s}2017").is_dir() for s in ("train", "val"))


# --------------------------------------------------------------------------- FER2013

FER_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _read_fer2013(root: Path) -> list[ImageRecord]:
    """The image-folder release, ``{train,test}/<emotion>/*.jpg``: real 48 px faces, source ``fer2013``.

    The original ``fer2013.csv`` (pixel strings) is converted once to such a folder
    with :func:`convert_fer2013` (``fdt layouts fer2013 CSV --out DIR``).
    """
    if root.is_file():
        raise LayoutError(f"{root} holds FER2013 as pixel strings; convert it once: fdt layouts fer2013 {root} --out DIR")
    records = []
    for split_dir in _dirs(root):
        for emotion_dir in _dirs(split_dir):
            if emotion_dir.name.lower() in FER_EMOTIONS:
                records += [_record(p, "fer2013", REAL, split=split_dir.name.lower(), emotion=emotion_dir.name.lower()) for p in _images(emotion_dir)]
    return records


def _detect_fer2013(root: Path) -> bool:
    if root.is_file():
        return _is_fer_csv(root)
    splits = _dirs(root)
    return bool(splits) and all({d.name.lower() for d in _dirs(s)} and {d.name.lower() for d in _dirs(s)} <= set(FER_EMOTIONS) for s in splits)


def _is_fer_csv(path: Path) -> bool:
    if path.suffix.lower() != ".csv":
        return False
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:  # only the header is sniffed; from_manifest reports bad bytes
        header = next(csv.reader(handle), [])
    return {"emotion", "pixels"} <= {h.strip().lower() for h in header}


_USAGE = {"training": "train", "publictest": "val", "privatetest": "test"}


def convert_fer2013(csv_path: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write FER2013's pixel strings as PNGs under ``out/{train,val,test}/<emotion>/`` plus ``manifest.csv``; return the manifest.

    ``Usage`` Training / PublicTest / PrivateTest become the split column
    ``train`` / ``val`` / ``test``; files are numbered by CSV row, so the folder
    is the same every time. ``out`` must not hold images already.
    """
    source, target = Path(csv_path), Path(out)
    if not source.exists():
        raise LayoutError(f"no such file: {source}")
    if not source.is_file() or not _is_fer_csv(source):
        raise LayoutError(f"{source} is not FER2013's CSV (columns emotion, pixels, Usage)")
    if target.exists() and any(target.iterdir()):
        raise LayoutError(f"{target} is not empty; give an empty or new folder")
    rows = []
    with open(source, newline="", encoding="utf-8") as handle:
        for index, row in enumerate(csv.DictReader(handle)):
            try:
                pixels = np.array([int(value) for value in (row["pixels"] or "").split()])
                side = int(round(len(pixels) ** 0.5))
                if pixels.size == 0 or pixels.min() < 0 or pixels.max() > 255:
                    raise ValueError("pixels must be a square number of integers 0..255")
                image = Image.fromarray(pixels.astype(np.uint8).reshape(side, side), "L")
                emotion = int(row["emotion"] or "")
                if not 0 <= emotion < len(FER_EMOTIONS):
                    raise ValueError(f"emotion must be 0..{len(FER_EMOTIONS) - 1}, not {emotion}")
            except (ValueError, KeyError) as error:
                raise LayoutError(f"{source}:{index + 2}: not a FER2013 row ({one_line(error)})") from None
            emotion = FER_EMOTIONS[emotion]
            split = _USAGE.get((row.get("Usage") or "training").strip().lower(), "train")
            relative = Path(split) / emotion / f"{index:05d}.png"
            (target / relative.parent).mkdir(parents=True, exist_ok=True)
            image.save(target / relative)
            rows.append({"path": relative.as_posix(), "source": "fer2013", "label": REAL, "group": "", "split": split, "emotion": emotion})
    manifest = target / "manifest.csv"
    write_manifest(manifest, rows, ("path", "source", "label", "group", "split", "emotion"))
    return manifest


# --------------------------------------------------------------------------- DeepfakeArt inpainting records

_ART_ROLES = (("mask", "mask"), ("group", "group"), ("comparison", "group"), ("inpaint", "inpainted"), ("source", "source"), ("original", "source"))


def _art_folder(root: Path) -> Path:
    for candidate in (root / "similar" / "inpainting", root / "archive" / "similar" / "inpainting", root / "inpainting", root):
        if candidate.is_dir() and _art_records(candidate):
            return candidate
    raise LayoutError(f"{root}: no DeepfakeArt inpainting records (files named *source*, *inpainting*, *mask* per record)")


def _art_role(path: Path) -> str:
    stem = path.stem.lower()
    return next((role for word, role in _ART_ROLES if word in stem), "")


def _art_records(folder: Path) -> dict[str, dict[str, Path]]:
    """Record id -> role -> file: a record is a sub-folder, or the files sharing a stem apart from their role word."""
    records: dict[str, dict[str, Path]] = {}
    for path in _images(folder):
        role = _art_role(path)
        if not role:
            continue
        if path.parent != folder:
            record = path.parent.relative_to(folder).as_posix()
        else:
            record = re.sub(r"[_-]*(mask|group|comparison|inpainting|inpainted|inpaint|source|original)[_-]*", "_", path.stem.lower()).strip("_")
        records.setdefault(record, {})[role] = path
    return {name: roles for name, roles in records.items() if "source" in roles and "inpainted" in roles}


def _read_deepfakeart(root: Path) -> list[ImageRecord]:
    """DeepfakeArt's inpainting category: per record a source painting (real), its inpainting (fake) and the mask.

    Source and inpainting share the group ``deepfakeart:<record>``; the mask's path
    is kept in ``mask_path``; the side-by-side comparison image is not an image of
    the set.
    """
    folder = _art_folder(root)
    records = []
    for name, roles in sorted(_art_records(folder).items()):
        group = f"deepfakeart:{name}"
        records.append(_record(roles["source"], "deepfakeart-source", REAL, group))
        records.append(_record(roles["inpainted"], "deepfakeart-inpainting", FAKE, group, mask_path=str(roles.get("mask", ""))))
    return records


def _detect_deepfakeart(root: Path) -> bool:
    folders = (root / "similar" / "inpainting", root / "archive" / "similar" / "inpainting", root / "inpainting")
    return not _detect_deepfakeface(root) and any(folder.is_dir() and _art_records(folder) for folder in folders)


# --------------------------------------------------------------------------- registry

LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout("genimage", "GenImage: <generator>/{train,val}/{ai,nature}", lambda r: bool(_genimage_leaves(r)), _read_genimage),
        Layout("deepfakeface", "DeepFakeFace: wiki/ (real) + inpainting/, text2img/, insight/ grouped with their wiki photo", _detect_deepfakeface, _read_deepfakeface),
        Layout("faces140k", "140k Real and Fake Faces: real_vs_fake/real-vs-fake/{train,valid,test}/{real,fake} + CSVs", _detect_faces140k, _read_faces140k),
        Layout("coco", "COCO 2017: {train,val}2017/ + annotations/captions_*.json, group = image id", _detect_coco, _read_coco),
        Layout("deepfakeart", "DeepfakeArt inpainting records: source / inpainting / mask per record", _detect_deepfakeart, _read_deepfakeart),
        Layout("ufd", "UniversalFakeDetect test folders: <set>/0_real (laion, imagenet) or <set>/1_fake", _detect_ufd, _read_wang),
        Layout("cnndetection", "CNNDetection/ForenSynths: <set>/[<class>/]{0_real,1_fake}", _detect_wang, _read_wang),
        Layout("fer2013", "FER2013: {train,test}/<emotion>/ images (convert fer2013.csv with fdt layouts fer2013)", _detect_fer2013, _read_fer2013),
    )
}


def detect_layout(root: str | os.PathLike) -> str | None:
    """The name of the first layout whose folders ``root`` has, or ``None`` (a plain folder)."""
    path = Path(root)
    return next((name for name, layout in LAYOUTS.items() if layout.detect(path)), None)


def read_layout(root: str | os.PathLike, layout: str = "auto") -> list[ImageRecord] | None:
    """Records of ``root`` read by ``layout`` (``auto``: detected; ``None`` back when nothing is detected)."""
    path = Path(root)
    name = detect_layout(path) if layout == "auto" else layout
    if name is None:
        return None
    if name not in LAYOUTS:
        raise LayoutError(f"unknown layout {name!r}; known: auto, plain, {', '.join(LAYOUTS)}")
    records = LAYOUTS[name].read(path)
    if not records:
        raise LayoutError(f"{path} holds no images in the {name} layout ({LAYOUTS[name].description})")
    return records


def split_note(records: list[ImageRecord]) -> str:
    """One line saying which dataset splits the records carry, or ``""`` without any."""
    counts: dict[str, int] = {}
    for record in records:
        split = record.extra.get("split", "")
        if split:
            counts[split] = counts.get(split, 0) + 1
    if not counts:
        return ""
    listing = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
    return f"dataset splits kept in the 'split' column ({listing}); fdt's grouped train/val/test split is drawn over all of them"
