"""Follow a generator across its training: sample every kept epoch, extract, measure quality and detectability.

Seed study 003 judged its GAN and diffusion model after hours of training by
eye; this samples ``n`` images from each per-epoch checkpoint a generator kept
(``keep_epochs``), extracts them into the store next to the reals, and hands
them to :func:`fdt.pipelines.quality_report.quality_report`, one fake source per
epoch, so FD and detectability can be read against the epoch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from fdt.errors import check_name
from fdt.gen.errors import GenError


def epoch_source(model_dir: str | os.PathLike, epoch: int) -> str:
    """The source name of one epoch's samples: ``<model folder name>-epochNNN``."""
    return check_name(f"{Path(model_dir).resolve().name}-epoch{epoch:03d}", "generator folder name")


def _check_count(n: int) -> None:
    if n < 2:
        raise GenError(f"sample at least 2 images per epoch (a covariance needs 2), not {n}")


def sample_epochs(
    model_dir: str | os.PathLike,
    n: int,
    samples_dir: str | os.PathLike,
    epochs: Sequence[int] | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    sample_options: dict[str, Any] | None = None,
) -> dict[str, tuple[int, Path, int]]:
    """Sample ``n`` images of every kept epoch of ``model_dir`` (or of ``epochs``) into ``samples_dir/<model>-epochNNN/``.

    A folder that already holds ``n`` or more samples is reused as it is, one with
    fewer is topped up (new images, new seeds). Image ``i`` of every epoch is drawn
    from the same seed, so epochs differ by training only. Returns
    ``{source: (epoch, manifest, images sampled now)}`` in epoch order.
    """
    from tqdm.auto import tqdm

    from fdt.data import from_manifest
    from fdt.gen.output import MANIFEST_NAME
    from fdt.gen.sampling import epoch_checkpoints, sample_checkpoint

    _check_count(n)
    kept = epoch_checkpoints(model_dir)
    if not kept:
        raise GenError(f"{model_dir} holds no per-epoch checkpoints; train it with --keep-epochs to follow its training")
    if epochs:
        missing = sorted(set(epochs) - set(kept))
        if missing:
            raise GenError(f"{model_dir} kept no checkpoint of epoch(s) {', '.join(map(str, missing))}; it kept {', '.join(map(str, kept))}")
        kept = {epoch: kept[epoch] for epoch in sorted(set(epochs))}
    sampled = {}
    for epoch, checkpoint in tqdm(kept.items(), desc="epochs", disable=not progress):
        source = epoch_source(model_dir, epoch)
        folder = Path(samples_dir) / source
        manifest = folder / MANIFEST_NAME
        have = len(from_manifest(manifest)) if manifest.is_file() else 0
        if have < n:
            sample_checkpoint(checkpoint, n - have, folder, seed=seed, device=device, source=source, progress=progress, **(sample_options or {}))
        sampled[source] = (epoch, manifest, max(n - have, 0))
    return sampled


def follow_training(
    model_dir: str | os.PathLike,
    real: Sequence[str],
    n: int,
    samples_dir: str | os.PathLike,
    extractor: str,
    params: dict[str, Any] | None = None,
    resolution: str = "native",
    store_root: str | os.PathLike = "features_store",
    epochs: Sequence[int] | None = None,
    seed: int = 0,
    device: str = "auto",
    spec: Any = None,
    progress: bool = True,
    quality: dict[str, Any] | None = None,
    sample_options: dict[str, Any] | None = None,
    workers: int | None = None,
):
    """Sample (:func:`sample_epochs`), extract and measure every kept epoch of ``model_dir`` (or the ``epochs`` given).

    The reals are sources already in the store under the same extractor key.
    ``quality`` holds :func:`~fdt.pipelines.quality_report.quality_report` options
    (``cv``, ``k``, ``n_resamples``, ...); ``spec`` its cross-validated detector;
    ``workers`` the extraction's decoding processes (0: none).

    Returns ``(report, {source: epoch})``.
    """
    from fdt.data import from_manifest
    from fdt.features_store.extraction import extract_records
    from fdt.features_store.store import FeatureStore
    from fdt.pipelines.evaluation import load_condition
    from fdt.pipelines.quality_report import quality_report

    _check_count(n)
    taken = sorted({"seed", "device", "source", "progress"} & set(sample_options or {}))
    if taken:
        raise GenError(f"sampling option(s) {', '.join(taken)} cannot be set: every epoch is sampled with the run's own seed, device and source name (--seed, --device)")
    k = (quality or {}).get("k")
    if k is not None and n <= k:  # found before any sampling, not after every epoch was sampled and extracted
        raise GenError(f"{n} samples per epoch are too few for k = {k} nearest neighbours: sample at least {k + 1}")
    known = set(FeatureStore(store_root).catalog().source.tolist())
    unknown = [source for source in real if source not in known]
    if unknown:
        raise GenError(f"unknown real source(s) {', '.join(unknown)} in {store_root}; known: {', '.join(sorted(known)) or 'none'} (extract the reals first)")
    sampled = sample_epochs(model_dir, n, samples_dir, epochs, seed, device, progress, sample_options)
    key = None
    for manifest in (manifest for _, manifest, _ in sampled.values()):
        key = extract_records(from_manifest(manifest), extractor, params, resolution, store_root, workers=workers, progress=progress).key
    assert key is not None
    sources = {source: epoch for source, (epoch, _, _) in sampled.items()}
    data = load_condition(FeatureStore(store_root), extractor, key.resolution, list(real), list(sources), key.params, key.weights)
    report = quality_report(data, list(real), list(sources), spec=spec, random_state=seed, progress=progress, **(quality or {}))
    report.settings["generator"] = f"{model_dir}: {len(sources)} kept epochs, {n} samples each (seed {seed}) in {samples_dir}"
    return report, sources
