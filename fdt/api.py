"""The notebook API: one short name per stage, the same guarantees as the command line.

``import fdt`` exposes these functions lazily (see ``fdt/__init__.py``), so a
notebook writes ``fdt.load(...)`` without knowing the package layout, and
importing ``fdt`` still costs no torch. Each function is a thin wrapper over what
the matching ``fdt`` command runs: splits are grouped, every metric carries a
bootstrap interval over groups, features of a network trained on the scored
groups are refused, and format shortcuts are flagged. None of them has an
option that turns those off; ``allow_trained_groups`` scores such features
anyway but writes the leak into the result's notes, as ``--allow-trained-groups`` does.

The README's "From Python" sections show them at work; ``tests/test_readme_api.py``
runs those sections, so they stay true.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fdt.pipelines.intervals import DEFAULT_RESAMPLES

if TYPE_CHECKING:
    import numpy as np
    from sklearn.pipeline import Pipeline

    from fdt.data import ImageRecord
    from fdt.features_store.extraction import ExtractSummary
    from fdt.features_store.featureset import FeatureSet
    from fdt.features_store.store import FeatureStore
    from fdt.experiment.runner import RunResult
    from fdt.pipelines.evaluation import TuneResult
    from fdt.pipelines.matrix import MatrixReport
    from fdt.pipelines.specs import PipelineSpec

__all__ = ["build_pipeline", "extract", "load", "matrix", "open_store", "run", "tune"]

DEFAULT_SPLIT = (0.8, 0.1, 0.1)

NOT_AUDITED = (
    "not audited for format shortcuts (pass store= to fdt.tune so the images' file formats, sizes and "
    "JPEG qualities are checked, as fdt tune does)"
)


def open_store(path: str | os.PathLike[str] = "features_store") -> FeatureStore:
    """The feature store at ``path``, checked to exist and to be of a format this fdt reads.

    A mistyped path must not look like an empty store, so a missing one is
    refused (``fdt.extract`` creates stores).
    """
    from fdt.features_store.errors import StoreError
    from fdt.features_store.store import FeatureStore

    store = FeatureStore(path)
    if not store.exists():
        raise StoreError(f"no feature store at {path} (fdt.extract or fdt extract creates one)")
    store.check_format()
    return store


def extract(
    images: str | os.PathLike[str] | Sequence[ImageRecord],
    extractor: str,
    *,
    params: dict[str, Any] | None = None,
    resolution: str | int = "native",
    store: str | os.PathLike[str] = "features_store",
    real: Sequence[str] = ("real",),
    label: int | None = None,
    layout: str = "auto",
    equalise: Sequence[str] = (),
    perturb: Sequence[str] = (),
    batch_size: int = 32,
    device: str = "auto",
    workers: int | None = None,
    progress: bool = True,
) -> ExtractSummary:
    """Extract the features of ``images`` into the store, computing only rows it lacks (``fdt extract``).

    Parameters
    ----------
    images : folder, CSV manifest, or list of :class:`fdt.data.ImageRecord`
        A folder has one sub-folder per source; those named in ``real`` are real.
    extractor : str
        A registered extractor (``fdt.features_store.list_extractors()``).
    params : dict, optional
        The extractor's parameters (``{"weights": "random"}``, ``{"size": 32}``); part of the rows' key.
    resolution : str or int
        ``native``, ``N`` (resized), ``crop:N`` or ``randcrop:N``: what the pixels go through first.
    label : {0, 1}, optional
        Label every image of a folder, whatever its sub-folders.
    equalise, perturb : sequences of ``OP:K=V``
        Re-encode every image the same way (equalisation, applied first), then perturb; both are part of the key.

    Returns
    -------
    ExtractSummary
        Rows computed and reused, images that failed and why (``summary.line()``).
    """
    from fdt.data import load_image_set
    from fdt.features_store.extraction import extract_records
    from fdt.perturb import parse_chain

    if isinstance(images, (str, os.PathLike)):
        records = load_image_set(images, real_sources=_names(real, "real"), label=label, layout=layout)
    else:
        records = list(images)
    chain = parse_chain([*equalise, *perturb])  # equalisation first: it stands for how the files were made
    return extract_records(
        records, extractor, params, resolution, store, perturb=chain,
        batch_size=batch_size, device=device, workers=workers, progress=progress,
    )


def load(
    extractor: str,
    resolution: str | int = "native",
    *,
    real: str | Sequence[str],
    fake: str | Sequence[str],
    store: str | os.PathLike[str] | FeatureStore = "features_store",
    params: dict[str, Any] | None = None,
    weights: str | None = None,
    equalise: Sequence[str] = (),
    perturb: Sequence[str] = (),
    return_X_y: bool = False,
) -> FeatureSet | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stored rows of the ``real`` and ``fake`` sources for one extractor and resolution (``fdt tune``'s input).

    A source the store labels otherwise than asked is refused, as is a source on
    both sides. ``params`` and ``weights`` (an identity prefix such as
    ``"random"``) narrow the key when several are stored; ``equalise`` and
    ``perturb`` select the rows extracted with those chains, as given to :func:`extract`.

    Returns
    -------
    FeatureSet, or ``(X, y, groups)`` with ``return_X_y=True``
        Unlike ``sklearn.datasets`` loaders the tuple carries ``groups``: images of
        one group (an inpainting and its source photo, a resized copy and its
        original) must stay on one side of any split, and a split without them leaks.
    """
    from fdt.data import parse_resolution
    from fdt.pipelines.evaluation import load_condition

    data = load_condition(
        _store(store), extractor, parse_resolution(resolution), _names(real, "real"), _names(fake, "fake"),
        params, weights, _chain_key([*equalise, *perturb]),
    )
    return (data.X, data.y, data.groups) if return_X_y else data


def build_pipeline(name: str, *, random_state: int | None = None, specs_file: str | os.PathLike[str] | None = None) -> Pipeline:
    """A plain, unfitted scikit-learn ``Pipeline`` of a registered spec (``fdt pipelines ls``), for your own experiments.

    ``specs_file`` adds your own specs (TOML) next to the built-in ones.
    """
    from fdt.pipelines.specs import build_pipeline as build

    return build(name, random_state=random_state, specs_file=specs_file)


def tune(
    data: FeatureSet,
    pipeline: str | PipelineSpec = "svm-rbf",
    *,
    n_trials: int = 20,
    cv: int = 5,
    split: Sequence[float] = DEFAULT_SPLIT,
    random_state: int = 0,
    store: str | os.PathLike[str] | FeatureStore | None = None,
    storage: str | None = None,
    study_name: str = "fdt",
    specs_file: str | os.PathLike[str] | None = None,
    progress: bool = False,
    allow_trained_groups: bool = False,
    n_resamples: int = DEFAULT_RESAMPLES,
    **tuning: Any,
) -> TuneResult:
    """Tune and evaluate one detector as ``fdt tune`` does, without writing a model file.

    The groups of ``data`` are split train/validation/test by ``split``; Optuna
    tunes on grouped ``cv``-fold cross-validation of the train share; the result
    holds cross-validated metrics (mean ± std), held-out test metrics with 95 %
    bootstrap intervals over groups, the fitted tuner (``result.tuner``) and the
    notes a report must carry.

    Parameters
    ----------
    data : FeatureSet
        From :func:`load`.
    pipeline : str or PipelineSpec
        A spec name (``fdt pipelines ls``) or a spec.
    store : path or FeatureStore, optional
        The store ``data`` came from: the images it lists are audited for format
        shortcuts (a JPEG-vs-PNG detector), as ``fdt tune`` does. Without it the
        result's notes say the audit did not run.
    storage : str, optional
        An Optuna RDB URL (``sqlite:///models/optuna.db``) to keep the study; calling
        again continues it. The stored study's name is ``study_name`` plus a hash of
        the protocol (data, spec, seed, split, folds), so trials scored on different
        folds never compete in one study.
    tuning
        More :class:`~fdt.pipelines.tuning.OptunaSearchCV` settings (``pruner``, ``fidelity``, ``n_jobs``, ``trial_timeout``).
    """
    from fdt.pipelines.evaluation import study_name as protocol_study
    from fdt.pipelines.evaluation import tune_condition

    spec = _spec(pipeline, specs_file)
    fractions = tuple(float(share) for share in split)
    name = protocol_study(study_name, data, spec, random_state, fractions, cv) if storage else None
    result = tune_condition(
        data, spec, n_trials=n_trials, cv=cv, fractions=fractions, random_state=random_state, storage=storage,
        study_name=name, progress=progress, allow_trained_groups=allow_trained_groups, n_resamples=n_resamples, **tuning,
    )
    result.notes += _audit(store, sorted(set(data.sources[data.y == 0])), sorted(set(data.sources[data.y == 1])), random_state)
    return result


def matrix(
    store: str | os.PathLike[str] | FeatureStore,
    extractor: str,
    resolutions: str | int | Sequence[str | int],
    real: str | Sequence[str],
    fakes: Sequence[str],
    *,
    pipeline: str | PipelineSpec = "svm-linear",
    metric: str = "roc_auc",
    n_trials: int = 0,
    cv: int = 5,
    split: Sequence[float] = DEFAULT_SPLIT,
    random_state: int = 0,
    params: dict[str, Any] | None = None,
    weights: str | None = None,
    equalise: Sequence[str] = (),
    specs_file: str | os.PathLike[str] | None = None,
    n_jobs: int = 1,
    progress: bool = False,
    allow_trained_groups: bool = False,
    n_resamples: int = DEFAULT_RESAMPLES,
    out: str | os.PathLike[str] | None = None,
    **tuning: Any,
) -> MatrixReport:
    """Generalisation matrices as ``fdt report matrix`` computes them: train on real vs fake A, test on real vs fake B.

    One matrix per resolution, plus the cross-resolution matrix when there are
    several. One grouped train/validation/test assignment covers every source and
    resolution, so no cell scores a group its model trained on; every cell carries
    a bootstrap interval, and the store's images are audited for format shortcuts
    (warnings land in ``report.notes``).

    ``out`` writes the CSV, JSON, Markdown and PNG files there (``fdt report matrix --out``);
    without it nothing is written. ``n_jobs`` tunes training conditions at once
    on local cores (results equal ``n_jobs=1``).
    """
    from fdt.data import parse_resolution
    from fdt.pipelines.evaluation import load_condition
    from fdt.pipelines.matrix import generalisation_matrices, write_report

    opened = _store(store)
    wanted = [resolutions] if isinstance(resolutions, (str, int)) else list(resolutions)
    real_sources, fake_sources = _names(real, "real"), _names(fakes, "fakes")
    spec = _spec(pipeline, specs_file)
    data = {
        res: load_condition(opened, extractor, res, real_sources, fake_sources, params, weights, _chain_key(equalise))
        for res in (parse_resolution(r) for r in wanted)
    }
    report = generalisation_matrices(
        data, real_sources, fake_sources, spec, metric, n_trials, cv, [float(s) for s in split], random_state, progress,
        allow_trained_groups=allow_trained_groups, n_jobs=n_jobs, n_resamples=n_resamples, **tuning,
    )
    report.notes += _audit(opened, real_sources, fake_sources, random_state)
    if out is not None:
        write_report(report, Path(out))
    return report


def run(experiment: str | os.PathLike[str], workspace: str | os.PathLike[str] = ".", *, progress: bool = True) -> RunResult:
    """Run every stage of an experiment file into ``workspace``, reusing what is done (``fdt run``).

    The whole file is checked before anything is written; a second call with the
    same file computes nothing. ``result.record`` lists every stage and whether it
    was computed or reused; ``result.summary_path`` is the Markdown summary.
    """
    from fdt.experiment import load_experiment, make_plan, run_experiment

    return run_experiment(make_plan(load_experiment(experiment), workspace), progress=progress)


def _store(store: str | os.PathLike[str] | FeatureStore) -> FeatureStore:
    from fdt.features_store.store import FeatureStore

    return store if isinstance(store, FeatureStore) else open_store(store)


def _names(names: str | Sequence[str], what: str) -> list[str]:
    """One source name or several; a comma list in one string is refused rather than read as one odd name."""
    from fdt.pipelines.errors import PipelineError

    listed = [names] if isinstance(names, str) else list(names)
    if any(not isinstance(name, str) or "," in name for name in listed):
        raise PipelineError(f"{what} takes source names as a list (['a', 'b']), not {names!r}")
    return listed


def _chain_key(operations: Sequence[str]) -> str:
    from fdt.perturb import parse_chain

    return parse_chain(list(operations)).key if operations else ""


def _spec(pipeline: str | PipelineSpec, specs_file: str | os.PathLike[str] | None) -> PipelineSpec:
    from fdt.pipelines.specs import get_spec

    return get_spec(pipeline, specs_file) if isinstance(pipeline, str) else pipeline


def _audit(store: str | os.PathLike[str] | FeatureStore | None, real: list[str], fakes: list[str], random_state: int) -> list[str]:
    from fdt.pipelines.audit import shortcut_warnings

    if store is None:
        return [NOT_AUDITED]
    return shortcut_warnings(_store(store), real, fakes, random_state)
