"""Model files and their JSON cards: written atomically, verified by sha256 before use.

``<name>.skops`` holds the fitted probability model (a pipeline, or a calibrated
pipeline) in skops' format, which is loaded without running code: only
scikit-learn, numpy and scipy types are rebuilt. ``<name>.json`` is its card:
spec, best parameters, metrics, extractor key and weights, resolution, data
fingerprint, versions, and the model file's sha256. The card is written last, so
a card always describes a complete model file, and :func:`load_model` refuses a
model file whose bytes do not match its card.

A sha256 in a card proves only that the pair was not changed separately: whoever
can replace a model can rewrite its card. That is why the format matters: a
pickle (fdt 0.1's ``.joblib``) runs any code it names when loaded, so one is
loaded only when the caller says it trusts the file (``fdt predict --trust``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from fdt.atomic import write_bytes, write_json
from fdt.data import sha256_file
from fdt.errors import check_inside, check_name
from fdt.pipelines.errors import ModelIntegrityError, PipelineError

MODEL_SUFFIX, CARD_SUFFIX = ".skops", ".json"
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
CARD_TYPE, CARD_VERSION = "fdt.model_card", "1"


def tuned_card(name: str, spec: Any, result: Any, data: Any, real: Sequence[str], fake: Sequence[str], seed: int, cv: int, storage: str) -> dict[str, Any]:
    """The model card of a tuned training condition (``fdt tune``, ``fdt run``): everything needed to trust and reuse it.

    ``result`` is a :class:`fdt.pipelines.evaluation.TuneResult`, ``data`` the
    :class:`~fdt.features_store.FeatureSet` it was tuned on.
    """
    tuner = result.tuner
    return {
        "name": name,
        "pipeline": spec.to_dict(),
        "best_params": tuner.best_params_,
        "best_cv_score": {"scoring": tuner.scoring, "value": tuner.best_score_},
        "trials_in_study": tuner.n_trials_,
        "trials": tuner.trial_counts_,
        "tuning": {k: tuner.get_params()[k] for k in ("pruner", "fidelity", "n_jobs", "trial_timeout")},
        "solver": {"chosen": tuner.solver_, "refit_converged": tuner.refit_converged_},
        "best_trial": tuner.study_.best_trial.number if tuner.n_trials_ else None,
        "study": {"storage": storage, "name": tuner.study_.study_name},
        "calibration": tuner.calibration_,
        "notes": result.notes,
        "cv": {"folds": cv, "grouped": True, "metrics": result.cv_summary, "pooled_out_of_fold": result.cv_pooled},
        "validation_metrics": result.val_metrics,
        "test_metrics": result.test_metrics,
        "test": result.test,
        "thresholds": result.thresholds,
        "split": {"fractions": list(result.fractions), "rows": result.rows, "seed": seed},
        "extractor_key": data.key.to_dict(),
        "extractor_key_id": data.key.id,
        "weights": data.key.weights,
        "resolution": data.key.resolution,
        "sources": {"real": list(real), "fake": list(fake)},
        "data_fingerprint": result.fingerprint,
    }


def card_path(model_path: str | os.PathLike) -> Path:
    return Path(model_path).with_suffix(CARD_SUFFIX)


def save_model(model: Any, card: dict[str, Any], directory: str | os.PathLike, name: str) -> tuple[Path, dict[str, Any]]:
    """Write ``<directory>/<name>.skops`` then its card (with the file's sha256); returns the model path and card."""
    import skops.io

    check_name(name, "model name")
    directory = Path(directory)
    model_path = directory / f"{name}{MODEL_SUFFIX}"
    check_inside(directory, model_path, "model file")
    directory.mkdir(parents=True, exist_ok=True)
    write_bytes(model_path, skops.io.dumps(model))
    import sklearn

    from fdt import __version__

    card = {
        "encoding-type": CARD_TYPE,
        "encoding-version": CARD_VERSION,
        **card,
        "model_file": model_path.name,
        "model_sha256": sha256_file(model_path),
        "fdt_version": __version__,
        "sklearn_version": sklearn.__version__,
    }
    write_json(card_path(model_path), card, default=_jsonable)
    return model_path, card


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def read_card(model_path: str | os.PathLike) -> dict[str, Any]:
    """The card beside a model file; refuses a missing card or one of an unknown version."""
    path = card_path(model_path)
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"model card {path} not found; a model is usable only with its card") from None
    except ValueError as error:
        raise PipelineError(f"model card {path} is not valid JSON ({error})") from None
    if not isinstance(card, dict) or card.get("encoding-type") != CARD_TYPE or card.get("encoding-version") != CARD_VERSION:
        raise PipelineError(f"{path} is not a version {CARD_VERSION} fdt model card; upgrade fdt to read it")
    return card


def load_model(model_path: str | os.PathLike, trust_pickle: bool = False) -> tuple[Any, dict[str, Any]]:
    """The fitted model and its card, after checking the file's sha256 against the card.

    A skops file is rebuilt from trusted types only (:func:`trusted_types`); a type
    outside them is refused by name. A pickle is loaded only with
    ``trust_pickle=True``, with a :class:`UntrustedModelWarning`, because loading
    one runs whatever code it names.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise PipelineError(f"model file {model_path} not found")
    card = read_card(model_path)
    actual = sha256_file(model_path)
    if actual != card.get("model_sha256"):
        raise ModelIntegrityError(
            f"{model_path} does not match its card (sha256 {actual[:12]}… vs {str(card.get('model_sha256'))[:12]}…); refusing to load it"
        )
    if model_path.suffix in PICKLE_SUFFIXES:
        if not trust_pickle:
            raise PipelineError(
                f"{model_path} is a pickle, and loading a pickle runs any code it holds; if you made it yourself "
                f"or trust its author, pass --trust (or re-save it with fdt tune, which writes .skops files)"
            )
        import warnings

        import joblib

        warnings.warn(f"loading the pickle {model_path} runs any code it holds: trusted on your word (--trust)", UntrustedModelWarning, stacklevel=2)
        return joblib.load(model_path), card
    return _load_skops(model_path), card


def card_extractor_key(card: dict[str, Any], model_path: str | os.PathLike) -> Any:
    """The :class:`~fdt.features_store.featureset.ExtractorKey` a card's model was trained on, or a one-line error."""
    from fdt.features_store.featureset import ExtractorKey

    data = card.get("extractor_key")
    where = card_path(model_path)
    if not isinstance(data, dict):
        raise PipelineError(f"model card {where} has no extractor_key object, so fdt cannot tell which features the model takes")
    if not isinstance(data.get("extractor"), str) or not isinstance(data.get("params", {}), dict) or not isinstance(data.get("weights", ""), str):
        raise PipelineError(f"model card {where}: extractor_key needs an extractor name, a params object and a weights string")
    return ExtractorKey.from_dict(data)


class UntrustedModelWarning(UserWarning):
    """A pickled model was loaded because the user said it is trusted."""


FDT_TYPES = frozenset({"fdt.pipelines.score.SingleScoreLogistic"})
"""fdt's own estimators: scikit-learn subclasses that add a check and no state, rebuilt like their base."""


def trusted_types(untrusted: Sequence[str]) -> list[str]:
    """The types among ``untrusted`` (skops' list for a file) that fdt trusts: classes of scikit-learn, and :data:`FDT_TYPES`.

    skops trusts numpy, scipy and the public scikit-learn estimators by itself;
    fitted models also hold private scikit-learn classes (``_CalibratedClassifier``,
    tree and neighbour structures). A class of the ``sklearn`` package is rebuilt
    from its state without calling anything else, so those are trusted too;
    functions and any other package's types are not.
    """
    import importlib

    trusted = [name for name in untrusted if name in FDT_TYPES]
    for name in untrusted:
        module, _, attribute = name.rpartition(".")
        if module.split(".")[0] != "sklearn":
            continue
        try:
            found = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError):
            continue
        if isinstance(found, type):
            trusted.append(name)
    return trusted


def _load_skops(model_path: Path) -> Any:
    import zipfile

    import skops.io

    data = model_path.read_bytes()
    try:
        untrusted = skops.io.get_untrusted_types(data=data)
    except (zipfile.BadZipFile, ValueError, KeyError) as error:  # a damaged or foreign file
        raise PipelineError(f"{model_path} is not a readable skops model file ({type(error).__name__}: {error})") from None
    allowed = trusted_types(untrusted)
    refused = sorted(set(untrusted) - set(allowed))
    if refused:
        raise PipelineError(f"{model_path} holds types fdt does not trust ({', '.join(refused)}); refusing to load it")
    return skops.io.loads(data, trusted=allowed)
