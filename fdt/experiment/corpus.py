"""The bundled corpus: real square crops cut from photographs that ship inside installed packages.

scikit-image, scikit-learn and matplotlib each install a few photographs
(an astronaut, a cat, coffee, a rocket, Grace Hopper, ...). Cutting many crops
of random position and scale from them gives a real-image set of any size
with no download, so the demo runs on a machine with no network.

Crops that overlap share pixels and must never sit on both sides of a split.
Each photo is therefore cut into a grid of non-overlapping *regions* (up to 4×4,
each at least twice the crop size), every crop lies inside one region, and a
crop's group is its region (``astronaut/r05``). Crops of different regions share
no pixel; they still share the photo's camera, light and subject, so scores
across regions of one photo are not fully independent: intervals computed over
regions are somewhat narrower than over photos. With 17 photos and up to 16
regions each, the held-out test share holds a few dozen groups instead of two.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from fdt.atomic import fsync_folder
from fdt.data import REAL, write_manifest

MANIFEST_NAME = "manifest.csv"
STAMP_NAME = "corpus.json"
COLUMNS = ("path", "source", "label", "group", "package", "box")


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return getattr(skimage.data, name)()

    return load


def _motorcycle() -> np.ndarray:
    import skimage.data

    return skimage.data.stereo_motorcycle()[0]


def _sklearn(index: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_images

        return load_sample_images().images[index]

    return load


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        return np.asarray(Image.open(handle).convert("RGB"))


# photo name -> (package, loader); photographs only (no rendered text, charts or masks)
PHOTOS: dict[str, tuple[str, Callable[[], np.ndarray]]] = {
    **{name: ("scikit-image", _skimage(name)) for name in (
        "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "immunohistochemistry",
        "camera", "grass", "gravel", "brick", "moon", "coins",
    )},
    "motorcycle": ("scikit-image", _motorcycle),
    "china": ("scikit-learn", _sklearn(0)),
    "flower": ("scikit-learn", _sklearn(1)),
    "grace_hopper": ("matplotlib", _grace_hopper),
}


MAX_REGIONS_PER_SIDE = 4


def corpus_config(crops: int, size: int, seed: int) -> dict:
    """What fixes a corpus: the crop count, size, seed, photo list and the region grid."""
    return {"crops": crops, "size": size, "seed": seed, "photos": sorted(PHOTOS), "regions_per_side": MAX_REGIONS_PER_SIDE}


def regions(width: int, height: int, size: int) -> list[tuple[int, int, int, int]]:
    """Non-overlapping ``(left, top, right, bottom)`` regions of a photo, each at least ``2 * size`` wide and high."""
    columns = max(1, min(MAX_REGIONS_PER_SIDE, width // (2 * size)))
    rows = max(1, min(MAX_REGIONS_PER_SIDE, height // (2 * size)))
    xs, ys = np.linspace(0, width, columns + 1).astype(int), np.linspace(0, height, rows + 1).astype(int)
    return [(xs[c], ys[r], xs[c + 1], ys[r + 1]) for r in range(rows) for c in range(columns)]


def corpus_is_built(folder: Path, crops: int, size: int, seed: int) -> bool:
    """Whether ``folder`` already holds exactly this corpus (its stamp matches and its manifest exists)."""
    stamp = folder / STAMP_NAME
    if not stamp.is_file() or not (folder / MANIFEST_NAME).is_file():
        return False
    try:
        return json.loads(stamp.read_text(encoding="utf-8")) == corpus_config(crops, size, seed)
    except ValueError:
        return False


def build_corpus(folder: str | os.PathLike, source: str, crops: int = 1000, size: int = 64, seed: int = 0, progress: bool = True) -> Path:
    """Write ``crops`` real ``size``×``size`` crops and their manifest to ``folder``; return the manifest.

    Each photo gives an equal share of crops. A crop is a square of random side
    (from ``size`` up to the shorter side of its region, so crops range from
    close-ups to wide views) at a random position inside one region of the photo
    (:func:`regions`, taken in turn), resized with an antialiased filter; its group
    is its region. Grayscale photos become three equal channels. The folder is built
    under a temporary name and renamed, so an interrupted build leaves nothing
    half-made; a stamp records the settings so an identical request reuses it.
    """
    from tqdm.auto import tqdm

    folder = Path(folder)
    temporary = folder.with_name(f".{folder.name}.building")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    names = sorted(PHOTOS)
    shares = [crops // len(names) + (i < crops % len(names)) for i in range(len(names))]
    rows = []
    with tqdm(total=crops, desc="cutting photo crops", unit="crop", disable=not progress) as bar:
        for name, share in zip(names, shares):
            package, load = PHOTOS[name]
            photo = Image.fromarray(load()).convert("RGB")
            (temporary / name).mkdir()
            cells = regions(photo.width, photo.height, size)
            for index in range(share):
                left0, top0, right0, bottom0 = cells[index % len(cells)]
                shortest = min(right0 - left0, bottom0 - top0)
                side = int(rng.integers(min(size, shortest), shortest + 1))
                left = int(rng.integers(left0, right0 - side + 1))
                top = int(rng.integers(top0, bottom0 - side + 1))
                crop = photo.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
                relative = f"{name}/{name}-{index:04d}.png"
                crop.save(temporary / relative)
                group = f"{name}/r{index % len(cells):02d}"
                rows.append({"path": relative, "source": source, "label": REAL, "group": group, "package": package, "box": f"{left},{top},{side}"})
                bar.update(1)
    write_manifest(temporary / MANIFEST_NAME, rows, COLUMNS)
    (temporary / STAMP_NAME).write_text(json.dumps(corpus_config(crops, size, seed)), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(temporary, folder)
    fsync_folder(folder.parent)
    return folder / MANIFEST_NAME
