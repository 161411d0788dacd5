"""Follow a generator across its training: sample each epoch's checkpoint, extract, measure quality and detectability.

Seed study 003 judged its GAN and diffusion model after hours of training by
eye; this samples ``n`` images from each epoch's model folder, extracts them into
the store next to the reals, and hands them to
:func:`fdt.pipelines.quality_report.quality_report`, one fake source per epoch,
so FD and detectability can be read against the epoch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from fdt.errors import check_name
from fdt.gen.errors import GenError

SAMPLERS = {"dcgan": "fdt.gen.dcgan:sample_dcgan", "ddpm": "fdt.gen.ddpm:sample_ddpm"}


def epoch_source(name: str, epoch: int) -> str:
    """The source name of one epoch's samples: ``<name>-epochNNN``."""
    return check_name(f"{name}-epoch{epoch:03d}", "generator name")


def follow_training(
    checkpoints: Mapping[int, str | os.PathLike],
    real: Sequence[str],
    n: int,
    samples_dir: str | os.PathLike,
    extractor: str,
    params: dict[str, Any] | None = None,
    resolution: str = "native",
    store_root: str | os.PathLike = "features_store",
    generator: str = "dcgan",
    name: str | None = None,
    seed: int = 0,
    device: str = "auto",
    spec: Any = None,
    progress: bool = True,
    quality: dict[str, Any] | None = None,
    sample_options: dict[str, Any] | None = None,
    workers: int | None = None,
):
    """Sample, extract and measure each epoch's model folder of one ``generator`` (``dcgan`` or ``ddpm``).

    ``checkpoints`` maps an epoch to the model folder holding that epoch's
    checkpoint (``fdt gen dcgan train`` keeps only its latest epoch, so a run is
    followed by copying its folder after the epochs of interest, or by training
    copies to increasing ``--epochs`` with resume). Each epoch's samples go to
    ``samples_dir/<name>-epochNNN/`` with a manifest; a folder that already holds
    ``n`` or more samples is reused as it is, one with fewer is topped up (new
    images, new seeds). Image ``i`` of every epoch is drawn from the same seed, so
    epochs differ by training only. The reals are sources already in the store
    under the same extractor key. ``quality`` holds
    :func:`~fdt.pipelines.quality_report.quality_report` options (``cv``, ``k``,
    ``n_resamples``, ...); ``spec`` its cross-validated detector; ``workers`` the
    extraction's decoding processes (0: none).

    Returns ``(report, {source: epoch})``.
    """
    import importlib

    from tqdm.auto import tqdm

    from fdt.data import from_manifest
    from fdt.features_store.extraction import extract_records
    from fdt.features_store.store import FeatureStore
    from fdt.gen.output import MANIFEST_NAME
    from fdt.pipelines.evaluation import load_condition
    from fdt.pipelines.quality_report import quality_report

    if generator not in SAMPLERS:
        raise GenError(f"generator must be one of {', '.join(SAMPLERS)}, not {generator!r}")
    if n < 2:
        raise GenError(f"sample at least 2 images per epoch (a covariance needs 2), not {n}")
    if not checkpoints:
        raise GenError("name at least one epoch's model folder (--checkpoint EPOCH=FOLDER)")
    for epoch, folder in checkpoints.items():
        if not (Path(folder) / "checkpoint.pt").is_file():
            raise GenError(f"epoch {epoch}: {folder} holds no checkpoint.pt; train it with fdt gen {generator} train")
    module, function = SAMPLERS[generator].split(":")
    sample = getattr(importlib.import_module(module), function)
    name = name or generator
    sources: dict[str, int] = {}
    key = None
    for epoch, model_dir in tqdm(sorted(checkpoints.items()), desc="epochs", disable=not progress):
        source = epoch_source(name, epoch)
        folder = Path(samples_dir) / source
        have = len(from_manifest(folder / MANIFEST_NAME)) if (folder / MANIFEST_NAME).is_file() else 0
        if have < n:
            sample(model_dir, n - have, folder, seed=seed, device=device, source=source, progress=progress, **(sample_options or {}))
        summary = extract_records(
            from_manifest(folder / MANIFEST_NAME), extractor, params, resolution, store_root, workers=workers, progress=progress
        )
        key = summary.key
        sources[source] = epoch
    assert key is not None
    data = load_condition(FeatureStore(store_root), extractor, key.resolution, list(real), list(sources), key.params, key.weights)
    report = quality_report(data, list(real), list(sources), spec=spec, random_state=seed, progress=progress, **(quality or {}))
    report.settings["generator"] = f"{name} ({generator}): {len(sources)} epochs, {n} samples each (seed {seed}) in {samples_dir}"
    return report, sources
