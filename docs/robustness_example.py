"""Build the README's robustness example data: photo crops and up-sampled copies of other crops.

Reals are 128 px crops of the photos that ship with scikit-image, scikit-learn
and matplotlib. The two "fake" sources are a stand-in for a generator's
up-sampling layers, not generator output: crops shrunk to 64 px and enlarged
back with nearest-neighbour (``nearest-2x``) or bicubic (``bicubic-2x``)
interpolation, the periodic traces that spectral detectors read. Every image
is cut from its own crop, so no real and fake share content.

    python docs/robustness_example.py data/robust        # writes data/robust/manifest.csv and the PNGs
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from extract import photos  # noqa: E402

from fdt.data import write_manifest  # noqa: E402

SIDE = 128


def main(out: str, count: int = 450, seed: int = 0) -> Path:
    root = Path(out)
    rng = np.random.default_rng(seed)
    sources = [Image.fromarray(image) for image in photos()]
    rows = []
    kinds = (("photos", 0, None), ("nearest-2x", 1, Image.Resampling.NEAREST), ("bicubic-2x", 1, Image.Resampling.BICUBIC))
    for index in range(count):
        photo = sources[int(rng.integers(len(sources)))]
        width, height = photo.size
        side = int(rng.integers(SIDE, min(width, height) + 1))
        left, top = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        crop = photo.crop((left, top, left + side, top + side)).resize((SIDE, SIDE), Image.Resampling.BICUBIC, reducing_gap=None)
        name, label, upsample = kinds[index % 3]
        image = crop if upsample is None else crop.resize((SIDE // 2, SIDE // 2), Image.Resampling.BICUBIC, reducing_gap=None).resize((SIDE, SIDE), upsample)
        path = Path(name) / f"{index:04d}.png"
        (root / name).mkdir(parents=True, exist_ok=True)
        image.save(root / path)
        rows.append({"path": path.as_posix(), "source": name, "label": label, "group": ""})
    manifest = root / "manifest.csv"
    manifest.unlink(missing_ok=True)
    write_manifest(manifest, rows, ("path", "source", "label", "group"))
    return manifest


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else "data/robust"))
