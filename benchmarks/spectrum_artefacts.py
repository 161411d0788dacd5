"""Do spectra keep the artefacts they are read for? native vs resize vs crop, old grid vs new.

Not a speed benchmark: a measurement of what a resolution does to a spectral
detector, run side by side in one process. Real images are 256×256 tiles cut
(never resampled) from the photographs bundled with scikit-image, scikit-learn
and matplotlib; two kinds of fakes are made from the same tiles:

- ``updown``: 2× down-sampled (bicubic) then nearest-neighbour up-sampled, the
  up-sampling artefact of many generators;
- ``nyquist``: a ±3 grey-level checkerboard added (a pure Nyquist-frequency peak).

A tile and its fake share a group. Features are the ``fft`` extractor's 64×64
grid (and the 0.1 grid: the log spectrum resampled bilinearly, as fdt did
before); the detector is standardisation + logistic regression, scored by ROC
AUC on out-of-fold predictions of grouped 5-fold CV, with a 95 % bootstrap
interval over groups.

    python benchmarks/spectrum_artefacts.py
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fdt.data import apply_resolution
from fdt.experiment.corpus import PHOTOS
from fdt.features_store.extractors.fft import LUMA, SpectrumFeatures, log_spectrum
from fdt.pipelines.intervals import bootstrap_metrics, format_interval
from fdt.pipelines.metrics import compute_metrics

TILE = 256


def tiles(per_photo: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    out = []
    for name in sorted(PHOTOS):
        photo = Image.fromarray(PHOTOS[name][1]()).convert("RGB")
        if min(photo.size) < TILE:
            continue
        for _ in range(per_photo):
            left, top = int(rng.integers(0, photo.width - TILE + 1)), int(rng.integers(0, photo.height - TILE + 1))
            out.append(photo.crop((left, top, left + TILE, top + TILE)))
    return out


def updown(tile: Image.Image) -> Image.Image:
    small = tile.resize((TILE // 2, TILE // 2), Image.Resampling.BICUBIC, reducing_gap=None)
    return small.resize((TILE, TILE), Image.Resampling.NEAREST)


def nyquist(tile: Image.Image) -> Image.Image:
    yy, xx = np.indices((TILE, TILE))
    checker = np.where((yy + xx) % 2 == 0, 3, -3)[..., None]
    return Image.fromarray(np.clip(np.asarray(tile).astype(int) + checker, 0, 255).astype(np.uint8))


def old_grid(image: Image.Image, size: int = 64) -> np.ndarray:
    """fdt 0.1's grid: the log spectrum resampled bilinearly to size×size."""
    spectrum = log_spectrum(np.asarray(image, dtype=np.float32) @ LUMA)
    if spectrum.shape != (size, size):
        spectrum = np.asarray(Image.fromarray(spectrum, mode="F").resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)
    return spectrum.ravel()


def auc(features: np.ndarray, y: np.ndarray, groups: np.ndarray) -> str:
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0)
    scores = cross_val_predict(model, features, y, groups=groups, cv=folds, method="predict_proba")[:, 1]
    value = compute_metrics(y, scores)["roc_auc"]
    return format_interval(value, bootstrap_metrics(y, scores, groups)["roc_auc"], digits=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-photo", type=int, default=12)
    args = parser.parse_args()
    reals = tiles(args.per_photo, seed=0)
    groups = np.r_[np.arange(len(reals)), np.arange(len(reals))].astype(str)
    y = np.r_[np.zeros(len(reals)), np.ones(len(reals))].astype(int)
    new_grid = SpectrumFeatures(64, "none")
    print(f"{len(reals)} real 256 px tiles; fft 64x64 + logistic regression; grouped 5-fold CV ROC AUC [95% interval]")
    print(f"{'fake':<8} {'resolution':<10} {'0.1 grid (resize spectrum)':>28} {'band-mean grid':>22}")
    for name, make in (("updown", updown), ("nyquist", nyquist)):
        images = reals + [make(t) for t in reals]
        for resolution in ("native", "64", "crop:64"):
            seen = [apply_resolution(im, resolution) for im in images]
            old = np.stack([old_grid(im) for im in seen])
            new = np.stack([new_grid(im) for im in seen])
            print(f"{name:<8} {resolution:<10} {auc(old, y, groups):>28} {auc(new, y, groups):>22}")
    tile = reals[0]
    corner = {}
    for label, image in (("real", tile), ("nyquist", nyquist(tile))):
        corner[label] = {
            "full": float(log_spectrum(np.asarray(image, dtype=np.float32) @ LUMA)[0, 0]),
            "0.1 grid": float(old_grid(image)[0]),
            "band-mean grid": float(new_grid(image)[0]),
            "resize 64": float(new_grid(apply_resolution(image, "64"))[0]),
            "crop:64": float(new_grid(apply_resolution(image, "crop:64"))[0]),
        }
    print("\nNyquist corner of the spectrum, checkerboard minus real (one tile):")
    for what in corner["real"]:
        print(f"  {what:<16} {corner['nyquist'][what] - corner['real'][what]:+.2f}")


if __name__ == "__main__":
    main()
